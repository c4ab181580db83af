//! The audit: Topology → findings, the whiteboard's "issues with this infrastructure"
//! analysis for any spec.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::spec::{EgressPolicy, Role, WriteMode};
use crate::topology::{ports, Endpoint, Flow, Topology};

/// How bad a finding is. `check` exits 1 when any finding is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One weakness (or a fact worth knowing) about the stack.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub severity: Severity,
    /// Stable identifier, e.g. `spof-lb`.
    pub code: &'static str,
    pub message: String,
    pub hosts: Vec<String>,
    /// Affected flows, as `from → to port/proto`.
    pub flows: Vec<String>,
    pub fix: String,
}

/// Runs every check; findings sorted by severity, then code.
pub fn audit(topology: &Topology) -> Vec<Finding> {
    let mut findings = Vec::new();
    single_points_of_failure(topology, &mut findings);
    plaintext_hops(topology, &mut findings);
    co_location(topology, &mut findings);
    galera_size(topology, &mut findings);
    coverage(topology, &mut findings);
    exposure(topology, &mut findings);
    findings.sort();
    findings
}

pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).min()
}

fn finding(severity: Severity, code: &'static str, message: String, hosts: Vec<String>, fix: &str) -> Finding {
    Finding { severity, code, message, hosts, flows: Vec::new(), fix: fix.to_string() }
}

fn single_points_of_failure(topology: &Topology, findings: &mut Vec<Finding>) {
    let tiers = [
        (Role::Lb, "spof-lb", "one load balancer: when it fails the whole site is down", "add a second lb host; they share lb.vip through keepalived VRRP"),
        (Role::Web, "spof-web", "one web server: when it fails the site is down", "add web hosts (three survive one failure during a deploy)"),
        (Role::App, "spof-app", "one application server: when it fails every dynamic page fails", "add app hosts"),
    ];
    for (role, code, message, fix) in tiers {
        let hosts: Vec<String> = topology.hosts_with(role).map(|h| h.name.clone()).collect();
        if hosts.len() == 1 {
            findings.push(finding(Severity::Error, code, message.into(), hosts, fix));
        }
    }
    if let Some(db) = &topology.db {
        if db.writers.len() == 1 {
            let message = if db.write_mode == WriteMode::SinglePrimary && db.hosts.len() > 1 {
                format!("one database server accepts writes ({}): when it fails, writes stop although {} other nodes run", db.writers[0], db.hosts.len() - 1)
            } else {
                "one database server: when it fails, the data is unavailable".to_string()
            };
            findings.push(finding(Severity::Error, "spof-db-writer", message, db.writers.clone(), "use db.write_mode = \"multi-primary\" with three or more Galera nodes: every node accepts writes"));
        }
    }
}

fn describe(flow: &Flow) -> String {
    format!("{} → {} {}/{}", flow.from, flow.to, flow.proto.as_str(), flow.port)
}

fn plaintext_hops(topology: &Topology, findings: &mut Vec<Finding>) {
    // Flows that carry application data or database state between machines.
    const DATA: [&str; 6] = ["lb → web", "web → app", "app → db", "galera replication", "galera incremental state transfer", "galera state snapshot transfer"];
    let mut by_purpose: BTreeMap<&str, Vec<&Flow>> = BTreeMap::new();
    for flow in topology.flows.iter().filter(|f| !f.encrypted && DATA.contains(&f.purpose.as_str())) {
        by_purpose.entry(flow.purpose.as_str()).or_default().push(flow);
    }
    for (purpose, flows) in by_purpose {
        let mut hosts: Vec<String> = flows.iter().flat_map(|f| [&f.from, &f.to]).filter_map(|e| match e {
            Endpoint::Host(h) => Some(h.clone()),
            _ => None,
        }).collect();
        hosts.sort();
        hosts.dedup();
        let message = if purpose == "lb → web" {
            "TLS terminates at the load balancer and the hop to the web servers is plaintext".to_string()
        } else {
            format!("{purpose} travels in plaintext")
        };
        findings.push(Finding {
            severity: Severity::Error,
            code: "plaintext-hop",
            message,
            hosts,
            flows: flows.iter().map(|f| describe(f)).collect(),
            fix: "set tls.internal = true: every hop is re-encrypted with certificates of the stack's internal CA".into(),
        });
    }
    if let Some(lb) = &topology.lb {
        let behind = if topology.internal_tls { "re-encrypted to the web servers with the internal CA" } else { "plaintext behind it" };
        findings.push(finding(Severity::Info, "tls-termination", format!("public TLS ends at {} ({behind})", lb.hosts.join(", ")), lb.hosts.clone(), "nothing to do"));
        findings.push(Finding {
            severity: Severity::Info,
            code: "http-redirect",
            message: if lb.tls == crate::spec::TlsMode::Acme {
                "port 80 is open on the load balancers, answering only ACME challenges and with a redirect to HTTPS (HSTS set)".into()
            } else {
                "port 80 is open on the load balancers, answering only with a redirect to HTTPS (HSTS set)".into()
            },
            hosts: lb.hosts.clone(),
            flows: Vec::new(),
            fix: "nothing to do".into(),
        });
    }
}

