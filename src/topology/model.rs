//! The resolved model every renderer, the lab and deploy read.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::spec::{Agent, Algorithm, EgressPolicy, ImageVariant, Proto, Role, SstMethod, TlsMode, WriteMode};

/// The whole stack, resolved: every reference checked, every default filled, every
/// derived fact (flows, firewall matrix, certificates, start order) computed once.
#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    pub stack: Stack,
    pub networks: Networks,
    /// Whether tier-to-tier hops are TLS with the internal CA.
    pub internal_tls: bool,
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
    pub gateway: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub name: String,
    pub address: Ipv4Addr,
    pub public_address: Option<Ipv4Addr>,
    pub roles: Vec<Role>,
    /// `user@host[:port]` used by deploy.
    pub ssh_target: String,
    pub disk: Option<String>,
    pub firewall: bool,
    pub monitored: bool,
    /// Every listening service, for port-conflict checks and the lab.
    pub services: Vec<Service>,
}

impl Host {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
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
    pub app_upstream: Vec<Backend>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppTier {
    pub hosts: Vec<String>,
    pub package: String,
    pub command: String,
    pub port: u16,
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
}

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
    /// The monitoring service (Sumo Logic).
    Monitoring,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Internet => f.write_str("internet"),
            Endpoint::Admin => f.write_str("admin"),
            Endpoint::Host(name) => f.write_str(name),
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
