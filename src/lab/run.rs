//! (in progress) Runs the scenario in the lab.

use std::sync::Mutex;

use anyhow::Result;

use super::event::Reporter;
use super::network::NetworkPlan;
use super::scenario::Scenario;
use super::state::State;
use crate::topology::Topology;

pub fn run(_scenario: &Scenario, _topology: &Topology, _plan: &NetworkPlan, _state: &Mutex<State>, _reporter: &Reporter) -> Result<bool> {
    Ok(false)
}
