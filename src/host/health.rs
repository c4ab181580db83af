//! Running the catalogue's health checks ([`crate::stack::health`]) on any [`Host`]: one
//! round of checks, who holds the virtual IP, HAProxy's runtime API. The lab (bring-up,
//! `lab status`, the scenario) and deploy's gates call these same functions, each through
//! its own kind of host.

use std::time::{Duration, Instant};

use super::{Host, HostError};
use crate::stack::health::{parse_stat, Check, ServerStat};

/// One round of `checks` on `host`: Ok(details) when all pass.
pub fn probe(host: &dyn Host, checks: &[Check]) -> Result<Vec<String>, String> {
    let mut details = Vec::new();
    for check in checks {
        let out = host.run(&check.script()).map_err(|e| format!("{}: {}", check.name(), first_line(&e.to_string())))?;
        details.push(check.judge(&out.stdout)?);
    }
    Ok(details)
}

/// Whether `lb` holds the virtual IP now.
pub fn holds_vip(lb: &dyn Host, vip: impl Into<std::net::IpAddr>) -> Result<bool, HostError> {
    Ok(crate::stack::health::holds_vip(&lb.run(&crate::stack::health::vip_script(vip))?.stdout))
}

/// Which of `lbs` hold the virtual IP now.
pub fn vip_holders(lbs: &[&dyn Host], vip: impl Into<std::net::IpAddr>) -> Result<Vec<String>, HostError> {
    let vip = vip.into();
    let mut holders = Vec::new();
    for lb in lbs {
        if holds_vip(*lb, vip)? {
            holders.push(lb.name().to_string());
        }
    }
    Ok(holders)
}

/// Sends one command to HAProxy's admin socket on `lb`; returns its answer.
pub fn haproxy(lb: &dyn Host, command: &str) -> Result<String, HostError> {
    let script = crate::stack::health::haproxy_script(&lb.layout().haproxy_socket().display().to_string(), command);
    Ok(lb.run(&script)?.stdout)
}

pub fn server_stat(lb: &dyn Host, backend: &str, server: &str) -> Result<ServerStat, HostError> {
    let csv = haproxy(lb, "show stat")?;
    parse_stat(&csv, backend, server).ok_or_else(|| HostError::Other {
        host: lb.name().into(),
        detail: format!("HAProxy's `show stat` has no server {backend}/{server}"),
    })
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// Sets a server's administrative state (`drain`, `ready`, `maint`).
pub fn set_state(lb: &dyn Host, backend: &str, server: &str, state: &str) -> Result<(), HostError> {
    let answer = haproxy(lb, &format!("set server {backend}/{server} state {state}"))?;
    if answer.trim().is_empty() {
        Ok(())
    } else {
        Err(HostError::Other {
            host: lb.name().into(),
            detail: format!("HAProxy refused `set server {backend}/{server} state {state}`: {}", answer.trim()),
        })
    }
}

/// Polls `server_stat` until `done` holds or `timeout` passes; returns the last stat.
pub fn wait_stat(
    lb: &dyn Host,
    backend: &str,
    server: &str,
    timeout: Duration,
    done: impl Fn(&ServerStat) -> bool,
) -> Result<ServerStat, (HostError, Option<ServerStat>)> {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        match server_stat(lb, backend, server) {
            Ok(stat) if done(&stat) => return Ok(stat),
            Ok(stat) => last = Some(stat),
            Err(e) if Instant::now() >= deadline => return Err((e, last)),
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            let detail = format!(
                "{backend}/{server} did not reach the expected state within {:.0}s (last: {:?})",
                timeout.as_secs_f64(),
                last
            );
            return Err((HostError::Other { host: lb.name().into(), detail }, last));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::RunOutput;
    use crate::process::Cmd;
    use crate::stack::Layout;

    /// This machine as a host: what both real kinds do, minus the namespace or the SSH hop.
    #[derive(Debug)]
    struct ThisMachine {
        layout: Layout,
    }

    impl Host for ThisMachine {
        fn name(&self) -> &str {
            "here"
        }
        fn layout(&self) -> &Layout {
            &self.layout
        }
        fn run(&self, script: &str) -> Result<RunOutput, HostError> {
            Cmd::new("sh")
                .args(["-c", script])
                .run()
                .map(|o| RunOutput { stdout: o.stdout, stderr: o.stderr })
                .map_err(|error| HostError::Command { host: "here".into(), error: Box::new(error) })
        }
    }

    #[test]
    fn a_round_judges_every_check_and_names_the_failing_one_with_its_cause() {
        let host = ThisMachine { layout: Layout::lab("web1") };
        let vip = Check::VipHolder { vip: std::net::Ipv4Addr::new(192, 0, 2, 254) };
        assert_eq!(probe(&host, std::slice::from_ref(&vip)), Ok(vec!["BACKUP".to_string()]));
        assert_eq!(vip_holders(&[&host], std::net::Ipv4Addr::new(192, 0, 2, 254)).unwrap(), Vec::<String>::new());
        let closed = Check::Http { what: "web health".into(), url: "http://127.0.0.1:1/health".into(), ca: None };
        let why = probe(&host, &[vip, closed]).unwrap_err();
        assert!(why.starts_with("web health: here: curl: "), "the check, the host, then curl's own complaint: {why}");
    }
}
