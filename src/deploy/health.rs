//! Health gates, run on the host itself over SSH (as morph's checks: a probe, a bound, a
//! number of consecutive passes), and HAProxy's runtime API for draining a web backend.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::host::{Host, HostError};
use super::ssh::shell_quote;
use crate::render::Layout;
use crate::spec::Role;
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

/// One probe of a host, run on that host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// An HTTP(S) answer 200. `ca`: verify against this CA file; `None` with `https`:
    /// accept any certificate (the LB's public certificate is not the deploy's to judge).
    Http { what: String, url: String, ca: Option<String> },
    /// A Galera node: `Primary`, `Synced`, ready, and the cluster at full size.
    Galera { socket: String, size: usize },
}

impl Check {
    pub fn name(&self) -> String {
        match self {
            Check::Http { what, .. } => what.clone(),
            Check::Galera { .. } => "galera".into(),
        }
    }

    fn script(&self) -> String {
        match self {
            Check::Http { url, ca, .. } => {
                let tls = match ca {
                    Some(ca) => format!("--cacert {} ", shell_quote(ca)),
                    None if url.starts_with("https:") => "-k ".into(),
                    None => String::new(),
                };
                format!("curl -sS -o /dev/null -w '%{{http_code}}' --max-time 3 {tls}{}", shell_quote(url))
            }
            Check::Galera { socket, .. } => format!(
                "mysql --socket={} -N -B -e \"SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status','wsrep_local_state_comment','wsrep_cluster_size','wsrep_ready')\"",
                shell_quote(socket)
            ),
        }
    }

    /// Judges the probe's output: Ok(detail) or Err(why not healthy).
    fn judge(&self, stdout: &str) -> Result<String, String> {
        match self {
            Check::Http { url, .. } => {
                let code = stdout.trim();
                if code == "200" {
                    Ok(format!("{url} 200"))
                } else {
                    Err(format!("{url} answered {code}"))
                }
            }
            Check::Galera { size, .. } => {
                let status = GaleraStatus::parse(stdout);
                status.healthy(*size).map(|()| format!("Primary, Synced, cluster size {}", status.size)).map_err(|why| format!("galera: {why}"))
            }
        }
    }
}

/// The wsrep status a gate reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GaleraStatus {
    pub cluster_status: String,
    pub state: String,
    pub size: usize,
    pub ready: String,
}

impl GaleraStatus {
    pub fn parse(text: &str) -> Self {
        let mut status = GaleraStatus::default();
        for line in text.lines() {
            let mut fields = line.split('\t');
            let (Some(name), Some(value)) = (fields.next(), fields.next()) else { continue };
            match name.trim().to_ascii_lowercase().as_str() {
                "wsrep_cluster_status" => status.cluster_status = value.trim().into(),
                "wsrep_local_state_comment" => status.state = value.trim().into(),
                "wsrep_cluster_size" => status.size = value.trim().parse().unwrap_or(0),
                "wsrep_ready" => status.ready = value.trim().into(),
                _ => {}
            }
        }
        status
    }

    pub fn healthy(&self, full_size: usize) -> Result<(), String> {
        if self.cluster_status != "Primary" {
            return Err(format!("cluster status {:?}, not Primary", self.cluster_status));
        }
        if self.state != "Synced" {
            return Err(format!("node state {:?}, not Synced", self.state));
        }
        if self.ready != "ON" {
            return Err(format!("wsrep_ready {:?}", self.ready));
        }
        if self.size != full_size {
            return Err(format!("cluster size {} of {full_size}", self.size));
        }
        Ok(())
    }
}

