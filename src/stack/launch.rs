//! How a service is started: its command lines, environment, user and groups, umask,
//! capabilities and directories. For every daemon a nixpkgs module starts, these come from
//! the recorded unit ([`super::units`]) with its paths resolved through a [`Layout`]; the lab
//! starts the daemon from exactly this, and a test compares the lab's processes with it.
//! The app runs under nixstack's own unit (modules/app.nix), described here directly.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::units::{self, Token, UnitRecord};
use super::{Layout, Service};
use crate::topology::{Host, Topology};

/// The group that may read the secrets directory (modules/base.nix `secretsGroup`).
pub const SECRETS_GROUP: &str = "nixstack-secrets";

/// The OpenSSL configuration MariaDB's unit gets as `OPENSSL_CONF` (modules/db.nix
/// `opensslConfig`; render::tls::openssl_system_default): beside the host's default.nix,
/// in the lab's etc/.
pub const MARIADB_OPENSSL_CONF: &str = "mariadb-openssl.cnf";

/// Whether `host`'s MariaDB gets [`MARIADB_OPENSSL_CONF`]: a db host whose client port and
/// Galera replication speak TLS.
pub fn mariadb_openssl_conf(topology: &Topology, host: &Host) -> bool {
    host.has(crate::spec::Role::Db) && topology.internal_tls
}

/// stunnel's options for MariaDB's rsync state snapshot transfer (modules/db.nix
/// `sstStunnelOptions`; render::tls::stunnel_options): beside the host's default.nix, in the
/// lab's etc/.
pub const SST_STUNNEL_OPTIONS: &str = "sst-stunnel.conf";

/// modules/sst-stunnel.sh: puts [`SST_STUNNEL_OPTIONS`] before the configuration
/// wsrep_sst_rsync writes and execs the real stunnel. One script, shipped verbatim to NixOS
/// (modules/db.nix's `stunnel` wrapper runs it) and run by the lab.
pub const SST_STUNNEL_SCRIPT: &str = include_str!("../../modules/sst-stunnel.sh");

/// The `PATH` lab daemons get (systemd's default for units, with Debian's sbin first).
pub const LAB_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Whether `host`'s MariaDB runs its rsync state snapshot transfer through nixstack's stunnel
/// wrapper: a db host whose transfers are TLS (`[sst]` keys, internal TLS) by rsync.
pub fn sst_stunnel(topology: &Topology, host: &Host) -> bool {
    mariadb_openssl_conf(topology, host)
        && topology.db.as_ref().is_some_and(|db| db.sst_method == crate::spec::SstMethod::Rsync)
}

/// The directory of the lab's `stunnel` wrapper, first on MariaDB's lab `PATH` as
/// modules/db.nix puts its wrapper first on the unit's path (`lib.mkBefore`).
fn lab_sst_bin(layout: &Layout) -> PathBuf {
    layout.config("sst-bin")
}

/// The files the lab installs for [`sst_stunnel`] hosts, as (path, text, executable): the
/// script and a `stunnel` on PATH that runs it as modules/db.nix's `writeShellScriptBin` does
/// (`exec <shell> sst-stunnel.sh <real stunnel> <options> "$@"`). The options file itself is
/// the rendered [`SST_STUNNEL_OPTIONS`].
pub fn lab_sst_stunnel_files(layout: &Layout) -> Vec<(PathBuf, String, bool)> {
    let script = layout.config("sst-stunnel.sh");
    let wrapper = include_str!("sst-stunnel-wrapper.sh.in")
        .replace("@script@", &script.display().to_string())
        .replace("@options@", &layout.config(SST_STUNNEL_OPTIONS).display().to_string());
    vec![(script, SST_STUNNEL_SCRIPT.to_string(), false), (lab_sst_bin(layout).join("stunnel"), wrapper, true)]
}

/// The variables nixstack's role modules add to a nixpkgs unit
/// (`systemd.services.<unit>.environment`), with `layout`'s paths. NixOS's value is a store
/// path (`{store:…}`, as in the unit records).
fn module_environment(topology: &Topology, host: &Host, layout: &Layout, service: Service) -> BTreeMap<String, String> {
    let mut environment = BTreeMap::new();
    if service == Service::Mariadb && mariadb_openssl_conf(topology, host) {
        // modules/db.nix: systemd.services.mysql.environment.OPENSSL_CONF = "${cfg.opensslConfig}"
        let path = if layout.is_lab() {
            layout.config(MARIADB_OPENSSL_CONF).display().to_string()
        } else {
            format!("{{store:{MARIADB_OPENSSL_CONF}}}")
        };
        environment.insert("OPENSSL_CONF".to_string(), path);
    }
    if service == Service::Mariadb && layout.is_lab() && sst_stunnel(topology, host) {
        // modules/db.nix: systemd.services.mysql.path = lib.mkBefore [ sstStunnel ]. On NixOS
        // systemd builds PATH from the unit's `path`, store paths the lab has none of; in the
        // lab the wrapper's directory goes before the lab's PATH.
        environment.insert("PATH".to_string(), format!("{}:{LAB_PATH}", lab_sst_bin(layout).display()));
    }
    environment
}

