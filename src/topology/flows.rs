//! Traffic flows between the parts of the stack, and the firewall matrix derived from them.

use std::collections::{BTreeMap, HashMap, HashSet};

use ipnet::Ipv4Net;

use super::model::*;
use super::ports;
use crate::spec::{EgressPolicy, Proto, Role, TlsMode};

/// Every connection the stack needs, sorted. Flows from a host to itself stay on
/// loopback and are left out. A flow that a whole tier opens to a host has the tier as its
/// source ([`Endpoint::Tier`]): the tier's hosts other than the destination.
pub fn flows(topology: &Topology) -> Vec<Flow> {
    let mut flows = Vec::new();
    let host = |name: &str| Endpoint::Host(name.to_string());
    let tls = topology.internal_tls;
    let mut add = |from: Endpoint, to: Endpoint, port: u16, proto: Proto, purpose: &str, encrypted: bool| {
        if from != to {
            flows.push(Flow { from, to, port, proto, purpose: purpose.to_string(), encrypted });
        }
    };

    for h in &topology.hosts {
        add(Endpoint::Admin, host(&h.name), ports::SSH, Proto::Tcp, "ssh", true);
        // Every host keeps its clock (TLS needs it) and resolves names.
        add(host(&h.name), Endpoint::Internet, ports::NTP, Proto::Udp, "ntp", false);
        add(host(&h.name), Endpoint::Internet, ports::DNS, Proto::Udp, "dns", false);
        if h.monitored {
            add(host(&h.name), Endpoint::Monitoring, ports::HTTPS, Proto::Tcp, "monitoring → sumologic https", true);
        }
    }
    if let Some(lb) = &topology.lb {
        for l in &lb.hosts {
            add(Endpoint::Internet, host(l), ports::HTTPS, Proto::Tcp, "client https", true);
            // Port 80 only answers with a redirect to HTTPS (and ACME challenges).
            add(Endpoint::Internet, host(l), ports::HTTP, Proto::Tcp, "client http → https redirect", false);
            // The stats page and Prometheus endpoint bind the private address but serve only
            // the host itself (the collector, keepalived's track script): no flow reaches them,
            // so the firewall keeps them local. Operators tunnel over SSH.
            if lb.tls == TlsMode::Acme {
                add(host(l), Endpoint::Internet, ports::HTTPS, Proto::Tcp, "acme certificate renewal", true);
            }
            for peer in &lb.hosts {
                add(host(l), host(peer), 0, Proto::Vrrp, "vrrp", false);
                // A challenge for a peer's order reaches the VIP holder's HAProxy, which
                // passes it on to that peer's lego (render::haproxy's acme backend).
                if lb.tls == TlsMode::Acme && peer != l {
                    add(host(l), host(peer), ports::ACME_HTTP01, Proto::Tcp, "acme challenge → peer lego", false);
                }
            }
        }
        // Every LB reaches every backend; a host in both tiers leaves itself out (loopback).
        for backend in &lb.backends {
            add(Endpoint::Tier(Role::Lb), host(&backend.host), backend.port, Proto::Tcp, "lb → web", tls);
        }
    }
    if let Some(web) = &topology.web {
        if web.full_mesh() {
            for backend in &web.app_upstream {
                add(Endpoint::Tier(Role::Web), host(&backend.host), backend.port, Proto::Tcp, "web → app", tls);
            }
        } else {
            // A large app tier is split among the web hosts: each reaches its own subset.
            for w in &web.hosts {
                for backend in web.upstream_of(w) {
                    add(host(w), host(&backend.host), backend.port, Proto::Tcp, "web → app", tls);
                }
            }
        }
    }
    if let Some(app) = &topology.app {
        for writer in &app.db_writers {
            add(Endpoint::Tier(Role::App), host(&writer.host), writer.port, Proto::Tcp, "app → db", tls);
        }
    }
    if let Some(db) = &topology.db {
        for a in &db.hosts {
            for b in &db.hosts {
                add(host(a), host(b), ports::GALERA_REPLICATION, Proto::Tcp, "galera replication", tls);
                add(host(a), host(b), ports::GALERA_IST, Proto::Tcp, "galera incremental state transfer", tls);
                add(host(a), host(b), ports::GALERA_SST, Proto::Tcp, "galera state snapshot transfer", tls);
            }
        }
    }
    flows.sort();
    flows.dedup();
    flows
}

