//! Galera/MariaDB settings: one key/value source rendered as NixOS `services.mysql` values and as the lab's my.cnf.
//!
//! Three layers make up a node's configuration:
//! 1. [`settings`]: what nixstack decides (durability, TLS, addresses); NixOS gets it as
//!    `services.mysql.settings`.
//! 2. [`galera_module_settings`]: what the NixOS `services.mysql.galeraCluster` module
//!    derives from [`galera_cluster`] by itself (wsrep_on, provider, cluster address, …),
//!    transcribed from nixpkgs `nixos/modules/services/databases/mysql.nix` so that the lab
//!    runs exactly what NixOS would write.
//! 3. [`lab_only_settings`]: the paths and the process user NixOS sets elsewhere (the unit,
//!    `dataDir`) and the lab must spell out.
//!
//! [`lab_ini`] merges the three with the NixOS priorities (`lib.mkDefault` values yield to
//! ours, plain values must agree with ours) and renders them like nixpkgs'
//! `pkgs.formats.ini`: sections and keys sorted, `key=value`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::render::{tls, Layout};
use crate::spec::{Role, SstMethod};
use crate::topology::{Host, Topology};

/// Where Debian's `galera-4` installs the provider library (the lab runs Debian's MariaDB).
pub const DEBIAN_GALERA_PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";

/// The port Galera replication uses when a node address carries none.
const GALERA_DEFAULT_PORT: u16 = 4567;

/// Galera's write-set cache: large enough that a node back from a short outage catches up
/// by incremental state transfer (IST) instead of a full snapshot (SST).
const GCACHE_SIZE: &str = "512M";

/// One my.cnf value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl Value {
    fn str(s: impl Into<String>) -> Self {
        Value::Str(s.into())
    }
    fn path(p: &Path) -> Self {
        Value::Str(p.display().to_string())
    }
}

/// Renders the value as nixpkgs' INI generator does (`lib.generators.mkValueStringDefault`):
/// booleans as `true`/`false`, integers in decimal, strings verbatim.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => f.write_str(s),
        }
    }
}

/// my.cnf sections → keys → values, sorted.
pub type Sections = BTreeMap<String, BTreeMap<String, Value>>;

/// Values for NixOS `services.mysql.galeraCluster.*` (the module that adds the Galera unit plumbing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GaleraCluster {
    /// `galeraCluster.name` → `wsrep_cluster_name`.
    pub name: String,
    /// `galeraCluster.localName` → `wsrep_node_name`.
    pub local_name: String,
    /// `galeraCluster.localAddress` → `wsrep_node_address`.
    pub local_address: String,
    /// `galeraCluster.nodeAddresses`, every node including this one → `wsrep_cluster_address`.
    pub node_addresses: Vec<String>,
    /// `galeraCluster.sstMethod` → `wsrep_sst_method`.
    pub sst_method: SstMethod,
}

impl GaleraCluster {
    /// The `gcomm://` URL the module generates from `nodeAddresses` (no `clusterPassword`).
    pub fn cluster_address(&self) -> String {
        format!("gcomm://{}", self.node_addresses.join(","))
    }
}

/// The Galera cluster values of `host`, which must have the `db` role (and the topology a db tier).
pub fn galera_cluster(topology: &Topology, host: &Host) -> GaleraCluster {
    let db = db_tier(topology, host);
    GaleraCluster {
        name: db.cluster_name.clone(),
        local_name: host.name.clone(),
        local_address: host.address.to_string(),
        node_addresses: db
            .peers
            .iter()
            .map(|peer| match peer.port {
                GALERA_DEFAULT_PORT => peer.address.to_string(),
                port => format!("{}:{port}", peer.address),
            })
            .collect(),
        sst_method: db.sst_method,
    }
}

