//! The spec as written: the serde types behind `stack.toml` (and its JSON Schema).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Located;

/// The whole `stack.toml`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
#[schemars(title = "nixstack stack.toml")]
pub struct RawSpec {
    /// Identity of the stack and the NixOS release it targets.
    pub stack: StackSection,
    /// The address plan.
    pub networks: NetworksSection,
    /// TLS between the tiers.
    #[serde(default)]
    pub tls: TlsSection,
    /// Machines by name. Each runs one or more roles.
    #[serde(default)]
    pub hosts: BTreeMap<Located<String>, HostSpec>,
    /// Many alike machines declared at once: `[groups.web]` with `count = 30` is the hosts
    /// web1 … web30, each as if written under [hosts].
    #[serde(default)]
    pub groups: BTreeMap<Located<String>, GroupSpec>,
    /// Load balancers (HAProxy + keepalived); required when a host has role `lb`.
    pub lb: Option<LbSection>,
    /// Web servers (nginx); required when a host has role `web`.
    pub web: Option<WebSection>,
    /// Application servers; required when a host has role `app`.
    pub app: Option<AppSection>,
    /// Database cluster (MariaDB Galera); required when a host has role `db`.
    pub db: Option<DbSection>,
    /// nftables firewalls.
    #[serde(default)]
    pub firewall: FirewallSection,
    /// Monitoring clients shipping to Sumo Logic.
    pub monitoring: Option<MonitoringSection>,
    /// Deploy tools besides `nixstack deploy` that the generated flake also serves.
    #[serde(default)]
    pub deploy: DeploySection,
    /// How the hosts get their secrets: uploaded by `nixstack deploy` (default), or decrypted
    /// on the host by sops-nix or agenix from encrypted files in the flake.
    #[serde(default)]
    pub secrets: SecretsSection,
}

/// `[secrets]`: the secrets backend and the operators who can decrypt the encrypted files.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SecretsSection {
    /// `nixstack` (deploy uploads the files), `sops` (sops-nix) or `agenix`.
    #[serde(default)]
    pub backend: Located<SecretsBackend>,
    /// Operators' public keys every encrypted file is also encrypted to (`ssh-ed25519 …` or
    /// `age1…`); default: the ed25519 keys of `stack.ssh_keys`.
    pub recipients: Option<Vec<Located<String>>>,
}

/// Where a host's secrets come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SecretsBackend {
    /// `nixstack deploy` uploads the plaintext files over SSH (today's behaviour).
    #[default]
    Nixstack,
    /// sops-nix (github:Mic92/sops-nix) decrypts `encrypted-secrets/sops/<host>.yaml` at activation.
    Sops,
    /// agenix (github:ryantm/agenix) decrypts `encrypted-secrets/age/<host>/<file>.age` at activation.
    Agenix,
}

impl SecretsBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretsBackend::Nixstack => "nixstack",
            SecretsBackend::Sops => "sops",
            SecretsBackend::Agenix => "agenix",
        }
    }

    /// Whether `nixstack deploy` uploads the secrets (only with the nixstack backend).
    pub fn deploy_uploads(self) -> bool {
        self == SecretsBackend::Nixstack
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct StackSection {
    /// Short name, used for the flake, the Galera cluster and certificate names (`[a-z][a-z0-9-]*`).
    pub name: Located<String>,
    /// The public domain served over HTTPS.
    pub domain: Located<String>,
    /// NixOS channel the flake pins nixpkgs to, e.g. `nixos-25.11`.
    #[serde(default = "default_channel")]
    pub channel: Located<String>,
    /// Nix system of every host.
    #[serde(default = "default_system")]
    pub system: Located<String>,
    /// `system.stateVersion` of every host (never change it after the first install).
    #[serde(default = "default_state_version")]
    pub state_version: Located<String>,
    /// Disk image variant built as `packages.<system>.<host>-image`
    /// (an attribute of `config.system.build.images`).
    #[serde(default)]
    pub image: ImageVariant,
    /// Login of the deploy user whose SSH keys are authorized on every host.
    #[serde(default = "default_deploy_user")]
    pub deploy_user: String,
    /// SSH public keys authorized for the deploy user (and root).
    #[serde(default)]
    pub ssh_keys: Vec<Located<String>>,
}

fn default_channel() -> Located<String> {
    Located::synthetic("nixos-25.11".into())
}
fn default_system() -> Located<String> {
    Located::synthetic("x86_64-linux".into())
}
fn default_state_version() -> Located<String> {
    Located::synthetic("25.11".into())
}
fn default_deploy_user() -> String {
    "deploy".into()
}

/// `config.system.build.images` variants that make sense for servers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ImageVariant {
    #[default]
    RawEfi,
    Raw,
    QemuEfi,
    Qemu,
    Iso,
}

