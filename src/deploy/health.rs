//! Health gates, run on the host itself over SSH (as morph's checks: a probe, a bound, a
//! number of consecutive passes), and HAProxy's runtime API for draining a web backend.
//! One round of checks ([`probe`]) is the lab's too: it lives in [`crate::host::health`].

use std::time::{Duration, Instant};

pub use crate::host::health::{haproxy, probe, server_stat, set_state, vip_holders, wait_stat};
use crate::host::Host;
use crate::render::Layout;
use crate::topology::{Host as SpecHost, Topology};

/// How long a gate waits and how sure it must be.
#[derive(Debug, Clone, Copy)]
pub struct GatePolicy {
    /// Give up (and roll back) after this long.
    pub timeout: Duration,
    pub interval: Duration,
    /// Consecutive passing rounds needed: one lucky answer from an old worker is not health.
    pub consecutive: u32,
}

impl Default for GatePolicy {
    fn default() -> Self {
        GatePolicy { timeout: Duration::from_secs(60), interval: Duration::from_millis(500), consecutive: 3 }
    }
}

pub use crate::stack::health::{parse_stat, Check, GaleraStatus, ServerStat};

/// The checks deploy gates `host` on (every role it has), with the paths of its `layout`.
pub fn checks(topology: &Topology, host: &SpecHost, layout: &Layout) -> Vec<Check> {
    crate::stack::health::gate_checks(topology, host, layout)
}

/// Waits until `checks` pass `policy.consecutive` rounds in a row; Err(last failure)
/// when `policy.timeout` passes first.
pub fn gate(host: &dyn Host, checks: &[Check], policy: GatePolicy) -> Result<Vec<String>, String> {
    let deadline = Instant::now() + policy.timeout;
    let mut passes = 0;
    let mut last_failure = None;
    loop {
        match probe(host, checks) {
            Ok(details) => {
                passes += 1;
                if passes >= policy.consecutive {
                    return Ok(details);
                }
            }
            Err(why) => {
                passes = 0;
                last_failure = Some(why);
            }
        }
        if Instant::now() >= deadline {
            let why = last_failure.unwrap_or_else(|| "passing, but not consistently".into());
            return Err(format!("{why} (still not healthy after {:.0}s)", policy.timeout.as_secs_f64()));
        }
        std::thread::sleep(policy.interval);
    }
}