/// The checks of `host` (every role it has), with the paths of its `layout`.
pub fn checks(topology: &Topology, host: &SpecHost, layout: &Layout) -> Vec<Check> {
    let mut checks = Vec::new();
    let tls = topology.internal_tls;
    let scheme = if tls { "https" } else { "http" };
    let ca = tls.then(|| layout.ca_cert().display().to_string());
    if host.has(Role::Db) {
        if let Some(db) = &topology.db {
            checks.push(Check::Galera { socket: layout.mysql_socket().display().to_string(), size: db.hosts.len() });
        }
    }
    if host.has(Role::App) {
        if let Some(app) = &topology.app {
            checks.push(Check::Http { what: "app health".into(), url: format!("{scheme}://{}:{}{}", host.address, app.port, app.health_path), ca: ca.clone() });
        }
    }
    if host.has(Role::Web) {
        if let Some(web) = &topology.web {
            let health = topology.lb.as_ref().map_or("/health", |lb| lb.health_path.as_str());
            checks.push(Check::Http { what: "web health".into(), url: format!("{scheme}://{}:{}{health}", host.address, web.port), ca: ca.clone() });
        }
    }
    if host.has(Role::Lb) {
        if let (Some(lb), Some(public)) = (&topology.lb, host.public_address) {
            // Through this LB's own frontend to a backend: the whole path answers.
            checks.push(Check::Http { what: "lb frontend".into(), url: format!("https://{public}:443{}", lb.health_path), ca: None });
        }
    }
    checks
}

/// One round of `checks` on `host`: Ok(details) when all pass.
pub fn probe(host: &dyn Host, checks: &[Check]) -> Result<Vec<String>, String> {
    let mut details = Vec::new();
    for check in checks {
        let out = host.run(&check.script()).map_err(|e| format!("{}: {}", check.name(), first_line(&e.to_string())))?;
        details.push(check.judge(&out.stdout)?);
    }
    Ok(details)
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

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// Which of `lbs` hold the virtual IP now.
pub fn vip_holders(lbs: &[&dyn Host], vip: std::net::Ipv4Addr) -> Result<Vec<String>, HostError> {
    let mut holders = Vec::new();
    for lb in lbs {
        let out = lb.run(&format!("if ip -4 -o addr show | grep -qF ' {vip}/'; then echo holds; else echo free; fi"))?;
        if out.stdout.trim() == "holds" {
            holders.push(lb.name().to_string());
        }
    }
    Ok(holders)
}

/// Sends one command to HAProxy's admin socket on `lb`; returns its answer.
pub fn haproxy(lb: &dyn Host, command: &str) -> Result<String, HostError> {
    let socket = shell_quote(&lb.layout().haproxy_socket().display().to_string());
    let script = format!(
        "if command -v socat >/dev/null 2>&1; then printf '%s\\n' {c} | socat -t 5 stdio UNIX-CONNECT:{socket}; else printf '%s\\n' {c} | nc -U {socket}; fi",
        c = shell_quote(command)
    );
    Ok(lb.run(&script)?.stdout)
}

/// A server's line of `show stat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerStat {
    /// Current sessions.
    pub scur: u64,
    /// `UP`, `DOWN`, `DRAIN`, `MAINT`, `UP 1/2`...
    pub status: String,
}

/// Parses `show stat` CSV for `backend`/`server`.
pub fn parse_stat(csv: &str, backend: &str, server: &str) -> Option<ServerStat> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (px, sv, scur, status) = (column("pxname")?, column("svname")?, column("scur")?, column("status")?);
    lines.map(|l| l.split(',').collect::<Vec<_>>()).find(|f| f.get(px) == Some(&backend) && f.get(sv) == Some(&server)).map(|f| ServerStat {
        scur: f.get(scur).and_then(|s| s.parse().ok()).unwrap_or(0),
        status: f.get(status).unwrap_or(&"").to_string(),
    })
}

pub fn server_stat(lb: &dyn Host, backend: &str, server: &str) -> Result<ServerStat, HostError> {
    let csv = haproxy(lb, "show stat")?;
    parse_stat(&csv, backend, server).ok_or_else(|| HostError::Other { host: lb.name().into(), detail: format!("HAProxy's `show stat` has no server {backend}/{server}") })
}