/// What goes into NixOS `services.mysql.settings` (sections → keys) — our durable settings and TLS.
///
/// Keys that the galeraCluster module also sets carry the same value (checked by
/// [`merge`]); keys it sets with `lib.mkDefault` are overridden on purpose (bind address).
pub fn settings(topology: &Topology, host: &Host, layout: &Layout) -> Sections {
    let _ = db_tier(topology, host);
    let mut sections = Sections::new();
    let address = host.address.to_string();

    let mysqld = sections.entry("mysqld".into()).or_default();
    // The galeraCluster module sets `bind_address = lib.mkDefault "0.0.0.0"`; nixpkgs' INI
    // generator sorts keys, so a `bind-address` of ours would be written *before* its
    // `bind_address` and lose (MariaDB keeps the last of the two spellings). Setting both
    // spellings to the private address overrides the default and satisfies the module's
    // assertion that `bind-address` is not loopback.
    mysqld.insert("bind-address".into(), Value::str(&address));
    mysqld.insert("bind_address".into(), Value::str(&address));
    mysqld.insert("port".into(), Value::Int(i64::from(mariadb_port(host))));
    // Galera replicates InnoDB only, row-based, with interleaved auto-increment locks; the
    // module sets the same values (some in the [galera] section): stated here so that the
    // settings are right on their own and any disagreement shows up in `merge`.
    mysqld.insert("default_storage_engine".into(), Value::str("InnoDB"));
    mysqld.insert("binlog_format".into(), Value::str("ROW"));
    mysqld.insert("innodb_autoinc_lock_mode".into(), Value::Int(2));
    // Durability: flush InnoDB's log (and the binlog, when enabled) at every commit. Jepsen's
    // 2026 analysis of MariaDB Galera found acknowledged writes lost after coordinated crashes
    // of all nodes when commits were not flushed: Galera's replication alone does not make a
    // commit survive a cluster-wide power loss.
    mysqld.insert("innodb_flush_log_at_trx_commit".into(), Value::Int(1));
    mysqld.insert("sync_binlog".into(), Value::Int(1));
    // Clients are matched by address, never by a reverse DNS lookup of it: the hosts have no
    // DNS for the private network, and a slow or failing resolver would stall every new
    // connection. Every account nixstack creates names `localhost` (the socket) or an
    // address/netmask (db.nix refuses anything else while this is on).
    mysqld.insert("skip_name_resolve".into(), Value::Bool(true));

    let galera = sections.entry("galera".into()).or_default();
    // Causal reads: a read waits until the node has applied every write the cluster had
    // committed when the read began, so reading from another node sees one's own writes.
    galera.insert("wsrep_sync_wait".into(), Value::Int(1));
    // No SST credentials. nixpkgs' galeraCluster sets `wsrep_sst_auth = lib.mkDefault
    // "check_repl:check_pass"`, the account its own test creates by hand; we create no such
    // account, and neither SST method needs one: wsrep_sst_rsync (our default, wrapped in
    // stunnel through [sst] below) never reads the credentials, and wsrep_sst_mariabackup
    // without a user connects over the socket as the server's OS user (`mysql`), whom NixOS
    // creates `IDENTIFIED WITH unix_socket` with every privilege (MariaDB 10.11's
    // wsrep_sst_common/wsrep_sst_mariabackup). An empty value overrides the mkDefault, so
    // neither NixOS nor the lab's my.cnf carries the well-known pair.
    galera.insert("wsrep_sst_auth".into(), Value::str(""));

    let mut provider_options = vec![format!("gcache.size={GCACHE_SIZE}")];
    if let Some(db) = &topology.db {
        provider_options.extend(failure_detection(db.suspect_timeout_ms));
    }
    if topology.internal_tls {
        let (ca, cert, key) = (layout.ca_cert(), layout.host_cert(), layout.host_key());
        // Client connections: TLS with the internal CA, and no plaintext TCP at all
        // (`require_secure_transport` still admits the local Unix socket).
        let mysqld = sections.entry("mysqld".into()).or_default();
        mysqld.insert("ssl_ca".into(), Value::path(&ca));
        mysqld.insert("ssl_cert".into(), Value::path(&cert));
        mysqld.insert("ssl_key".into(), Value::path(&key));
        mysqld.insert("require_secure_transport".into(), Value::str("ON"));
        // Mozilla intermediate (render::tls): versions and TLS 1.2 ciphers. MariaDB 10.11 has no
        // option for the TLS 1.3 suites (OpenSSL's default three are Mozilla's) nor for the key
        // exchange groups: OpenSSL's defaults apply there (tests/db_configs.rs scans Galera).
        mysqld.insert("tls_version".into(), Value::str(tls::versions(",")));
        mysqld.insert("ssl_cipher".into(), Value::str(tls::openssl_ciphers()));
        // Galera replication (gcomm, IST): Galera 26.4 `socket.ssl*` provider options. Galera has
        // no protocol-version, TLS 1.3-suite or group option either.
        provider_options.extend([
            "socket.ssl=yes".to_string(),
            format!("socket.ssl_ca={}", ca.display()),
            format!("socket.ssl_cert={}", cert.display()),
            format!("socket.ssl_key={}", key.display()),
            format!("socket.ssl_cipher={}", tls::openssl_ciphers()),
        ]);
        // State snapshot transfer: MariaDB 10.11's wsrep_sst_rsync/mariabackup read `tca`,
        // `tcert`, `tkey` from [sst] (check_server_ssl_config in wsrep_sst_common) and wrap
        // the transfer in stunnel; `ssl-mode = VERIFY_CA` makes the donor verify the
        // joiner's certificate chain and refuse to fall back to plaintext.
        let sst = sections.entry("sst".into()).or_default();
        sst.insert("tca".into(), Value::path(&ca));
        sst.insert("tcert".into(), Value::path(&cert));
        sst.insert("tkey".into(), Value::path(&key));
        sst.insert("ssl-mode".into(), Value::str("VERIFY_CA"));
        if topology.db.as_ref().is_some_and(|db| db.sst_method == SstMethod::Mariabackup) {
            // wsrep_sst_mariabackup streams through socat and appends `[sst] sockopt` to the
            // address it builds (`openssl-listen:4444,reuseaddr,cert=…,cafile=…<sockopt>`):
            // Mozilla's protocols and TLS 1.2 suites there. OpenSSL's default TLS 1.3 suites are
            // Mozilla's three. socat 1.7.4 has no groups option and offers prime256v1 alone, with
            // or without the unit's OPENSSL_CONF (measured): a subset of Mozilla's groups.
            // tests/db_configs.rs scans the command the script ran.
            sst.insert("sockopt".into(), Value::str(tls::socat_options()));
        }
    }
    let galera = sections.entry("galera".into()).or_default();
    galera.insert("wsrep_provider_options".into(), Value::str(provider_options.join(";")));
    sections
}

