//! Traffic flows between the parts of the stack, and the firewall matrix derived from them.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;

use super::model::*;
use super::ports;
use crate::spec::{EgressPolicy, Proto, Role, TlsMode};

/// Every connection the stack needs, sorted. Flows from a host to itself stay on
/// loopback and are left out.
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
            }
            for backend in &lb.backends {
                add(host(l), host(&backend.host), backend.port, Proto::Tcp, "lb → web", tls);
            }
        }
    }
    if let Some(web) = &topology.web {
        for w in &web.hosts {
            for backend in &web.app_upstream {
                add(host(w), host(&backend.host), backend.port, Proto::Tcp, "web → app", tls);
            }
        }
    }
    if let Some(app) = &topology.app {
        for a in &app.hosts {
            for writer in &app.db_writers {
                add(host(a), host(&writer.host), writer.port, Proto::Tcp, "app → db", tls);
            }
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

/// The allow-matrix per host: default drop in, and exactly what the flows need.
pub fn firewalls(topology: &Topology, egress: EgressPolicy) -> BTreeMap<String, HostFirewall> {
    let any: Ipv4Net = "0.0.0.0/0".parse().expect("valid");
    let peers_of = |endpoint: &Endpoint, towards: &Host| -> Vec<Ipv4Net> {
        match endpoint {
            Endpoint::Internet => vec![any],
            Endpoint::Admin => topology.networks.admin.clone(),
            Endpoint::Monitoring => vec![topology.monitoring.as_ref().map_or(any, |m| m.endpoint_cidr)],
            Endpoint::Host(name) => {
                let peer = topology.host(name).expect("flows name hosts of the topology");
                // A load balancer talks to other load balancers (VRRP) on the public network.
                let address = match (towards.public_address, peer.public_address) {
                    (Some(_), Some(public)) if towards.has(Role::Lb) && peer.has(Role::Lb) => public,
                    _ => peer.address,
                };
                vec![Ipv4Net::from(address)]
            }
        }
    };

    topology
        .hosts
        .iter()
        .map(|host| {
            let me = Endpoint::Host(host.name.clone());
            let mut inbound: BTreeMap<(u16, Proto, String), Allow> = BTreeMap::new();
            let mut outbound: BTreeMap<(u16, Proto, String), Allow> = BTreeMap::new();
            for flow in &topology.flows {
                if flow.to == me {
                    let entry = inbound.entry((flow.port, flow.proto, flow.purpose.clone())).or_insert_with(|| Allow {
                        peers: Vec::new(),
                        port: flow.port,
                        proto: flow.proto,
                        rate_limit: (flow.port == ports::SSH).then_some(SSH_NEW_CONNECTIONS_PER_MINUTE),
                        purpose: flow.purpose.clone(),
                        needed: true,
                    });
                    entry.peers.extend(peers_of(&flow.from, host));
                }
                if flow.from == me {
                    let entry = outbound.entry((flow.port, flow.proto, flow.purpose.clone())).or_insert_with(|| Allow {
                        peers: Vec::new(),
                        port: flow.port,
                        proto: flow.proto,
                        rate_limit: None,
                        purpose: flow.purpose.clone(),
                        needed: true,
                    });
                    entry.peers.extend(peers_of(&flow.to, host));
                }
            }
            let finish = |map: BTreeMap<(u16, Proto, String), Allow>| -> Vec<Allow> {
                map.into_values()
                    .map(|mut allow| {
                        allow.peers.sort();
                        allow.peers.dedup();
                        allow
                    })
                    .collect()
            };
            let firewall = HostFirewall { enabled: host.firewall, inbound: finish(inbound), egress, outbound: finish(outbound) };
            (host.name.clone(), firewall)
        })
        .collect()
}
