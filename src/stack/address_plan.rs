//! The lab's address plan, computed from the Topology: the namespaces, their interfaces and
//! addresses, and where the clients that stand for the internet, the operators' network and
//! the monitoring service sit. Pure data; the lab applies it with `ip` (`lab::network`), and
//! the Scenario and the NixOS VM test place their clients by it.
//!
//! A switch namespace `nxs-sw` holds one bridge per network; every host namespace
//! `nxs-<host>` has `priv0` on the private bridge (and, for load balancers, `pub0` on the
//! public one) with the spec's addresses. `nxs-internet` is a client on the public bridge;
//! `nxs-admin` sits on the private bridge with an admin-network address and on-link routes
//! both ways, so the admin networks reach SSH like a routed operator network would. Nothing
//! has a default route: lab traffic cannot leave the namespaces.

use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::{bail, Result};
use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::topology::Topology;

/// The switch namespace holding the bridges.
pub const SWITCH: &str = "nxs-sw";
pub const INTERNET: &str = "nxs-internet";
pub const ADMIN: &str = "nxs-admin";
/// Interface names inside the host namespaces.
pub const PRIVATE_IF: &str = "priv0";
pub const PUBLIC_IF: &str = "pub0";

/// The namespace of a host.
pub fn host_netns(host: &str) -> String {
    format!("nxs-{host}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bridge {
    Private,
    Public,
}

impl Bridge {
    pub fn name(self) -> &'static str {
        match self {
            Bridge::Private => "br-priv",
            Bridge::Public => "br-pub",
        }
    }
}

/// One interface of a namespace, plugged into a bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// Name inside the namespace (`priv0`, `pub0`).
    pub ifname: String,
    /// Name of the other end, inside the switch namespace (at most 15 bytes).
    pub switch_port: String,
    pub bridge: Bridge,
    /// Address with the network's prefix length.
    pub address: Ipv4Net,
    /// The IPv6 address of a dual-stack public link (`networks.public6`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address6: Option<Ipv6Net>,
}

/// One namespace of the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Namespace {
    pub name: String,
    /// The host it stands for; `None` for internet and admin.
    pub host: Option<String>,
    pub links: Vec<Link>,
    /// Networks reached on-link through `priv0` although not its own subnet.
    pub onlink_routes: Vec<Ipv4Net>,
    /// Lets HAProxy bind the virtual IP before keepalived assigns it.
    pub nonlocal_bind: bool,
}

impl Namespace {
    /// The first address of the namespace (its private one for hosts).
    pub fn address(&self) -> Ipv4Addr {
        self.links[0].address.addr()
    }
}

/// The whole network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkPlan {
    /// Hosts (sorted by name), then internet, then admin.
    pub namespaces: Vec<Namespace>,
}

impl NetworkPlan {
    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespaces.iter().find(|n| n.name == name)
    }

    pub fn internet_address(&self) -> Ipv4Addr {
        self.namespace(INTERNET).expect("planned").address()
    }

    pub fn admin_address(&self) -> Ipv4Addr {
        self.namespace(ADMIN).expect("planned").address()
    }
}

