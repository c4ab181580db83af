//! The audit: Topology → findings, the whiteboard's "issues with this infrastructure"
//! analysis for any spec.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::spec::{EgressPolicy, Role, WriteMode};
use crate::topology::{ports, Endpoint, Flow, Side, Topology};

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
    monoculture(topology, &mut findings);
    galera_size(topology, &mut findings);
    coverage(topology, &mut findings);
    exposure(topology, &mut findings);
    routes(topology, &mut findings);
    interface_names(topology, &mut findings);
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
        (
            Role::Lb,
            "spof-lb",
            "one load balancer: when it fails the whole site is down",
            "add a second lb host; they share lb.vip through keepalived VRRP",
        ),
        (
            Role::Web,
            "spof-web",
            "one web server: when it fails the site is down",
            "add web hosts (three survive one failure during a deploy)",
        ),
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
                format!(
                    "one database server accepts writes ({}): when it fails, writes stop although {} other nodes run",
                    db.writers[0],
                    db.hosts.len() - 1
                )
            } else {
                "one database server: when it fails, the data is unavailable".to_string()
            };
            findings.push(finding(
                Severity::Error,
                "spof-db-writer",
                message,
                db.writers.clone(),
                "use db.write_mode = \"multi-primary\" with three or more Galera nodes: every node accepts writes",
            ));
        }
    }
}

/// A flow as `from → to proto/port`, a tier source as its hosts (the destination left out).
fn describe(topology: &Topology, flow: &Flow) -> String {
    let from = match &flow.from {
        Endpoint::Tier(role) => {
            let hosts: Vec<&str> = topology
                .tier_hosts(*role)
                .iter()
                .map(String::as_str)
                .filter(|h| Endpoint::Host(h.to_string()) != flow.to)
                .collect();
            hosts.join(",")
        }
        from => from.to_string(),
    };
    format!("{from} → {} {}/{}", flow.to, flow.proto.as_str(), flow.port)
}

fn plaintext_hops(topology: &Topology, findings: &mut Vec<Finding>) {
    // Flows that carry application data or database state between machines.
    const DATA: [&str; 6] = [
        "lb → web",
        "web → app",
        "app → db",
        "galera replication",
        "galera incremental state transfer",
        "galera state snapshot transfer",
    ];
    let mut by_purpose: BTreeMap<&str, Vec<&Flow>> = BTreeMap::new();
    for flow in topology.flows.iter().filter(|f| !f.encrypted && DATA.contains(&f.purpose.as_str())) {
        by_purpose.entry(flow.purpose.as_str()).or_default().push(flow);
    }
    for (purpose, flows) in by_purpose {
        let mut hosts: Vec<String> = flows
            .iter()
            .flat_map(|f| [&f.from, &f.to])
            .flat_map(|e| match e {
                Endpoint::Host(h) => std::slice::from_ref(h),
                Endpoint::Tier(role) => topology.tier_hosts(*role),
                _ => &[],
            })
            .cloned()
            .collect();
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
            flows: flows.iter().map(|f| describe(topology, f)).collect(),
            fix: "set tls.internal = true: every hop is re-encrypted with certificates of the stack's internal CA"
                .into(),
        });
    }
    if let Some(lb) = &topology.lb {
        let behind = if topology.internal_tls {
            "re-encrypted to the web servers with the internal CA"
        } else {
            "plaintext behind it"
        };
        findings.push(finding(
            Severity::Info,
            "tls-termination",
            format!("public TLS ends at {} ({behind})", lb.hosts.join(", ")),
            lb.hosts.clone(),
            "nothing to do",
        ));
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
    let described: Vec<String> = shared
        .iter()
        .map(|h| format!("{} ({})", h.name, h.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join("+")))
        .collect();
    // "Identical components on every server": several hosts with the same role set, and no
    // other host running any of those roles.
    let identical = shared.len() > 1
        && shared.windows(2).all(|w| w[0].roles == w[1].roles)
        && topology.hosts.iter().filter(|h| h.roles.iter().any(|r| shared[0].roles.contains(r))).count()
            == shared.len();
    let message = if identical {
        // A bad release hitting every server at once is the other half of "identical
        // components": `monoculture` reports it, for these hosts and for any tier.
        format!("identical components on every server: {}; a fault in one component (a resource leak, a crash) takes every role down on every server at once", described.join(", "))
    } else {
        format!(
            "roles co-located on one host: {}; a fault in one role takes the others down with it",
            described.join(", ")
        )
    };
    findings.push(finding(
        Severity::Warning,
        "co-located-roles",
        message,
        shared.iter().map(|h| h.name.clone()).collect(),
        "give each role its own hosts (the default spec runs one role per host)",
    ));
}

