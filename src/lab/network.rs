//! The lab network: a plan computed from the Topology (pure), then applied with `ip`.
//!
//! A switch namespace `nxs-sw` holds one bridge per network; every host namespace
//! `nxs-<host>` has `priv0` on the private bridge (and, for load balancers, `pub0` on the
//! public one) with the spec's addresses. `nxs-internet` is a client on the public bridge;
//! `nxs-admin` sits on the private bridge with an admin-network address and on-link routes
//! both ways, so the admin networks reach SSH like a routed operator network would. Nothing
//! has a default route: lab traffic cannot leave the namespaces.

use std::net::Ipv4Addr;

use anyhow::{bail, Result};
use ipnet::Ipv4Net;
use serde::Serialize;

use super::cmd::Cmd;
use super::event::Reporter;
use super::netns;
use super::state::{Resource, State};
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
    let Some(admin) = topology.networks.admin.first().copied() else {
        bail!("the lab needs an admin network (networks.admin) to place the admin namespace");
    };
    let mut namespaces = Vec::new();
    for (index, host) in topology.hosts.iter().enumerate() {
        let mut links = vec![Link {
            ifname: PRIVATE_IF.into(),
            switch_port: format!("p{index}-{}", truncate(&host.name, 10)),
            bridge: Bridge::Private,
            address: Ipv4Net::new(host.address, private.prefix_len()).expect("prefix from a valid net"),
        }];
        if let Some(public_address) = host.public_address {
            links.push(Link {
                ifname: PUBLIC_IF.into(),
                switch_port: format!("u{index}-{}", truncate(&host.name, 10)),
                bridge: Bridge::Public,
                address: Ipv4Net::new(public_address, public.prefix_len()).expect("prefix from a valid net"),
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
    let Some(internet) = free_address(public, &used_public) else { bail!("no free address left in {public} for the internet client") };
    namespaces.push(Namespace {
        name: INTERNET.into(),
        host: None,
        links: vec![Link {
            ifname: PUBLIC_IF.into(),
            switch_port: "u-internet".into(),
            bridge: Bridge::Public,
            address: Ipv4Net::new(internet, public.prefix_len()).expect("valid prefix"),
        }],
        onlink_routes: Vec::new(),
        nonlocal_bind: false,
    });
    let used_private: Vec<Ipv4Addr> = topology.hosts.iter().map(|h| h.address).collect();
    let Some(admin_address) = free_address(admin, &used_private) else { bail!("no free address left in {admin} for the admin namespace") };
    namespaces.push(Namespace {
        name: ADMIN.into(),
        host: None,
        links: vec![Link {
            ifname: PRIVATE_IF.into(),
            switch_port: "p-admin".into(),
            bridge: Bridge::Private,
            address: Ipv4Net::new(admin_address, admin.prefix_len()).expect("valid prefix"),
        }],
        onlink_routes: vec![private],
        nonlocal_bind: false,
    });
    Ok(NetworkPlan { namespaces })
}

fn truncate(name: &str, max: usize) -> &str {
    match name.char_indices().nth(max) {
        Some((index, _)) => &name[..index],
        None => name,
    }
}

/// The highest host address of `net` not in `used`.
fn free_address(net: Ipv4Net, used: &[Ipv4Addr]) -> Option<Ipv4Addr> {
    let hosts: Vec<Ipv4Addr> = net.hosts().collect();
    hosts.into_iter().rev().find(|a| !used.contains(a))
}

/// Creates what is missing of `plan`; records each namespace in `state` before creating it.
pub fn apply(plan: &NetworkPlan, state: &mut State, reporter: &Reporter) -> Result<()> {
    ensure_netns(SWITCH, state, reporter)?;
    ip(SWITCH, &["link", "set", "lo", "up"])?;
    for bridge in [Bridge::Private, Bridge::Public] {
        if !link_exists(SWITCH, bridge.name()) {
            ip(SWITCH, &["link", "add", bridge.name(), "type", "bridge", "forward_delay", "0", "stp_state", "0"])?;
            reporter.created("bridge", format!("{SWITCH}/{}", bridge.name()));
        }
        ip(SWITCH, &["link", "set", bridge.name(), "up"])?;
    }
    for namespace in &plan.namespaces {
        ensure_netns(&namespace.name, state, reporter)?;
        ip(&namespace.name, &["link", "set", "lo", "up"])?;
        for link in &namespace.links {
            let inside = link_exists(&namespace.name, &link.ifname);
            let outside = link_exists(SWITCH, &link.switch_port);
            if !(inside && outside) {
                // Half a veth pair is left only by an interrupted run: replace it.
                if inside {
                    ip(&namespace.name, &["link", "delete", &link.ifname])?;
                }
                if outside {
                    ip(SWITCH, &["link", "delete", &link.switch_port])?;
                }
                ip(SWITCH, &["link", "add", &link.switch_port, "type", "veth", "peer", "name", &link.ifname, "netns", &namespace.name])?;
                reporter.created("link", format!("{}/{} ↔ {SWITCH}/{}", namespace.name, link.ifname, link.switch_port));
            }
            ip(SWITCH, &["link", "set", &link.switch_port, "master", link.bridge.name(), "up"])?;
            ip(&namespace.name, &["addr", "replace", &link.address.to_string(), "dev", &link.ifname])?;
            ip(&namespace.name, &["link", "set", &link.ifname, "up"])?;
        }
        for route in &namespace.onlink_routes {
            ip(&namespace.name, &["route", "replace", &route.to_string(), "dev", PRIVATE_IF, "scope", "link"])?;
        }
        if namespace.nonlocal_bind {
            Cmd::new("sysctl").args(["-q", "-w", "net.ipv4.ip_nonlocal_bind=1"]).netns(&namespace.name).run()?;
        }
    }
    Ok(())
}

fn ensure_netns(name: &str, state: &mut State, reporter: &Reporter) -> Result<()> {
    if netns::exists(name) {
        if !state.created.contains(&Resource::Netns { name: name.into() }) {
            bail!("network namespace {name} exists but this lab did not create it; remove it (ip netns delete {name}) or run `nixstack lab down` from the lab that made it");
        }
        reporter.present("netns", name);
        return Ok(());
    }
    state.record(Resource::Netns { name: name.into() })?;
    netns::add(name)?;
    reporter.created("netns", name);
    Ok(())
}

fn link_exists(netns: &str, ifname: &str) -> bool {
    Cmd::new("ip").args(["-n", netns, "link", "show", "dev", ifname]).run().is_ok()
}

fn ip(netns: &str, args: &[&str]) -> Result<()> {
    Cmd::new("ip").args(["-n", netns]).args(args.iter().copied()).run()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecSource;

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
        let mut ports: Vec<&str> = plan.namespaces.iter().flat_map(|n| n.links.iter().map(|l| l.switch_port.as_str())).collect();
        assert!(ports.iter().all(|p| p.len() <= 15), "{ports:?}");
        let n = ports.len();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), n);
    }
}
