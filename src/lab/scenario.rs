//! The one Scenario that proves a stack works: a list of declarative, typed steps computed
//! from the Topology (pure, no I/O). `nixstack lab test` executes it ([`super::run`]); the
//! same steps are meant to render as the `testScript` of the NixOS VM test, so a step says
//! *what* to check with every address, port and expectation spelled out, never *how*.

use std::net::Ipv4Addr;

use serde::Serialize;

use super::network;
use super::probe::Connect;
use crate::spec::Proto;
use crate::topology::{Bind, Endpoint, Host, Topology};

/// Where a probe starts: the internet client, the admin network, or a host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Source {
    Internet,
    Admin,
    Host(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Internet => f.write_str("internet"),
            Source::Admin => f.write_str("admin"),
            Source::Host(name) => f.write_str(name),
        }
    }
}

/// A web, app or database node by name and address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub host: String,
    pub address: Ipv4Addr,
    pub port: u16,
}

/// One cell of the firewall matrix: a TCP connect and what must come of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub from: Source,
    /// The source address the connect leaves from.
    pub from_address: Ipv4Addr,
    pub to: String,
    /// `None` when the source has no route to the destination at all (e.g. internet →
    /// a host without a public address): not a firewall question, not probed.
    pub address: Option<Ipv4Addr>,
    pub port: u16,
    pub expect: Connect,
    /// Whether `Open` is as good as the expected `Refused`: the firewall allows the port and
    /// its listener exists only at times (Galera state transfers).
    pub also_open: bool,
    /// Why, in words: which rule allows it, or whose firewall blocks it.
    pub reason: String,
}

impl Probe {
    /// Whether `got` is what the Topology says.
    pub fn accepts(&self, got: Connect) -> bool {
        got == self.expect || (self.also_open && got == Connect::Open)
    }
}

/// One step of the scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// From the internet: `https://<domain>/` through the virtual IP returns the app's
    /// page, the certificate verifies against the stack's CA; `http://` redirects to HTTPS.
    HttpsViaVip { domain: String, vip: Ipv4Addr, requests: u32, web_hosts: Vec<String> },
    /// From each load balancer, every web backend speaks TLS with a certificate the
    /// internal CA verifies for the backend's name, and no port the LB may reach on a web
    /// node answers plaintext HTTP.
    BackendTls { lbs: Vec<String>, backends: Vec<Node>, health_path: String, reachable_ports: Vec<(String, u16)> },
    /// From the admin network, SSH with the operator key logs in on every host.
    AdminSsh { hosts: Vec<Node> },
    /// A row written through each writer node is read back on every node.
    MultiMaster { writers: Vec<String>, nodes: Vec<String> },
    /// Every (source, destination, port) over the ports the flows use, plus SSH: allowed
    /// ones connect, all others fail, exactly as the Topology's firewall says.
    FirewallMatrix { ports: Vec<u16>, probes: Vec<Probe> },
    /// Under steady client load, `victim`'s nginx is killed: once HAProxy ejects it (within
    /// `eject_within_ms`) no client request fails; restarted, it serves again.
    WebFailover { domain: String, vip: Ipv4Addr, victim: String, eject_within_ms: u64 },
    /// `victim`'s mariadbd is killed: writes continue through `survivors` (and the app),
    /// the node restarts, rejoins and reaches Synced with the writes it missed.
    DbFailover { domain: String, vip: Ipv4Addr, victim: String, survivors: Vec<String>, writers: Vec<String> },
    /// The load balancer holding the virtual IP stops: the VIP moves to the standby and
    /// HTTPS answers again within `within_ms`.
    LbFailover { domain: String, vip: Ipv4Addr, active: String, standby: Vec<String>, within_ms: u64 },
}

impl Step {
    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Step::HttpsViaVip { .. } => "https via the virtual IP",
            Step::BackendTls { .. } => "lb → web is TLS only",
            Step::AdminSsh { .. } => "ssh from admin",
            Step::MultiMaster { .. } => "multi-master writes",
            Step::FirewallMatrix { .. } => "firewall matrix",
            Step::WebFailover { .. } => "web failover",
            Step::DbFailover { .. } => "db failover",
            Step::LbFailover { .. } => "lb failover",
        }
    }
}

/// The scenario of one stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scenario {
    pub stack: String,
    pub steps: Vec<Step>,
    /// Steps left out and why (e.g. no LB failover with a single load balancer).
    pub omitted: Vec<String>,
}

/// Budget of HAProxy's ejection of a dead web node, and of an LB failover.
pub const WEB_EJECT_WITHIN_MS: u64 = 2000;
pub const LB_FAILOVER_WITHIN_MS: u64 = 3000;

