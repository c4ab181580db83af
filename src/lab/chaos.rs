//! `nixstack lab chaos`: the database tier's fault suite. Concurrent writers commit through
//! every Galera node and record each commit the server acknowledged; faults are injected
//! (a node killed, all killed, killed one after another, partitioned by its namespace's
//! firewall, frozen with SIGSTOP); the tier recovers by the lab's own paths (a killed node
//! restarts and rejoins; after a full stop `lab up`'s recovery from the most advanced node);
//! then every node is read and every acknowledged write must be on every node exactly once.
//!
//! A write is one `INSERT` run by the `mariadb` client over the node's socket, as root. It is
//! *acknowledged* when the client exits 0 (the server answered OK to the autocommit, i.e.
//! Galera certified and committed it). Any other ending (an error, a lost connection, the
//! client's timeout) leaves the write *unacknowledged*: it may or may not have committed, so
//! it may be on the nodes at most once, never twice.
//!
//! The stall of a fault is measured on the writers of the nodes the fault did not touch: the
//! longest time between two consecutive acknowledgements across the fault (Galera blocks
//! commits cluster-wide until it has evicted the silent node: `evs.suspect_timeout` and the
//! view change after it; docs/galera.md, "Failure detection").

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use super::cmd::Cmd;
use super::daemons::{self, Lab};
pub use super::event::{AppDuringFault, FaultReport};
use super::event::{Event, Reporter};
use super::probe;
use super::state::State;
use crate::stack::address_plan::{host_netns, NetworkPlan};
use crate::stack::{Layout, Service};
use crate::topology::Topology;

/// The database the suite writes to (created on first use, replicated like any other).
const CHAOS_DB: &str = "nixstack_chaos";

/// A fault the suite can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Writes under load with no fault: the cluster must not evict anyone (view changes = 0).
    Steady,
    /// One node's mariadbd killed with SIGKILL, restarted, rejoining by IST.
    KillOne,
    /// One node frozen with SIGSTOP past the failure detection, then resumed.
    FreezeOne,
    /// One node cut off from its peers by an nftables table in its namespace, then healed.
    PartitionOne,
    /// Every node killed, one after another: the last one alive holds the newest writes and
    /// recovery must start from it, not from the spec's bootstrap node.
    KillRolling,
    /// Every node killed at once, then `lab up`'s recovery.
    KillAll,
}

impl Fault {
    pub const ALL: [Fault; 6] =
        [Fault::Steady, Fault::KillOne, Fault::FreezeOne, Fault::PartitionOne, Fault::KillRolling, Fault::KillAll];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Steady => "steady",
            Fault::KillOne => "kill-one",
            Fault::FreezeOne => "freeze-one",
            Fault::PartitionOne => "partition-one",
            Fault::KillRolling => "kill-rolling",
            Fault::KillAll => "kill-all",
        }
    }

    pub fn parse(name: &str) -> Result<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name).with_context(|| {
            let names: Vec<_> = Fault::ALL.iter().map(|f| f.name()).collect();
            format!("unknown fault {name:?}; expected one of: {}", names.join(", "))
        })
    }
}

/// How long a steady run lasts by default, and the faults' timings.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub steady: Duration,
    /// Writes before a fault and after recovery.
    pub settle: Duration,
    /// How long a node stays frozen or partitioned.
    pub hold: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing { steady: Duration::from_secs(10), settle: Duration::from_secs(2), hold: Duration::from_secs(8) }
    }
}