/// Galera's failure detection (evs.*) scaled from `suspect_timeout_ms`, keeping the ratios of
/// Galera's defaults (keepalive 1 s, inactive check 0.5 s, suspect 5 s, inactive 15 s, install
/// 7.5 s): a node silent for the suspect timeout is evicted once the others agree, and commits
/// stall cluster-wide until then (measured by `nixstack lab chaos`; docs/galera.md, "Failure
/// detection"). The join retransmission (default 1 s) follows the keepalive so that the new
/// view installs within the same bound.
pub fn failure_detection(suspect_timeout_ms: u64) -> Vec<String> {
    let period = |ms: u64| {
        let seconds = format!("{}.{:03}", ms / 1000, ms % 1000);
        format!("PT{}S", seconds.trim_end_matches('0').trim_end_matches('.'))
    };
    let s = suspect_timeout_ms;
    vec![
        format!("evs.keepalive_period={}", period(s / 5)),
        format!("evs.join_retrans_period={}", period(s / 5)),
        format!("evs.inactive_check_period={}", period(s / 10)),
        format!("evs.suspect_timeout={}", period(s)),
        format!("evs.inactive_timeout={}", period(3 * s)),
        format!("evs.install_timeout={}", period(3 * s / 2)),
    ]
}

/// How the NixOS module defines a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// `lib.mkDefault`: a value in `services.mysql.settings` replaces it.
    Default,
    /// A plain definition: a different value in `settings` is an evaluation error
    /// (conflicting definitions), the same value merges.
    Normal,
}

