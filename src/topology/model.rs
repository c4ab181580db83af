//! The resolved model every renderer, the lab and deploy read.

/// The MariaDB account the monitoring agents read status with (socket only,
/// `PROCESS, REPLICATION CLIENT`); its password is the secret `db-monitor.password`.
pub const DB_MONITOR_USER: &str = "monitor";

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::spec::{
    Agent, Algorithm, DeployTool, EgressPolicy, ImageVariant, Proto, Role, SecretsBackend, SstMethod, TlsMode,
    WriteMode,
};

/// The whole stack, resolved: every reference checked, every default filled, every
/// derived fact (flows, firewall matrix, certificates, start order) computed once.
#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    pub stack: Stack,
    pub networks: Networks,
    /// Whether tier-to-tier hops are TLS with the internal CA.
    pub internal_tls: bool,
    /// Days a host certificate from the internal CA is valid (`tls.host_certificate_days`).
    pub host_certificate_days: u32,
    /// Hosts sorted by name.
    pub hosts: Vec<Host>,
    pub lb: Option<LbTier>,
    pub web: Option<WebTier>,
    pub app: Option<AppTier>,
    pub db: Option<DbTier>,
    pub monitoring: Option<Monitoring>,
    /// Every traffic flow between the parts of the stack.
    pub flows: Vec<Flow>,
    /// Per host: what the firewall lets in and out.
    pub firewall: BTreeMap<String, HostFirewall>,
    /// Certificates the internal CA issues, one per host.
    pub certificates: Vec<Certificate>,
    /// Stages of hosts that can start together, in order.
    pub start_order: Vec<Vec<String>>,
    /// The third-party deploy tools the flake serves besides `nixstack deploy`, sorted, each once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deploy_tools: Vec<DeployTool>,
    /// `[deploy] nixstack`: the flake reference of nixstack itself, for the dev shell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nixstack_flake: Option<String>,
    /// `[secrets]`: the backend and the operators' recipients.
    #[serde(skip_serializing_if = "Secrets::is_default")]
    pub secrets: Secrets,
}

/// `[secrets]`, resolved.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Secrets {
    pub backend: SecretsBackend,
    /// Operators' public keys (`ssh-ed25519 …` without comment, or `age1…`), in spec order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
}

impl Secrets {
    fn is_default(&self) -> bool {
        self.backend == SecretsBackend::Nixstack && self.recipients.is_empty()
    }
}

impl Topology {
    /// Whether the flake serves `tool` (`[deploy] tools`).
    pub fn serves(&self, tool: DeployTool) -> bool {
        self.deploy_tools.contains(&tool)
    }
}

/// A host's channel and system: two hosts with the same pin run the same builds of every
/// package (a bug in one is in both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pin<'t> {
    pub channel: &'t str,
    pub system: &'t str,
}

impl std::fmt::Display for Pin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.channel, self.system)
    }
}

/// The name of the flake input that pins nixpkgs to `channel`: `nixpkgs` for the stack's own
/// channel, else `nixpkgs-` and the release with dots as dashes (`nixos-25.05` →
/// `nixpkgs-25-05`, `nixos-unstable` → `nixpkgs-unstable`, `nixpkgs-unstable` →
/// `nixpkgs-nixpkgs-unstable`). The resolver rejects two channels that get one name.
pub fn nixpkgs_input(channel: &str, stack_channel: &str) -> String {
    if channel == stack_channel {
        return "nixpkgs".into();
    }
    let release = channel.strip_prefix("nixos-").unwrap_or(channel);
    let name: String =
        release.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    format!("nixpkgs-{name}")
}

impl Topology {
    /// Every channel a host is built from, the stack's first, then the others sorted, each once.
    pub fn channels(&self) -> Vec<&str> {
        let mut others: Vec<&str> =
            self.hosts.iter().map(|h| h.channel.as_str()).filter(|c| *c != self.stack.channel).collect();
        others.sort_unstable();
        others.dedup();
        std::iter::once(self.stack.channel.as_str()).chain(others).collect()
    }

    /// The flake input `host`'s system is built with (see [`nixpkgs_input`]).
    pub fn nixpkgs_input_of(&self, host: &Host) -> String {
        nixpkgs_input(&host.channel, &self.stack.channel)
    }