/// A directory systemd creates for the unit (`RuntimeDirectory=`, `StateDirectory=`,
/// `LogsDirectory=`), owned by the unit's user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directory {
    pub path: PathBuf,
    pub mode: u32,
}

/// Everything about starting one service on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceLaunch {
    pub service: Service,
    /// The systemd unit on NixOS.
    pub unit: String,
    /// `ExecStartPre=` command lines (resolved), run in order before the daemon.
    pub pre: Vec<Vec<String>>,
    /// `ExecStart=` (resolved): the daemon in the foreground.
    pub argv: Vec<String>,
    /// `ExecReload=` command lines (resolved); `$MAINPID` is the daemon's pid.
    pub reload: Vec<Vec<String>>,
    /// The unit's `Environment=`: the nixpkgs unit's, plus what nixstack's modules add.
    pub environment: BTreeMap<String, String>,
    /// `User=` (`None`: root).
    pub user: Option<String>,
    /// `Group=` (`None`: the user's primary group, root's for root).
    pub group: Option<String>,
    /// `SupplementaryGroups=` plus the groups nixstack's modules add the user to
    /// (`users.users.<user>.extraGroups`): what the process holds at run time.
    pub groups: Vec<String>,
    /// Of `groups`, those the user is a member of (NixOS `extraGroups`, /etc/group).
    pub user_groups: Vec<String>,
    pub umask: u32,
    pub ambient_capabilities: Vec<String>,
    pub directories: Vec<Directory>,
    /// `LoadCredential=`: files systemd copies into `$CREDENTIALS_DIRECTORY` for the unit.
    pub credentials: Vec<super::app::Credential>,
}

impl ServiceLaunch {
    /// The program `argv` starts.
    pub fn program(&self) -> &str {
        &self.argv[0]
    }
}

/// The groups nixstack's role modules make a service's user a member of
/// (`users.users.<user>.extraGroups`, in /etc/group: any process of the user holds them, also
/// `mysqld --user=mysql` run from a root shell): every daemon that reads a TLS key or password.
fn user_groups(service: Service) -> &'static [&'static str] {
    match service {
        // modules/db.nix: users.users.${mysql.user}.extraGroups = [ secretsGroup ]
        Service::Mariadb => &[SECRETS_GROUP],
        // modules/web.nix: users.users.nginx.extraGroups = [ secretsGroup ]
        Service::Nginx => &[SECRETS_GROUP],
        // modules/lb.nix: users.users.haproxy.extraGroups = [ secretsGroup ]
        Service::Haproxy => &[SECRETS_GROUP],
        _ => &[],
    }
}

/// How `service` starts on `host` with `layout`'s paths; `None` for what is no process
/// (the firewall is a one-shot `nft -f`). `bootstrap`: a Galera node that starts a new
/// cluster (`_WSREP_NEW_CLUSTER=--wsrep-new-cluster`, as NixOS's mysql unit sets it).
pub fn launch(
    topology: &Topology,
    host: &Host,
    layout: &Layout,
    service: Service,
    bootstrap: bool,
) -> Option<ServiceLaunch> {
    if service == Service::Nftables {
        return None;
    }
    if service.nixpkgs_module().is_none() {
        return Some(app_launch(topology, host, layout));
    }
    let record = units::record(service).expect("every nixpkgs-started service has a record (a unit test holds it)");
    let resolver = Resolver { service, layout, bootstrap };
    let mut groups: Vec<String> = record.supplementary_groups.clone();
    groups.extend(user_groups(service).iter().map(|g| g.to_string()));
    let mut directories = Vec::new();
    for (names, mode, root) in [
        (&record.runtime_directory, record.runtime_directory_mode(), "/run"),
        (&record.state_directory, record.state_directory_mode(), "/var/lib"),
        (&record.logs_directory, record.logs_directory_mode(), "/var/log"),
    ] {
        for name in names {
            directories.push(Directory { path: layout.translate(&format!("{root}/{name}")), mode });
        }
    }
    Some(ServiceLaunch {
        service,
        unit: record.unit.clone(),
        pre: record.exec_start_pre.iter().map(|argv| resolver.argv(record, argv)).collect(),
        argv: resolver.argv(record, &record.exec_start),
        reload: record.exec_reload.iter().map(|argv| resolver.argv(record, argv)).collect(),
        environment: unit_environment(record, layout)
            .into_iter()
            .chain(module_environment(topology, host, layout, service))
            .collect(),
        user: record.user().map(str::to_string),
        group: (!record.group.is_empty()).then(|| record.group.clone()),
        groups,
        user_groups: user_groups(service).iter().map(|g| g.to_string()).collect(),
        umask: record.umask(),
        ambient_capabilities: record.ambient_capabilities.clone(),
        directories,
        credentials: Vec::new(),
    })
}