/// Plans the lab network for `topology`.
pub fn plan(topology: &Topology) -> Result<NetworkPlan> {
    let private = topology.networks.private;
    let public = topology.networks.public;
    let public6 = topology.networks.public6;
    let Some(admin) = topology.networks.admin.first().copied() else {
        bail!("the lab needs an admin network (networks.admin) to place the admin namespace");
    };
    let mut namespaces = Vec::new();
    for (index, host) in topology.hosts.iter().enumerate() {
        let mut links = vec![Link {
            ifname: PRIVATE_IF.into(),
            switch_port: switch_port('p', index, &host.name),
            bridge: Bridge::Private,
            address: Ipv4Net::new(host.address, private.prefix_len()).expect("prefix from a valid net"),
            address6: None,
        }];
        if let Some(public_address) = host.public_address {
            links.push(Link {
                ifname: PUBLIC_IF.into(),
                switch_port: switch_port('u', index, &host.name),
                bridge: Bridge::Public,
                address: Ipv4Net::new(public_address, public.prefix_len()).expect("prefix from a valid net"),
                address6: host
                    .public_address6
                    .zip(public6)
                    .map(|(a, net)| Ipv6Net::new(a, net.prefix_len()).expect("prefix from a valid net")),
            });
        }
        namespaces.push(Namespace {
            name: host_netns(&host.name),
            host: Some(host.name.clone()),
            links,
            onlink_routes: topology.networks.admin.clone(),
            nonlocal_bind: host.public_address.is_some(),
        });
    }
    let mut used_public: Vec<Ipv4Addr> = topology.hosts.iter().filter_map(|h| h.public_address).collect();
    used_public.extend(topology.lb.as_ref().map(|lb| lb.vip));
    used_public.extend(topology.networks.gateway);
    let Some(internet) = free_address(public, &used_public) else {
        bail!("no free address left in {public} for the internet client")
    };
    namespaces.push(Namespace {
        name: INTERNET.into(),
        host: None,
        links: vec![Link {
            ifname: PUBLIC_IF.into(),
            switch_port: "u-internet".into(),
            bridge: Bridge::Public,
            address: Ipv4Net::new(internet, public.prefix_len()).expect("valid prefix"),
            address6: public6
                .map(|net| Ipv6Net::new(internet6(topology, net), net.prefix_len()).expect("valid prefix")),
        }],
        onlink_routes: Vec::new(),
        nonlocal_bind: false,
    });
    let used_private: Vec<Ipv4Addr> = topology.hosts.iter().map(|h| h.address).collect();
    let Some(admin_address) = free_address(admin, &used_private) else {
        bail!("no free address left in {admin} for the admin namespace")
    };
    namespaces.push(Namespace {
        name: ADMIN.into(),
        host: None,
        links: vec![Link {
            ifname: PRIVATE_IF.into(),
            switch_port: "p-admin".into(),
            bridge: Bridge::Private,
            address: Ipv4Net::new(admin_address, admin.prefix_len()).expect("valid prefix"),
            address6: None,
        }],
        onlink_routes: vec![private],
        nonlocal_bind: false,
    });
    Ok(NetworkPlan { namespaces })
}

/// Linux refuses interface names of more than this many bytes (IFNAMSIZ less the NUL).
const IFNAME_MAX: usize = 15;

/// The switch-side name of a host's link: `<side><index>-<name>`, the host's name cut to
/// what fits in [`IFNAME_MAX`] bytes. The index (the host's place in name order) keeps the
/// names unique and deterministic however many hosts there are; the name part only helps a
/// reader of `ip link`, so it shrinks as the index grows.
fn switch_port(side: char, index: usize, host: &str) -> String {
    let prefix = format!("{side}{index}-");
    let room = IFNAME_MAX.saturating_sub(prefix.len());
    let mut name = format!("{prefix}{}", truncate(host, room));
    // Host names are DNS labels (ASCII), so bytes and characters agree; cut bytes anyway.
    while name.len() > IFNAME_MAX {
        name.pop();
    }
    name
}

fn truncate(name: &str, max: usize) -> &str {
    match name.char_indices().nth(max) {
        Some((index, _)) => &name[..index],
        None => name,
    }
}

/// The internet client's IPv6 address: the first of `net` from `::100` on that no load
/// balancer, VIP6 or gateway uses.
fn internet6(topology: &Topology, net: Ipv6Net) -> Ipv6Addr {
    let mut used: Vec<Ipv6Addr> = topology.hosts.iter().filter_map(|h| h.public_address6).collect();
    used.extend(topology.lb.as_ref().and_then(|lb| lb.vip6));
    used.extend(topology.networks.gateway6);
    let base = u128::from(net.network());
    (0x100u128..)
        .map(|offset| Ipv6Addr::from(base + offset))
        .find(|a| !used.contains(a))
        .expect("a /126 or wider prefix has room beyond ::100")
}

/// The highest host address of `net` not in `used`.
fn free_address(net: Ipv4Net, used: &[Ipv4Addr]) -> Option<Ipv4Addr> {
    let hosts: Vec<Ipv4Addr> = net.hosts().collect();
    hosts.into_iter().rev().find(|a| !used.contains(a))
}

/// Candidate addresses of the stand-in, tried in order: documentation and benchmarking
/// ranges (RFC 5737, RFC 2544) nobody routes.
const CANDIDATES: [Ipv4Addr; 3] =
    [Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(198, 18, 0, 10), Ipv4Addr::new(100, 64, 0, 10)];