const SSH_NEW_CONNECTIONS_PER_MINUTE: u32 = 10;

/// The allow-matrix per host: default drop in, and exactly what the flows need. Peers are
/// the fewest networks that cover exactly the peer addresses (`Ipv4Net::aggregate`), so a
/// tier of consecutive addresses is one or a few networks, whatever its size.
pub fn firewalls(topology: &Topology, egress: EgressPolicy) -> BTreeMap<String, HostFirewall> {
    let any: Ipv4Net = "0.0.0.0/0".parse().expect("valid");
    let positions: HashMap<&str, usize> =
        topology.hosts.iter().enumerate().map(|(i, h)| (h.name.as_str(), i)).collect();
    let at = |name: &str| positions.get(name).map(|&i| &topology.hosts[i]);
    // The address `towards` sees `peer` at: load balancers talk to each other (VRRP) on
    // the public network.
    let address_of = |peer: &Host, towards: &Host| match (towards.public_address, peer.public_address) {
        (Some(_), Some(public)) if towards.has(Role::Lb) && peer.has(Role::Lb) => public,
        _ => peer.address,
    };
    let tier_members = |role: Role| topology.tier_hosts(role).iter().filter_map(|name| at(name));
    let peers_of = |endpoint: &Endpoint, towards: &Host| -> Vec<Ipv4Net> {
        match endpoint {
            Endpoint::Internet => vec![any],
            Endpoint::Admin => topology.networks.admin.clone(),
            Endpoint::Monitoring => vec![topology.monitoring.as_ref().map_or(any, |m| m.endpoint_cidr)],
            Endpoint::Host(name) => {
                at(name).map(|peer| vec![Ipv4Net::from(address_of(peer, towards))]).unwrap_or_default()
            }
            Endpoint::Tier(role) => tier_members(*role)
                .filter(|peer| peer.name != towards.name)
                .map(|peer| Ipv4Net::from(address_of(peer, towards)))
                .collect(),
        }
    };

    // Each flow is filed under its ends once, so a host reads only its own flows (linear
    // in the flows, where scanning every flow per host was quadratic); flows from a tier
    // are filed under the tier.
    let mut to_host: Vec<Vec<&Flow>> = vec![Vec::new(); topology.hosts.len()];
    let mut from_host: Vec<Vec<&Flow>> = vec![Vec::new(); topology.hosts.len()];
    let mut from_tier: BTreeMap<Role, Vec<&Flow>> = BTreeMap::new();
    for flow in &topology.flows {
        if let Endpoint::Host(name) = &flow.to {
            if let Some(&i) = positions.get(name.as_str()) {
                to_host[i].push(flow);
            }
        }
        match &flow.from {
            Endpoint::Host(name) => {
                if let Some(&i) = positions.get(name.as_str()) {
                    from_host[i].push(flow);
                }
            }
            Endpoint::Tier(role) => from_tier.entry(*role).or_default().push(flow),
            _ => {}
        }
    }

    // A tier's members see the same inbound peers and outbound destinations, except a
    // member that is itself a destination or a source (co-located roles) and the LBs'
    // public view of each other: computed once per (tier, whether the host sees LBs
    // publicly), per host only where the host is one of the ends.
    let in_tier: HashSet<(Role, &str)> = Role::ALL
        .iter()
        .flat_map(|&role| topology.tier_hosts(role).iter().map(move |name| (role, name.as_str())))
        .collect();
    let tier_destinations: HashSet<(Role, &str)> = from_tier
        .iter()
        .flat_map(|(&role, flows)| {
            flows.iter().filter_map(move |flow| match &flow.to {
                Endpoint::Host(name) => Some((role, name.as_str())),
                _ => None,
            })
        })
        .collect();
    let sees_lbs_publicly = |host: &Host| host.has(Role::Lb) && host.public_address.is_some();
    let mut tier_peers: HashMap<(Role, bool), Vec<Ipv4Net>> = HashMap::new();
    let mut inbound_peers = |role: Role, host: &Host| -> Vec<Ipv4Net> {
        if host.has(role) {
            return aggregate(peers_of(&Endpoint::Tier(role), host));
        }
        tier_peers
            .entry((role, sees_lbs_publicly(host)))
            .or_insert_with(|| aggregate(peers_of(&Endpoint::Tier(role), host)))
            .clone()
    };
    let mut tier_outbound: HashMap<(Role, bool), Vec<Allow>> = HashMap::new();

    topology
        .hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let mut inbound: BTreeMap<(u16, Proto, &str), Allow> = BTreeMap::new();
            for flow in &to_host[i] {
                let peers = match &flow.from {
                    Endpoint::Tier(role) => inbound_peers(*role, host),
                    from => peers_of(from, host),
                };
                allow_entry(&mut inbound, flow, true).peers.extend(peers);
            }
            let mut outbound: BTreeMap<(u16, Proto, &str), Allow> = BTreeMap::new();
            for flow in &from_host[i] {
                allow_entry(&mut outbound, flow, false).peers.extend(peers_of(&flow.to, host));
            }
            let mut outbound = finish(outbound);
            for role in host.roles.iter().filter(|role| in_tier.contains(&(**role, host.name.as_str()))) {
                let Some(flows) = from_tier.get(role) else { continue };
                let mine = |flows: &[&Flow]| -> Vec<Allow> {
                    let mut map: BTreeMap<(u16, Proto, &str), Allow> = BTreeMap::new();
                    for flow in flows.iter().filter(|f| f.to != Endpoint::Host(host.name.clone())) {
                        allow_entry(&mut map, flow, false).peers.extend(peers_of(&flow.to, host));
                    }
                    finish(map)
                };
                let allows = if tier_destinations.contains(&(*role, host.name.as_str())) {
                    mine(flows)
                } else {
                    tier_outbound.entry((*role, sees_lbs_publicly(host))).or_insert_with(|| mine(flows)).clone()
                };
                outbound = merge(outbound, allows);
            }
            let firewall = HostFirewall { enabled: host.firewall, inbound: finish(inbound), egress, outbound };
            (host.name.clone(), firewall)
        })
        .collect()
}