/// The software half of the whiteboard's "identical components across servers": a tier whose
/// hosts all run one channel on one system runs one build of every package, so a bad release
/// or a bug of that build hits every host of the tier at once, and no host is left to serve.
/// A tier of one host is a single point of failure, reported as such. Tiers that run on the
/// same hosts (co-located roles) are one finding: they are one set of machines.
fn monoculture(topology: &Topology, findings: &mut Vec<Finding>) {
    let mut tiers: BTreeMap<Vec<String>, (Vec<Role>, &crate::topology::Host)> = BTreeMap::new();
    for role in Role::ALL {
        let hosts: Vec<&crate::topology::Host> = topology.hosts_with(role).collect();
        let [first, rest @ ..] = hosts.as_slice() else { continue };
        if rest.is_empty() || rest.iter().any(|host| host.pin() != first.pin()) {
            continue;
        }
        let names = hosts.iter().map(|host| host.name.clone()).collect();
        tiers.entry(names).or_insert_with(|| (Vec::new(), hosts[hosts.len() - 1])).0.push(role);
    }
    for (hosts, (roles, last)) in tiers {
        let roles: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
        let tier = roles.join("+");
        let pin = last.pin();
        let table = match &last.group {
            Some(group) => format!("[groups.{group}]"),
            None => format!("[hosts.{}]", last.name),
        };
        let other_system = if pin.system == "aarch64-linux" { "x86_64-linux" } else { "aarch64-linux" };
        let other_channel = previous_release(pin.channel).unwrap_or_else(|| "nixos-<another release>".into());
        findings.push(finding(
            Severity::Warning,
            "monoculture",
            format!(
                "the {tier} tier runs one build: {} all run {pin}, so a bad release or a bug in it hits every one at once",
                hosts.join(", ")
            ),
            hosts.clone(),
            &format!(
                "pin one host or group of the tier to another channel or system, e.g. `channel = \"{other_channel}\"` or `system = \"{other_system}\"` under {table}; deploy rolls it out first, as a canary (README.md, \"Software diversity\", says what must stay compatible)"
            ),
        ));
    }
}

/// The NixOS release before `channel`'s (`nixos-25.11` → `nixos-25.05`, `nixos-25.05` →
/// `nixos-24.11`), for a fix to name; `None` for a channel that is not a release.
fn previous_release(channel: &str) -> Option<String> {
    let (year, month) = channel.strip_prefix("nixos-")?.split_once('.')?;
    let year: u32 = year.parse().ok()?;
    match month {
        "11" => Some(format!("nixos-{year}.05")),
        "05" => Some(format!("nixos-{}.11", year.checked_sub(1)?)),
        _ => None,
    }
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
    } else if n > GALERA_LARGE {
        // Every write is certified and applied on every node, and flow control paces the whole
        // cluster to its slowest member: replication cost grows with the node count, and
        // Galera's documentation recommends small odd clusters.
        findings.push(finding(
            Severity::Warning,
            "galera-size",
            format!("the Galera cluster has {n} nodes: every write is replicated to and certified on all of them, and the slowest node paces the cluster"),
            db.hosts.clone(),
            &format!("run 3, 5 or 7 db hosts (at most {GALERA_LARGE}); scale reads with asynchronous replicas, not more Galera nodes"),
        ));
    }
}

/// The largest Galera cluster the audit accepts quietly.
pub const GALERA_LARGE: usize = 9;