/// The stand-in's address: inside `monitoring.endpoint_cidr` (the hosts' egress rule lets
/// HTTPS to it out), outside the private, public and admin networks.
pub fn standin_address(topology: &Topology) -> Result<Ipv4Addr> {
    let Some(monitoring) = &topology.monitoring else { bail!("the spec has no [monitoring] section") };
    let cidr = monitoring.endpoint_cidr;
    let mut networks = vec![topology.networks.private, topology.networks.public];
    networks.extend(topology.networks.admin.iter().copied());
    let free = |address: &Ipv4Addr| {
        cidr.contains(address)
            && !networks.iter().any(|net| net.contains(address))
            && Some(*address) != topology.networks.gateway
    };
    if let Some(address) = CANDIDATES.iter().find(|a| free(a)) {
        return Ok(*address);
    }
    // A narrow endpoint_cidr (Sumo Logic's published ranges): its highest free address.
    let last = if cidr.prefix_len() >= 31 { cidr.broadcast() } else { Ipv4Addr::from(u32::from(cidr.broadcast()) - 1) };
    let mut address = last;
    for _ in 0..4096 {
        if free(&address) {
            return Ok(address);
        }
        if address == cidr.network() {
            break;
        }
        address = Ipv4Addr::from(u32::from(address) - 1);
    }
    bail!("no address for the monitoring stand-in in monitoring.endpoint_cidr {cidr} outside the stack's networks")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecSource;

    #[test]
    fn switch_ports_fit_ifnamsiz_and_stay_unique_at_any_index() {
        assert_eq!(switch_port('p', 3, "web1"), "p3-web1");
        assert_eq!(switch_port('p', 0, "averyveryverylonghostname"), "p0-averyveryver");
        let names: Vec<String> = (0..20_000).map(|i| switch_port('u', i, "averyverylongname")).collect();
        assert!(names.iter().all(|n| n.len() <= IFNAME_MAX), "{:?}", names.iter().find(|n| n.len() > IFNAME_MAX));
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
    }

    fn default_plan() -> NetworkPlan {
        let topology = crate::topology::compile(&SpecSource::embedded_default()).expect("default spec compiles");
        plan(&topology).unwrap()
    }

    #[test]
    fn every_host_has_a_namespace_and_the_lbs_a_public_link() {
        let plan = default_plan();
        let lb1 = plan.namespace("nxs-lb1").unwrap();
        assert_eq!(lb1.links.len(), 2);
        assert_eq!(lb1.links[1].address.to_string(), "203.0.113.11/24");
        assert!(lb1.nonlocal_bind);
        let web1 = plan.namespace("nxs-web1").unwrap();
        assert_eq!(web1.links.len(), 1);
        assert_eq!(web1.links[0].address.to_string(), "10.10.0.21/24");
        assert_eq!(web1.onlink_routes, vec!["198.51.100.0/24".parse::<Ipv4Net>().unwrap()]);
    }

    #[test]
    fn internet_and_admin_get_free_addresses_in_their_networks() {
        let plan = default_plan();
        assert_eq!(plan.internet_address().to_string(), "203.0.113.254");
        assert_eq!(plan.admin_address().to_string(), "198.51.100.254");
        assert_eq!(plan.namespace(ADMIN).unwrap().onlink_routes, vec!["10.10.0.0/24".parse::<Ipv4Net>().unwrap()]);
    }

    #[test]
    fn switch_port_names_fit_the_kernel_limit_and_are_unique() {
        let plan = default_plan();
        let mut ports: Vec<&str> =
            plan.namespaces.iter().flat_map(|n| n.links.iter().map(|l| l.switch_port.as_str())).collect();
        assert!(ports.iter().all(|p| p.len() <= 15), "{ports:?}");
        let n = ports.len();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), n);
    }

    fn topology(text: &str) -> Topology {
        crate::topology::compile(&SpecSource { name: "t.toml".into(), text: text.into() }).expect("compiles")
    }

    #[test]
    fn the_standin_sits_outside_every_network_inside_the_endpoint_cidr() {
        let default = crate::topology::compile(&SpecSource::embedded_default()).unwrap();
        assert_eq!(standin_address(&default).unwrap(), Ipv4Addr::new(192, 0, 2, 10));
        let text = SpecSource::embedded_default().text;
        // The operator narrowed the egress rule to Sumo Logic's addresses: the stand-in follows.
        let narrow = topology(&text.replace(
            "endpoint_secret = \"sumologic-endpoint\"",
            "endpoint_secret = \"sumologic-endpoint\"\nendpoint_cidr = \"52.1.2.0/24\"",
        ));
        assert_eq!(standin_address(&narrow).unwrap(), Ipv4Addr::new(52, 1, 2, 254));
        // An endpoint range that is the admin network holds no address for it.
        let inside = topology(&text.replace(
            "endpoint_secret = \"sumologic-endpoint\"",
            "endpoint_secret = \"sumologic-endpoint\"\nendpoint_cidr = \"198.51.100.0/24\"",
        ));
        assert!(standin_address(&inside).is_err());
    }
}