fn co_location(topology: &Topology, findings: &mut Vec<Finding>) {
    let shared: Vec<_> = topology.hosts.iter().filter(|h| h.roles.len() > 1).collect();
    if shared.is_empty() {
        return;
    }
    let described: Vec<String> = shared.iter().map(|h| format!("{} ({})", h.name, h.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join("+"))).collect();
    // "Identical components on every server": several hosts with the same role set, and no
    // other host running any of those roles.
    let identical = shared.len() > 1
        && shared.windows(2).all(|w| w[0].roles == w[1].roles)
        && topology.hosts.iter().filter(|h| h.roles.iter().any(|r| shared[0].roles.contains(r))).count() == shared.len();
    let message = if identical {
        format!("identical components on every server: {}; a fault in one component (a bad release, a resource leak) hits every server at once", described.join(", "))
    } else {
        format!("roles co-located on one host: {}; a fault in one role takes the others down with it", described.join(", "))
    };
    findings.push(finding(Severity::Warning, "co-located-roles", message, shared.iter().map(|h| h.name.clone()).collect(), "give each role its own hosts (the default spec runs one role per host)"));
}

fn galera_size(topology: &Topology, findings: &mut Vec<Finding>) {
    let Some(db) = &topology.db else { return };
    let n = db.hosts.len();
    if n < 3 || n % 2 == 0 {
        findings.push(finding(
            Severity::Warning,
            "galera-size",
            format!("the Galera cluster has {n} node(s) (allowed by db.allow_unsafe_size): a failure or split can leave no majority and stop writes"),
            db.hosts.clone(),
            "run an odd number of db hosts, at least 3",
        ));
    }
}

fn coverage(topology: &Topology, findings: &mut Vec<Finding>) {
    let unmonitored: Vec<String> = topology.hosts.iter().filter(|h| !h.monitored).map(|h| h.name.clone()).collect();
    if !unmonitored.is_empty() {
        let message = if topology.monitoring.is_none() {
            "no monitoring: failures and load go unseen".to_string()
        } else {
            format!("hosts without a monitoring client: {}", unmonitored.join(", "))
        };
        findings.push(finding(Severity::Warning, "unmonitored-host", message, unmonitored, "add [monitoring] and leave monitoring.hosts unset so every host ships metrics and logs"));
    }
    let unprotected: Vec<String> = topology.hosts.iter().filter(|h| !h.firewall).map(|h| h.name.clone()).collect();
    if !unprotected.is_empty() {
        findings.push(finding(Severity::Warning, "no-firewall", format!("hosts without a firewall: {}; every listening port is reachable", unprotected.join(", ")), unprotected, "leave firewall.hosts unset so every host runs the default-drop nftables ruleset"));
    }
}

