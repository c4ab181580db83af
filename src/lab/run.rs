//! Executes the [`Scenario`] against the running lab with real clients in the lab's
//! namespaces (curl, ssh, the mariadb client, TCP connects), one verdict per step.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::cmd::Cmd;
use super::daemons::{self, Lab};
use super::event::{Event, Reporter};
use super::host::NamespaceHost;
use super::probe::{self, Request, Response, ServedBy};
use super::state::State;
use crate::render::Layout;
use crate::stack::address_plan::{self, host_netns, NetworkPlan};
use crate::stack::scenario::{self, Connect, Node, Probe, Scenario, Source, Step};
use crate::stack::Service;
use crate::topology::Topology;

pub(super) use super::step::{StepLog, Verdict};

/// Runs every step; returns whether all passed. A failing step does not stop the run:
/// each failover step restores what it broke before the next one starts.
pub fn run(
    scenario: &Scenario,
    topology: &Topology,
    plan: &NetworkPlan,
    state: &Mutex<State>,
    reporter: &Reporter,
) -> Result<bool> {
    let lab = Lab { topology, plan, state, reporter };
    for note in &scenario.omitted {
        reporter.emit(Event::StepDetail { step: "scenario".into(), line: format!("omitted: {note}") });
    }
    let mut all_passed = true;
    for step in &scenario.steps {
        let name = step.name().to_string();
        reporter.emit(Event::StepStarted { step: name.clone() });
        let started = Instant::now();
        let log = StepLog { reporter, step: name.clone() };
        let verdict = match execute(&lab, &log, step) {
            Ok(verdict) => verdict,
            Err(e) => Verdict::fail(format!("{e:#}")),
        };
        reporter.emit(Event::StepFinished {
            step: name,
            passed: verdict.passed,
            summary: verdict.summary,
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
        all_passed &= verdict.passed;
    }
    Ok(all_passed)
}

fn execute(lab: &Lab, log: &StepLog, step: &Step) -> Result<Verdict> {
    match step {
        Step::HttpsViaVip { domain, vip, requests, web_hosts } => {
            https_via_vip(lab, log, domain, *vip, *requests, web_hosts)
        }
        Step::HttpsViaVip6 { domain, vip6, requests, lbs, closed_ports } => {
            https_via_vip6(lab, log, domain, *vip6, *requests, lbs, closed_ports)
        }
        Step::BackendTls { lbs, backends, health_path, reachable_ports } => {
            backend_tls(lab, log, lbs, backends, health_path, reachable_ports)
        }
        Step::AdminSsh { hosts } => admin_ssh(lab, log, hosts),
        Step::MultiMaster { writers, nodes } => multi_master(lab, log, writers, nodes),
        Step::FirewallMatrix { ports, probes } => firewall_matrix(lab, log, ports, probes),
        Step::WebFailover { domain, vip, victim, eject_within_ms } => {
            web_failover(lab, log, domain, *vip, victim, *eject_within_ms)
        }
        Step::DbFailover { domain, vip, victim, survivors, writers } => {
            db_failover(lab, log, domain, *vip, victim, survivors, writers)
        }
        Step::LbFailover { domain, vip, vip6, active, standby, within_ms } => {
            lb_failover(lab, log, domain, (*vip, *vip6), active, standby, *within_ms)
        }
        Step::MetricsArrive { endpoint, hosts, egress, within_ms } => {
            super::monitoring::metrics_arrive(lab, log, *endpoint, hosts, egress, *within_ms)
        }
        Step::CollectorEndpointsLocal { endpoints } => {
            super::monitoring::collector_endpoints_local(lab, log, endpoints)
        }
        Step::WebQps { .. } => super::monitoring::web_qps(lab, log, step),
    }
}

/// `https://<domain><path>` through the virtual IP, from the internet namespace.
pub(super) fn https_get(
    domain: &str,
    vip: impl Into<std::net::IpAddr>,
    path: &str,
    timeout: Duration,
) -> Result<Response> {
    Request::get(format!("https://{domain}{path}"))
        .cacert(super::public_trust())
        .resolve(domain, 443, vip)
        .timeout(timeout)
        .send(address_plan::INTERNET)
}

/// Which web node served a response: nginx's `X-Served-By`, else the app's report.
fn web_of(lab: &Lab, response: &Response, served: Option<&ServedBy>) -> String {
    if let Some(name) = response.header("x-served-by") {
        return name.to_string();
    }
    served.and_then(|s| scenario::host_by_address(lab.topology, &s.web)).unwrap_or("?").to_string()
}

fn https_via_vip(
    lab: &Lab,
    log: &StepLog,
    domain: &str,
    vip: impl Into<std::net::IpAddr>,
    requests: u32,
    web_hosts: &[String],
) -> Result<Verdict> {
    let vip = vip.into();
    let mut failures = Vec::new();
    let mut webs = BTreeSet::new();
    let mut apps = BTreeSet::new();
    let mut dbs = BTreeSet::new();
    for _ in 0..requests {
        match https_get(domain, vip, "/", Duration::from_secs(5)) {
            Ok(response) => {
                let served = ServedBy::parse(&response.body);
                match (&served, response.status) {
                    (Some(served), 200) => {
                        webs.insert(web_of(lab, &response, Some(served)));
                        apps.insert(served.app.clone());
                        dbs.insert(served.db.clone());
                        if response.header("strict-transport-security").is_none() {
                            failures.push("no Strict-Transport-Security header".to_string());
                        }
                    }
                    _ => failures.push(format!("status {}: {}", response.status, first_line(&response.body))),
                }
            }
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    log.line(format!(
        "{}/{requests} answered by the app; certificate verified against {}",
        requests as usize - failures.len(),
        super::public_trust().display()
    ));
    log.line(format!("served by web {} · app {} · db {}", join(&webs), join(&apps), join(&dbs)));
    let redirect = Request::get(format!("http://{domain}/")).resolve(domain, 80, vip).send(address_plan::INTERNET);
    match redirect {
        Ok(r) if (301..=308).contains(&r.status) && r.header("location").is_some_and(|l| l.starts_with("https://")) => {
            log.line(format!("http://{domain}/ → {} {}", r.status, r.header("location").unwrap_or_default()));
        }
        Ok(r) => failures.push(format!("http://{domain}/ answered {} without an https redirect", r.status)),
        Err(e) => failures.push(format!("http://{domain}/: {e:#}")),
    }
    let unknown: Vec<&String> = webs.iter().filter(|w| !web_hosts.contains(w)).collect();
    if !unknown.is_empty() {
        failures.push(format!("served by unknown web hosts {unknown:?}"));
    }
    Ok(Verdict::from_failures(
        log,
        &failures,
        format!("{requests} HTTPS requests via {vip} OK, {} web node(s) seen", webs.len()),
    ))
}

/// [`https_via_vip`] through the VIP6, then each LB's public IPv6 address from the internet:
/// HTTPS connects, the ports the firewall closes do not.
fn https_via_vip6(
    lab: &Lab,
    log: &StepLog,
    domain: &str,
    vip6: std::net::Ipv6Addr,
    requests: u32,
    lbs: &[(String, std::net::Ipv6Addr)],
    closed_ports: &[u16],
) -> Result<Verdict> {
    let web_hosts: Vec<String> = lab.topology.web.as_ref().map(|w| w.hosts.clone()).unwrap_or_default();
    let served = https_via_vip(lab, log, domain, vip6, requests, &web_hosts)?;
    let mut failures = Vec::new();
    if !served.passed {
        failures.push(served.summary.clone());
    }
    for (name, address) in lbs {
        let https = probe::tcp_connect(
            address_plan::INTERNET,
            *address,
            crate::topology::ports::HTTPS,
            Duration::from_secs(2),
        )?;
        if https != Connect::Open {
            failures.push(format!("{name} [{address}]:443 from the internet: {https:?}, not open"));
        }
        for port in closed_ports {
            let got = probe::tcp_connect(address_plan::INTERNET, *address, *port, Duration::from_millis(500))?;
            if got == Connect::Open {
                failures.push(format!("{name} [{address}]:{port} is open to the internet over IPv6"));
            }
        }
        log.line(format!("{name} [{address}]: 443 open, {closed_ports:?} closed from the internet"));
    }
    Ok(Verdict::from_failures(
        log,
        &failures,
        format!("{requests} HTTPS requests via [{vip6}] OK; IPv6 firewall as the spec says"),
    ))
}

fn backend_tls(
    lab: &Lab,
    log: &StepLog,
    lbs: &[String],
    backends: &[Node],
    health_path: &str,
    reachable_ports: &[(String, u16)],
) -> Result<Verdict> {
    let mut failures = Vec::new();
    for lb in lbs {
        let netns = host_netns(lb);
        let ca = Layout::lab(lb).ca_cert();
        for backend in backends {
            let url = format!("https://{}:{}{health_path}", backend.host, backend.port);
            match Request::get(&url).cacert(&ca).resolve(&backend.host, backend.port, backend.address).send(&netns) {
                Ok(r) if r.status == 200 => {}
                Ok(r) => failures.push(format!("{lb} → {url}: status {}", r.status)),
                Err(e) => failures.push(format!("{lb} → {url}: {e:#}")),
            }
        }
        for (host, port) in reachable_ports {
            let address = lab.host(host).address;
            let url = format!("http://{address}:{port}{health_path}");
            match Request::get(&url).timeout(Duration::from_secs(2)).send(&netns) {
                Ok(r) if r.status < 400 => failures.push(format!("{lb} → {url}: plaintext HTTP answered {}", r.status)),
                Ok(r) => log.line(format!(
                    "{lb} → {host}:{port} plaintext: refused by the server ({} {})",
                    r.status,
                    first_line(&r.body)
                )),
                Err(_) => log.line(format!("{lb} → {host}:{port} plaintext: no HTTP answer")),
            }
        }
    }
    if failures.is_empty() {
        log.line(format!(
            "{} LB(s) × {} web backend(s): TLS verified for the backend's name against the internal CA",
            lbs.len(),
            backends.len()
        ));
    }
    Ok(Verdict::from_failures(log, &failures, "every backend TLS-verified, no plaintext port answers"))
}

fn admin_ssh(_lab: &Lab, log: &StepLog, hosts: &[Node]) -> Result<Verdict> {
    let key = super::sshd::admin_key(&super::admin_dir());
    let results: Vec<(String, Result<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|node| {
                let key = key.clone();
                scope.spawn(move || {
                    let result = Cmd::new("ssh")
                        .args([
                            "-i",
                            &key.display().to_string(),
                            "-o",
                            "BatchMode=yes",
                            "-o",
                            "StrictHostKeyChecking=no",
                            "-o",
                            "UserKnownHostsFile=/dev/null",
                        ])
                        .args([
                            "-o",
                            "ConnectTimeout=3",
                            "-o",
                            "LogLevel=ERROR",
                            &format!("root@{}", node.address),
                            "uname",
                            "-n",
                        ])
                        .netns(address_plan::ADMIN)
                        .timeout(Duration::from_secs(10))
                        .stdout()
                        .map(|out| out.trim().lines().last().unwrap_or_default().to_string())
                        .map_err(anyhow::Error::new);
                    (node.host.clone(), result)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("ssh thread")).collect()
    });
    let mut failures = Vec::new();
    for (host, result) in &results {
        match result {
            Ok(name) if name == host => {}
            Ok(name) => failures.push(format!("{host}: logged in, but the host says it is {name:?}")),
            Err(e) => failures.push(format!("{host}: {e:#}")),
        }
    }
    Ok(Verdict::from_failures(log, &failures, format!("root login with the admin key on all {} hosts", hosts.len())))
}

/// The scenario's own table, apart from the app's data.
const SCENARIO_DB: &str = "nixstack_lab";

fn ensure_scenario_table(socket: &std::path::Path) -> Result<()> {
    probe::sql(
        socket,
        &format!(
            "CREATE DATABASE IF NOT EXISTS {SCENARIO_DB};\
             CREATE TABLE IF NOT EXISTS {SCENARIO_DB}.writes (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, node VARCHAR(64) NOT NULL, token VARCHAR(128) NOT NULL, KEY (token)) ENGINE=InnoDB;"
        ),
        Duration::from_secs(30),
    )?;
    Ok(())
}

fn token(label: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{label}-{}-{nanos}", std::process::id())
}

fn write_row(node: &str, token: &str, timeout: Duration) -> Result<()> {
    let socket = Layout::lab(node).mysql_socket();
    probe::sql(
        &socket,
        &format!("INSERT INTO {SCENARIO_DB}.writes (node, token) VALUES ('{node}', '{token}');"),
        timeout,
    )?;
    Ok(())
}

/// How many rows with `token` `node` sees, with a causal read (waits for replication).
fn count_rows(node: &str, token: &str) -> Result<u64> {
    let socket = Layout::lab(node).mysql_socket();
    let out = probe::sql(
        &socket,
        &format!("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM {SCENARIO_DB}.writes WHERE token = '{token}';"),
        Duration::from_secs(15),
    )?;
    out.trim().parse().with_context(|| format!("unexpected answer {out:?}"))
}

fn multi_master(_lab: &Lab, log: &StepLog, writers: &[String], nodes: &[String]) -> Result<Verdict> {
    let first = writers.first().context("no writer node")?;
    ensure_scenario_table(&Layout::lab(first).mysql_socket())?;
    let mut failures = Vec::new();
    for writer in writers {
        let token = token(&format!("mm-{writer}"));
        if let Err(e) = write_row(writer, &token, Duration::from_secs(15)) {
            failures.push(format!("write through {writer}: {e:#}"));
            continue;
        }
        let mut seen = Vec::new();
        for node in nodes.iter().filter(|n| *n != writer) {
            match count_rows(node, &token) {
                Ok(1) => seen.push(node.clone()),
                Ok(n) => failures.push(format!("row written on {writer}: {n} copies on {node}")),
                Err(e) => failures.push(format!("read on {node}: {e:#}")),
            }
        }
        log.line(format!("written through {writer}, read back on {}", seen.join(", ")));
    }
    Ok(Verdict::from_failures(
        log,
        &failures,
        format!("{} writer(s) × {} node(s) consistent", writers.len(), nodes.len()),
    ))
}

/// A matrix cell: (source, destination host, port).
type Cell = (String, String, u16);

fn firewall_matrix(lab: &Lab, log: &StepLog, ports: &[u16], probes: &[Probe]) -> Result<Verdict> {
    let timeout = Duration::from_millis(500);
    let mut by_source: BTreeMap<&Source, Vec<&Probe>> = BTreeMap::new();
    for probe in probes {
        by_source.entry(&probe.from).or_default().push(probe);
    }
    let observed: BTreeMap<Cell, Connect> = std::thread::scope(|scope| -> Result<_> {
        let handles: Vec<_> = by_source
            .iter()
            .map(|(source, probes)| {
                scope.spawn(move || -> Result<Vec<(Cell, Connect)>> {
                    let netns = match source {
                        Source::Internet => address_plan::INTERNET.to_string(),
                        Source::Admin => address_plan::ADMIN.to_string(),
                        Source::Host(name) => host_netns(name),
                    };
                    let routed: Vec<&&Probe> = probes.iter().filter(|p| p.address.is_some()).collect();
                    let targets: Vec<(Ipv4Addr, u16)> =
                        routed.iter().map(|p| (p.address.expect("routed"), p.port)).collect();
                    let outcomes = probe::tcp_connect_many(&netns, &targets, timeout)?;
                    Ok(routed
                        .iter()
                        .zip(outcomes)
                        .map(|(p, o)| ((p.from.to_string(), p.to.clone(), p.port), o))
                        .collect())
                })
            })
            .collect();
        let mut all = BTreeMap::new();
        for handle in handles {
            all.extend(handle.join().map_err(|_| anyhow::anyhow!("a matrix thread panicked"))??);
        }
        Ok(all)
    })?;

    let mut mismatches = Vec::new();
    let mut n_open = 0;
    for probe in probes {
        let Some(_) = probe.address else { continue };
        let got = observed[&(probe.from.to_string(), probe.to.clone(), probe.port)];
        if got == Connect::Open {
            n_open += 1;
        }
        if !probe.accepts(got) {
            mismatches.push(format!(
                "✗ {} → {}:{} ({}): expected {}, got {} — {}",
                probe.from,
                probe.to,
                probe.port,
                probe.address.expect("routed"),
                probe.expect.symbol(),
                got.symbol(),
                probe.reason
            ));
        }
    }
    for line in render_matrix(lab, ports, probes, &observed) {
        log.line(line);
    }
    for line in &mismatches {
        log.line(line.clone());
    }
    let n_probed = probes.iter().filter(|p| p.address.is_some()).count();
    if mismatches.is_empty() {
        Ok(Verdict::pass(format!("{n_probed} connects match the firewall exactly ({n_open} open)")))
    } else {
        Ok(Verdict::fail(format!("{} of {n_probed} connects differ from the firewall", mismatches.len())))
    }
}

/// One grid per port: rows are sources, columns destinations. `O` connected, `r` reset
/// (allowed, nothing listens), `.` filtered, blank: no route or self; `!` marks a cell that
/// differs from the Topology.
fn render_matrix(lab: &Lab, ports: &[u16], probes: &[Probe], observed: &BTreeMap<Cell, Connect>) -> Vec<String> {
    let hosts: Vec<&str> = lab.topology.hosts.iter().map(|h| h.name.as_str()).collect();
    let mut sources: Vec<String> = vec!["internet".into(), "admin".into()];
    sources.extend(hosts.iter().map(|h| h.to_string()));
    let width = hosts.iter().map(|h| h.len()).max().unwrap_or(4).max(4) + 1;
    let source_width = sources.iter().map(String::len).max().unwrap_or(8) + 2;
    let index: BTreeMap<Cell, &Probe> =
        probes.iter().map(|p| ((p.from.to_string(), p.to.clone(), p.port), p)).collect();
    let mut lines =
        vec!["O connects · r reset (allowed, nothing listens) · . filtered · ! differs from the Topology".to_string()];
    for port in ports {
        let mut header = format!("{:<source_width$}", format!("port {port}"));
        for host in &hosts {
            header.push_str(&format!("{host:>width$}"));
        }
        lines.push(header);
        for source in &sources {
            let mut line = format!("  {:<w$}", source, w = source_width - 2);
            for host in &hosts {
                let key = (source.clone(), host.to_string(), *port);
                let cell = match (index.get(&key), observed.get(&key)) {
                    (Some(probe), Some(got)) => {
                        let symbol = match got {
                            Connect::Open => "O",
                            Connect::Refused => "r",
                            Connect::Filtered => ".",
                        };
                        if probe.accepts(*got) {
                            symbol.to_string()
                        } else {
                            format!("!{symbol}")
                        }
                    }
                    _ => String::new(),
                };
                line.push_str(&format!("{cell:>width$}"));
            }
            lines.push(line.trim_end().to_string());
        }
    }
    lines
}

/// One client request and its outcome.
#[derive(Debug, Clone)]
struct Sample {
    started: Instant,
    finished: Instant,
    ok: bool,
    web: String,
    error: String,
}

/// Steady client load through the VIP from the internet namespace: `workers` loops of
/// sequential HTTPS requests until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(domain: &str, vip: Ipv4Addr, workers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..workers)
            .map(|_| {
                let (stop, samples, domain) = (stop.clone(), samples.clone(), domain.to_string());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let result = https_get(&domain, vip, "/", Duration::from_secs(3));
                        let finished = Instant::now();
                        let sample = match result {
                            Ok(r) if r.status == 200 => Sample {
                                started,
                                finished,
                                ok: ServedBy::parse(&r.body).is_some(),
                                web: r.header("x-served-by").unwrap_or("?").to_string(),
                                error: String::new(),
                            },
                            Ok(r) => Sample {
                                started,
                                finished,
                                ok: false,
                                web: r.header("x-served-by").unwrap_or("?").into(),
                                error: format!("status {}", r.status),
                            },
                            Err(e) => Sample {
                                started,
                                finished,
                                ok: false,
                                web: String::new(),
                                error: format!("{e:#}").lines().next().unwrap_or_default().to_string(),
                            },
                        };
                        samples.lock().expect("samples").push(sample);
                    }
                })
            })
            .collect();
        Load { stop, samples, threads }
    }

    fn snapshot(&self) -> Vec<Sample> {
        self.samples.lock().expect("samples").clone()
    }

    fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
        let samples = self.samples.lock().expect("samples").clone();
        samples
    }
}