impl ImageVariant {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageVariant::RawEfi => "raw-efi",
            ImageVariant::Raw => "raw",
            ImageVariant::QemuEfi => "qemu-efi",
            ImageVariant::Qemu => "qemu",
            ImageVariant::Iso => "iso",
        }
    }
}

/// `[deploy]`: the third-party deploy tools the generated flake serves (opt-in). See README.md,
/// "Bring your deploy tool", for what `nixstack deploy` does that they do not.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct DeploySection {
    /// Each tool adds its flake input (following the stack's nixpkgs) and its output:
    /// `colmena` a `colmenaHive`, `deploy-rs` `deploy.nodes` and its checks.
    #[serde(default)]
    pub tools: Vec<Located<DeployTool>>,
    /// Where this nixstack is published, as a flake reference (`github:org/nixstack`, pinned
    /// to a tag or not): the generated flake gets it as the input `nixstack` and its dev shell
    /// carries `packages.<system>.nixstack`, so that the team regenerates with the pinned tool.
    pub nixstack: Option<Located<String>>,
}

/// A deploy tool the flake can serve besides `nixstack deploy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeployTool {
    /// colmena (github:zhaofengli/colmena): `colmenaHive`, made by `colmena.lib.makeHive`.
    Colmena,
    /// deploy-rs (github:serokell/deploy-rs): `deploy.nodes`, and `deployChecks` under `checks`.
    DeployRs,
}

impl DeployTool {
    pub fn as_str(self) -> &'static str {
        match self {
            DeployTool::Colmena => "colmena",
            DeployTool::DeployRs => "deploy-rs",
        }
    }
}

impl std::fmt::Display for DeployTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct NetworksSection {
    /// The private network every host is on (IPv4 CIDR).
    pub private: Located<Ipv4Net>,
    /// The public network the load balancers and the virtual IP are on (IPv4 CIDR).
    pub public: Located<Ipv4Net>,
    /// Networks allowed to reach SSH (port 22).
    #[serde(default)]
    pub admin: Vec<Located<Ipv4Net>>,
    /// Default gateway on the public network (optional): the default route of every host with
    /// a public address.
    pub gateway: Option<Located<Ipv4Addr>>,
    /// Default gateway on the private network (optional): the default route of the hosts
    /// without a public address (and of all hosts when `gateway` is unset).
    pub private_gateway: Option<Located<Ipv4Addr>>,
    /// DNS servers of every host (`networking.nameservers`).
    #[serde(default)]
    pub dns: Vec<Located<Ipv4Addr>>,
    /// The public network's IPv6 prefix (optional, e.g. "2001:db8:10::/64"): the load
    /// balancers then serve clients on IPv6 too, at `lb.vip6`, each with its
    /// `public_address6`.
    pub public6: Option<Located<Ipv6Net>>,
    /// IPv6 default gateway on the public network (optional): an address in `public6` or a
    /// link-local `fe80::` address of the router.
    pub gateway6: Option<Located<Ipv6Addr>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TlsSection {
    /// Whether the tiers talk TLS to each other (LB→web, web→app, app→db, Galera
    /// replication), with certificates from the stack's internal CA.
    #[serde(default = "yes")]
    pub internal: Located<bool>,
    /// Days a host certificate from the internal CA is valid, 1 to 397 (default 90; the
    /// CA itself keeps a long life). Renew them with `nixstack secrets rotate`; `check`
    /// warns 30 days before one expires.
    pub host_certificate_days: Option<Located<u32>>,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection { internal: Located::synthetic(true), host_certificate_days: None }
    }
}