impl Scenario {
    pub fn for_topology(topology: &Topology) -> Scenario {
        let mut steps = Vec::new();
        let mut omitted = Vec::new();
        let domain = topology.stack.domain.clone();
        let web_hosts: Vec<String> = topology.web.as_ref().map(|w| w.hosts.clone()).unwrap_or_default();

        if let Some(lb) = &topology.lb {
            if topology.app.is_some() && !web_hosts.is_empty() {
                steps.push(Step::HttpsViaVip { domain: domain.clone(), vip: lb.vip, requests: 6, web_hosts: web_hosts.clone() });
            }
            if topology.internal_tls {
                let backends: Vec<Node> = lb.backends.iter().map(|b| Node { host: b.host.clone(), address: b.address, port: b.port }).collect();
                let mut reachable_ports = Vec::new();
                for backend in &lb.backends {
                    for port in ports_allowed_from(topology, &lb.hosts, &backend.host) {
                        reachable_ports.push((backend.host.clone(), port));
                    }
                }
                steps.push(Step::BackendTls { lbs: lb.hosts.clone(), backends, health_path: lb.health_path.clone(), reachable_ports });
            } else {
                omitted.push("lb → web is TLS only: tls.internal = false, the LB talks plain HTTP to the web tier (the audit reports it)".into());
            }
        }

        steps.push(Step::AdminSsh { hosts: topology.hosts.iter().map(|h| Node { host: h.name.clone(), address: h.address, port: 22 }).collect() });

        if let Some(db) = &topology.db {
            steps.push(Step::MultiMaster { writers: db.writers.clone(), nodes: db.hosts.clone() });
        }

        steps.push(firewall_matrix(topology));

        if let Some(lb) = &topology.lb {
            if web_hosts.len() >= 2 && topology.app.is_some() {
                steps.push(Step::WebFailover { domain: domain.clone(), vip: lb.vip, victim: web_hosts[0].clone(), eject_within_ms: WEB_EJECT_WITHIN_MS });
            } else {
                omitted.push("web failover: fewer than two web nodes".into());
            }
        }

        if let (Some(db), Some(lb), Some(app)) = (&topology.db, &topology.lb, &topology.app) {
            if db.hosts.len() >= 3 {
                // Kill the app's first choice when another node takes writes too, so the
                // app's failover is exercised; with one writer, a node that is not it.
                let victim = if db.writers.len() >= 2 {
                    app.db_writers.first().map(|b| b.host.clone()).unwrap_or_else(|| db.hosts[0].clone())
                } else {
                    db.hosts.iter().rev().find(|h| !db.writers.contains(h)).cloned().unwrap_or_else(|| db.hosts[0].clone())
                };
                let survivors: Vec<String> = db.hosts.iter().filter(|h| **h != victim).cloned().collect();
                let writers: Vec<String> = db.writers.iter().filter(|h| **h != victim).cloned().collect();
                steps.push(Step::DbFailover { domain: domain.clone(), vip: lb.vip, victim, survivors, writers });
            } else {
                omitted.push("db failover: fewer than three Galera nodes cannot lose one and keep a majority".into());
            }
        }

        if let Some(lb) = &topology.lb {
            if lb.hosts.len() >= 2 {
                let standby: Vec<String> = lb.hosts.iter().filter(|h| **h != lb.primary).cloned().collect();
                steps.push(Step::LbFailover { domain, vip: lb.vip, active: lb.primary.clone(), standby, within_ms: LB_FAILOVER_WITHIN_MS });
            } else {
                omitted.push("lb failover: a single load balancer (the audit reports the single point of failure)".into());
            }
        }
        Scenario { stack: topology.stack.name.clone(), steps, omitted }
    }
}

/// TCP ports `to`'s firewall lets in from any of `from` (its inbound rules), sorted.
fn ports_allowed_from(topology: &Topology, from: &[String], to: &str) -> Vec<u16> {
    let sources: Vec<Ipv4Addr> = from.iter().filter_map(|name| topology.host(name)).map(|h| h.address).collect();
    let mut ports: Vec<u16> = match topology.firewall.get(to) {
        Some(firewall) if firewall.enabled && topology.host(to).is_some_and(|h| h.firewall) => firewall
            .inbound
            .iter()
            .filter(|allow| allow.proto == Proto::Tcp && allow.peers.iter().any(|net| sources.iter().any(|s| net.contains(s))))
            .map(|allow| allow.port)
            .collect(),
        // No firewall: every listening port.
        _ => topology.host(to).map(|h| h.services.iter().filter(|s| s.bind != Bind::Local).map(|s| s.port).collect()).unwrap_or_default(),
    };
    ports.sort();
    ports.dedup();
    ports
}