/// The status of `server` in HAProxy's `web` backend on `lb` (`UP`, `DOWN`, `UP 1/2`...),
/// asked of its admin socket as deploy asks it.
fn haproxy_server_status(lb: &str, server: &str) -> Result<String> {
    Ok(crate::host::health::server_stat(&NamespaceHost::lab(lb), "web", server)?.status)
}

fn ejected(status: &str) -> bool {
    status.starts_with("DOWN") || status.starts_with("MAINT")
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn web_failover(
    lab: &Lab,
    log: &StepLog,
    domain: &str,
    vip: Ipv4Addr,
    victim: &str,
    eject_within_ms: u64,
) -> Result<Verdict> {
    let active = daemons::vip_holder(lab).context("no load balancer holds the virtual IP")?;
    log.line(format!("active load balancer {active}; victim {victim}"));
    let load = Load::start(domain, vip, 2);
    std::thread::sleep(Duration::from_millis(1000));
    let killed_at = Instant::now();
    let pids = daemons::kill(victim, Service::Nginx, libc::SIGKILL);
    log.line(format!("killed nginx on {victim} (SIGKILL, pids {pids:?})"));
    let eject =
        probe::wait_for("HAProxy to eject the web node", Duration::from_secs(10), Duration::from_millis(20), || {
            Ok(ejected(&haproxy_server_status(&active, victim)?).then(Instant::now))
        });
    let ejected_at = match eject {
        Ok(at) => at,
        Err(e) => {
            let samples = load.finish();
            restart(lab, victim, Service::Nginx)?;
            summarize(log, &samples, killed_at, killed_at);
            return Ok(Verdict::fail(format!("{e:#}")));
        }
    };
    let eject_time = ejected_at - killed_at;
    log.metric("web_eject", eject_time);
    log.line(format!("HAProxy on {active} ejected {victim} after {}", secs(eject_time)));
    // Load continues with the node out, then the node comes back.
    std::thread::sleep(Duration::from_millis(1500));
    let restarted_at = Instant::now();
    restart(lab, victim, Service::Nginx)?;
    let rejoin = probe::wait_for(
        "HAProxy to take the web node back",
        Duration::from_secs(15),
        Duration::from_millis(50),
        || Ok((haproxy_server_status(&active, victim)? == "UP").then(Instant::now)),
    );
    let served_again = rejoin.as_ref().ok().and_then(|_| {
        probe::wait_for(
            "a request served by the restarted node",
            Duration::from_secs(10),
            Duration::from_millis(100),
            || Ok(load.snapshot().iter().any(|s| s.ok && s.started > restarted_at && s.web == victim).then_some(())),
        )
        .ok()
    });
    let samples = load.finish();
    summarize(log, &samples, killed_at, ejected_at);
    let failed_after: Vec<&Sample> = samples.iter().filter(|s| s.started >= ejected_at && !s.ok).collect();
    let mut failures = Vec::new();
    if eject_time > Duration::from_millis(eject_within_ms) {
        failures.push(format!("ejection took {} (budget {eject_within_ms} ms)", secs(eject_time)));
    }
    if !failed_after.is_empty() {
        failures.push(format!(
            "{} client request(s) failed after the ejection: {}",
            failed_after.len(),
            failed_after[0].error
        ));
    }
    match &rejoin {
        Ok(at) => {
            log.metric("web_rejoin", *at - restarted_at);
            log.line(format!("{victim} back UP in HAProxy {} after the restart", secs(*at - restarted_at)));
        }
        Err(e) => failures.push(format!("{e:#}")),
    }
    if served_again.is_none() {
        failures.push(format!("no request was served by {victim} after it rejoined"));
    }
    Ok(Verdict::from_failures(
        log,
        &failures,
        format!("ejected in {}, 0 failed requests after, rejoined", secs(eject_time)),
    ))
}

fn summarize(log: &StepLog, samples: &[Sample], killed_at: Instant, ejected_at: Instant) {
    let before_kill = samples.iter().filter(|s| s.started < killed_at).count();
    let window: Vec<&Sample> = samples.iter().filter(|s| s.started >= killed_at && s.started < ejected_at).collect();
    let after: Vec<&Sample> = samples.iter().filter(|s| s.started >= ejected_at).collect();
    let mut by_web: BTreeMap<&str, usize> = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.ok) {
        *by_web.entry(sample.web.as_str()).or_default() += 1;
    }
    let slowest = samples.iter().map(|s| s.finished - s.started).max().unwrap_or_default();
    log.line(format!(
            "client requests: {before_kill} before the kill, {} between kill and ejection ({} failed), {} after ({} failed); slowest {}",
            window.len(),
            window.iter().filter(|s| !s.ok).count(),
            after.len(),
            after.iter().filter(|s| !s.ok).count(),
            secs(slowest)
        ));
    log.line(format!("served by {}", by_web.iter().map(|(w, n)| format!("{w}×{n}")).collect::<Vec<_>>().join(" ")));
}

