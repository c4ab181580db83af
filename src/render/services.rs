//! The config text each service reads, by service: the one mapping from the catalogue's
//! [`Service`] to its renderer, used by the lab (which runs it) and by deploy's lab closures.

use crate::stack::{Layout, Service};
use crate::topology::{Host, Topology};

/// The demo app's source: the app "config" the lab runs with Debian's Python.
pub const DEMO_APP: &str = include_str!("../../app/nixstack_demo_app.py");

/// The file `service` on `host` reads, as the daemon finds it on a host of `layout`: for
/// HAProxy, with the `global` section NixOS's module prepends. On NixOS the modules install
/// the same renderers' text (the host files embed it).
pub fn config(topology: &Topology, host: &Host, layout: &Layout, service: Service) -> String {
    match service {
        Service::Nftables => super::nftables::render(topology, host, layout),
        Service::Sshd => super::sshd::config(host, layout),
        Service::Mariadb => super::galera::lab_ini(topology, host, layout),
        Service::App => DEMO_APP.to_string(),
        Service::Nginx => {
            crate::stack::launch::nginx_config_as_installed(layout, &super::nginx::render(topology, host, layout))
        }
        Service::Haproxy => {
            crate::stack::launch::haproxy_config_as_installed(layout, &super::haproxy::render(topology, host, layout))
        }
        Service::Keepalived => super::keepalived::render(topology, host, layout),
        // The lab runs collectd whatever `monitoring.agent` says (no otelcol build here).
        Service::Collectd => super::monitoring::collectd(topology, host, layout),
    }
}
