//! (in progress) Per-host daemons of the lab.

use std::sync::Mutex;

use anyhow::Result;
use serde::Serialize;

use super::event::Reporter;
use super::network::NetworkPlan;
use super::state::State;
use crate::topology::Topology;

#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub name: String,
    pub daemons: Vec<DaemonStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DaemonStatus {
    pub daemon: String,
    pub pid: Option<u32>,
    pub healthy: bool,
    pub detail: String,
}

pub fn up(_topology: &Topology, _plan: &NetworkPlan, _state: &Mutex<State>, _reporter: &Reporter) -> Result<()> {
    Ok(())
}

pub fn status(_topology: &Topology, _plan: &NetworkPlan, _state: &State) -> Vec<HostStatus> {
    Vec::new()
}