/// Restarts a daemon the scenario stopped (recorded in the state file like `up` does).
fn restart(lab: &Lab, host: &str, daemon: Service) -> Result<Duration> {
    let started = Instant::now();
    daemons::wait_gone(host, daemon, Duration::from_secs(15))?;
    daemons::start(lab, lab.host(host), daemon)?;
    Ok(started.elapsed())
}

fn db_failover(
    lab: &Lab,
    log: &StepLog,
    domain: &str,
    vip: Ipv4Addr,
    victim: &str,
    survivors: &[String],
    writers: &[String],
) -> Result<Verdict> {
    let mut failures = Vec::new();
    ensure_scenario_table(&Layout::lab(&survivors[0]).mysql_socket())?;
    let killed_at = Instant::now();
    let pids = daemons::kill(victim, Service::Mariadb, libc::SIGKILL);
    daemons::wait_gone(victim, Service::Mariadb, Duration::from_secs(10))?;
    log.line(format!("killed mariadbd on {victim} (SIGKILL, pids {pids:?})"));
    // Writes through every surviving writer node.
    let mut tokens = Vec::new();
    for writer in writers {
        let token = token(&format!("dbfail-{writer}"));
        let started = Instant::now();
        match write_row(writer, &token, Duration::from_secs(20)) {
            Ok(()) => {
                if tokens.is_empty() {
                    log.metric("db_first_write", killed_at.elapsed());
                }
                log.line(format!(
                    "write through {writer} committed {} after the kill (took {})",
                    secs(killed_at.elapsed()),
                    secs(started.elapsed())
                ));
                tokens.push(token);
            }
            Err(e) => failures.push(format!("write through {writer}: {e:#}")),
        }
    }
    // The app keeps writing through the VIP, failing over to the nodes still up.
    let mut app_ok = 0;
    let mut app_dbs = BTreeSet::new();
    for _ in 0..6 {
        match https_get(domain, vip, "/", Duration::from_secs(5)) {
            Ok(r) if r.status == 200 => match ServedBy::parse(&r.body) {
                Some(served) if served.db != victim => {
                    app_ok += 1;
                    app_dbs.insert(served.db);
                }
                Some(served) => failures.push(format!("the app reports db {} although it is down", served.db)),
                None => failures.push("the page is not the app's".into()),
            },
            Ok(r) => failures.push(format!("app via the VIP: status {}: {}", r.status, first_line(&r.body))),
            Err(e) => failures.push(format!("app via the VIP: {e:#}")),
        }
    }
    log.line(format!("{app_ok}/6 app requests through the VIP wrote via {}", join(&app_dbs)));
    let restarted_at = Instant::now();
    match daemons::start(lab, lab.host(victim), Service::Mariadb) {
        Ok(_) => {
            log.metric("db_rejoin", restarted_at.elapsed());
            log.line(format!("{victim} restarted, rejoined and Synced in {}", secs(restarted_at.elapsed())));
        }
        Err(e) => failures.push(format!("{victim} did not rejoin: {e:#}")),
    }
    for token in &tokens {
        match count_rows(victim, token) {
            Ok(1) => {}
            Ok(n) => failures.push(format!("{victim} has {n} copies of a row written while it was down")),
            Err(e) => failures.push(format!("read on {victim}: {e:#}")),
        }
    }
    if !tokens.is_empty() && failures.is_empty() {
        log.line(format!("{victim} has the {} row(s) written while it was down", tokens.len()));
    }
    Ok(Verdict::from_failures(log, &failures, format!("writes continued without {victim}; it rejoined Synced")))
}