/// One key the galeraCluster module writes into `services.mysql.settings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleKey {
    pub section: String,
    pub key: String,
    pub value: Value,
    pub priority: Priority,
}

/// Exactly the keys nixpkgs' `services.mysql.galeraCluster` module derives from `cluster`
/// (`nixos/modules/services/databases/mysql.nix`, the `lib.mkIf cfg.galeraCluster.enable`
/// block), with `provider` standing for `${galeraCluster.package}/lib/galera/libgalera_smm.so`.
pub fn galera_module_settings(cluster: &GaleraCluster, provider: &str) -> Vec<ModuleKey> {
    use Priority::{Default, Normal};
    let key = |section: &str, key: &str, value: Value, priority| ModuleKey {
        section: section.into(),
        key: key.into(),
        value,
        priority,
    };
    vec![
        key("mysqld", "enforce_storage_engine", Value::str("InnoDB"), Normal),
        key("mysqld", "default_storage_engine", Value::str("InnoDB"), Normal),
        key("mysqld", "binlog-format", Value::str("ROW"), Normal),
        key("mysqld", "bind_address", Value::str("0.0.0.0"), Default),
        key("galera", "wsrep_on", Value::str("ON"), Normal),
        key("galera", "wsrep_debug", Value::str("NONE"), Default),
        key("galera", "wsrep_retry_autocommit", Value::str("3"), Default),
        key("galera", "wsrep_provider", Value::str(provider), Normal),
        key("galera", "wsrep_cluster_name", Value::str(&cluster.name), Normal),
        key("galera", "wsrep_cluster_address", Value::str(cluster.cluster_address()), Normal),
        key("galera", "wsrep_node_address", Value::str(&cluster.local_address), Normal),
        key("galera", "wsrep_node_name", Value::str(&cluster.local_name), Normal),
        key("galera", "wsrep_sst_method", Value::str(cluster.sst_method.as_str()), Default),
        key("galera", "wsrep_sst_auth", Value::str("check_repl:check_pass"), Default),
        key("galera", "binlog_format", Value::str("ROW"), Normal),
        key("galera", "innodb_autoinc_lock_mode", Value::Int(2), Normal),
    ]
}

/// What NixOS sets outside `settings` (the unit's `--user`, `dataDir`, `/run/mysqld`) and the
/// lab's my.cnf must state: paths from the Layout, the process user.
pub fn lab_only_settings(layout: &Layout) -> Sections {
    let mut sections = Sections::new();
    let socket = layout.mysql_socket();
    let mysqld = sections.entry("mysqld".into()).or_default();
    mysqld.insert("user".into(), Value::str("mysql"));
    mysqld.insert("datadir".into(), Value::path(&layout.mysql_datadir()));
    mysqld.insert("socket".into(), Value::path(&socket));
    mysqld.insert("pid-file".into(), Value::path(&layout.pid_file("mariadbd")));
    mysqld.insert("log-error".into(), Value::path(&layout.log_file("mariadbd.err")));
    sections.entry("client".into()).or_default().insert("socket".into(), Value::path(&socket));
    sections
}

/// A key set twice with different values where NixOS would refuse to evaluate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[{section}] {key}: nixstack sets {ours}, the galeraCluster module sets {module}")]
pub struct Conflict {
    pub section: String,
    pub key: String,
    pub ours: String,
    pub module: String,
}