/// `lab chaos`: runs `faults` in order against the running lab's db tier.
pub fn run(
    topology: &Topology,
    plan: &NetworkPlan,
    state: &Mutex<State>,
    reporter: &Reporter,
    faults: &[Fault],
    timing: Timing,
) -> Result<Vec<FaultReport>> {
    let lab = Lab { topology, plan, state, reporter };
    let nodes: Vec<String> = topology.db.as_ref().map(|db| db.hosts.clone()).unwrap_or_default();
    if nodes.len() < 3 {
        bail!("the fault suite needs a Galera cluster of at least 3 nodes; this spec has {}", nodes.len());
    }
    wait_synced(&nodes, Duration::from_secs(90)).context("the db tier is not healthy before the first fault")?;
    ensure_table(&nodes[0])?;
    let mut reports = Vec::new();
    for (index, fault) in faults.iter().enumerate() {
        let step = format!("chaos {}", fault.name());
        reporter.emit(Event::StepStarted { step: step.clone() });
        let started = Instant::now();
        let run_id = format!("{}-{index}-{}", fault.name(), unique());
        let report =
            run_one(&lab, &nodes, *fault, &run_id, timing).unwrap_or_else(|e| failed(*fault, format!("{e:#}")));
        for (name, ms) in &report.stall_ms {
            reporter.emit(Event::Metric {
                step: step.clone(),
                name: format!("stall_{name}"),
                seconds: *ms as f64 / 1000.0,
            });
        }
        reporter.emit(Event::StepDetail { step: step.clone(), line: detail_line(&report) });
        reporter.emit(Event::Chaos { report: Box::new(report.clone()) });
        reporter.emit(Event::StepFinished {
            step,
            passed: report.passed,
            summary: report.summary.clone(),
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
        let healthy = report.passed || wait_synced(&nodes, Duration::from_secs(60)).is_ok();
        reports.push(report);
        if !healthy {
            reporter.warning("the db tier did not recover: the remaining faults are not run");
            break;
        }
    }
    Ok(reports)
}

fn failed(fault: Fault, summary: String) -> FaultReport {
    FaultReport {
        fault: fault.name().into(),
        victims: Vec::new(),
        acknowledged: 0,
        unacknowledged: 0,
        lost: 0,
        duplicated: 0,
        divergent_nodes: Vec::new(),
        client_errors: BTreeMap::new(),
        stall_ms: BTreeMap::new(),
        max_stall_ms: None,
        rejoin_stall_ms: BTreeMap::new(),
        unavailable_ms: None,
        recovery_ms: 0,
        view_changes: None,
        app: None,
        passed: false,
        summary,
    }
}

fn detail_line(r: &FaultReport) -> String {
    let stall = r.max_stall_ms.map(|ms| format!(", max stall {:.2}s", ms as f64 / 1000.0)).unwrap_or_default();
    let rejoin =
        r.rejoin_stall_ms.values().max().map(|ms| format!(" (rejoin {:.2}s)", *ms as f64 / 1000.0)).unwrap_or_default();
    let unavailable =
        r.unavailable_ms.map(|ms| format!(", unavailable {:.2}s", ms as f64 / 1000.0)).unwrap_or_default();
    let views = r.view_changes.map(|v| format!(", {v} view change(s)")).unwrap_or_default();
    let app = r
        .app
        .as_ref()
        .map(|a| {
            format!(
                "; app via the VIP: {}/{} failed, slowest {:.2}s",
                a.failed,
                a.requests,
                a.max_latency_ms as f64 / 1000.0
            )
        })
        .unwrap_or_default();
    let errors: usize = r.client_errors.values().sum();
    format!(
        "{} acknowledged, {} unacknowledged, {} lost, {} duplicated, {errors} client errors{stall}{rejoin}{unavailable}{views}, recovered in {:.2}s{app}",
        r.acknowledged,
        r.unacknowledged,
        r.lost,
        r.duplicated,
        r.recovery_ms as f64 / 1000.0
    )
}

fn run_one(lab: &Lab, nodes: &[String], fault: Fault, run_id: &str, timing: Timing) -> Result<FaultReport> {
    let writers = Writers::start(nodes, run_id);
    let app = AppProbe::start(lab.topology);
    std::thread::sleep(timing.settle);
    let conf_before = conf_ids(nodes);
    let fault_at = Instant::now();
    let (victims, recovery_began) = inject_and_recover(lab, nodes, fault, timing)?;
    let recovered_at =
        wait_synced(nodes, Duration::from_secs(120)).with_context(|| format!("after {}", fault.name()))?;
    let conf_after = conf_ids(nodes);
    std::thread::sleep(timing.settle);
    let records = writers.stop();
    let requests = app.map(AppProbe::stop);
    let found = read_back(nodes, run_id)?;
    let view_changes = (fault == Fault::Steady).then(|| {
        nodes.iter().filter_map(|n| Some(conf_after.get(n)?.saturating_sub(*conf_before.get(n)?))).max().unwrap_or(0)
    });
    let phases = Phases { fault_at, recovery_began, recovered_at };
    let mut report = judge(fault, victims, &records, &found, nodes, phases, view_changes);
    report.app = requests.map(|requests| app_during(&requests, fault_at, recovery_began));
    Ok(report)
}

/// One request to the app through the VIP: when it ended, how long it took, whether the
/// app's page came back.
struct AppRequest {
    finished: Instant,
    took: Duration,
    ok: bool,
}

/// Requests to the app through the VIP, one after another, from the internet namespace.
struct AppProbe {
    stop: std::sync::Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<AppRequest>>,
}

impl AppProbe {
    /// `None` when the stack has no load balancer or app in front of the database.
    fn start(topology: &Topology) -> Option<AppProbe> {
        let (lb, _) = (topology.lb.as_ref()?, topology.app.as_ref()?);
        let (domain, vip) = (topology.stack.domain.clone(), lb.vip);
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut requests = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                let started = Instant::now();
                let ok = super::run::https_get(&domain, vip, "/", Duration::from_secs(5))
                    .is_ok_and(|r| r.status == 200 && probe::ServedBy::parse(&r.body).is_some());
                requests.push(AppRequest { finished: Instant::now(), took: started.elapsed(), ok });
                std::thread::sleep(Duration::from_millis(50));
            }
            requests
        });
        Some(AppProbe { stop, handle })
    }

    fn stop(self) -> Vec<AppRequest> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap_or_default()
    }
}

