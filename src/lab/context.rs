//! What every lab operation works with: the Topology, its network plan, the recorded state
//! and the reporter, shared by the worker threads of one command. Below the lab's parts
//! (daemons, galera, monitoring, run, chaos), which all take it.

use std::sync::Mutex;

use super::event::Reporter;
use super::process::{self, Identity};
use super::state::State;
use crate::stack::address_plan::{host_netns, NetworkPlan};
use crate::stack::Service;
use crate::topology::{Host, Topology};

/// Everything a lab operation needs, shared by the worker threads of one command.
pub struct Lab<'a> {
    pub topology: &'a Topology,
    pub plan: &'a NetworkPlan,
    pub state: &'a Mutex<State>,
    pub reporter: &'a Reporter,
}

impl Lab<'_> {
    pub fn host(&self, name: &str) -> &Host {
        self.topology.host(name).expect("host names come from the topology")
    }

    pub fn identity(&self, host: &str, daemon: Service) -> Option<Identity> {
        let state = self.state.lock().expect("state lock");
        state.process(host, daemon.name()).map(|(pid, start_time)| Identity { pid, start_time })
    }

    /// The recorded process of `daemon` on `host`, if it still runs.
    pub fn running(&self, host: &str, daemon: Service) -> Option<Identity> {
        self.identity(host, daemon).filter(|identity| process::is_running(*identity, &host_netns(host)))
    }
}