fn lb_failover(
    lab: &Lab,
    log: &StepLog,
    domain: &str,
    (vip, vip6): (Ipv4Addr, Option<std::net::Ipv6Addr>),
    primary: &str,
    standby: &[String],
    within_ms: u64,
) -> Result<Verdict> {
    let active = daemons::vip_holder(lab).unwrap_or_else(|| primary.to_string());
    log.line(format!("{active} holds {vip}"));
    let mut failures = Vec::new();
    https_get(domain, vip, "/", Duration::from_secs(5)).context("HTTPS through the VIP before the failover")?;
    // A clean stop, as a host shutdown does: keepalived gives the VIP up, HAProxy exits.
    let stopped_at = Instant::now();
    daemons::kill(&active, Service::Keepalived, libc::SIGTERM);
    daemons::kill(&active, Service::Haproxy, libc::SIGTERM);
    log.line(format!("stopped keepalived and haproxy on {active}"));
    let answered = probe::wait_for(
        "HTTPS through the VIP after the failover",
        Duration::from_secs(15),
        Duration::from_millis(10),
        || {
            let response = https_get(domain, vip, "/", Duration::from_millis(500))?;
            Ok((response.status == 200 && ServedBy::parse(&response.body).is_some()).then(Instant::now))
        },
    );
    let holder = daemons::vip_holder(lab);
    match &answered {
        Ok(at) => {
            let took = *at - stopped_at;
            log.metric("lb_failover", took);
            log.line(format!(
                "HTTPS answered again after {} (VIP now on {})",
                secs(took),
                holder.as_deref().unwrap_or("nobody")
            ));
            if took > Duration::from_millis(within_ms) {
                failures.push(format!("HTTPS came back after {} (budget {within_ms} ms)", secs(took)));
            }
        }
        Err(e) => failures.push(format!("{e:#}")),
    }
    if !holder.as_ref().is_some_and(|h| {
        standby.contains(h) || (h != &active && lab.topology.lb.as_ref().is_some_and(|lb| lb.hosts.contains(h)))
    }) {
        failures.push(format!("the VIP is on {holder:?}, not on a standby LB"));
    }
    if let Some(vip6) = vip6 {
        vip6_follows(lab, log, domain, vip6, holder.as_deref(), &mut failures);
    }
    // Bring the stopped LB back. The LBs do not preempt (render/keepalived.rs): the VIP
    // stays on its new holder, whose connections a second move would reset. Watched for
    // longer than a preempting LB needs (track script `rise 2` plus one advertisement).
    let restarted_at = Instant::now();
    let restore = daemons::wait_gone(&active, Service::Keepalived, Duration::from_secs(10))
        .and_then(|_| daemons::wait_gone(&active, Service::Haproxy, Duration::from_secs(10)))
        .and_then(|_| daemons::start(lab, lab.host(&active), Service::Haproxy))
        .and_then(|_| daemons::start(lab, lab.host(&active), Service::Keepalived));
    match restore {
        Ok(_) => {
            let settled = probe::wait_for(
                "HTTPS after the LB came back",
                Duration::from_secs(15),
                Duration::from_millis(100),
                || {
                    let response = https_get(domain, vip, "/", Duration::from_secs(1))?;
                    Ok((response.status == 200).then_some(()))
                },
            );
            match settled {
                Ok(()) => {
                    let watch_until = restarted_at + Duration::from_secs(6);
                    let mut moved = None;
                    while Instant::now() < watch_until && moved.is_none() {
                        let now = daemons::vip_holder(lab);
                        if now != holder {
                            moved = Some(now);
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    match moved {
                        None => {
                            log.line(format!(
                                "{active} back after {}; the VIP stays on {}",
                                secs(restarted_at.elapsed()),
                                holder.as_deref().unwrap_or("nobody")
                            ));
                            if let Some(vip6) = vip6 {
                                vip6_follows(lab, log, domain, vip6, holder.as_deref(), &mut failures);
                            }
                        }
                        Some(now) => failures.push(format!(
                            "the VIP moved again when {active} came back (to {}): a second interruption",
                            now.as_deref().unwrap_or("nobody")
                        )),
                    }
                }
                Err(e) => failures.push(format!("after restoring {active}: {e:#}")),
            }
        }
        Err(e) => failures.push(format!("restarting {active}: {e:#}")),
    }
    let took = answered.map(|at| at - stopped_at).unwrap_or_default();
    Ok(Verdict::from_failures(log, &failures, format!("VIP moved, HTTPS back in {}", secs(took))))
}

/// The VIP6 is where the VIP is (keepalived's sync group moves them together, within a
/// few advertisements) and HTTPS answers through it.
fn vip6_follows(
    lab: &Lab,
    log: &StepLog,
    domain: &str,
    vip6: std::net::Ipv6Addr,
    holder: Option<&str>,
    failures: &mut Vec<String>,
) {
    let Some(lb) = &lab.topology.lb else { return };
    let holder6 = || {
        lb.hosts
            .iter()
            .find(|name| crate::host::health::holds_vip(&NamespaceHost::lab(name), vip6).unwrap_or(false))
            .cloned()
    };
    let together =
        probe::wait_for("the VIP6 on the VIP's holder", Duration::from_secs(5), Duration::from_millis(50), || {
            Ok((holder6().as_deref() == holder).then_some(()))
        });
    if together.is_err() {
        failures.push(format!("the VIP6 is on {:?}, the VIP on {holder:?}", holder6()));
        return;
    }
    let answered = probe::wait_for("HTTPS through the VIP6", Duration::from_secs(5), Duration::from_millis(50), || {
        let response = https_get(domain, vip6, "/", Duration::from_secs(1))?;
        Ok((response.status == 200 && ServedBy::parse(&response.body).is_some()).then_some(()))
    });
    match answered {
        Ok(()) => {
            log.line(format!("the VIP6 {vip6} is on {} too; HTTPS answers through it", holder.unwrap_or("nobody")))
        }
        Err(e) => failures.push(format!("through the VIP6 {vip6}: {e:#}")),
    }
}

fn first_line(text: &str) -> &str {
    text.trim().lines().next().unwrap_or_default()
}

fn join(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "-".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(",")
    }
}