/// The app's requests that ended while the fault lasted (before recovery began).
fn app_during(requests: &[AppRequest], from: Instant, to: Instant) -> AppDuringFault {
    let during: Vec<&AppRequest> = requests.iter().filter(|r| r.finished > from && r.finished - r.took <= to).collect();
    AppDuringFault {
        requests: during.len(),
        failed: during.iter().filter(|r| !r.ok).count(),
        max_latency_ms: during.iter().map(|r| r.took.as_millis() as u64).max().unwrap_or(0),
    }
}

/// When a fault began, when its recovery began, and when the tier was healthy again.
#[derive(Debug, Clone, Copy)]
struct Phases {
    fault_at: Instant,
    recovery_began: Instant,
    recovered_at: Instant,
}

/// Injects `fault` and drives the lab's recovery; returns the nodes it hit and when the
/// recovery began.
fn inject_and_recover(lab: &Lab, nodes: &[String], fault: Fault, timing: Timing) -> Result<(Vec<String>, Instant)> {
    let reporter = lab.reporter;
    let step = format!("chaos {}", fault.name());
    let say = |line: String| reporter.emit(Event::StepDetail { step: step.clone(), line });
    match fault {
        Fault::Steady => {
            std::thread::sleep(timing.steady);
            Ok((Vec::new(), Instant::now()))
        }
        Fault::KillOne => {
            let victim = &nodes[0];
            kill(victim)?;
            say(format!("killed mariadbd on {victim} (SIGKILL)"));
            std::thread::sleep(timing.hold);
            let recovery = Instant::now();
            daemons::start(lab, lab.host(victim), Service::Mariadb)
                .with_context(|| format!("{victim} did not rejoin"))?;
            say(format!("{victim} restarted and rejoined"));
            Ok((vec![victim.clone()], recovery))
        }
        Fault::FreezeOne => {
            let victim = &nodes[1];
            daemons::kill(victim, Service::Mariadb, libc::SIGSTOP);
            say(format!("froze mariadbd on {victim} (SIGSTOP) for {}s", timing.hold.as_secs_f64()));
            std::thread::sleep(timing.hold);
            let recovery = Instant::now();
            daemons::kill(victim, Service::Mariadb, libc::SIGCONT);
            say(format!("resumed {victim} (SIGCONT)"));
            Ok((vec![victim.clone()], recovery))
        }
        Fault::PartitionOne => {
            let victim = &nodes[nodes.len() - 1];
            let peers: Vec<String> =
                nodes.iter().filter(|n| *n != victim).map(|n| lab.host(n).address.to_string()).collect();
            let partition = Partition::apply(victim, &peers)?;
            say(format!(
                "partitioned {victim} from {} (nftables in its namespace) for {}s",
                peers.join(", "),
                timing.hold.as_secs_f64()
            ));
            std::thread::sleep(timing.hold);
            let recovery = Instant::now();
            partition.heal()?;
            say(format!("healed the partition of {victim}"));
            Ok((vec![victim.clone()], recovery))
        }
        Fault::KillRolling => {
            for (i, victim) in nodes.iter().enumerate() {
                kill(victim)?;
                say(format!("killed mariadbd on {victim} (SIGKILL)"));
                // While a majority is left, let it evict the dead node and commit on: the
                // nodes killed later then hold writes the earlier ones never saw.
                let left = &nodes[i + 1..];
                if left.len() * 2 > nodes.len() {
                    wait_synced(left, Duration::from_secs(30))?;
                    std::thread::sleep(timing.settle);
                    say(format!("{} committed on without {}", left.join(", "), nodes[..=i].join(", ")));
                }
            }
            let recovery = Instant::now();
            restart_all(lab)?;
            Ok((nodes.to_vec(), recovery))
        }
        Fault::KillAll => {
            for victim in nodes {
                daemons::kill(victim, Service::Mariadb, libc::SIGKILL);
            }
            for victim in nodes {
                daemons::wait_gone(victim, Service::Mariadb, Duration::from_secs(10))?;
            }
            say(format!("killed mariadbd on {} at once (SIGKILL)", nodes.join(", ")));
            let recovery = Instant::now();
            restart_all(lab)?;
            Ok((nodes.to_vec(), recovery))
        }
    }
}