fn coverage(topology: &Topology, findings: &mut Vec<Finding>) {
    let unmonitored: Vec<String> = topology.hosts.iter().filter(|h| !h.monitored).map(|h| h.name.clone()).collect();
    if !unmonitored.is_empty() {
        let message = if topology.monitoring.is_none() {
            "no monitoring: failures and load go unseen".to_string()
        } else {
            format!("hosts without a monitoring client: {}", unmonitored.join(", "))
        };
        findings.push(finding(
            Severity::Warning,
            "unmonitored-host",
            message,
            unmonitored,
            "add [monitoring] and leave monitoring.hosts unset so every host ships metrics and logs",
        ));
    }
    let unprotected: Vec<String> = topology.hosts.iter().filter(|h| !h.firewall).map(|h| h.name.clone()).collect();
    if !unprotected.is_empty() {
        findings.push(finding(
            Severity::Warning,
            "no-firewall",
            format!("hosts without a firewall: {}; every listening port is reachable", unprotected.join(", ")),
            unprotected,
            "leave firewall.hosts unset so every host runs the default-drop nftables ruleset",
        ));
    }
}

fn exposure(topology: &Topology, findings: &mut Vec<Finding>) {
    if topology.networks.admin.is_empty() {
        findings.push(finding(
            Severity::Warning,
            "no-admin-network",
            "networks.admin is empty: SSH is closed everywhere, so deploy cannot reach the hosts".into(),
            Vec::new(),
            "list the networks operators connect from in networks.admin",
        ));
    }
    for (host, firewall) in &topology.firewall {
        for allow in firewall.inbound.iter().filter(|a| !a.needed) {
            let peers: Vec<String> = allow.peers.iter().map(|p| p.to_string()).collect();
            let flow = format!("{} → {host} {}/{}", peers.join(","), allow.proto.as_str(), allow.port);
            let beyond_admin = allow.peers.iter().any(|p| !topology.networks.admin.iter().any(|a| a.contains(p)));
            let (severity, code, message, fix) = if allow.port == ports::SSH && beyond_admin {
                (
                    Severity::Error,
                    "ssh-beyond-admin",
                    format!("SSH on {host} is open to {} beyond the admin networks", peers.join(", ")),
                    "remove the rule; add the network to networks.admin if operators really connect from it",
                )
            } else {
                (
                    Severity::Warning,
                    "unneeded-port",
                    format!(
                        "port {}/{} on {host} is open to {} but no flow from there needs it ({})",
                        allow.port,
                        allow.proto.as_str(),
                        peers.join(", "),
                        allow.purpose
                    ),
                    "remove the firewall.allow rule, or add the service that needs it",
                )
            };
            findings.push(Finding {
                severity,
                code,
                message,
                hosts: vec![host.clone()],
                flows: vec![flow],
                fix: fix.into(),
            });
        }
    }
    let open: Vec<String> = topology
        .firewall
        .iter()
        .filter(|(_, f)| f.enabled && f.egress == EgressPolicy::Open)
        .map(|(h, _)| h.clone())
        .collect();
    if !open.is_empty() {
        findings.push(finding(
            Severity::Warning,
            "open-egress",
            "outbound traffic is not restricted: a compromised host can reach anything".into(),
            open,
            "set firewall.egress = \"restricted\" (only the flows' destinations are allowed out)",
        ));
    }
}