/// Merges the layers as NixOS' module system would: module `Default` keys yield to
/// `settings`, `Normal` ones must agree; `extra` (lab-only keys) must not touch either.
pub fn merge(settings: &Sections, module: &[ModuleKey], extra: &Sections) -> Result<Sections, Vec<Conflict>> {
    let mut merged = settings.clone();
    let mut conflicts = Vec::new();
    for entry in module {
        let section = merged.entry(entry.section.clone()).or_default();
        match (section.get(&entry.key), entry.priority) {
            (None, _) => {
                section.insert(entry.key.clone(), entry.value.clone());
            }
            (Some(_), Priority::Default) => {}
            (Some(ours), Priority::Normal) if *ours == entry.value => {}
            (Some(ours), Priority::Normal) => conflicts.push(Conflict {
                section: entry.section.clone(),
                key: entry.key.clone(),
                ours: ours.to_string(),
                module: entry.value.to_string(),
            }),
        }
    }
    for (name, keys) in extra {
        let section = merged.entry(name.clone()).or_default();
        for (key, value) in keys {
            if let Some(existing) = section.insert(key.clone(), value.clone()) {
                conflicts.push(Conflict {
                    section: name.clone(),
                    key: key.clone(),
                    ours: existing.to_string(),
                    module: value.to_string(),
                });
            }
        }
    }
    if conflicts.is_empty() {
        Ok(merged)
    } else {
        Err(conflicts)
    }
}

/// Renders sections as nixpkgs' `pkgs.formats.ini` does: `[section]`, sorted `key=value`
/// lines, a blank line between sections.
pub fn render_ini(sections: &Sections) -> String {
    let blocks: Vec<String> = sections
        .iter()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(name, keys)| {
            let mut block = format!("[{name}]\n");
            for (key, value) in keys {
                block.push_str(&format!("{key}={value}\n"));
            }
            block
        })
        .collect();
    blocks.join("\n")
}

/// The size of the Galera write-set cache (`gcache.size` in `wsrep_provider_options`) that
/// `sections` give a node, in MiB: Galera preallocates it as `galera.cache` in the datadir.
/// Galera reads sizes with an optional K/M/G/T suffix (powers of 1024); none means bytes.
pub fn gcache_size_mib(sections: &Sections) -> Option<u64> {
    let Some(Value::Str(options)) = sections.get("galera")?.get("wsrep_provider_options") else {
        return None;
    };
    let size = options.split(';').find_map(|option| option.trim().strip_prefix("gcache.size="))?.trim();
    let (digits, unit) = size.split_at(size.find(|c: char| !c.is_ascii_digit()).unwrap_or(size.len()));
    let bytes_per_unit: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    Some((digits.parse::<u64>().ok()? * bytes_per_unit).div_ceil(1 << 20))
}

/// Reads back an INI file written by [`render_ini`] (comments and blank lines skipped).
/// Values come back as strings: compare with `Value::to_string()`.
pub fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
            sections.entry(current.clone()).or_default();
        } else if let Some((key, value)) = line.split_once('=') {
            sections.entry(current.clone()).or_default().insert(key.trim().to_string(), value.trim().to_string());
        } else {
            sections.entry(current.clone()).or_default().insert(line.to_string(), String::new());
        }
    }
    sections
}

/// The lab's my.cnf: `settings` + exactly what the NixOS galeraCluster module derives from
/// `galera_cluster` (with Debian's provider path) + lab-only paths (datadir, socket, pid,
/// `user=mysql`). Valid for Debian's mariadbd 10.11 with galera-4.
pub fn lab_ini(topology: &Topology, host: &Host, layout: &Layout) -> String {
    let module = galera_module_settings(&galera_cluster(topology, host), DEBIAN_GALERA_PROVIDER);
    let merged =
        merge(&settings(topology, host, layout), &module, &lab_only_settings(layout)).unwrap_or_else(|conflicts| {
            // A bug in this file, not in the spec: `settings` disagrees with the module.
            panic!("galera settings fight the NixOS galeraCluster module: {conflicts:#?}")
        });
    format!(
        "# MariaDB Galera node {} of cluster {}: generated by nixstack, do not edit.\n\n{}",
        host.name,
        galera_cluster(topology, host).name,
        render_ini(&merged)
    )
}

fn db_tier<'t>(topology: &'t Topology, host: &Host) -> &'t crate::topology::DbTier {
    assert!(host.has(Role::Db), "galera settings asked for {}, which has no db role", host.name);
    topology.db.as_ref().expect("a host with the db role implies a db tier in the topology")
}

/// The MariaDB client port of `host` (the `mariadb` service of the topology).
fn mariadb_port(host: &Host) -> u16 {
    host.services.iter().find(|service| service.name == "mariadb").map_or(3306, |service| service.port)
}

