//! How `lab up` brings the Galera tier back after every node stopped: the same reading of each
//! node ([`crate::host::galera::gather`]: grastate.dat, gvwstate.dat, `mariadbd --wsrep-recover` with the
//! unit's arguments) and the same decision ([`crate::stack::galera_recovery::decide`]) as
//! `nixstack db recover` on NixOS. Never the spec's bootstrap node because it is configured:
//! that one starts a cluster only when no node holds any data.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::context::Lab;
use super::event::Event;
use crate::stack::galera_recovery::{self as recovery, Decision, NodeReport, Position};
use crate::stack::Layout;
use crate::stack::Service;
use crate::topology::Topology;

/// Whether any db node's mariadbd runs now.
pub fn any_running(lab: &Lab) -> bool {
    lab.topology.db.iter().flat_map(|db| &db.hosts).any(|name| lab.running(name, Service::Mariadb).is_some())
}

/// The decision for the lab's db tier as it is now.
pub fn decide(lab: &Lab) -> Result<Decision> {
    let nodes = gather_lab(lab.topology);
    Ok(recovery::decide(&nodes, &crate::host::galera::facts(lab.topology, &[])?))
}

/// How a db node starts.
pub enum Start {
    /// As a new cluster, from `position` (`None`: a first start, nothing committed anywhere).
    Bootstrap {
        position: Option<Position>,
    },
    Join,
}

/// How `node` starts now: as a new cluster only when it is the node the decision chooses and
/// no other db node runs. Every other outcome is an error that says why and what to do.
pub fn start_as(lab: &Lab, node: &str) -> Result<Start> {
    let others_running = lab
        .topology
        .db
        .iter()
        .flat_map(|db| &db.hosts)
        .any(|other| other != node && lab.running(other, Service::Mariadb).is_some());
    if others_running {
        return Ok(Start::Join);
    }
    let decision = decide(lab)?;
    lab.reporter.emit(Event::Applied {
        host: node.to_string(),
        what: format!("galera: {}", crate::host::galera::describe(&decision)),
    });
    match decision {
        Decision::Bootstrap { node: chosen, position, .. } if chosen == node => Ok(Start::Bootstrap { position }),
        Decision::Bootstrap { node: chosen, .. } => bail!(
            "{node} cannot start yet: no db node runs, and {chosen} holds the most advanced state and must start first"
        ),
        Decision::Rejoin { .. } => Ok(Start::Join),
        Decision::WaitForPcRecovery { missing, .. } => {
            bail!("{node}: waiting for {} to come back (pc.recovery)", missing.join(", "))
        }
        Decision::Refuse(refusal) => bail!("{refusal}"),
    }
}

/// Readies the chosen node's grastate.dat for `--wsrep-new-cluster`
/// ([`recovery::prepare_bootstrap_grastate`]: `safe_to_bootstrap: 1` and, after a crash, the
/// recovered seqno), on this node only.
pub fn prepare_bootstrap(datadir: &Path, position: Option<&Position>) -> Result<()> {
    let grastate = datadir.join("grastate.dat");
    if let Ok(text) = std::fs::read_to_string(&grastate) {
        std::fs::write(&grastate, recovery::prepare_bootstrap_grastate(&text, position))
            .with_context(|| format!("cannot write {}", grastate.display()))?;
    }
    Ok(())
}

/// Reads the lab's db nodes in their namespaces (root, as the lab runs).
pub fn gather_lab(topology: &Topology) -> Vec<NodeReport> {
    crate::host::galera::gather(topology, Layout::lab, |node, script| {
        crate::lab::cmd::Cmd::new("sh")
            .args(["-c", script])
            .netns(&crate::stack::address_plan::host_netns(node))
            .timeout(crate::host::galera::GATHER_TIMEOUT)
            .stdout()
            .map_err(anyhow::Error::from)
    })
}
