//! The rollout plan: which hosts, in which order and batches, and what changes on each,
//! in operator terms (backend added, port opened, Galera peer changed).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde::Serialize;

use crate::render::Artifacts;
use crate::spec::Role;
use crate::topology::{Host, Topology};

use super::Goal;

/// One change on one host, as an operator would say it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Change {
    pub host: String,
    pub what: String,
}

/// Hosts that deploy together; the next batch starts only when all are healthy.
#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    pub tier: Role,
    pub hosts: Vec<String>,
    /// Set on a canary batch: hosts on another channel or system than the rest of their tier
    /// (this says which), rolled out before it so that a fault of that build shows on them
    /// first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub goal: Goal,
    pub batches: Vec<Batch>,
    /// Spec-level changes per host (empty when deploying the same spec again).
    pub changes: Vec<Change>,
    /// Selected hosts whose rendered files are unchanged (still built and compared by closure).
    pub unchanged: Vec<String>,
    /// Why the plan cannot run safely, if it cannot.
    pub blockers: Vec<String>,
}

/// A host selector from `--on`: a host name or `@role`.
pub fn select<'t>(topology: &'t Topology, on: &[String]) -> Result<Vec<&'t Host>, String> {
    if on.is_empty() {
        return Ok(topology.hosts.iter().collect());
    }
    let mut selected = BTreeSet::new();
    for item in on.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(role) = item.strip_prefix('@') {
            let role = Role::ALL
                .into_iter()
                .find(|r| r.as_str() == role)
                .ok_or_else(|| format!("`@{role}` is not a role (lb, web, app, db)"))?;
            selected.extend(topology.hosts_with(role).map(|h| h.name.clone()));
        } else if topology.host(item).is_some() {
            selected.insert(item.to_string());
        } else {
            return Err(format!("`{item}` is not a host of the spec"));
        }
    }
    Ok(topology.hosts.iter().filter(|h| selected.contains(&h.name)).collect())
}

/// The tier a host deploys with: its earliest role in dependency order db → app → web → lb.
pub fn tier_of(host: &Host) -> Role {
    [Role::Db, Role::App, Role::Web, Role::Lb].into_iter().find(|r| host.has(*r)).unwrap_or(Role::Web)
}

/// Orders the selected hosts into batches: tiers in dependency order (db → app → web →
/// lb); Galera nodes and load balancers strictly one at a time (backup LBs before the
/// primary, so the VIP moves once; execute moves whichever LB holds the VIP then last); web and app at most `parallel` at a time and never
/// the whole tier at once, so some hosts keep serving. In a tier that mixes builds, the hosts
/// pinned away from the stack's channel and system go first, in batches of their own (canaries):
/// a fault of their build then stops the deploy while the rest of the tier still runs the
/// build it ran before. The primary load balancer is no canary: it stays last, so the VIP moves
/// once.
pub fn batches(topology: &Topology, selected: &[&Host], parallel: usize) -> (Vec<Batch>, Vec<String>) {
    let mut blockers = Vec::new();
    let mut batches = Vec::new();
    for tier in [Role::Db, Role::App, Role::Web, Role::Lb] {
        let mut members: Vec<&Host> = selected.iter().copied().filter(|h| tier_of(h) == tier).collect();
        if members.is_empty() {
            continue;
        }
        let tier_size = topology.hosts_with(tier).count();
        let batch_size = match tier {
            Role::Db | Role::Lb => 1,
            _ => parallel.max(1).min(tier_size.saturating_sub(1).max(1)),
        };
        let tier_mixes = {
            let mut pins = topology.hosts_with(tier).map(Host::pin);
            let first = pins.next();
            pins.any(|pin| Some(pin) != first)
        };
        let primary = topology.lb.as_ref().filter(|_| tier == Role::Lb).map(|l| l.primary.clone());
        let canary =
            |host: &Host| tier_mixes && host.pin() != topology.stack_pin() && Some(&host.name) != primary.as_ref();
        members.sort_by_key(|h| (Some(&h.name) == primary.as_ref(), !canary(h), h.name.clone()));
        if tier == Role::Db {
            let size = topology.db.as_ref().map_or(0, |d| d.hosts.len());
            // Taking one node down must leave a majority of the full cluster.
            if size - 1 <= size / 2 {
                blockers.push(format!("the Galera cluster has {size} node(s): restarting one loses quorum, so db hosts cannot be deployed one by one safely"));
            }
        }
        if tier_size == 1 {
            blockers.push(format!(
                "the {tier} tier has one host: deploying it interrupts service (no rolling deploy possible)"
            ));
        }
        // Canaries and the others never share a batch; members are sorted canaries first.
        let (canaries, others): (Vec<&Host>, Vec<&Host>) = members.iter().partition(|h| canary(h));
        for (group, is_canary) in [(canaries, true), (others, false)] {
            for chunk in group.chunks(batch_size) {
                let canary = is_canary.then(|| {
                    let pins: BTreeSet<String> = chunk.iter().map(|h| h.pin().to_string()).collect();
                    pins.into_iter().collect::<Vec<_>>().join(", ")
                });
                batches.push(Batch { tier, hosts: chunk.iter().map(|h| h.name.clone()).collect(), canary });
            }
        }
    }
    (batches, blockers)
}

