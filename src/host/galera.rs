//! Reading a Galera cluster's nodes and saying what recovery decides, shared by `nixstack db`
//! (NixOS hosts over SSH) and the lab (namespaces): the runner is the caller's, the script and
//! the decision are [`crate::stack::galera_recovery`]'s.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::stack::galera_recovery::{self as recovery, ClusterFacts, Decision, NodeReport, NodeState};
use crate::stack::Layout;
use crate::topology::Topology;

/// How long reading one node may take: `--wsrep-recover` runs InnoDB crash recovery.
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(300);

/// Reads every db node's state, in parallel; a node whose state could not be read is
/// [`NodeState::Unreachable`] with why (the decision then treats it as possibly the most advanced).
pub fn gather<F>(topology: &Topology, layout: impl Fn(&str) -> Layout, run: F) -> Vec<NodeReport>
where
    F: Fn(&str, &str) -> Result<String> + Sync,
{
    let Some(db) = &topology.db else { return Vec::new() };
    let scripts: Vec<(String, String)> = db
        .hosts
        .iter()
        .map(|name| {
            let host = topology.host(name).expect("db hosts are hosts");
            (name.clone(), recovery::gather_script(&recovery::node_paths(topology, host, &layout(name))))
        })
        .collect();
    std::thread::scope(|scope| {
        let run = &run;
        let handles: Vec<_> = scripts
            .iter()
            .map(|(node, script)| {
                scope.spawn(move || {
                    let state = match run(node, script) {
                        Ok(output) => recovery::parse_report(&output)
                            .unwrap_or_else(|e| NodeState::Unreachable { reason: e.to_string() }),
                        Err(e) => NodeState::Unreachable { reason: format!("{e:#}") },
                    };
                    NodeReport { node: node.clone(), state }
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(&scripts)
            .map(|(h, (node, _))| {
                h.join().unwrap_or_else(|_| NodeReport {
                    node: node.clone(),
                    state: NodeState::Unreachable { reason: "the reading thread panicked".into() },
                })
            })
            .collect()
    })
}

/// The facts of `topology`'s cluster for the decision.
pub fn facts(topology: &Topology, lost: &[String]) -> Result<ClusterFacts> {
    let db = topology.db.as_ref().context("the spec has no db tier")?;
    if let Some(unknown) = lost.iter().find(|n| !db.hosts.contains(n)) {
        bail!("--without {unknown}: not a db node of the spec ({})", db.hosts.join(", "));
    }
    // nixstack's my.cnf never sets pc.recovery, so Galera's default (on) holds.
    Ok(ClusterFacts { configured_bootstrap: db.bootstrap.clone(), pc_recovery: true, lost: lost.to_vec() })
}

/// The decision in a sentence.
pub fn describe(decision: &Decision) -> String {
    match decision {
        Decision::Bootstrap { node, position, reason, others } => {
            let position = position.as_ref().map_or(String::new(), |p| format!(" at {p}"));
            let why = match reason {
                recovery::BootstrapReason::FirstStart => {
                    "no node holds data: a first start from the spec's bootstrap node".to_string()
                }
                recovery::BootstrapReason::MostAdvanced => "it holds the highest committed seqno".to_string(),
                recovery::BootstrapReason::TieOfEqualStates { tied } => {
                    format!("{} hold the same state; any is safe", tied.join(", "))
                }
            };
            format!(
                "recover: bootstrap {node}{position} ({why}), then start {}",
                if others.is_empty() { "nothing else".into() } else { others.join(", ") }
            )
        }
        Decision::Rejoin { primary, stopped } => format!(
            "a primary component runs on {}: start {} normally",
            primary.join(", "),
            if stopped.is_empty() { "nothing".into() } else { stopped.join(", ") }
        ),
        Decision::WaitForPcRecovery { missing, start } => {
            format!("start {} normally and bring back {}: pc.recovery restores the primary component once every member of it is back", start.join(", "), missing.join(", "))
        }
        Decision::Refuse(refusal) => refusal.to_string(),
    }
}
