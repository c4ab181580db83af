//! What every lab operation works with: the Topology, its network plan, the recorded state
//! and the reporter, shared by the worker threads of one command. Below the lab's parts
//! (daemons, galera, monitoring, run, chaos), which all take it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;

use super::event::{Event, Reporter};
use super::host::NamespaceHost;
use super::process::{self, Identity, Launch};
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

    /// Starts `launch` as the lab-only stand-in `daemon` of `host` (the monitoring endpoint, the
    /// ACME server: no stack host, a namespace of their own) unless its recorded process
    /// runs, and waits until `ready` says it serves.
    pub fn ensure_standin(
        &self,
        host: &str,
        daemon: &str,
        launch: &Launch,
        mut ready: impl FnMut() -> Result<Option<String>>,
    ) -> Result<()> {
        let netns = &launch.netns;
        let recorded = self.state.lock().expect("state lock").process(host, daemon);
        let running = recorded
            .map(|(pid, start_time)| Identity { pid, start_time })
            .filter(|identity| process::is_running(*identity, netns));
        let (identity, started) = match running {
            Some(identity) => {
                self.reporter.emit(Event::Running { host: host.into(), daemon: daemon.into(), pid: identity.pid });
                (identity, None)
            }
            None => {
                self.state.lock().expect("state lock").record_process_intent(host, daemon, netns)?;
                let identity = process::spawn(launch)?;
                self.state.lock().expect("state lock").record_process_started(
                    host,
                    daemon,
                    identity.pid,
                    identity.start_time,
                )?;
                self.reporter.emit(Event::Started { host: host.into(), daemon: daemon.into(), pid: identity.pid });
                (identity, Some(Instant::now()))
            }
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut last = String::from("no answer yet");
        loop {
            if !process::is_running(identity, netns) {
                let log = std::fs::read_to_string(&launch.log).map(|t| super::cmd::tail(&t, 15)).unwrap_or_default();
                bail!("{daemon} of {host} exited: {last}\n--- last lines of {} ---\n{log}", launch.log.display());
            }
            match ready() {
                Ok(Some(detail)) => {
                    let elapsed_ms = started.map_or(0, |s| s.elapsed().as_millis() as u64);
                    self.reporter.emit(Event::Ready { host: host.into(), daemon: daemon.into(), detail, elapsed_ms });
                    return Ok(());
                }
                Ok(None) => {}
                Err(e) => last = format!("{e:#}"),
            }
            if Instant::now() >= deadline {
                bail!("{daemon} of {host} not ready after 15s: {last}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The LB whose public interface carries the virtual IP now.
pub fn vip_holder(lab: &Lab) -> Option<String> {
    let lb = lab.topology.lb.as_ref()?;
    lb.hosts
        .iter()
        .find(|name| crate::host::health::holds_vip(&NamespaceHost::lab(name), lb.vip).unwrap_or(false))
        .cloned()
}

/// Status of one daemon.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonStatus {
    pub daemon: String,
    pub pid: Option<u32>,
    pub running: bool,
    pub healthy: bool,
    pub detail: String,
}

/// Status of one host.
#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub name: String,
    pub daemons: Vec<DaemonStatus>,
}
