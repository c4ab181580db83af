//! (in progress) The scenario.

use serde::Serialize;

use crate::topology::Topology;

#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub steps: Vec<()>,
}

impl Scenario {
    pub fn for_topology(_topology: &Topology) -> Self {
        Scenario { steps: Vec::new() }
    }
}