    /// The stack's own pin, that of every host that sets neither `channel` nor `system`.
    pub fn stack_pin(&self) -> Pin<'_> {
        Pin { channel: &self.stack.channel, system: &self.stack.system }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Stack {
    pub name: String,
    pub domain: String,
    pub channel: String,
    pub system: String,
    pub state_version: String,
    pub image: ImageVariant,
    pub deploy_user: String,
    pub ssh_keys: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Networks {
    pub private: Ipv4Net,
    pub public: Ipv4Net,
    pub admin: Vec<Ipv4Net>,
    /// The public network's gateway.
    pub gateway: Option<Ipv4Addr>,
    /// The private network's gateway.
    pub private_gateway: Option<Ipv4Addr>,
    /// DNS servers every host uses.
    pub dns: Vec<Ipv4Addr>,
    /// The public network's IPv6 prefix: the load balancers serve clients on IPv6 too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public6: Option<Ipv6Net>,
    /// The public network's IPv6 gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
}

/// One of the two networks a host can have an interface on.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Private,
    Public,
}

/// A host's default route: a gateway on one of its own networks.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct DefaultRoute {
    pub gateway: Ipv4Addr,
    /// The network (and so the interface) the gateway is on.
    pub via: Side,
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub name: String,
    pub address: Ipv4Addr,
    pub public_address: Option<Ipv4Addr>,
    /// The public IPv6 address (load balancers of a stack with `networks.public6`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_address6: Option<Ipv6Addr>,
    pub roles: Vec<Role>,
    /// `user@host[:port]` used by deploy.
    pub ssh_target: String,
    pub disk: Option<String>,
    /// Permanent MAC address of the private card (lowercase), when the spec gives it.
    pub mac: Option<String>,
    /// Permanent MAC address of the public card (lowercase), when the spec gives it.
    pub public_mac: Option<String>,
    /// The default route: the public gateway for hosts with a public address, else the
    /// private one; `None` when no gateway is on one of the host's networks.
    pub default_route: Option<DefaultRoute>,
    pub firewall: bool,
    pub monitored: bool,
    /// Every listening service, for port-conflict checks and the lab.
    pub services: Vec<Service>,
    /// The `[groups.<name>]` the host was declared in, for reports only: a host of a group
    /// is like any other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The NixOS channel the host's system is built from: its own or its group's, else the
    /// stack's.
    pub channel: String,
    /// The host's Nix system: its own or its group's, else the stack's.
    pub system: String,
    /// The SSH host key's public half, `ssh-ed25519 <base64>` (no comment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
}

impl Host {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// What the host's software comes from: its channel and its system.
    pub fn pin(&self) -> Pin<'_> {
        Pin { channel: &self.channel, system: &self.system }
    }

    /// Where deploy logs in: [`Host::ssh_target`] taken apart.
    pub fn ssh(&self) -> SshTarget {
        SshTarget::parse(&self.ssh_target)
    }
}

/// An SSH target `user@host[:port]`: the login (`root` when the target names none), the
/// address or name, and the port when one is given (else SSH's own, 22 or ssh_config's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: String,
    pub host: String,
    pub port: Option<u16>,
}

impl SshTarget {
    /// Takes `user@host[:port]` apart; a suffix after the last `:` that is not a port stays in
    /// the host.
    pub fn parse(target: &str) -> SshTarget {
        let (user, rest) = target.split_once('@').unwrap_or(("root", target));
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => (host, port.parse().ok()),
            _ => (rest, None),
        };
        SshTarget { user: user.to_string(), host: host.to_string(), port }
    }
}

/// Something that listens on a host.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Service {
    pub name: String,
    pub port: u16,
    pub proto: Proto,
    pub bind: Bind,
}

/// Which addresses a service binds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Bind {
    /// Loopback only: reachable from the host itself.
    Local,
    Private,
    /// Public address and the virtual IP.
    Public,
}