/// Ports whose listener exists only during a Galera state transfer (SST, IST).
const TRANSIENT_PORTS: [u16; 2] = [crate::topology::ports::GALERA_SST, crate::topology::ports::GALERA_IST];

/// Every TCP port a flow between parts of the stack uses, plus SSH, sorted.
pub fn matrix_ports(topology: &Topology) -> Vec<u16> {
    let mut ports: Vec<u16> = topology
        .flows
        .iter()
        .filter(|flow| flow.proto == Proto::Tcp && matches!(flow.to, Endpoint::Host(_)))
        .map(|flow| flow.port)
        .chain([crate::topology::ports::SSH])
        .collect();
    ports.sort();
    ports.dedup();
    ports
}

/// The firewall matrix: for every source, destination host and port, the expected outcome
/// from the Topology's firewall (inbound rules of the destination, outbound rules of a
/// source host with restricted egress) and the services that listen.
pub fn firewall_matrix(topology: &Topology) -> Step {
    let ports = matrix_ports(topology);
    // The lab and the VM test place internet and admin the same way.
    let plan = network::plan(topology).ok();
    let internet = plan.as_ref().map(|p| p.internet_address()).unwrap_or(Ipv4Addr::UNSPECIFIED);
    let admin = plan.as_ref().map(|p| p.admin_address()).unwrap_or(Ipv4Addr::UNSPECIFIED);
    let mut sources = vec![(Source::Internet, internet), (Source::Admin, admin)];
    sources.extend(topology.hosts.iter().map(|h| (Source::Host(h.name.clone()), h.address)));
    let mut probes = Vec::new();
    for (source, from_private) in &sources {
        for to in &topology.hosts {
            if *source == Source::Host(to.name.clone()) {
                continue;
            }
            for &port in &ports {
                probes.push(expect(topology, source, *from_private, to, port));
            }
        }
    }
    Step::FirewallMatrix { ports, probes }
}

fn expect(topology: &Topology, source: &Source, from_address: Ipv4Addr, to: &Host, port: u16) -> Probe {
    // The internet reaches only public addresses; everyone else the private network.
    let address = match source {
        Source::Internet => to.public_address,
        _ => Some(to.address),
    };
    let mut probe = Probe { from: source.clone(), from_address, to: to.name.clone(), address, port, expect: Connect::Filtered, also_open: false, reason: String::new() };
    let Some(address) = address else {
        probe.reason = "no route (not on the same network)".into();
        return probe;
    };
    if let Source::Host(name) = source {
        let firewall = topology.firewall.get(name);
        let source_host = topology.host(name);
        let restricted = firewall.is_some_and(|f| f.enabled && f.egress == crate::spec::EgressPolicy::Restricted) && source_host.is_some_and(|h| h.firewall);
        if restricted {
            let allowed = firewall.expect("checked").outbound.iter().any(|allow| allow.proto == Proto::Tcp && allow.port == port && allow.peers.iter().any(|net| net.contains(&address)));
            if !allowed {
                probe.reason = format!("{name}'s egress rules block it");
                return probe;
            }
        }
    }
    let inbound = match topology.firewall.get(&to.name) {
        Some(firewall) if firewall.enabled && to.firewall => firewall
            .inbound
            .iter()
            .find(|allow| allow.proto == Proto::Tcp && allow.port == port && allow.peers.iter().any(|net| net.contains(&from_address)))
            .map(|allow| allow.purpose.clone()),
        _ => Some("no firewall on the destination".into()),
    };
    let Some(purpose) = inbound else {
        probe.reason = format!("{}'s firewall blocks it", to.name);
        return probe;
    };
    let listening = to.services.iter().any(|service| {
        service.port == port
            && service.proto == Proto::Tcp
            && match service.bind {
                Bind::Local => false,
                Bind::Private => address == to.address,
                Bind::Public => Some(address) == to.public_address,
            }
    });
    if listening && TRANSIENT_PORTS.contains(&port) {
        // Galera's SST and IST listeners exist only while a node receives a state transfer.
        probe.expect = Connect::Refused;
        probe.also_open = true;
        probe.reason = format!("allowed ({purpose}); listens only during a state transfer");
    } else if listening {
        probe.expect = Connect::Open;
        probe.reason = format!("allowed: {purpose}");
    } else {
        probe.expect = Connect::Refused;
        probe.reason = format!("allowed ({purpose}), nothing listens on {address}:{port}");
    }
    probe
}

