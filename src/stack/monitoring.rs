//! What the monitoring agents read and how they name a host, shared by the renderers (the
//! agents' configs), the lab (its agent and the Sumo Logic stand-in) and the Scenario (what
//! must arrive, which endpoints stay local). Pure.

use crate::spec::Role;
use crate::topology::{Host, Topology};

/// Where nginx's stub_status answers (on `web.status_port`, loopback only).
pub const NGINX_STATUS_PATH: &str = "/nginx_status";
/// Where HAProxy's stats page answers (on `lb.stats_port`, private address only).
pub const HAPROXY_STATS_PATH: &str = "/stats";
/// The MariaDB account the agents read status with (socket, `PROCESS, REPLICATION CLIENT`).
pub use crate::topology::DB_MONITOR_USER;

/// How often collectd reads and ships, in seconds: 10 on NixOS; 2 in the lab, whose
/// scenario derives QPS from the counters over a load of about 20 s and needs several
/// data points per host inside it.
pub const COLLECTD_INTERVAL_NIXOS_SECONDS: u32 = 10;
pub const COLLECTD_INTERVAL_LAB_SECONDS: u32 = 2;

/// Sumo Logic's `_sourceCategory` of a host: `<stack>/<roles>` (roles joined by `-`, e.g.
/// `shop/web`, `site/web-app-db`).
pub fn source_category(topology: &Topology, host: &Host) -> String {
    format!("{}/{}", topology.stack.name, roles(host))
}

/// The host's roles joined by `-` (`web-app-db`).
pub fn roles(host: &Host) -> String {
    host.roles.iter().map(|r| role_name(*r)).collect::<Vec<_>>().join("-")
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Lb => "lb",
        Role::Web => "web",
        Role::App => "app",
        Role::Db => "db",
    }
}

/// nginx's stub_status URL on a web host (loopback).
pub fn nginx_status_url(topology: &Topology) -> Option<String> {
    let web = topology.web.as_ref()?;
    Some(format!("http://127.0.0.1:{}{NGINX_STATUS_PATH}", web.status_port))
}

/// HAProxy's stats URL on `host` (lb role): the private address, never public.
pub fn haproxy_stats_url(topology: &Topology, host: &Host) -> Option<String> {
    let lb = topology.lb.as_ref()?;
    Some(format!("http://{}:{}{HAPROXY_STATS_PATH}", host.address, lb.stats_port))
}