#[derive(Debug, Clone, Serialize)]
pub struct LbTier {
    pub hosts: Vec<String>,
    pub vip: Ipv4Addr,
    /// The virtual IPv6 address, held with `vip` (one keepalived sync group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip6: Option<Ipv6Addr>,
    pub algorithm: Algorithm,
    pub health_path: String,
    pub tls: TlsMode,
    pub acme_email: Option<String>,
    pub certificate_secret: Option<String>,
    pub virtual_router_id: u8,
    /// VRRP priority per LB host; the highest holds the VIP.
    pub priorities: BTreeMap<String, u8>,
    pub primary: String,
    pub backends: Vec<Backend>,
    pub stats_port: u16,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Backend {
    pub host: String,
    pub address: Ipv4Addr,
    pub port: u16,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebTier {
    pub hosts: Vec<String>,
    pub root: String,
    pub port: u16,
    pub status_port: u16,
    pub proxy_app: bool,
    /// `[web] static`: the attribute under the app input's `packages.<system>` that nginx
    /// serves from the store (the overlay's `nixstack-static`); `None`: the app serves all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_package: Option<String>,
    /// `[web.lab] static`: the lab's stand-in directory; `None`: the demo assets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lab_static: Option<String>,
    /// Every app backend: the pool each web host's upstream is drawn from
    /// ([`WebTier::upstream_of`]).
    pub app_upstream: Vec<Backend>,
}

/// The most app backends one web host proxies to. A larger app tier is split
/// deterministically among the web hosts (subsetting), so that a web host's config and the
/// web → app flows grow with the hosts, not with the product of the two tiers.
pub const APP_UPSTREAM_SUBSET: usize = 16;

impl WebTier {
    /// The app backends of web host `host`: all of them when the pool has at most
    /// [`APP_UPSTREAM_SUBSET`], else that many consecutive ones (wrapping), the i-th web host
    /// starting at backend i × APP_UPSTREAM_SUBSET, so every backend serves about as many
    /// web hosts and neighbouring web hosts share no backend while the pool allows it.
    pub fn upstream_of(&self, host: &str) -> Vec<&Backend> {
        let pool = &self.app_upstream;
        if pool.len() <= APP_UPSTREAM_SUBSET {
            return pool.iter().collect();
        }
        // `hosts` is in name order (as the Topology's hosts are); the search falls back for one that is not.
        let index = self
            .hosts
            .binary_search_by(|h| h.as_str().cmp(host))
            .ok()
            .or_else(|| self.hosts.iter().position(|h| h == host));
        let Some(index) = index else { return pool.iter().collect() };
        let mut picked: Vec<usize> =
            (0..APP_UPSTREAM_SUBSET).map(|j| (index * APP_UPSTREAM_SUBSET + j) % pool.len()).collect();
        // In pool order, as a full upstream lists them.
        picked.sort_unstable();
        picked.into_iter().map(|i| &pool[i]).collect()
    }

    /// Whether every web host proxies to every app backend.
    pub fn full_mesh(&self) -> bool {
        self.app_upstream.len() <= APP_UPSTREAM_SUBSET
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AppTier {
    pub hosts: Vec<String>,
    /// The flake reference of the app's code (`[app] source`), an input named `app` of the
    /// generated flake; `None`: the demo app, built from the flake's own `./app`.
    pub source: Option<String>,
    /// The attribute of the hosts' `pkgs` (the generated flake's overlay) that is the app.
    pub package: String,
    /// With `source`: the attribute under the input's `packages.<system>`.
    pub source_package: Option<String>,
    /// Program in the package's `bin/`; `None`: the package's `meta.mainProgram`.
    pub command: Option<String>,
    /// `[app.lab] command`: how the lab starts the app without Nix.
    pub lab_command: Option<Vec<String>>,
    /// `[app] migrate`, split into words: the program in the package's `bin/`, then its
    /// arguments; `None`: no migration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrate: Option<Vec<String>>,
    /// `[app.lab] migrate`: the migration as the lab runs it without Nix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lab_migrate: Option<Vec<String>>,
    /// The app hop's port on the private address (the terminator's with internal TLS).
    pub port: u16,
    /// With internal TLS: nginx on each app host terminates the web tier's TLS on `port`
    /// and proxies to the app on loopback `listen_port`; without, the app listens on `port`.
    pub terminator: bool,
    pub listen_port: u16,
    pub env: BTreeMap<String, String>,
    pub health_path: String,
    /// Database nodes the app may write to, in preference order.
    pub db_writers: Vec<Backend>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DbTier {
    pub hosts: Vec<String>,
    pub cluster_name: String,
    pub sst_method: SstMethod,
    pub write_mode: WriteMode,
    /// Nodes that accept writes.
    pub writers: Vec<String>,
    pub bootstrap: String,
    pub peers: Vec<Backend>,
    pub databases: Vec<String>,
    pub users: Vec<DbUser>,
    pub allow_unsafe_size: bool,
    /// Galera's `evs.suspect_timeout` in ms (`db.suspect_timeout_ms`).
    pub suspect_timeout_ms: u64,
    /// `[db.backup]`, resolved: absent when the spec has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<DbBackup>,
}

/// Scheduled physical backups of the db tier (`[db.backup]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbBackup {
    /// The node that runs them: the last in the app's preference order (`AppTier::db_writers`),
    /// or a node that takes no writes at all when there is one, so the backup's load falls
    /// where the app writes least.
    pub host: String,
    /// A systemd calendar event (`OnCalendar=`).
    pub schedule: String,
    /// Backups kept after each run.
    pub keep: u32,
    pub target: BackupDestination,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackupDestination {
    /// A dated directory per backup under `path` on the backup node.
    Local { path: String },
    /// A restic snapshot per backup; the password is the secret `password_secret`.
    Restic { repository: String, password_secret: String },
}

/// `[db.backup] schedule` when the spec leaves it out.
pub const DEFAULT_BACKUP_SCHEDULE: &str = "daily";
/// `[db.backup] keep` when the spec leaves it out.
pub const DEFAULT_BACKUP_KEEP: u64 = 7;
/// The range `[db.backup] keep` accepts.
pub const BACKUP_KEEP_RANGE: std::ops::RangeInclusive<u64> = 1..=1000;
/// `[db.backup] path` when the spec leaves it out (`target = "local"`).
pub const DEFAULT_BACKUP_PATH: &str = "/var/backup/nixstack-db";
/// The secret holding the restic repository's password (generated by `secrets init`).
pub const RESTIC_PASSWORD_SECRET: &str = "db-backup-restic.password";

/// `db.suspect_timeout_ms` when the spec leaves it out: tuned for a private LAN, where a
/// second of silence means a dead node (Galera's own default, 5 s, is for WANs too).
pub const DEFAULT_SUSPECT_TIMEOUT_MS: u64 = 1000;

/// `tls.host_certificate_days` when the spec does not set it.
pub const DEFAULT_HOST_CERTIFICATE_DAYS: u32 = 90;
/// The longest host certificate life `tls.host_certificate_days` accepts: 397 days, the
/// CA/Browser Forum's limit for publicly trusted server certificates (since 2020-09).
pub const MAX_HOST_CERTIFICATE_DAYS: u32 = 397;
/// The range `db.suspect_timeout_ms` accepts: below it a scheduling hiccup evicts healthy
/// nodes; above it is Galera's default territory and beyond.
pub const SUSPECT_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 300..=30_000;

#[derive(Debug, Clone, Serialize)]
pub struct DbUser {
    pub name: String,
    pub database: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Monitoring {
    pub agent: Agent,
    pub endpoint_secret: String,
    pub endpoint_cidr: Ipv4Net,
    pub hosts: Vec<String>,
}

/// Who starts a connection.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Endpoint {
    /// Anyone on the internet.
    Internet,
    /// The admin networks.
    Admin,
    /// A host of the stack.
    Host(String),
    /// Every host of a tier (the tier's `hosts`), as the source of a flow the whole tier
    /// opens to one host (lb → web, web → app, app → db): one flow per destination, so the
    /// flows grow with the hosts, not with the product of two tiers.
    Tier(Role),
    /// The monitoring service (Sumo Logic).
    Monitoring,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Internet => f.write_str("internet"),
            Endpoint::Admin => f.write_str("admin"),
            Endpoint::Host(name) => f.write_str(name),
            // As `firewall.allow` names a tier.
            Endpoint::Tier(role) => write!(f, "@{role}"),
            Endpoint::Monitoring => f.write_str("sumologic"),
        }
    }
}

/// One kind of connection the stack needs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Flow {
    pub from: Endpoint,
    pub to: Endpoint,
    pub port: u16,
    pub proto: Proto,
    /// What the flow is for, e.g. `lb→web https`.
    pub purpose: String,
    pub encrypted: bool,
}

/// The firewall of one host, derived from the flows.
#[derive(Debug, Clone, Serialize)]
pub struct HostFirewall {
    pub enabled: bool,
    pub inbound: Vec<Allow>,
    pub egress: EgressPolicy,
    pub outbound: Vec<Allow>,
}

/// One allowed (source, port, protocol) combination.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Allow {
    /// Peer networks: sources for inbound rules, destinations for outbound ones.
    pub peers: Vec<Ipv4Net>,
    pub port: u16,
    pub proto: Proto,
    /// Rate limit (new connections per minute), for SSH.
    pub rate_limit: Option<u32>,
    pub purpose: String,
    /// Whether a flow needs it: false for an extra `firewall.allow` rule unless a flow
    /// already comes in on its port from inside its `from` network.
    pub needed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    pub host: String,
    pub common_name: String,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<Ipv4Addr>,
}