fn yes() -> Located<bool> {
    Located::synthetic(true)
}

/// A tier a host can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// HAProxy load balancer with keepalived.
    Lb,
    /// nginx web server.
    Web,
    /// Application server.
    App,
    /// MariaDB Galera node.
    Db,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Lb, Role::Web, Role::App, Role::Db];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Lb => "lb",
            Role::Web => "web",
            Role::App => "app",
            Role::Db => "db",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct HostSpec {
    /// Private IPv4 address; allocated from `networks.private` when omitted.
    pub address: Option<Located<Ipv4Addr>>,
    /// Public IPv4 address (load balancers); allocated from `networks.public` when omitted.
    pub public_address: Option<Located<Ipv4Addr>>,
    /// Public IPv6 address in `networks.public6` (load balancers, when the stack has one).
    pub public_address6: Option<Located<Ipv6Addr>>,
    /// Roles this host runs.
    pub roles: Located<Vec<Located<Role>>>,
    /// SSH target for deploy, `user@host[:port]`; defaults to `root@<address>`.
    pub ssh: Option<Located<String>>,
    /// Whole disk to install on (e.g. `/dev/sda`); used for the disko layout.
    pub disk: Option<Located<String>>,
    /// MAC address of the card on the private network (`aa:bb:cc:dd:ee:ff`). With it the
    /// card is named `priv0` by its permanent MAC instead of by the kernel's probe order.
    pub mac: Option<Located<String>>,
    /// MAC address of the card on the public network (hosts with a public address); the card
    /// is then named `pub0`. A host with both cards gives both MACs or neither.
    pub public_mac: Option<Located<String>>,
    /// NixOS channel of this host, when it differs from `stack.channel`: a tier whose hosts
    /// run two releases does not share one bug (see README.md, "Software diversity").
    pub channel: Option<Located<String>>,
    /// Nix system of this host, when it differs from `stack.system`.
    pub system: Option<Located<String>>,
    /// The host's SSH host key, public half (`ssh-ed25519 AAAA…`, from
    /// /etc/ssh/ssh_host_ed25519_key.pub); required with `[secrets] backend` sops or agenix,
    /// which encrypt the host's secrets to it.
    pub host_key: Option<Located<String>>,
}

/// `[groups.<name>]`: `count` hosts that differ only in their name and addresses.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct GroupSpec {
    /// How many hosts the group has (at least 1).
    pub count: Located<u32>,
    /// Roles every host of the group runs.
    pub roles: Located<Vec<Located<Role>>>,
    /// Host name pattern: `{n}` becomes 1, 2, … `count` (default `<group>{n}`).
    pub name: Option<Located<String>>,
    /// The part of `networks.private` the group's private addresses are allocated from (CIDR;
    /// default: all of `networks.private`).
    pub network: Option<Located<Ipv4Net>>,
    /// Whole disk every host of the group installs on (e.g. `/dev/sda`).
    pub disk: Option<Located<String>>,
    /// NixOS channel of every host of the group, when it differs from `stack.channel`.
    pub channel: Option<Located<String>>,
    /// Nix system of every host of the group, when it differs from `stack.system`.
    pub system: Option<Located<String>>,
}

/// The placeholder a group's name pattern numbers its hosts with.
pub const GROUP_NUMBER: &str = "{n}";

impl GroupSpec {
    /// The name pattern, `<group>{n}` unless the spec gives one.
    pub fn pattern(&self, group: &str) -> String {
        self.name.as_ref().map_or_else(|| format!("{group}{GROUP_NUMBER}"), |name| name.value.clone())
    }