/// What changes between the deployed topology and the new one, per host.
pub fn changes(old: &Topology, new: &Topology, old_files: &Artifacts, new_files: &Artifacts) -> Vec<Change> {
    let mut changes = BTreeSet::new();
    let mut add = |host: &str, what: String| {
        changes.insert(Change { host: host.to_string(), what });
    };
    for host in &new.hosts {
        let Some(before) = old.host(&host.name) else {
            add(&host.name, format!("new host ({})", roles(host)));
            continue;
        };
        if before.address != host.address {
            add(&host.name, format!("private address {} → {}", before.address, host.address));
        }
        if before.public_address != host.public_address {
            add(&host.name, format!("public address {:?} → {:?}", before.public_address, host.public_address));
        }
        for role in host.roles.iter().filter(|r| !before.roles.contains(r)) {
            add(&host.name, format!("role {role} added"));
        }
        for role in before.roles.iter().filter(|r| !host.roles.contains(r)) {
            add(&host.name, format!("role {role} removed"));
        }
        if host.has(Role::Lb) {
            let was: BTreeSet<String> = old
                .lb
                .iter()
                .flat_map(|l| &l.backends)
                .map(|b| format!("{} {}:{}", b.host, b.address, b.port))
                .collect();
            let is: BTreeSet<String> = new
                .lb
                .iter()
                .flat_map(|l| &l.backends)
                .map(|b| format!("{} {}:{}", b.host, b.address, b.port))
                .collect();
            diff_sets(&was, &is, "backend", &mut |w| add(&host.name, w));
        }
        if host.has(Role::Web) {
            let was: BTreeSet<String> = old
                .web
                .iter()
                .flat_map(|w| &w.app_upstream)
                .map(|b| format!("{} {}:{}", b.host, b.address, b.port))
                .collect();
            let is: BTreeSet<String> = new
                .web
                .iter()
                .flat_map(|w| &w.app_upstream)
                .map(|b| format!("{} {}:{}", b.host, b.address, b.port))
                .collect();
            diff_sets(&was, &is, "app upstream", &mut |w| add(&host.name, w));
        }
        if host.has(Role::Db) {
            let was: BTreeSet<String> =
                old.db.iter().flat_map(|d| &d.peers).map(|b| format!("{} {}", b.host, b.address)).collect();
            let is: BTreeSet<String> =
                new.db.iter().flat_map(|d| &d.peers).map(|b| format!("{} {}", b.host, b.address)).collect();
            diff_sets(&was, &is, "Galera peer", &mut |w| add(&host.name, w));
        }
        let ports = |t: &Topology| -> BTreeSet<String> {
            t.firewall.get(&host.name).map_or_else(BTreeSet::new, |f| {
                f.inbound
                    .iter()
                    .flat_map(|a| a.peers.iter().map(move |p| format!("{}/{} from {}", a.proto.as_str(), a.port, p)))
                    .collect()
            })
        };
        diff_sets_verbs(&ports(old), &ports(new), "port opened", "port closed", &mut |w| add(&host.name, w));
        let prefix = format!("hosts/{}/", host.name);
        for (path, text) in new_files.range(prefix.clone()..).take_while(|(p, _)| p.starts_with(&prefix)) {
            let file = &path[prefix.len()..];
            match old_files.get(path) {
                None => add(&host.name, format!("{file} added")),
                Some(before) if before != text => add(&host.name, format!("{file} changed")),
                _ => {}
            }
        }
    }
    for host in old.hosts.iter().filter(|h| new.host(&h.name).is_none()) {
        add(&host.name, "host removed from the spec (not deployed; decommission by hand)".into());
    }
    changes.into_iter().collect()
}