#[cfg(test)]
mod tests {
    #[test]
    fn failure_detection_keeps_galeras_ratios_in_iso_8601() {
        // Galera's own defaults are what 5000 ms gives.
        assert_eq!(
            failure_detection(5000),
            [
                "evs.keepalive_period=PT1S",
                "evs.join_retrans_period=PT1S",
                "evs.inactive_check_period=PT0.5S",
                "evs.suspect_timeout=PT5S",
                "evs.inactive_timeout=PT15S",
                "evs.install_timeout=PT7.5S"
            ]
        );
        assert_eq!(failure_detection(1000)[2], "evs.inactive_check_period=PT0.1S");
        assert_eq!(failure_detection(1250)[0], "evs.keepalive_period=PT0.25S");
    }

    use super::*;
    use crate::spec::SpecSource;

    fn default_topology() -> Topology {
        crate::topology::compile(&SpecSource::embedded_default()).expect("default spec compiles")
    }

    #[test]
    fn settings_agree_with_the_galera_module() {
        let topology = default_topology();
        for host in topology.hosts.iter().filter(|h| h.has(Role::Db)) {
            let layout = Layout::nixos();
            let provider = "/nix/store/x-galera/lib/galera/libgalera_smm.so";
            let module = galera_module_settings(&galera_cluster(&topology, host), provider);
            merge(&settings(&topology, host, &layout), &module, &Sections::new())
                .unwrap_or_else(|c| panic!("{}: {c:#?}", host.name));
        }
    }

    #[test]
    fn merge_reports_a_conflicting_plain_key_and_lets_defaults_yield() {
        let topology = default_topology();
        let db1 = topology.hosts.iter().find(|h| h.name == "db1").unwrap();
        let cluster = galera_cluster(&topology, db1);
        let module = galera_module_settings(&cluster, DEBIAN_GALERA_PROVIDER);
        let mut ours = Sections::new();
        ours.entry("galera".into()).or_default().insert("binlog_format".into(), Value::str("STATEMENT"));
        ours.entry("mysqld".into()).or_default().insert("bind_address".into(), Value::str("10.0.0.1"));
        let conflicts = merge(&ours, &module, &Sections::new()).unwrap_err();
        assert_eq!(conflicts.len(), 1, "{conflicts:#?}");
        assert_eq!(conflicts[0].key, "binlog_format");
        ours.get_mut("galera").unwrap().remove("binlog_format");
        let merged = merge(&ours, &module, &Sections::new()).unwrap();
        assert_eq!(merged["mysqld"]["bind_address"], Value::str("10.0.0.1"));
    }

    #[test]
    fn the_gcache_size_is_read_back_from_the_provider_options() {
        let topology = default_topology();
        let db1 = topology.hosts.iter().find(|h| h.name == "db1").unwrap();
        let rendered = settings(&topology, db1, &Layout::nixos());
        let options = rendered["galera"]["wsrep_provider_options"].to_string();
        assert!(options.starts_with("gcache.size=512M;"), "{options}");
        assert_eq!(gcache_size_mib(&rendered), Some(512));
        let with = |options: &str| {
            let mut sections = Sections::new();
            sections.entry("galera".into()).or_default().insert("wsrep_provider_options".into(), Value::str(options));
            gcache_size_mib(&sections)
        };
        assert_eq!(with("socket.ssl=yes; gcache.size=2g"), Some(2048));
        assert_eq!(with("gcache.size=1048577"), Some(2));
        assert_eq!(with("gcache.size=12X"), None);
        assert_eq!(with("socket.ssl=yes"), None);
    }

    #[test]
    fn cluster_address_lists_every_peer() {
        let topology = default_topology();
        let db1 = topology.hosts.iter().find(|h| h.name == "db1").unwrap();
        let cluster = galera_cluster(&topology, db1);
        assert_eq!(cluster.cluster_address(), "gcomm://10.10.0.41,10.10.0.42,10.10.0.43");
        assert_eq!(cluster.local_address, "10.10.0.41");
    }
}