    /// The name of host number `n` (1-based).
    pub fn host_name(&self, group: &str, n: u32) -> String {
        self.pattern(group).replacen(GROUP_NUMBER, &n.to_string(), 1)
    }

    /// The number of the host `name` has in this group, if it is one of its hosts.
    pub fn number_of(&self, group: &str, name: &str) -> Option<u32> {
        let pattern = self.pattern(group);
        let (prefix, suffix) = pattern.split_once(GROUP_NUMBER)?;
        let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
        let n: u32 = digits.parse().ok().filter(|_| !digits.starts_with('0'))?;
        (1..=self.count.value).contains(&n).then_some(n)
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct LbSection {
    /// The virtual IP on the public network that clients connect to (keepalived VRRP).
    pub vip: Located<Ipv4Addr>,
    /// The virtual IPv6 address in `networks.public6` (keepalived VRRPv3); required with
    /// `public6`. It moves together with `vip`.
    pub vip6: Option<Located<Ipv6Addr>>,
    /// HAProxy balancing algorithm.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Path HAProxy checks on every web backend.
    #[serde(default = "default_lb_health")]
    pub health_path: Located<String>,
    /// The load balancer that holds the VIP when all are healthy (default: the first by name).
    pub primary: Option<Located<String>>,
    /// VRRP virtual router id (1–255).
    #[serde(default = "default_vrid")]
    pub virtual_router_id: Located<u8>,
    /// The public certificate.
    #[serde(default)]
    pub tls: PublicTls,
}

fn default_lb_health() -> Located<String> {
    Located::synthetic("/health".into())
}
fn default_vrid() -> Located<u8> {
    Located::synthetic(51)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    #[default]
    Roundrobin,
    Leastconn,
    Source,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Roundrobin => "roundrobin",
            Algorithm::Leastconn => "leastconn",
            Algorithm::Source => "source",
        }
    }
}

/// Where the public certificate comes from.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct PublicTls {
    /// `acme` (Let's Encrypt HTTP-01 through HAProxy) or `provided` (a PEM bundle in secrets/).
    #[serde(default)]
    pub mode: Located<TlsMode>,
    /// ACME account email (mode `acme`).
    pub acme_email: Option<Located<String>>,
    /// Secret name of the PEM bundle, certificate then key (mode `provided`).
    pub certificate: Option<Located<String>>,
}