fn exposure(topology: &Topology, findings: &mut Vec<Finding>) {
    if topology.networks.admin.is_empty() {
        findings.push(finding(Severity::Warning, "no-admin-network", "networks.admin is empty: SSH is closed everywhere, so deploy cannot reach the hosts".into(), Vec::new(), "list the networks operators connect from in networks.admin"));
    }
    for (host, firewall) in &topology.firewall {
        for allow in firewall.inbound.iter().filter(|a| !a.needed) {
            let peers: Vec<String> = allow.peers.iter().map(|p| p.to_string()).collect();
            let flow = format!("{} → {host} {}/{}", peers.join(","), allow.proto.as_str(), allow.port);
            let beyond_admin = allow.peers.iter().any(|p| !topology.networks.admin.iter().any(|a| a.contains(p)));
            let (severity, code, message, fix) = if allow.port == ports::SSH && beyond_admin {
                (Severity::Error, "ssh-beyond-admin", format!("SSH on {host} is open to {} beyond the admin networks", peers.join(", ")), "remove the rule; add the network to networks.admin if operators really connect from it")
            } else {
                (Severity::Warning, "unneeded-port", format!("port {}/{} on {host} is open to {} but no flow from there needs it ({})", allow.port, allow.proto.as_str(), peers.join(", "), allow.purpose), "remove the firewall.allow rule, or add the service that needs it")
            };
            findings.push(Finding { severity, code, message, hosts: vec![host.clone()], flows: vec![flow], fix: fix.into() });
        }
    }
    let open: Vec<String> = topology.firewall.iter().filter(|(_, f)| f.enabled && f.egress == EgressPolicy::Open).map(|(h, _)| h.clone()).collect();
    if !open.is_empty() {
        findings.push(finding(Severity::Warning, "open-egress", "outbound traffic is not restricted: a compromised host can reach anything".into(), open, "set firewall.egress = \"restricted\" (only the flows' destinations are allowed out)"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecSource;

    fn default_with(extra: &str) -> Topology {
        let path = format!("{}/examples/default.toml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).expect("example exists") + extra;
        crate::topology::compile(&SpecSource { name: "default+extra.toml".into(), text }).expect("compiles")
    }

    fn codes(findings: &[Finding]) -> Vec<(&'static str, Vec<String>)> {
        findings.iter().filter(|f| f.severity <= Severity::Warning).map(|f| (f.code, f.hosts.clone())).collect()
    }

    #[test]
    fn ssh_opened_to_the_internet_is_an_error_although_admin_ssh_is_a_flow() {
        let topology = default_with("\n[[firewall.allow]]\nfrom = \"0.0.0.0/0\"\nto = \"web1\"\nport = 22\n");
        let findings = audit(&topology);
        assert_eq!(codes(&findings), [("ssh-beyond-admin", vec!["web1".to_string()])], "{findings:#?}");
    }

    #[test]
    fn a_rule_wider_than_the_flows_on_a_flow_port_is_unneeded() {
        // app → db 3306 is a flow, but only from the app hosts.
        let topology = default_with("\n[[firewall.allow]]\nfrom = \"0.0.0.0/0\"\nto = \"db1\"\nport = 3306\n");
        let findings = audit(&topology);
        assert_eq!(codes(&findings), [("unneeded-port", vec!["db1".to_string()])], "{findings:#?}");
    }

    #[test]
    fn a_rule_inside_the_flows_sources_is_needed() {
        // SSH from inside an admin network and MySQL from an app host are what the flows allow.
        let admin = default_with("").networks.admin[0];
        let topology = default_with(&format!(
            "\n[[firewall.allow]]\nfrom = \"{}\"\nto = \"web1\"\nport = 22\n\n[[firewall.allow]]\nfrom = \"10.10.0.31/32\"\nto = \"db1\"\nport = 3306\n",
            admin
        ));
        assert_eq!(topology.host("app1").map(|h| h.address.to_string()).as_deref(), Some("10.10.0.31"));
        let findings = audit(&topology);
        assert!(codes(&findings).is_empty(), "{findings:#?}");
        let extra = topology.firewall["db1"].inbound.iter().filter(|a| a.purpose == "firewall.allow").count();
        assert_eq!(extra, 1, "the rule is in the matrix");
    }
}