/// Sets a server's administrative state (`drain`, `ready`, `maint`).
pub fn set_state(lb: &dyn Host, backend: &str, server: &str, state: &str) -> Result<(), HostError> {
    let answer = haproxy(lb, &format!("set server {backend}/{server} state {state}"))?;
    if answer.trim().is_empty() {
        Ok(())
    } else {
        Err(HostError::Other { host: lb.name().into(), detail: format!("HAProxy refused `set server {backend}/{server} state {state}`: {}", answer.trim()) })
    }
}

/// Polls `server_stat` until `done` holds or `timeout` passes; returns the last stat.
pub fn wait_stat(lb: &dyn Host, backend: &str, server: &str, timeout: Duration, done: impl Fn(&ServerStat) -> bool) -> Result<ServerStat, (HostError, Option<ServerStat>)> {
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
            let detail = format!("{backend}/{server} did not reach the expected state within {:.0}s (last: {:?})", timeout.as_secs_f64(), last);
            return Err((HostError::Other { host: lb.name().into(), detail }, last));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn galera_status_parses_and_judges() {
        let text = "wsrep_cluster_size\t3\nwsrep_cluster_status\tPrimary\nwsrep_local_state_comment\tSynced\nwsrep_ready\tON\n";
        let status = GaleraStatus::parse(text);
        assert_eq!(status.healthy(3), Ok(()));
        assert!(status.healthy(4).unwrap_err().contains("cluster size 3 of 4"));
        let donor = GaleraStatus::parse(&text.replace("Synced", "Donor/Desynced"));
        assert!(donor.healthy(3).unwrap_err().contains("Donor/Desynced"));
        let split = GaleraStatus::parse(&text.replace("Primary", "non-Primary"));
        assert!(split.healthy(3).unwrap_err().contains("not Primary"));
    }

    #[test]
    fn show_stat_is_read_by_column_name() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n\
                   web,FRONTEND,,,0,1,,,,,,,,,,,,OPEN,\n\
                   web,web1,0,0,2,3,,9,0,0,,0,,0,0,0,0,DRAIN,0\n\
                   web,web2,0,0,1,3,,9,0,0,,0,,0,0,0,0,UP,1\n";
        assert_eq!(parse_stat(csv, "web", "web1"), Some(ServerStat { scur: 2, status: "DRAIN".into() }));
        assert_eq!(parse_stat(csv, "web", "web2").unwrap().status, "UP");
        assert_eq!(parse_stat(csv, "web", "web3"), None);
    }

    #[test]
    fn checks_cover_every_role_of_a_host() {
        let topology = crate::topology::compile(&crate::spec::SpecSource::embedded_default()).unwrap();
        let layout = Layout::lab("web1");
        let web = checks(&topology, topology.host("web1").unwrap(), &layout);
        assert_eq!(web, vec![Check::Http { what: "web health".into(), url: "https://10.10.0.21:443/health".into(), ca: Some("/var/lib/nixstack-lab/web1/secrets/ca.crt".into()) }]);
        let db = checks(&topology, topology.host("db1").unwrap(), &Layout::nixos());
        assert_eq!(db, vec![Check::Galera { socket: "/run/mysqld/mysqld.sock".into(), size: 3 }]);
        let lb = checks(&topology, topology.host("lb1").unwrap(), &Layout::nixos());
        assert!(matches!(&lb[0], Check::Http { url, ca: None, .. } if url == "https://203.0.113.11:443/health"));
        let white = crate::topology::compile(&crate::spec::SpecSource { name: "w".into(), text: include_str!("../../examples/whiteboard.toml").into() }).unwrap();
        let all = checks(&white, white.host("server1").unwrap(), &Layout::nixos());
        assert_eq!(all.iter().map(Check::name).collect::<Vec<_>>(), ["galera", "app health", "web health"]);
    }
}