impl Default for PublicTls {
    fn default() -> Self {
        PublicTls { mode: Located::synthetic(TlsMode::Acme), acme_email: None, certificate: None }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    #[default]
    Acme,
    Provided,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct WebSection {
    /// Directory of static files served by nginx.
    #[serde(default = "default_root")]
    pub root: Located<String>,
    /// Proxy everything that is not a static file to the app tier.
    #[serde(default = "yes")]
    pub proxy_app: Located<bool>,
    /// Port the load balancers reach nginx on (TLS when `tls.internal`).
    #[serde(default = "default_web_port")]
    pub port: Located<u16>,
    /// Local-only port of nginx `stub_status` (for the monitoring client).
    #[serde(default = "default_status_port")]
    pub status_port: Located<u16>,
    /// Static assets served by nginx from the Nix store instead of the app: an attribute
    /// under the app's flake's `packages.<system>` (`"static"`), needs `[app] source`. Files
    /// under `assets/` are fingerprinted (cached for a year, immutable); every path the
    /// package does not hold goes to the app (docs/app.md).
    #[serde(rename = "static")]
    pub static_package: Option<Located<String>>,
    /// How the lab, which has no Nix, stands in for the static package.
    pub lab: Option<WebLabSection>,
}

/// `[web.lab]`: the static assets in the lab.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct WebLabSection {
    /// A local directory standing in for `[web] static` (absolute, or relative to the
    /// directory `nixstack lab up` runs in). Default: nixstack's demo assets.
    #[serde(rename = "static")]
    pub static_dir: Option<Located<String>>,
}

fn default_root() -> Located<String> {
    Located::synthetic("/var/www/site".into())
}
fn default_web_port() -> Located<u16> {
    Located::synthetic(443)
}
fn default_status_port() -> Located<u16> {
    Located::synthetic(8081)
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AppSection {
    /// Where the application's code comes from: a flake reference (`github:org/shop`,
    /// `git+https://host/shop?ref=main`, `path:./shop`), an input of the generated flake that
    /// follows its nixpkgs. Absent: nixstack's demo app.
    pub source: Option<Located<String>>,
    /// The package: with `source`, the attribute under the input's `packages.<system>`
    /// (default `default`); without, an attribute of the generated flake's overlay (default
    /// `nixstack-demo-app`).
    pub package: Option<Located<String>>,
    /// Program run by the systemd unit, relative to the package's `bin/`. Default: the
    /// package's `meta.mainProgram` (`lib.getExe`) with `source`, `nixstack-demo-app` without.
    pub command: Option<Located<String>>,
    /// The schema migration, run once per deploy before any app host switches: a program in
    /// the package's `bin/` and its arguments, split on spaces (`"shop-server migrate"`). It
    /// runs on one app host as the oneshot unit `nixstack-app-migrate` with the app's
    /// environment and credentials, against the first `DATABASE_HOSTS` node only; its
    /// failure stops the rollout with nothing switched (docs/app.md).
    pub migrate: Option<Located<String>>,
    /// How the lab starts the application without Nix.
    pub lab: Option<AppLabSection>,
    /// Port the web tier reaches the app hop on: with `tls.internal`, the TLS terminator
    /// (nginx) in front of the app; without, the app itself (plain HTTP).
    #[serde(default = "default_app_port")]
    pub port: Located<u16>,
    /// Loopback port the application itself listens on, plain HTTP, behind the TLS
    /// terminator (`PORT` in its environment). Only with `tls.internal`.
    #[serde(default = "default_app_listen_port")]
    pub listen_port: Located<u16>,
    /// Extra environment of the application (no secrets: those come from files).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Health endpoint of the application (checks its database).
    #[serde(default = "default_app_health")]
    pub health_path: Located<String>,
}

/// `[app.lab]`: the team's app in the lab, which has no Nix to build `source`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AppLabSection {
    /// Program and arguments that start the app here (absolute, or relative to the directory
    /// `nixstack lab up` runs in), run with the same environment and credentials as on NixOS.
    pub command: Located<Vec<String>>,
    /// Program and arguments of `[app] migrate` here (needed with `source`; the demo app's
    /// migration runs without it), run once by `lab up` with the app's environment.
    pub migrate: Option<Located<Vec<String>>>,
}
fn default_app_port() -> Located<u16> {
    Located::synthetic(8080)
}
fn default_app_listen_port() -> Located<u16> {
    Located::synthetic(8000)
}
fn default_app_health() -> Located<String> {
    Located::synthetic("/healthz".into())
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct DbSection {
    /// Database engine. Only `mariadb-galera` is supported.
    #[serde(default)]
    pub engine: DbEngine,
    /// Galera cluster name (default: the stack name).
    pub cluster_name: Option<Located<String>>,
    /// State snapshot transfer method.
    #[serde(default)]
    pub sst_method: SstMethod,
    /// `multi-primary`: applications write to every node. `single-primary`: only `primary` takes writes.
    #[serde(default)]
    pub write_mode: WriteMode,
    /// The writer in `single-primary` mode (default: the first db host).
    pub primary: Option<Located<String>>,
    /// The node that bootstraps a new cluster (default: the first db host).
    pub bootstrap: Option<Located<String>>,
    /// Allow a Galera cluster of even size or fewer than 3 nodes (no quorum on a split).
    #[serde(default)]
    pub allow_unsafe_size: bool,
    /// How long (ms) a node may be silent before the others suspect it dead and evict it
    /// (Galera's `evs.suspect_timeout`; its other failure-detection timers follow). Writes
    /// stall cluster-wide for about this long when a node crashes (default 1000).
    pub suspect_timeout_ms: Option<Located<u64>>,
    /// Databases to create.
    #[serde(default)]
    pub databases: Vec<Located<String>>,
    /// Database users; passwords are generated into secrets/.
    #[serde(default)]
    pub users: Vec<DbUser>,
    /// Scheduled physical backups (mariabackup) from the node the app prefers least.
    pub backup: Option<DbBackupSection>,
}

/// `[db.backup]`: scheduled physical backups with retention, to a local directory or a
/// restic repository. See docs/galera.md, "Backups".
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct DbBackupSection {
    /// When to back up: a systemd calendar event (`OnCalendar=`), default `daily`.
    pub schedule: Option<Located<String>>,
    /// How many backups to keep (default 7); older ones are removed after each backup.
    pub keep: Option<Located<u64>>,
    /// `local`: a dated directory per backup under `path`. `restic`: a snapshot in `repository`.
    pub target: Option<Located<BackupTarget>>,
    /// The directory the backups go to with `target = "local"` (default `/var/backup/nixstack-db`).
    pub path: Option<Located<String>>,
    /// The restic repository with `target = "restic"` (a local path, or `sftp:`, `s3:`, `rest:`, …);
    /// its password is generated into secrets/ (`db-backup-restic.password`).
    pub repository: Option<Located<String>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackupTarget {
    #[default]
    Local,
    Restic,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DbEngine {
    #[default]
    MariadbGalera,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SstMethod {
    #[default]
    Rsync,
    Mariabackup,
}

impl SstMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SstMethod::Rsync => "rsync",
            SstMethod::Mariabackup => "mariabackup",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    #[default]
    MultiPrimary,
    SinglePrimary,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct DbUser {
    /// User name.
    pub name: Located<String>,
    /// Database the user gets all privileges on.
    pub database: Located<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FirewallSection {
    /// Hosts that run the nftables firewall (default: every host).
    pub hosts: Option<Vec<Located<String>>>,
    /// Extra inbound rules beyond what the traffic flows need.
    #[serde(default)]
    pub allow: Vec<AllowRule>,
    /// Outbound policy: `restricted` allows only what flows need, `open` allows all.
    #[serde(default)]
    pub egress: EgressPolicy,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AllowRule {
    /// Source network (CIDR).
    pub from: Located<Ipv4Net>,
    /// Destination host name, or `@role` for every host of a role.
    pub to: Located<String>,
    /// Destination port.
    pub port: Located<u16>,
    /// Transport protocol.
    #[serde(default)]
    pub proto: Proto,
    /// Why the rule exists (shown in the audit).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    #[default]
    Tcp,
    Udp,
    /// VRRP (IP protocol 112), between load balancers.
    Vrrp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Vrrp => "vrrp",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EgressPolicy {
    #[default]
    Restricted,
    Open,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MonitoringSection {
    /// Monitoring service. Only `sumologic` is supported.
    #[serde(default)]
    pub service: MonitoringService,
    /// Secret name holding the Sumo Logic HTTP source URL (read at runtime, never in the store).
    #[serde(default = "default_endpoint_secret")]
    pub endpoint_secret: Located<String>,
    /// Collector agent.
    #[serde(default)]
    pub agent: Agent,
    /// Hosts that run the monitoring client (default: every host).
    pub hosts: Option<Vec<Located<String>>>,
    /// Where the collectors may send data (egress rule), CIDR; HTTPS (443).
    #[serde(default = "default_endpoint_cidr")]
    pub endpoint_cidr: Located<Ipv4Net>,
}

fn default_endpoint_secret() -> Located<String> {
    Located::synthetic("sumologic-endpoint".into())
}
fn default_endpoint_cidr() -> Located<Ipv4Net> {
    Located::synthetic("0.0.0.0/0".parse().expect("valid CIDR"))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MonitoringService {
    #[default]
    Sumologic,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Agent {
    /// OpenTelemetry Collector (contrib) with the Sumo Logic exporter.
    #[default]
    Otelcol,
    /// collectd with Sumo Logic's `sumologic-collectd-metrics` plugin.
    Collectd,
}