/// The web host behind an address (the app reports its web peer by address).
pub fn host_by_address<'t>(topology: &'t Topology, address: &str) -> Option<&'t str> {
    topology.hosts.iter().find(|h| h.address.to_string() == address || h.name == address).map(|h| h.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecSource;

    fn example(file: &str) -> Topology {
        let path = format!("{}/examples/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("example exists");
        crate::cli::compile(&SpecSource { name: file.into(), text }).expect("example compiles")
    }

    fn probe<'s>(step: &'s Step, from: &str, to: &str, port: u16) -> &'s Probe {
        let Step::FirewallMatrix { probes, .. } = step else { panic!("not a matrix") };
        probes.iter().find(|p| p.from.to_string() == from && p.to == to && p.port == port).unwrap_or_else(|| panic!("no probe {from} → {to}:{port}"))
    }

    #[test]
    fn default_stack_runs_every_step() {
        let scenario = Scenario::for_topology(&example("default.toml"));
        let names: Vec<&str> = scenario.steps.iter().map(Step::name).collect();
        assert_eq!(
            names,
            ["https via the virtual IP", "lb → web is TLS only", "ssh from admin", "multi-master writes", "firewall matrix", "web failover", "db failover", "lb failover"]
        );
        assert!(scenario.omitted.is_empty(), "{:?}", scenario.omitted);
        let db = scenario.steps.iter().find_map(|s| match s {
            Step::DbFailover { victim, survivors, .. } => Some((victim.clone(), survivors.clone())),
            _ => None,
        });
        assert_eq!(db, Some(("db1".to_string(), vec!["db2".to_string(), "db3".to_string()])), "the app's first choice dies");
    }

    #[test]
    fn whiteboard_omits_what_its_shape_cannot_do_and_says_why() {
        let scenario = Scenario::for_topology(&example("whiteboard.toml"));
        assert!(!scenario.steps.iter().any(|s| matches!(s, Step::LbFailover { .. } | Step::BackendTls { .. })));
        assert_eq!(scenario.omitted.len(), 2, "{:?}", scenario.omitted);
        let victim = scenario.steps.iter().find_map(|s| match s {
            Step::DbFailover { victim, writers, .. } => Some((victim.clone(), writers.clone())),
            _ => None,
        });
        assert_eq!(victim, Some(("server3".to_string(), vec!["server1".to_string()])), "single primary: a replica dies");
    }

    #[test]
    fn matrix_expectations_follow_the_firewall() {
        let topology = example("default.toml");
        let step = firewall_matrix(&topology);
        let Step::FirewallMatrix { ports, .. } = &step else { unreachable!() };
        assert_eq!(ports, &[22, 80, 443, 3306, 4444, 4567, 4568, 8080, 8404]);
        assert_eq!(probe(&step, "internet", "lb1", 443).expect, Connect::Open);
        assert_eq!(probe(&step, "internet", "lb1", 22).expect, Connect::Filtered);
        assert_eq!(probe(&step, "internet", "web1", 443).address, None);
        assert_eq!(probe(&step, "admin", "web1", 22).expect, Connect::Open);
        assert_eq!(probe(&step, "admin", "lb1", 8404).expect, Connect::Open);
        assert_eq!(probe(&step, "admin", "web1", 443).expect, Connect::Filtered);
        assert_eq!(probe(&step, "lb1", "web2", 443).expect, Connect::Open);
        assert_eq!(probe(&step, "web1", "app3", 8080).expect, Connect::Open);
        assert_eq!(probe(&step, "web1", "db1", 3306).expect, Connect::Filtered);
        assert_eq!(probe(&step, "app2", "db3", 3306).expect, Connect::Open);
        assert_eq!(probe(&step, "db2", "db1", 4567).expect, Connect::Open);
        // The LBs accept 443 from anywhere, but HAProxy listens on the public side only.
        assert_eq!(probe(&step, "admin", "lb1", 443).expect, Connect::Refused);
        // Egress: a web node may not open SSH to another host.
        assert!(probe(&step, "web1", "web2", 22).reason.contains("egress"), "{:?}", probe(&step, "web1", "web2", 22));
    }

    #[test]
    fn whiteboard_lb_without_firewall_is_open_to_what_listens() {
        let topology = example("whiteboard.toml");
        let step = firewall_matrix(&topology);
        assert_eq!(probe(&step, "internet", "lb", 22).expect, Connect::Refused, "sshd listens privately only; nothing filters");
        assert_eq!(probe(&step, "admin", "lb", 8404).expect, Connect::Open);
        assert_eq!(probe(&step, "server2", "server1", 3306).expect, Connect::Open);
        assert_eq!(probe(&step, "server1", "server2", 3306).expect, Connect::Filtered, "single primary: only the writer takes app connections");
    }
}