/// Default routes and name servers. A host only routes through a gateway on one of its own
/// networks (the public one for hosts with a public address, else the private one): a gateway
/// no host is on is useless, and a host without a route cannot send its internet flows (NTP,
/// DNS, monitoring, ACME) anywhere; without DNS servers it cannot resolve their names.
fn routes(topology: &Topology, findings: &mut Vec<Finding>) {
    let networks = &topology.networks;
    for (gateway, side, key) in [
        (networks.gateway, Side::Public, "networks.gateway"),
        (networks.private_gateway, Side::Private, "networks.private_gateway"),
    ] {
        let Some(gateway) = gateway else { continue };
        let usable = topology.hosts.iter().any(|h| side == Side::Private || h.public_address.is_some());
        if !usable {
            findings.push(finding(
                Severity::Warning,
                "unusable-gateway",
                format!("{key} {gateway} is on the public network, where no host has an address: no host can route through it"),
                Vec::new(),
                "set networks.private_gateway to the router of the private network, or give the hosts that need the internet a public_address",
            ));
        }
    }
    let outside = |flow: &Flow| matches!(flow.to, Endpoint::Internet | Endpoint::Monitoring);
    let mut hosts: Vec<String> = Vec::new();
    let mut flows: Vec<String> = Vec::new();
    // The flows that leave the stack, by source host: one pass over the flows.
    let mut leaving: BTreeMap<&str, Vec<&Flow>> = BTreeMap::new();
    for flow in topology.flows.iter().filter(|f| outside(f)) {
        if let Endpoint::Host(name) = &flow.from {
            leaving.entry(name.as_str()).or_default().push(flow);
        }
    }
    for host in topology.hosts.iter().filter(|h| h.default_route.is_none()) {
        let mine: Vec<String> =
            leaving.get(host.name.as_str()).into_iter().flatten().map(|f| describe(topology, f)).collect();
        if !mine.is_empty() {
            hosts.push(host.name.clone());
            flows.extend(mine);
        }
    }
    if !hosts.is_empty() {
        let why = if networks.gateway.is_none() && networks.private_gateway.is_none() {
            "the spec names no gateway".to_string()
        } else {
            "networks.gateway is on the public network, which they have no address on".to_string()
        };
        findings.push(Finding {
            severity: Severity::Warning,
            code: "no-default-route",
            message: format!("{} get no default route ({why}): their traffic to the internet cannot leave", hosts.join(", ")),
            hosts,
            flows,
            fix: "set networks.private_gateway to the router (or NAT gateway) of the private network, and networks.gateway for the load balancers".into(),
        });
    }
    if networks.dns.is_empty() && topology.flows.iter().any(|f| f.purpose == "dns") {
        findings.push(finding(
            Severity::Warning,
            "no-dns",
            "networks.dns is empty: the hosts have no name servers and resolve no names (the monitoring endpoint, the ACME server, the NTP pool)".into(),
            topology.hosts.iter().map(|h| h.name.clone()).collect(),
            "list the resolvers the hosts use in networks.dns",
        ));
    }
}