fn kill(node: &str) -> Result<()> {
    daemons::kill(node, Service::Mariadb, libc::SIGKILL);
    daemons::wait_gone(node, Service::Mariadb, Duration::from_secs(10))
}

/// After a full stop: the very path `lab up` takes (read every node, start the most advanced
/// first, then the others; it reports its decision), nothing of its own.
fn restart_all(lab: &Lab) -> Result<()> {
    daemons::up(lab.topology, lab.plan, lab.state, lab.reporter).context("lab up's recovery after the full stop")
}

/// An nftables table in a node's namespace dropping its Galera peers' traffic both ways.
struct Partition {
    node: String,
    healed: bool,
}

const PARTITION_TABLE: &str = "nixstack_chaos_partition";

impl Partition {
    fn apply(node: &str, peers: &[String]) -> Result<Partition> {
        let set = peers.join(", ");
        let ruleset = format!(
            "table inet {PARTITION_TABLE} {{\n  chain input {{ type filter hook input priority -10; policy accept; ip saddr {{ {set} }} drop; }}\n  chain output {{ type filter hook output priority -10; policy accept; ip daddr {{ {set} }} drop; }}\n}}\n"
        );
        Cmd::new("ip")
            .args(["netns", "exec", &host_netns(node), "nft", "-f", "-"])
            .stdin(ruleset.as_str())
            .timeout(Duration::from_secs(10))
            .run()?;
        Ok(Partition { node: node.to_string(), healed: false })
    }

    fn heal(mut self) -> Result<()> {
        self.healed = true;
        delete_partition(&self.node)
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        if !self.healed {
            let _ = delete_partition(&self.node);
        }
    }
}

fn delete_partition(node: &str) -> Result<()> {
    Cmd::new("ip")
        .args(["netns", "exec", &host_netns(node), "nft", "delete", "table", "inet", PARTITION_TABLE])
        .timeout(Duration::from_secs(10))
        .run()?;
    Ok(())
}

/// Waits until every one of `nodes` is Synced in a primary component of exactly `nodes`
/// (all nodes: the tier is healthy; a part: the survivors evicted the others); returns when.
fn wait_synced(nodes: &[String], timeout: Duration) -> Result<Instant> {
    probe::wait_for("the db nodes Synced in one primary component", timeout, Duration::from_millis(100), || {
        for node in nodes {
            let status = probe::wsrep_status(&Layout::lab(node).mysql_socket()).with_context(|| node.clone())?;
            let get = |key: &str| status.get(key).map(String::as_str).unwrap_or("");
            let (size, state, cluster) =
                (get("wsrep_cluster_size"), get("wsrep_local_state_comment"), get("wsrep_cluster_status"));
            if size != nodes.len().to_string() || state != "Synced" || cluster != "Primary" {
                bail!("{node}: {cluster}, {state}, cluster size {size}");
            }
        }
        Ok(Some(Instant::now()))
    })
}

