//! The catalogue of services: for every service a host runs, the facts about it that
//! NixOS rendering, the lab, deploy's health gates and the VM test all read (which hosts run
//! it, in what order, its unit, how it is launched). Pure data and pure functions: nothing here
//! runs a process or touches a file.

use serde::Serialize;

pub mod acme;
pub mod address_plan;
pub mod app;
pub mod galera_backup;
pub mod galera_recovery;
pub mod health;
pub mod launch;
mod layout;
pub mod monitoring;
pub mod scenario;
pub mod tls_reload;
pub mod units;

pub use layout::{Layout, LayoutKind, LAB_EXECUTABLE, LAB_ROOT, NIXOS_SECRETS};

use crate::spec::Role;
use crate::topology::{Host, Topology};

/// The nftables table nixstack's ruleset defines (`table inet nixstack`).
pub const NFTABLES_TABLE: &str = "nixstack";

/// One service a host runs (a daemon, or the one-shot firewall load). The one enum for
/// "what runs on a host": NixOS rendering, the lab, deploy and the VM test all use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// The firewall: `nft -f` once, no process.
    Nftables,
    Sshd,
    Mariadb,
    App,
    Nginx,
    Haproxy,
    Keepalived,
    /// The monitoring agent (collectd in the lab, see [`super::monitoring`]).
    Collectd,
}

impl Service {
    /// Every service, in start order.
    pub const ALL: [Service; 8] = [
        Service::Nftables,
        Service::Sshd,
        Service::Mariadb,
        Service::App,
        Service::Nginx,
        Service::Haproxy,
        Service::Keepalived,
        Service::Collectd,
    ];

    /// The table of `data/nixpkgs-units.toml` recording the nixpkgs unit that runs it on
    /// NixOS; `None` for nixstack's own unit (the app, modules/app.nix).
    pub fn nixpkgs_module(self) -> Option<&'static str> {
        match self {
            // The ruleset load is a one-shot `nft -f`, not a daemon to launch; what NixOS's
            // nftables module checks at build time is in docs/nixos.md.
            Service::Nftables => None,
            Service::Sshd => Some("sshd"),
            Service::Mariadb => Some("mysql"),
            Service::App => None,
            Service::Nginx => Some("nginx"),
            Service::Haproxy => Some("haproxy"),
            Service::Keepalived => Some("keepalived"),
            Service::Collectd => Some("collectd"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::Nftables => "nftables",
            Service::Sshd => "sshd",
            Service::Mariadb => "mariadbd",
            Service::App => "app",
            Service::Nginx => "nginx",
            Service::Haproxy => "haproxy",
            Service::Keepalived => "keepalived",
            Service::Collectd => "collectd",
        }
    }

    /// Whether it is a one-shot action rather than a process.
    pub fn is_oneshot(self) -> bool {
        self == Service::Nftables
    }

    /// The process name (`/proc/<pid>/comm`) of its processes, workers included.
    pub fn comm(self) -> &'static str {
        match self {
            Service::Nftables => "nft",
            Service::Sshd => "sshd",
            Service::Mariadb => "mariadbd",
            Service::App => "python3",
            Service::Nginx => "nginx",
            Service::Haproxy => "haproxy",
            Service::Keepalived => "keepalived",
            Service::Collectd => "collectd",
        }
    }

    /// Its config file in `Layout.etc`.
    pub fn config_file(self) -> &'static str {
        match self {
            Service::Nftables => "nftables.conf",
            Service::Sshd => "ssh/sshd_config",
            Service::Mariadb => "my.cnf",
            Service::App => "nixstack-demo-app.py",
            Service::Nginx => "nginx.conf",
            Service::Haproxy => "haproxy.cfg",
            Service::Keepalived => "keepalived.conf",
            Service::Collectd => "collectd.conf",
        }
    }
}

/// The services of `host`, in the order they start.
pub fn for_host(topology: &Topology, host: &Host) -> Vec<Service> {
    let mut daemons = vec![Service::Nftables, Service::Sshd];
    if host.has(Role::Db) {
        daemons.push(Service::Mariadb);
    }
    if host.has(Role::App) {
        daemons.push(Service::App);
    }
    if runs_nginx(topology, host) {
        daemons.push(Service::Nginx);
    }
    if host.has(Role::Lb) {
        daemons.extend([Service::Haproxy, Service::Keepalived]);
    }
    if host.monitored {
        // Last: it reads the other daemons' status endpoints.
        daemons.push(Service::Collectd);
    }
    daemons
}

/// Whether nginx runs on `host`: as the web server, or as the TLS terminator in front of a
/// plain-HTTP app (or both, in one config).
pub fn runs_nginx(topology: &Topology, host: &Host) -> bool {
    host.has(Role::Web) || terminates_app_tls(topology, host)
}

/// Whether `host` runs the app behind nginx terminating the web tier's TLS.
pub fn terminates_app_tls(topology: &Topology, host: &Host) -> bool {
    host.has(Role::App) && topology.app.as_ref().is_some_and(|app| app.terminator)
}
