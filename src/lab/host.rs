//! `NamespaceHost`: a lab host entered directly, its commands run in its network namespace
//! (`ip netns exec nxs-<host> sh -c …`) on this machine. It is the lab's implementation of
//! [`crate::host::Host`], next to deploy's `SshHost`, so that bring-up, `lab status` and
//! the scenario run the same health checks ([`crate::host::health`]) deploy gates on.

use std::time::Duration;

use crate::host::{Host, HostError, RunOutput};
use crate::process::Cmd;
use crate::stack::address_plan::host_netns;
use crate::stack::Layout;

/// How long one probe may take: the catalogue's checks bound themselves tighter (curl's
/// `--max-time 3`, a 2 s banner read), so this only stops a probe that hangs.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A lab host reached through its network namespace.
#[derive(Debug, Clone)]
pub struct NamespaceHost {
    name: String,
    netns: String,
    layout: Layout,
    timeout: Duration,
}

impl NamespaceHost {
    /// `host` of the running lab: its namespace and its lab layout under the lab root.
    pub fn lab(host: &str) -> Self {
        NamespaceHost::new(host, Layout::lab(host))
    }

    /// `host` with the paths of `layout` (a lab under another root).
    pub fn new(host: &str, layout: Layout) -> Self {
        NamespaceHost { name: host.to_string(), netns: host_netns(host), layout, timeout: PROBE_TIMEOUT }
    }

    /// How long each command may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The network namespace its commands run in.
    pub fn netns(&self) -> &str {
        &self.netns
    }
}

impl Host for NamespaceHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn run(&self, script: &str) -> Result<RunOutput, HostError> {
        Cmd::new("sh")
            .args(["-c", script])
            .netns(&self.netns)
            .timeout(self.timeout)
            .run()
            .map(|output| RunOutput { stdout: output.stdout, stderr: output.stderr })
            .map_err(|error| HostError::Command { host: self.name.clone(), error: Box::new(error) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lab_host_runs_in_its_own_namespace_with_the_lab_layout() {
        let host = NamespaceHost::lab("web1");
        assert_eq!(host.netns(), "nxs-web1");
        assert_eq!(host.layout(), &Layout::lab("web1"));
        assert_eq!(host.name(), "web1");
    }

    #[test]
    fn a_missing_namespace_fails_with_the_host_and_the_cause_first() {
        let host =
            NamespaceHost::new("nixstack-test-no-such-host", Layout::lab("web1")).timeout(Duration::from_secs(10));
        let error = host.run("true").unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("nixstack-test-no-such-host: "), "{text}");
        assert!(text.contains("command: ip netns exec nxs-nixstack-test-no-such-host sh -c true"), "{text}");
    }
}