fn conf_ids(nodes: &[String]) -> BTreeMap<String, u64> {
    nodes
        .iter()
        .filter_map(|node| {
            let status = probe::wsrep_status(&Layout::lab(node).mysql_socket()).ok()?;
            Some((node.clone(), status.get("wsrep_cluster_conf_id")?.parse().ok()?))
        })
        .collect()
}

fn ensure_table(node: &str) -> Result<()> {
    probe::sql(
        &Layout::lab(node).mysql_socket(),
        &format!(
            "CREATE DATABASE IF NOT EXISTS {CHAOS_DB};\
             CREATE TABLE IF NOT EXISTS {CHAOS_DB}.writes (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, run VARCHAR(64) NOT NULL, writer VARCHAR(64) NOT NULL, seq BIGINT NOT NULL, KEY (run, writer, seq)) ENGINE=InnoDB;"
        ),
        Duration::from_secs(30),
    )?;
    Ok(())
}

fn unique() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}

/// Each node's copy of a run's writes: node → (writer, seq) → rows.
type NodeCopies = BTreeMap<String, BTreeMap<(String, u64), u64>>;

/// One write as the client saw it.
#[derive(Debug, Clone)]
struct Write {
    writer: String,
    seq: u64,
    finished: Instant,
    acknowledged: bool,
}

/// One writer thread per node, each committing through its node only.
struct Writers {
    stop: std::sync::Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<Vec<Write>>>,
}

impl Writers {
    fn start(nodes: &[String], run_id: &str) -> Writers {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let handles = nodes
            .iter()
            .map(|node| {
                let (node, run_id, stop) = (node.clone(), run_id.to_string(), stop.clone());
                std::thread::spawn(move || write_until(&node, &run_id, &stop))
            })
            .collect();
        Writers { stop, handles }
    }

    fn stop(self) -> Vec<Write> {
        self.stop.store(true, Ordering::SeqCst);
        self.handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    }
}