/// The rule of `map` for `flow`'s port, protocol and purpose, made empty when new.
fn allow_entry<'m, 'f>(
    map: &'m mut BTreeMap<(u16, Proto, &'f str), Allow>,
    flow: &'f Flow,
    inbound: bool,
) -> &'m mut Allow {
    map.entry((flow.port, flow.proto, flow.purpose.as_str())).or_insert_with(|| Allow {
        peers: Vec::new(),
        port: flow.port,
        proto: flow.proto,
        rate_limit: (inbound && flow.port == ports::SSH).then_some(SSH_NEW_CONNECTIONS_PER_MINUTE),
        purpose: flow.purpose.clone(),
        needed: true,
    })
}

/// The rules in key order, each with its peers aggregated.
fn finish(map: BTreeMap<(u16, Proto, &str), Allow>) -> Vec<Allow> {
    map.into_values()
        .map(|mut allow| {
            allow.peers = aggregate(std::mem::take(&mut allow.peers));
            allow
        })
        .collect()
}

/// Two rule lists as one: rules of the same port, protocol and purpose share their peers.
fn merge(a: Vec<Allow>, b: Vec<Allow>) -> Vec<Allow> {
    let mut map: BTreeMap<(u16, Proto, String), Allow> = BTreeMap::new();
    for allow in a.into_iter().chain(b) {
        match map.entry((allow.port, allow.proto, allow.purpose.clone())) {
            std::collections::btree_map::Entry::Occupied(mut entry) => entry.get_mut().peers.extend(allow.peers),
            std::collections::btree_map::Entry::Vacant(entry) => {
                entry.insert(allow);
            }
        }
    }
    map.into_values()
        .map(|mut allow| {
            allow.peers = aggregate(std::mem::take(&mut allow.peers));
            allow
        })
        .collect()
}

/// The fewest networks covering exactly the addresses of `peers`, sorted.
fn aggregate(peers: Vec<Ipv4Net>) -> Vec<Ipv4Net> {
    let mut networks = Ipv4Net::aggregate(&peers);
    networks.sort();
    networks
}