fn roles(host: &Host) -> String {
    host.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join("+")
}

fn diff_sets(was: &BTreeSet<String>, is: &BTreeSet<String>, noun: &str, add: &mut dyn FnMut(String)) {
    diff_sets_verbs(was, is, &format!("{noun} added"), &format!("{noun} removed"), add)
}

fn diff_sets_verbs(
    was: &BTreeSet<String>,
    is: &BTreeSet<String>,
    added: &str,
    removed: &str,
    add: &mut dyn FnMut(String),
) {
    for item in is.difference(was) {
        add(format!("{added}: {item}"));
    }
    for item in was.difference(is) {
        add(format!("{removed}: {item}"));
    }
}

/// Builds the plan for the selected hosts.
pub fn plan(
    old: Option<(&Topology, &Artifacts)>,
    new: &Topology,
    new_files: &Artifacts,
    selected: &[&Host],
    goal: Goal,
    parallel: usize,
) -> Plan {
    let (batches, mut blockers) = batches(new, selected, parallel);
    let empty = Artifacts::new();
    let (old_topology, old_files) = old.unwrap_or((new, &empty));
    let selected_names: BTreeSet<&str> = selected.iter().map(|h| h.name.as_str()).collect();
    let mut changes = changes(old_topology, new, old_files, new_files);
    changes.retain(|c| selected_names.contains(c.host.as_str()) || new.host(&c.host).is_none());
    let changed: BTreeSet<&str> = changes.iter().map(|c| c.host.as_str()).collect();
    let unchanged = selected.iter().filter(|h| !changed.contains(h.name.as_str())).map(|h| h.name.clone()).collect();
    if !goal.requires_activation() {
        blockers.clear();
    }
    Plan { goal, batches, changes, unchanged, blockers }
}