/// A host with two cards and no MACs in the spec: NixOS hosts use the kernel's names
/// (`usePredictableInterfaceNames = false`), which follow the order the cards are probed in,
/// so `eth0` (private) and `eth1` (public) can swap, putting the private address, the
/// firewall's private side and the virtual IP on the wrong network.
fn interface_names(topology: &Topology, findings: &mut Vec<Finding>) {
    let unnamed: Vec<String> = topology
        .hosts
        .iter()
        .filter(|h| h.public_address.is_some() && (h.mac.is_none() || h.public_mac.is_none()))
        .map(|h| h.name.clone())
        .collect();
    if !unnamed.is_empty() {
        findings.push(finding(
            Severity::Warning,
            "unstable-interface-names",
            format!(
                "{} have two network cards and no MACs in the spec: the kernel's probe order decides which card is eth0 (private) and which eth1 (public), and a swap puts the addresses, the firewall and the virtual IP on the wrong network",
                unnamed.join(", ")
            ),
            unnamed,
            "give these hosts `mac` and `public_mac` (`cat /sys/class/net/<card>/address`): their cards are then named priv0 and pub0 by permanent MAC",
        ));
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

    /// The errors and warnings, but `monoculture`: the default example runs every host on the
    /// stack's one channel, and the monoculture tests below look at that finding itself.
    fn codes(findings: &[Finding]) -> Vec<(&'static str, Vec<String>)> {
        findings
            .iter()
            .filter(|f| f.severity <= Severity::Warning && f.code != "monoculture")
            .map(|f| (f.code, f.hosts.clone()))
            .collect()
    }

    /// `examples/default.toml` with its `[networks]` lines edited.
    fn default_networks(edit: impl Fn(&str) -> Option<String>) -> Topology {
        let path = format!("{}/examples/default.toml", env!("CARGO_MANIFEST_DIR"));
        let text: String = std::fs::read_to_string(path)
            .expect("example exists")
            .lines()
            .filter_map(|line| edit(line).map(|l| l + "\n"))
            .collect();
        crate::topology::compile(&SpecSource { name: "default-edited.toml".into(), text }).expect("compiles")
    }

    /// `examples/default.toml` with `extra` hosts of `role`, named `<role>1x<i>`, allocated.
    fn default_plus(role: &str, extra: usize) -> Topology {
        let hosts: String = (0..extra).map(|i| format!("\n[hosts.{role}1x{i}]\nroles = [\"{role}\"]\n")).collect();
        let path = format!("{}/examples/default.toml", env!("CARGO_MANIFEST_DIR"));
        let text =
            std::fs::read_to_string(path).expect("example exists").replacen("[lb]\n", &format!("{hosts}\n[lb]\n"), 1);
        crate::topology::compile(&SpecSource { name: "default+hosts.toml".into(), text }).expect("compiles")
    }

    /// `examples/default.toml` with `lines` added to the table `header`.
    fn default_with_in(header: &str, lines: &str) -> Topology {
        let path = format!("{}/examples/default.toml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).expect("example exists");
        let edited = text.replacen(&format!("{header}\n"), &format!("{header}\n{lines}\n"), 1);
        assert_ne!(edited, text, "no {header} in the example");
        crate::topology::compile(&SpecSource { name: "default-pinned.toml".into(), text: edited }).expect("compiles")
    }

    fn monocultures(topology: &Topology) -> Vec<Vec<String>> {
        audit(topology).into_iter().filter(|f| f.code == "monoculture").map(|f| f.hosts).collect()
    }

    #[test]
    fn every_tier_on_the_stacks_one_pin_is_a_monoculture() {
        let findings = audit(&default_with(""));
        let monoculture: Vec<&Finding> = findings.iter().filter(|f| f.code == "monoculture").collect();
        let hosts: Vec<&[String]> = monoculture.iter().map(|f| f.hosts.as_slice()).collect();
        assert_eq!(
            hosts,
            [
                ["app1", "app2", "app3"].map(String::from).as_slice(),
                &["db1", "db2", "db3"].map(String::from),
                &["lb1", "lb2"].map(String::from),
                &["web1", "web2", "web3"].map(String::from)
            ]
        );
        assert!(monoculture.iter().all(|f| f.severity == Severity::Warning));
        let web = monoculture.iter().find(|f| f.hosts[0] == "web1").unwrap();
        assert!(web.message.contains("all run nixos-25.11 on x86_64-linux"), "{}", web.message);
        assert!(
            web.fix.contains("`channel = \"nixos-25.05\"` or `system = \"aarch64-linux\"` under [hosts.web3]"),
            "{}",
            web.fix
        );
    }

    #[test]
    fn a_tier_with_a_host_on_another_channel_or_system_is_no_monoculture() {
        let channel = default_with_in("[hosts.web3]", "channel = \"nixos-25.05\"");
        assert!(!monocultures(&channel).iter().any(|hosts| hosts.contains(&"web3".to_string())));
        assert_eq!(monocultures(&channel).len(), 3, "lb, app and db still share one pin");
        let system = default_with_in("[hosts.db2]", "system = \"aarch64-linux\"");
        assert!(!monocultures(&system).iter().any(|hosts| hosts.contains(&"db2".to_string())));
    }

    #[test]
    fn a_group_pinned_away_mixes_its_tier_and_a_tier_pinned_away_whole_is_still_one_build() {
        let mixed = default_with("\n[groups.edge]\ncount = 2\nroles = [\"web\"]\nchannel = \"nixos-unstable\"\n");
        assert!(!monocultures(&mixed)
            .iter()
            .any(|hosts| hosts.iter().any(|h| h.starts_with("web") || h.starts_with("edge"))));

        let mut text = include_str!("../../examples/whiteboard.toml").to_string();
        for server in ["server1", "server2", "server3"] {
            let header = format!("[hosts.{server}]\n");
            text = text.replace(&header, &format!("{header}channel = \"nixos-25.05\"\n"));
        }
        let whole =
            crate::topology::compile(&SpecSource { name: "whiteboard-pinned.toml".into(), text }).expect("compiles");
        let findings: Vec<Finding> = audit(&whole).into_iter().filter(|f| f.code == "monoculture").collect();
        // The three servers run web, app and db: one finding for the one set of machines.
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].hosts, ["server1", "server2", "server3"]);
        assert!(findings[0].message.starts_with("the web+app+db tier runs one build"), "{}", findings[0].message);
        assert!(findings[0].message.contains("all run nixos-25.05 on x86_64-linux"), "{}", findings[0].message);
        assert!(findings[0].fix.contains("`channel = \"nixos-24.11\"`"), "{}", findings[0].fix);
    }

    #[test]
    fn a_large_galera_cluster_is_reported_and_a_small_one_is_not() {
        let size = |t: &Topology| audit(t).into_iter().filter(|f| f.code == "galera-size").count();
        assert_eq!(size(&default_plus("db", 6)), 0, "nine nodes are fine");
        let large = default_plus("db", 8);
        assert_eq!(large.db.as_ref().unwrap().hosts.len(), 11);
        let findings: Vec<Finding> = audit(&large).into_iter().filter(|f| f.code == "galera-size").collect();
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].severity, Severity::Warning);
        assert!(findings[0].message.contains("11 nodes"), "{}", findings[0].message);
    }

    #[test]
    fn the_default_example_routes_every_host_and_names_resolvers() {
        let findings = audit(&default_with(""));
        let codes: Vec<&str> = findings.iter().map(|f| f.code).collect();
        for code in ["no-default-route", "unusable-gateway", "no-dns"] {
            assert!(!codes.contains(&code), "{findings:#?}");
        }
    }

    #[test]
    fn hosts_off_the_gateways_network_are_reported_without_a_route() {
        let topology = default_networks(|line| (!line.starts_with("private_gateway")).then(|| line.to_string()));
        let findings = audit(&topology);
        let missing: Vec<&Finding> = findings.iter().filter(|f| f.code == "no-default-route").collect();
        assert_eq!(missing.len(), 1, "{findings:#?}");
        let expected: Vec<String> =
            topology.hosts.iter().filter(|h| h.public_address.is_none()).map(|h| h.name.clone()).collect();
        assert_eq!(missing[0].hosts, expected);
        assert!(missing[0].flows.iter().any(|f| f.ends_with("udp/123")), "{:?}", missing[0].flows);
        assert!(topology.host("lb1").unwrap().default_route.is_some_and(|r| r.via == Side::Public));

        let none = default_networks(|line| (!line.contains("gateway")).then(|| line.to_string()));
        let findings = audit(&none);
        let missing = findings.iter().find(|f| f.code == "no-default-route").expect("reported");
        assert_eq!(missing.hosts.len(), none.hosts.len());
        assert!(missing.message.contains("names no gateway"), "{}", missing.message);
    }

    #[test]
    fn a_public_gateway_without_public_hosts_is_unusable() {
        // A stack without load balancers: nobody has a public address.
        let path = format!("{}/examples/default.toml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        let start = text.find("# Two load balancers").unwrap();
        let end = text.find("[hosts.web1]").unwrap();
        let lb_start = text.find("[lb]").unwrap();
        let lb_end = text.find("[web]").unwrap();
        let text = format!("{}{}{}", &text[..start], &text[end..lb_start], &text[lb_end..])
            .replace("private_gateway = \"10.10.0.1\"", "");
        let topology = crate::topology::compile(&SpecSource { name: "no-lb.toml".into(), text }).expect("compiles");
        assert!(topology.hosts.iter().all(|h| h.public_address.is_none()));
        let findings = audit(&topology);
        let unusable: Vec<&Finding> = findings.iter().filter(|f| f.code == "unusable-gateway").collect();
        assert_eq!(unusable.len(), 1, "{findings:#?}");
        assert!(unusable[0].message.contains("203.0.113.1"));
        assert!(findings.iter().any(|f| f.code == "no-default-route"));
    }

    #[test]
    fn two_cards_without_macs_are_reported_and_macs_name_them() {
        let named = default_with("");
        assert_eq!(named.host("lb1").unwrap().public_mac.as_deref(), Some("00:00:5e:00:53:b1"));
        assert!(!audit(&named).iter().any(|f| f.code == "unstable-interface-names"));
        let unnamed = default_networks(|line| {
            (!line.starts_with("mac =") && !line.starts_with("public_mac =")).then(|| line.to_string())
        });
        let findings = audit(&unnamed);
        let unstable = findings.iter().find(|f| f.code == "unstable-interface-names").expect("reported");
        assert_eq!(unstable.hosts, ["lb1", "lb2"]);
        // A host with one card: its name cannot swap.
        assert_eq!(codes(&findings), [("unstable-interface-names", vec!["lb1".to_string(), "lb2".to_string()])]);
    }

    #[test]
    fn no_resolvers_is_reported() {
        let topology = default_networks(|line| (!line.starts_with("dns")).then(|| line.to_string()));
        assert!(audit(&topology).iter().any(|f| f.code == "no-dns"));
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
