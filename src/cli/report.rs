//! Human-readable reports of a Topology and its findings.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::audit::{Finding, Severity};
use crate::spec::SpecSource;
use crate::topology::{Endpoint, Topology};

/// Hosts, roles, addresses, the virtual IP and the traffic flows.
pub fn summary(source: &SpecSource, topology: &Topology) -> String {
    let mut out = String::new();
    let s = &topology.stack;
    let _ = writeln!(out, "stack {} ({}) from {}: {} on {}", s.name, s.domain, source.name, s.channel, s.system);
    let _ = writeln!(
        out,
        "networks: private {}, public {}, admin {}",
        topology.networks.private,
        topology.networks.public,
        if topology.networks.admin.is_empty() {
            "(none)".to_string()
        } else {
            topology.networks.admin.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
        }
    );
    let _ = writeln!(out, "\nhosts ({}):", topology.hosts.len());
    let width = topology.hosts.iter().map(|h| h.name.len()).max().unwrap_or(4);
    for host in &topology.hosts {
        let roles: Vec<&str> = host.roles.iter().map(|r| r.as_str()).collect();
        let public = host.public_address.map(|a| a.to_string()).unwrap_or_else(|| "-".into());
        let mut extras = Vec::new();
        // The stack's pin is on the first line; a host's own is worth its place here.
        if host.pin() != topology.stack_pin() {
            extras.push(host.pin().to_string());
        }
        if !host.firewall {
            extras.push("no firewall".into());
        }
        if !host.monitored {
            extras.push("unmonitored".into());
        }
        let extras = if extras.is_empty() { String::new() } else { format!("  ({})", extras.join(", ")) };
        let _ = writeln!(
            out,
            "  {:width$}  {:15}  {:15}  {}{}",
            host.name,
            host.address.to_string(),
            public,
            roles.join("+"),
            extras
        );
    }
    if let Some(lb) = &topology.lb {
        let priorities: Vec<String> = lb.priorities.iter().map(|(h, p)| format!("{h}={p}")).collect();
        let _ = writeln!(
            out,
            "\nvirtual IP {} on {} (primary {}, VRRP id {}, priorities {})",
            lb.vip,
            lb.hosts.join(", "),
            lb.primary,
            lb.virtual_router_id,
            priorities.join(" ")
        );
    }
    if let Some(db) = &topology.db {
        let _ = writeln!(
            out,
            "galera cluster {}: {} (bootstrap {}, writers {})",
            db.cluster_name,
            db.hosts.join(", "),
            db.bootstrap,
            db.writers.join(", ")
        );
    }
    let order: Vec<String> = topology.start_order.iter().map(|stage| stage.join(" ")).collect();
    let _ = writeln!(out, "start order: {}", order.join(" → "));

    // Group flows by what they are, so 18 Galera flows read as one line.
    // (purpose, port, protocol, encrypted) → (sources, destinations)
    // A set per end, so that grouping stays linear in the flows; a tier names its hosts.
    type FlowKey<'a> = (&'a str, u16, &'a str, bool);
    let mut groups: BTreeMap<FlowKey, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for flow in &topology.flows {
        let entry = groups.entry((flow.purpose.as_str(), flow.port, flow.proto.as_str(), flow.encrypted)).or_default();
        for (set, endpoint) in [(&mut entry.0, &flow.from), (&mut entry.1, &flow.to)] {
            match endpoint {
                Endpoint::Tier(role) => set.extend(topology.tier_hosts(*role).iter().cloned()),
                endpoint => {
                    set.insert(endpoint.to_string());
                }
            }
        }
    }
    let _ = writeln!(out, "\nflows ({}):", topology.flows.len());
    for ((purpose, port, proto, encrypted), (from, to)) in groups {
        let from: Vec<String> = from.into_iter().collect();
        let to: Vec<String> = to.into_iter().collect();
        let port = if port == 0 { proto.to_string() } else { format!("{proto}/{port}") };
        let lock = if encrypted { "encrypted" } else { "PLAINTEXT" };
        let _ = writeln!(out, "  {:36} {:9} {:9}  {} → {}", purpose, port, lock, from.join(","), to.join(","));
    }
    out
}

/// The findings, most severe first, and a one-line tally.
pub fn findings(findings: &[Finding]) -> String {
    let mut out = String::from("\nfindings:\n");
    for finding in findings {
        let _ = writeln!(out, "  {:7} [{}] {}", finding.severity.as_str(), finding.code, finding.message);
        if !finding.hosts.is_empty() {
            let _ = writeln!(out, "          hosts: {}", finding.hosts.join(", "));
        }
        for flow in &finding.flows {
            let _ = writeln!(out, "          flow: {flow}");
        }
        if finding.severity != Severity::Info {
            let _ = writeln!(out, "          fix: {}", finding.fix);
        }
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let _ = writeln!(
        out,
        "{} error(s), {} warning(s), {} info",
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    );
    out
}