impl Plan {
    /// The plan as a human reads it.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "deploy plan (goal {}):", self.goal.as_str());
        for (i, batch) in self.batches.iter().enumerate() {
            let canary = batch.canary.as_ref().map_or_else(String::new, |pin| {
                format!("  (canary: {pin}, before the rest of the {} tier)", batch.tier)
            });
            let _ = writeln!(out, "  batch {:2}  {:3}  {}{canary}", i + 1, batch.tier.as_str(), batch.hosts.join(", "));
        }
        let mut by_host: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for change in &self.changes {
            by_host.entry(&change.host).or_default().push(&change.what);
        }
        if by_host.is_empty() {
            let _ = writeln!(
                out,
                "spec-level changes: none (closures are still built and compared; unchanged hosts are skipped)"
            );
        } else {
            let _ = writeln!(out, "spec-level changes:");
            for (host, whats) in by_host {
                for what in whats {
                    let _ = writeln!(out, "  {host}: {what}");
                }
            }
        }
        for blocker in &self.blockers {
            let _ = writeln!(out, "blocked: {blocker}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Goal;
    use crate::spec::SpecSource;

    fn topology(text: &str) -> Topology {
        crate::topology::compile(&SpecSource { name: "t.toml".into(), text: text.into() }).expect("valid spec")
    }

    fn default() -> Topology {
        crate::topology::compile(&SpecSource::embedded_default()).unwrap()
    }

    fn names(batches: &[Batch]) -> Vec<String> {
        batches.iter().map(|b| b.hosts.join("+")).collect()
    }

    #[test]
    fn tiers_in_dependency_order_galera_one_at_a_time_primary_lb_last() {
        let t = default();
        let all: Vec<&Host> = t.hosts.iter().collect();
        let (batches, blockers) = batches(&t, &all, 2);
        assert_eq!(names(&batches), ["db1", "db2", "db3", "app1+app2", "app3", "web1+web2", "web3", "lb2", "lb1"]);
        assert!(blockers.is_empty(), "{blockers:?}");
    }

    /// The default spec with `lines` added to the table of each `(header, lines)`.
    fn default_with(edits: &[(&str, &str)]) -> Topology {
        let mut text = crate::spec::DEFAULT_SPEC.to_string();
        for (header, lines) in edits {
            let edited = text.replacen(&format!("{header}\n"), &format!("{header}\n{lines}\n"), 1);
            assert_ne!(edited, text, "no {header} in the default spec");
            text = edited;
        }
        topology(&text)
    }

    #[test]
    fn a_host_on_another_channel_or_system_deploys_first_in_its_tier_as_a_canary() {
        let t = default_with(&[
            ("[hosts.web3]", "channel = \"nixos-25.05\"\nsystem = \"aarch64-linux\""),
            ("[hosts.db2]", "channel = \"nixos-25.05\""),
            ("[hosts.lb1]", "system = \"aarch64-linux\""),
        ]);
        let all: Vec<&Host> = t.hosts.iter().collect();
        let (batches, blockers) = batches(&t, &all, 2);
        // web3 alone before web1+web2; db2 before db1 and db3; lb1 is the primary: still last, so
        // the VIP moves once, and no canary.
        assert_eq!(names(&batches), ["db2", "db1", "db3", "app1+app2", "app3", "web3", "web1+web2", "lb2", "lb1"]);
        assert!(blockers.is_empty(), "{blockers:?}");
        let canaries: Vec<(&str, Option<&str>)> =
            batches.iter().map(|b| (b.hosts[0].as_str(), b.canary.as_deref())).filter(|(_, c)| c.is_some()).collect();
        assert_eq!(
            canaries,
            [("db2", Some("nixos-25.05 on x86_64-linux")), ("web3", Some("nixos-25.05 on aarch64-linux")),]
        );
        let text = plan(None, &t, &Artifacts::new(), &all, Goal::Switch, 2).describe();
        assert!(
            text.contains("web3  (canary: nixos-25.05 on aarch64-linux, before the rest of the web tier)"),
            "{text}"
        );
    }

    #[test]
    fn a_tier_pinned_away_whole_has_no_canary() {
        let text =
            crate::spec::DEFAULT_SPEC.replace("roles = [\"app\"]\n", "roles = [\"app\"]\nchannel = \"nixos-25.05\"\n");
        let t = topology(&text);
        assert!(t.hosts_with(Role::App).all(|h| h.channel == "nixos-25.05"));
        let all: Vec<&Host> = t.hosts.iter().collect();
        let (batches, _) = batches(&t, &all, 2);
        assert!(batches.iter().all(|b| b.canary.is_none()), "{batches:?}");
        assert_eq!(names(&batches)[3..5], ["app1+app2", "app3"]);
    }

    #[test]
    fn never_the_whole_web_tier_at_once() {
        let t = default();
        let all: Vec<&Host> = t.hosts.iter().collect();
        let (batches, _) = batches(&t, &all, 10);
        assert!(batches.iter().filter(|b| b.tier == Role::Web).all(|b| b.hosts.len() == 2 || b.hosts.len() == 1));
    }

    #[test]
    fn whiteboard_is_blocked_by_single_lb() {
        let t = topology(include_str!("../../examples/whiteboard.toml"));
        let all: Vec<&Host> = t.hosts.iter().collect();
        let (batches, blockers) = batches(&t, &all, 1);
        assert_eq!(names(&batches), ["server1", "server2", "server3", "lb"]);
        assert!(blockers.iter().any(|b| b.contains("lb tier has one host")), "{blockers:?}");
    }

    #[test]
    fn selection_by_role_and_name() {
        let t = default();
        let hosts = select(&t, &["@web,db2".into()]).unwrap();
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["db2", "web1", "web2", "web3"]);
        assert!(select(&t, &["web9".into()]).is_err());
        assert!(select(&t, &["@cache".into()]).is_err());
    }

    #[test]
    fn adding_a_web_host_reads_as_backend_added_and_port_opened() {
        let old = default();
        let text = crate::spec::DEFAULT_SPEC
            .replace("[hosts.app1]", "[hosts.web4]\naddress = \"10.10.0.24\"\nroles = [\"web\"]\n\n[hosts.app1]");
        let new = topology(&text);
        let changes = changes(&old, &new, &Artifacts::new(), &Artifacts::new());
        let says = |host: &str, what: &str| changes.iter().any(|c| c.host == host && c.what.contains(what));
        assert!(says("web4", "new host (web)"), "{changes:?}");
        assert!(says("lb1", "backend added: web4 10.10.0.24:443"), "{changes:?}");
        assert!(says("app1", "port opened: tcp/8080 from 10.10.0.24/32"), "{changes:?}");
        assert!(!changes.iter().any(|c| c.host.starts_with("db")), "db hosts are untouched: {changes:?}");
    }

    #[test]
    fn same_spec_has_no_changes() {
        let t = default();
        assert!(changes(&t, &t, &Artifacts::new(), &Artifacts::new()).is_empty());
    }
}