/// The unit's `Environment=`. In the lab, a variable whose value is a store path (sshd's
/// `LD_LIBRARY_PATH` of NSS modules) is left out: a named deviation, there is no store.
fn unit_environment(record: &UnitRecord, layout: &Layout) -> BTreeMap<String, String> {
    record
        .environment
        .iter()
        .filter(|(_, value)| !(layout.is_lab() && value.contains("{store:")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The app under modules/app.nix's `nixstack-app` unit: `DynamicUser=`, `UMask=0077`,
/// `StateDirectory=nixstack-app`, its environment and credentials the app contract.
fn app_launch(topology: &Topology, host: &Host, layout: &Layout) -> ServiceLaunch {
    let lab_command = topology.app.as_ref().and_then(|app| app.lab_command.clone());
    let argv = match (layout.kind, lab_command) {
        (super::LayoutKind::Nixos, _) => vec!["{exe}".to_string()],
        // `[app.lab] command`: the team's app as it runs without Nix.
        (super::LayoutKind::Lab, Some(command)) => command,
        // The lab runs the demo app's source with Debian's Python (python3-pymysql).
        (super::LayoutKind::Lab, None) => {
            vec![layout.executable(Service::App), layout.config(Service::App.config_file()).display().to_string()]
        }
    };
    ServiceLaunch {
        service: Service::App,
        unit: super::app::UNIT.into(),
        pre: Vec::new(),
        argv,
        reload: Vec::new(),
        environment: super::app::environment(topology, host),
        user: Some(layout.dynamic_user(Service::App)),
        group: Some(layout.dynamic_user(Service::App)),
        groups: Vec::new(),
        user_groups: Vec::new(),
        umask: 0o077,
        ambient_capabilities: Vec::new(),
        directories: vec![Directory { path: layout.translate("/var/lib/nixstack-app"), mode: 0o755 }],
        credentials: super::app::credentials(topology, layout),
    }
}

/// `/etc/haproxy.cfg` as NixOS's haproxy module writes it: its own `global` section with
/// the `level user` stats socket the master needs for seamless reloads, then
/// `services.haproxy.config` (nixos/modules/services/networking/haproxy.nix, `haproxyCfg`;
/// data/nixpkgs-units.toml names the commit). HAProxy merges several `global` sections.
pub fn haproxy_config_as_installed(layout: &Layout, config: &str) -> String {
    let socket = layout.translate("/run/haproxy/haproxy.sock");
    format!(
        "global\n  # needed for hot-reload to work without dropping packets in multi-worker mode\n  stats socket {} mode 600 expose-fd listeners level user\n\n{config}",
        socket.display()
    )
}

/// nginx's config file as NixOS's nginx module writes it (`configFile`): `pid`, `error_log`
/// (`services.nginx.logError`, default `stderr`) and `daemon off;` in front of
/// `services.nginx.config` (nixos/modules/services/web-servers/nginx/default.nix).
pub fn nginx_config_as_installed(layout: &Layout, config: &str) -> String {
    format!("pid {};\nerror_log stderr;\ndaemon off;\n\n{config}", nginx_pid_file(layout).display())
}

/// Where the nginx module's prelude puts the master's pid: in its RuntimeDirectory.
pub fn nginx_pid_file(layout: &Layout) -> std::path::PathBuf {
    layout.translate("/run/nginx/nginx.pid")
}

/// Resolves a recorded command line's symbolic parts.
struct Resolver<'a> {
    service: Service,
    layout: &'a Layout,
    bootstrap: bool,
}

impl Resolver<'_> {
    fn argv(&self, record: &UnitRecord, argv: &[String]) -> Vec<String> {
        argv.iter().filter_map(|word| self.word(record, word)).collect()
    }

    /// One word; `None` when it expands to nothing (an empty `$VAR`).
    fn word(&self, record: &UnitRecord, word: &str) -> Option<String> {
        // `--option={token}`: the option with the token resolved.
        if let Some((option, value)) =
            word.split_once('=').filter(|(option, value)| option.starts_with('-') && value.starts_with('{'))
        {
            return Some(format!("{option}={}", self.word(record, value)?));
        }
        Some(match Token::parse(word) {
            Token::Exe => self.layout.executable(self.service),
            Token::Package { name, rest } => self.layout.package_file(name, rest),
            Token::Store("package") => self.layout.package_root(),
            Token::Store(name) => self.layout.store_file(self.service, name).display().to_string(),
            Token::Script(name) => format!("{{script:{name}}}"),
            Token::Literal(literal) if literal.starts_with('$') => {
                let variable = literal.trim_start_matches('$').trim_start_matches('{').trim_end_matches('}');
                let value = self.variable(record, variable);
                return (!value.is_empty()).then_some(value);
            }
            Token::Literal(literal) => self.layout.translate_words(literal),
        })
    }

    /// What systemd substitutes for `$variable`: the unit's environment, and the variables
    /// the mysql unit's preStart sets for Galera.
    fn variable(&self, record: &UnitRecord, variable: &str) -> String {
        match variable {
            "_WSREP_NEW_CLUSTER" if self.bootstrap => "--wsrep-new-cluster".into(),
            "_WSREP_NEW_CLUSTER" | "_WSREP_START_POSITION" => String::new(),
            other => record.environment.get(other).cloned().unwrap_or_else(|| format!("${other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecSource;
    use crate::topology::compile;

    /// Maps a lab word back to what the nixpkgs unit writes: the lab's program to `{exe}`, a
    /// path under the host's lab root to the NixOS path, the rendered config to its store file.
    fn untranslate(layout: &Layout, service: Service, record: &UnitRecord, lab_word: &str, nixos_word: &str) -> bool {
        let nixos = Layout::nixos();
        let ours = |word: &str| word.replace(&layout.executable(service), "{exe}");
        let lab_word = ours(lab_word);
        if lab_word == nixos_word {
            return true;
        }
        if let (Some((lab_option, lab_value)), Some((option, value))) =
            (lab_word.split_once('='), nixos_word.split_once('='))
        {
            if lab_option == option && value.starts_with('{') {
                return untranslate(layout, service, record, lab_value, value);
            }
        }
        match Token::parse(nixos_word) {
            Token::Store("package") => lab_word == layout.package_root(),
            Token::Store(name) => lab_word == layout.store_file(service, name).display().to_string(),
            Token::Package { name, rest } => lab_word == layout.package_file(name, rest),
            Token::Literal(literal) => {
                lab_word == layout.translate_words(literal) && nixos.translate_words(literal) == literal
            }
            _ => {
                let _ = record;
                false
            }
        }
    }

    #[test]
    fn the_lab_runs_every_recorded_unit_command_word_for_word() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        for host in &topology.hosts {
            let layout = Layout::lab(&host.name);
            for service in crate::stack::for_host(&topology, host) {
                let Some(record) = units::record(service) else { continue };
                let Some(launch) = launch(&topology, host, &layout, service, false) else { continue };
                let recorded: Vec<&String> = record.exec_start.iter().filter(|w| !w.starts_with('$')).collect();
                assert_eq!(
                    launch.argv.len(),
                    recorded.len(),
                    "{service:?}: {:?} vs the record's {:?}",
                    launch.argv,
                    record.exec_start
                );
                for (ours, theirs) in launch.argv.iter().zip(&recorded) {
                    assert!(
                        untranslate(&layout, service, record, ours, theirs),
                        "{service:?} on {}: {ours:?} is not the record's {theirs:?}",
                        host.name
                    );
                }
                assert_eq!(launch.user.as_deref(), record.user(), "{service:?}: User=");
                let added = module_environment(&topology, host, &layout, service);
                for (name, value) in &launch.environment {
                    let expected = record.environment.get(name).or(added.get(name));
                    assert_eq!(expected, Some(value), "{service:?}: Environment={name}");
                }
                assert_eq!(launch.umask, record.umask(), "{service:?}: UMask=");
                for group in &record.supplementary_groups {
                    assert!(launch.groups.contains(group), "{service:?}: SupplementaryGroups={group}");
                }
            }
        }
    }

    #[test]
    fn a_bootstrapping_galera_node_gets_the_new_cluster_flag_only_then() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        let host = topology.host("db1").unwrap();
        let layout = Layout::lab("db1");
        let plain = launch(&topology, host, &layout, Service::Mariadb, false).unwrap();
        let bootstrap = launch(&topology, host, &layout, Service::Mariadb, true).unwrap();
        assert!(!plain.argv.iter().any(|a| a == "--wsrep-new-cluster"));
        assert!(bootstrap.argv.iter().any(|a| a == "--wsrep-new-cluster"), "{:?}", bootstrap.argv);
    }
}