fn write_until(node: &str, run_id: &str, stop: &AtomicBool) -> Vec<Write> {
    let socket = Layout::lab(node).mysql_socket();
    let mut writes = Vec::new();
    let mut seq = 0;
    while !stop.load(Ordering::SeqCst) {
        seq += 1;
        let statement =
            format!("INSERT INTO {CHAOS_DB}.writes (run, writer, seq) VALUES ('{run_id}', '{node}', {seq});");
        let acknowledged = probe::sql(&socket, &statement, Duration::from_secs(3)).is_ok();
        writes.push(Write { writer: node.to_string(), seq, finished: Instant::now(), acknowledged });
        if !acknowledged {
            // A refused connection fails at once: do not spin.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    writes
}

/// Every node's copy of the run's writes: (writer, seq) → how many rows. A causal read
/// (`wsrep_sync_wait`) so that a node answers only after applying what it has received.
fn read_back(nodes: &[String], run_id: &str) -> Result<NodeCopies> {
    let mut found = BTreeMap::new();
    for node in nodes {
        let out = probe::sql(
            &Layout::lab(node).mysql_socket(),
            &format!("SET SESSION wsrep_sync_wait = 1; SELECT writer, seq, COUNT(*) FROM {CHAOS_DB}.writes WHERE run = '{run_id}' GROUP BY writer, seq;"),
            Duration::from_secs(30),
        )
        .with_context(|| format!("reading the writes back on {node}"))?;
        let mut rows = BTreeMap::new();
        for line in out.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let [writer, seq, count] = fields[..] else { bail!("{node}: unexpected row {line:?}") };
            rows.insert((writer.to_string(), seq.parse()?), count.parse()?);
        }
        found.insert(node.clone(), rows);
    }
    Ok(found)
}

/// The verdict on one fault from what the clients saw and what the nodes hold.
#[allow(clippy::too_many_arguments)]
fn judge(
    fault: Fault,
    victims: Vec<String>,
    writes: &[Write],
    found: &NodeCopies,
    nodes: &[String],
    phases: Phases,
    view_changes: Option<u64>,
) -> FaultReport {
    let Phases { fault_at, recovery_began, recovered_at } = phases;
    let acknowledged: Vec<&Write> = writes.iter().filter(|w| w.acknowledged).collect();
    let lost = acknowledged
        .iter()
        .filter(|w| found.values().any(|rows| rows.get(&(w.writer.clone(), w.seq)).copied().unwrap_or(0) == 0))
        .count();
    let duplicated: BTreeSet<(String, u64)> =
        found.values().flat_map(|rows| rows.iter().filter(|(_, n)| **n > 1).map(|(k, _)| k.clone())).collect();
    let first = found.get(&nodes[0]);
    let divergent_nodes: Vec<String> =
        found.iter().filter(|(_, rows)| Some(*rows) != first).map(|(n, _)| n.clone()).collect();
    let mut client_errors = BTreeMap::new();
    for w in writes.iter().filter(|w| !w.acknowledged) {
        *client_errors.entry(w.writer.clone()).or_insert(0) += 1;
    }
    let (mut stall_ms, mut rejoin_stall_ms) = (BTreeMap::new(), BTreeMap::new());
    for node in nodes.iter().filter(|n| !victims.contains(n)) {
        let mut acks: Vec<Instant> = acknowledged.iter().filter(|w| &w.writer == node).map(|w| w.finished).collect();
        acks.sort();
        stall_ms.insert(node.clone(), longest_gap_across(&acks, fault_at, recovery_began).as_millis() as u64);
        rejoin_stall_ms
            .insert(node.clone(), longest_gap_across(&acks, recovery_began, recovered_at).as_millis() as u64);
    }
    let unavailable_ms = acknowledged
        .iter()
        .map(|w| w.finished)
        .filter(|t| *t >= fault_at)
        .min()
        .map(|t| (t - fault_at).as_millis() as u64);
    let mut problems = Vec::new();
    if lost > 0 {
        problems.push(format!("{lost} acknowledged write(s) lost"));
    }
    if !duplicated.is_empty() {
        problems.push(format!("{} write(s) duplicated", duplicated.len()));
    }
    if !divergent_nodes.is_empty() {
        problems.push(format!("nodes {} hold different writes than {}", divergent_nodes.join(", "), nodes[0]));
    }
    if acknowledged.is_empty() {
        problems.push("no write was acknowledged at all".into());
    }
    if let Some(changes) = view_changes.filter(|c| *c > 0) {
        problems.push(format!("{changes} view change(s) under steady load: a node was evicted without a fault"));
    }
    let passed = problems.is_empty();
    let summary = if passed {
        format!("every one of {} acknowledged writes is on every node exactly once", acknowledged.len())
    } else {
        problems.join("; ")
    };
    FaultReport {
        fault: fault.name().into(),
        victims,
        acknowledged: acknowledged.len(),
        unacknowledged: writes.len() - acknowledged.len(),
        lost,
        duplicated: duplicated.len(),
        divergent_nodes,
        client_errors,
        max_stall_ms: stall_ms.values().max().copied(),
        stall_ms,
        rejoin_stall_ms,
        unavailable_ms,
        recovery_ms: recovered_at.saturating_duration_since(fault_at).as_millis() as u64,
        view_changes,
        app: None,
        passed,
        summary,
    }
}

/// The longest gap between consecutive acknowledgements that overlaps `[from, to]`; a writer
/// with no acknowledgement after `from` has stalled until `to`.
fn longest_gap_across(acks: &[Instant], from: Instant, to: Instant) -> Duration {
    let last_before = acks.iter().rev().find(|t| **t <= from).copied().unwrap_or(from);
    let mut longest = Duration::ZERO;
    let mut previous = last_before;
    for t in acks.iter().filter(|t| **t > from) {
        if previous <= to {
            longest = longest.max(*t - previous);
        }
        previous = *t;
    }
    if previous < to {
        longest = longest.max(to - previous);
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_round_trip_and_unknown_ones_list_the_choices() {
        for fault in Fault::ALL {
            assert_eq!(Fault::parse(fault.name()).unwrap(), fault);
        }
        let error = Fault::parse("kill-everything").unwrap_err().to_string();
        assert!(error.contains("kill-all") && error.contains("freeze-one"), "{error}");
    }

    #[test]
    fn the_stall_is_the_longest_gap_across_the_fault() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Acks every 50 ms, a fault at 1000, nothing until 2300, then every 50 ms again.
        let mut acks: Vec<Instant> = (0..=19).map(|i| at(i * 50)).collect();
        acks.extend((0..10).map(|i| at(2300 + i * 50)));
        assert_eq!(longest_gap_across(&acks, at(1000), at(2600)), Duration::from_millis(1350));
        // A gap entirely before the fault does not count.
        let acks = vec![at(0), at(900), at(950), at(1050), at(1100)];
        assert_eq!(longest_gap_across(&acks, at(1000), at(1100)), Duration::from_millis(100));
        // No acknowledgement after the fault: stalled until recovery.
        assert_eq!(longest_gap_across(&[at(0), at(990)], at(1000), at(4000)), Duration::from_millis(3010));
    }

    fn write(writer: &str, seq: u64, acknowledged: bool, finished: Instant) -> Write {
        Write { writer: writer.into(), seq, finished, acknowledged }
    }

    /// The verdict on a `kill-one` of db1 where everything happened at `t0`.
    fn judge_kill_one(writes: &[Write], found: &NodeCopies, nodes: &[String], t0: Instant) -> FaultReport {
        let phases = Phases { fault_at: t0, recovery_began: t0, recovered_at: t0 };
        judge(Fault::KillOne, vec!["db1".into()], writes, found, nodes, phases, None)
    }

    #[test]
    fn a_missing_acknowledged_write_is_lost_and_an_unacknowledged_one_is_not() {
        let t0 = Instant::now();
        let nodes: Vec<String> = ["db1", "db2", "db3"].map(String::from).to_vec();
        let writes = vec![write("db1", 1, true, t0), write("db1", 2, false, t0), write("db2", 1, true, t0)];
        let all = |rows: &[((&str, u64), u64)]| {
            rows.iter().map(|((w, s), n)| ((w.to_string(), *s), *n)).collect::<BTreeMap<_, _>>()
        };
        let complete = all(&[(("db1", 1), 1), (("db2", 1), 1)]);
        let found: BTreeMap<_, _> = nodes.iter().map(|n| (n.clone(), complete.clone())).collect();
        let report = judge_kill_one(&writes, &found, &nodes, t0);
        assert!(report.passed, "{report:?}");
        assert_eq!((report.acknowledged, report.unacknowledged, report.lost), (2, 1, 0));

        let mut found_lost = found.clone();
        found_lost.insert("db3".into(), all(&[(("db1", 1), 1)]));
        let report = judge_kill_one(&writes, &found_lost, &nodes, t0);
        assert!(!report.passed);
        assert_eq!(report.lost, 1);
        assert_eq!(report.divergent_nodes, vec!["db3".to_string()]);

        let mut found_twice = found.clone();
        found_twice.insert("db2".into(), all(&[(("db1", 1), 1), (("db2", 1), 1), (("db1", 2), 2)]));
        let report = judge_kill_one(&writes, &found_twice, &nodes, t0);
        assert_eq!(report.duplicated, 1, "an unacknowledged write may be there once, never twice");
        assert!(!report.passed);
    }

    #[test]
    fn a_view_change_under_steady_load_fails_the_run() {
        let t0 = Instant::now();
        let nodes: Vec<String> = ["db1", "db2", "db3"].map(String::from).to_vec();
        let writes = vec![write("db1", 1, true, t0)];
        let rows: BTreeMap<_, _> = [(("db1".to_string(), 1), 1)].into_iter().collect();
        let found: BTreeMap<_, _> = nodes.iter().map(|n| (n.clone(), rows.clone())).collect();
        let steady = |view_changes| {
            let phases = Phases { fault_at: t0, recovery_began: t0, recovered_at: t0 };
            judge(Fault::Steady, vec![], &writes, &found, &nodes, phases, Some(view_changes))
        };
        assert!(steady(0).passed);
        let report = steady(2);
        assert!(!report.passed && report.summary.contains("evicted"), "{report:?}");
    }
}
