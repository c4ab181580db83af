//! Monitoring in the lab: the Sumo Logic HTTP source stand-in in its own namespace behind
//! TLS, collectd on every monitored host shipping to it through the host's egress rule, the
//! scenario's monitoring steps (metrics arrive, collector endpoints are local, web QPS from
//! the counters under a paced load) and `nixstack lab qps`, the operator's live view.
//!
//! The lab always runs the collectd agent, whatever `monitoring.agent` says: no OpenTelemetry
//! Collector build can be installed on the lab machine (Debian has none; NixOS hosts run it).
//!
//! Placement: `nxs-sumo` sits on the private bridge with an address outside every network of
//! the spec but inside `monitoring.endpoint_cidr`, with on-link routes both ways (as the
//! admin namespace does), so a host reaches it only through its egress rule for HTTPS to the
//! monitoring service. stunnel (Debian's stunnel4) terminates HTTPS there with a certificate
//! of the stack's internal CA for that address and hands the requests to the stand-in
//! (`nixstack sumologic-standin`, this binary) on the namespace's loopback, where `lab test`
//! and `lab qps` also query what it received. collectd's Python plugin posts with
//! `requests`, which verifies the endpoint against `REQUESTS_CA_BUNDLE`: the host's `ca.crt`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use rand::Rng;
use serde::Serialize;

use super::cmd::Cmd;
use super::context::{self, DaemonStatus, HostStatus, Lab};
use super::event::Event;
use super::probe::{self, Request};
use super::process::{self, Identity, Launch};
use super::state::{Resource, State};
use super::step::{StepLog, Verdict};
use crate::render::{monitoring as render_monitoring, Layout};
use crate::stack::address_plan::{self, host_netns, standin_address, Bridge, PRIVATE_IF, SWITCH};
use crate::stack::scenario::{CollectorSource, Connect, LocalEndpoint, MonitoredHost, Probe, Source, Step};
use crate::sumologic::rate::{self, Point};
use crate::sumologic::{Payload, Record};
use crate::topology::{Host, Topology};

/// The stand-in's pseudo-host: its namespace is `nxs-sumo`, its files under `<lab>/sumo/`.
pub const SUMO_HOST: &str = "sumo";
/// Where the stand-in answers plain HTTP (ingestion from stunnel, and the query API),
/// on the loopback of its namespace only.
const STANDIN_PORT: u16 = 8080;
/// The HTTPS port of the endpoint, as Sumo Logic's.
const ENDPOINT_PORT: u16 = crate::topology::ports::HTTPS;
/// Sumo Logic's collectd plugin, installed by scripts/setup.
pub const COLLECTD_PLUGIN_DIR: &str = "/opt/nixstack/collectd-python";
const STUNNEL: &str = "/usr/bin/stunnel4";
const COLLECTD: &str = "/usr/sbin/collectd";
/// Concurrent clients of the paced load (each request is one curl process).
const LOAD_WORKERS: usize = 16;
/// Data points per counter the rate before the load is taken over (3 intervals).
const BASELINE_POINTS: usize = 4;

/// The stand-in's namespace.
pub fn sumo_netns() -> String {
    host_netns(SUMO_HOST)
}

/// The endpoint URL the hosts get (the lab's value of the `monitoring.endpoint_secret`).
fn endpoint_url(address: Ipv4Addr, token: &str) -> String {
    format!("https://{address}/receiver/v1/http/{token}")
}

/// Whether the lab runs monitoring: a `[monitoring]` section and a monitored host.
pub fn enabled(topology: &Topology) -> bool {
    topology.monitoring.is_some() && topology.hosts.iter().any(|h| h.monitored)
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

// ---------------------------------------------------------------------------------------
// Bring-up

/// `lab up`'s monitoring part, before the hosts' daemons start: the stand-in's namespace,
/// link and routes, its certificate, the endpoint secret with a fresh token (in the lab's
/// secrets only), stunnel and the stand-in. Idempotent.
pub fn up(lab: &Lab) -> Result<()> {
    let topology = lab.topology;
    if !enabled(topology) {
        return Ok(());
    }
    if topology.host(SUMO_HOST).is_some() {
        bail!("a host is named `{SUMO_HOST}`: the lab's monitoring stand-in uses the namespace nxs-{SUMO_HOST}; rename the host");
    }
    let address = standin_address(topology)?;
    if topology.monitoring.as_ref().is_some_and(|m| m.agent == crate::spec::Agent::Otelcol) {
        lab.reporter.emit(Event::Applied {
            host: SUMO_HOST.into(),
            what: "monitoring.agent is otelcol: the lab runs collectd instead (no OpenTelemetry Collector build installs here), same hosts, categories and counters".into(),
        });
    }
    network_up(lab, address)?;
    let layout = Layout::lab(SUMO_HOST);
    for dir in [&layout.etc, &layout.log, &layout.run, &layout.secrets] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::set_permissions(&layout.secrets, std::fs::Permissions::from_mode(0o700))?;
    endpoint_secret(lab, address)?;
    certificate(topology, &layout, address)?;
    std::fs::write(layout.config("stunnel.conf"), stunnel_config(&layout, address))?;

    let token_file = endpoint_secret_path(topology);
    let standin = Launch {
        program: std::env::current_exe().context("cannot find the nixstack binary")?.display().to_string(),
        args: vec![
            "sumologic-standin".into(),
            "--listen".into(),
            format!("127.0.0.1:{STANDIN_PORT}"),
            "--token-file".into(),
            token_file.display().to_string(),
        ],
        env: Vec::new(),
        netns: sumo_netns(),
        hostname: "sumologic".into(),
        log: layout.log_file("standin.log"),
        credentials: None,
        umask: 0o022,
    };
    lab.ensure_standin(SUMO_HOST, "standin", &standin, || {
        let response = api_get("/healthz")?;
        Ok((response == "ok").then(|| format!("API on 127.0.0.1:{STANDIN_PORT} in {}", sumo_netns())))
    })?;
    let stunnel = Launch {
        program: STUNNEL.into(),
        args: vec![layout.config("stunnel.conf").display().to_string()],
        env: Vec::new(),
        netns: sumo_netns(),
        hostname: "sumologic".into(),
        log: layout.log_file("stunnel.log"),
        credentials: None,
        umask: 0o022,
    };
    let ca = super::secrets_dir().join("ca.crt");
    lab.ensure_standin(SUMO_HOST, "stunnel", &stunnel, || {
        // Through TLS, verified against the stack's CA for the endpoint's address.
        let response = Request::get(format!("https://{address}/healthz"))
            .cacert(&ca)
            .timeout(Duration::from_secs(2))
            .send(&sumo_netns())?;
        Ok((response.status == 200)
            .then(|| format!("HTTPS on {address}:{ENDPOINT_PORT}, certificate of the internal CA")))
    })?;
    Ok(())
}

/// The namespace on the private bridge, its address and the on-link routes both ways.
fn network_up(lab: &Lab, address: Ipv4Addr) -> Result<()> {
    let netns = sumo_netns();
    {
        let mut state = lab.state.lock().expect("state lock");
        if super::netns::exists(&netns) {
            if !state.created.contains(&Resource::Netns { name: netns.clone() }) {
                bail!("network namespace {netns} exists but this lab did not create it; remove it (ip netns delete {netns}) or run `nixstack lab down` from the lab that made it");
            }
            lab.reporter.present("netns", &netns);
        } else {
            state.record(Resource::Netns { name: netns.clone() })?;
            super::netns::add(&netns)?;
            lab.reporter.created("netns", &netns);
        }
    }
    let switch_port = "p-sumo";
    let link_exists =
        |ns: &str, ifname: &str| Cmd::new("ip").args(["-n", ns, "link", "show", "dev", ifname]).run().is_ok();
    ip(&netns, &["link", "set", "lo", "up"])?;
    let (inside, outside) = (link_exists(&netns, PRIVATE_IF), link_exists(SWITCH, switch_port));
    if !(inside && outside) {
        if inside {
            ip(&netns, &["link", "delete", PRIVATE_IF])?;
        }
        if outside {
            ip(SWITCH, &["link", "delete", switch_port])?;
        }
        ip(SWITCH, &["link", "add", switch_port, "type", "veth", "peer", "name", PRIVATE_IF, "netns", &netns])?;
        lab.reporter.created("link", format!("{netns}/{PRIVATE_IF} ↔ {SWITCH}/{switch_port}"));
    }
    ip(SWITCH, &["link", "set", switch_port, "master", Bridge::Private.name(), "up"])?;
    ip(&netns, &["addr", "replace", &format!("{address}/32"), "dev", PRIVATE_IF])?;
    ip(&netns, &["link", "set", PRIVATE_IF, "up"])?;
    ip(&netns, &["route", "replace", &lab.topology.networks.private.to_string(), "dev", PRIVATE_IF, "scope", "link"])?;
    for host in &lab.topology.hosts {
        ip(
            &host_netns(&host.name),
            &["route", "replace", &format!("{address}/32"), "dev", PRIVATE_IF, "scope", "link"],
        )?;
    }
    Ok(())
}

fn ip(netns: &str, args: &[&str]) -> Result<()> {
    Cmd::new("ip").args(["-n", netns]).args(args.iter().copied()).run()?;
    Ok(())
}

/// The endpoint secret in the lab's secrets directory.
fn endpoint_secret_path(topology: &Topology) -> PathBuf {
    let name = topology.monitoring.as_ref().map_or("sumologic-endpoint", |m| m.endpoint_secret.as_str());
    super::secrets_dir().join(name)
}

/// Points the lab's endpoint secret at the stand-in, with a new random token, unless it
/// already does (a second `up` keeps the token the running collectors use).
fn endpoint_secret(lab: &Lab, address: Ipv4Addr) -> Result<()> {
    let path = endpoint_secret_path(lab.topology);
    let prefix = endpoint_url(address, "");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    let current = current.trim();
    if current.starts_with(&prefix) && current.len() > prefix.len() {
        return Ok(());
    }
    let token: String = OsRng.sample_iter(&Alphanumeric).take(40).map(char::from).collect();
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, format!("{}\n", endpoint_url(address, &token)))
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&temporary, &path)?;
    lab.reporter.emit(Event::Applied {
        host: SUMO_HOST.into(),
        what: format!("{} points at the stand-in (https://{address}/receiver/v1/http/…)", path.display()),
    });
    Ok(())
}

/// The stand-in's certificate and key (one PEM, as stunnel takes it), issued by the stack's
/// internal CA for the endpoint's address.
fn certificate(topology: &Topology, layout: &Layout, address: Ipv4Addr) -> Result<()> {
    let pem = layout.secret("standin.pem");
    if let Ok(text) = std::fs::read_to_string(&pem) {
        let ca = std::fs::read_to_string(super::secrets_dir().join("ca.crt")).unwrap_or_default();
        // Still for this address and from this CA (the lab secrets are kept across ups).
        if crate::secrets::pem_body(&text, "CERTIFICATE").is_some()
            && text.contains(&format!("# {address} "))
            && text.contains(&format!("{}\n", fingerprint(&ca)))
        {
            return Ok(());
        }
    }
    let dir = super::secrets_dir();
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).with_context(|| format!("cannot read {}", dir.join(name).display()))
    };
    let ca = crate::secrets::load_ca(&topology.stack.name, &read("ca.crt")?, &read("ca.key")?)?;
    let issued = crate::secrets::issue(&ca, "sumologic stand-in", &[], &[address], topology.host_certificate_days)?;
    let text = format!(
        "# {address} stand-in certificate, CA {}\n{}{}",
        fingerprint(&read("ca.crt")?),
        issued.cert_pem,
        issued.key_pem
    );
    let temporary = pem.with_extension("tmp");
    std::fs::write(&temporary, text)?;
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&temporary, &pem)?;
    Ok(())
}

fn fingerprint(text: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
}

fn stunnel_config(layout: &Layout, address: Ipv4Addr) -> String {
    format!(
        "; The lab's Sumo Logic endpoint: HTTPS on {address}:{ENDPOINT_PORT} (certificate of the stack's internal CA),\n\
         ; handed to the stand-in on this namespace's loopback. Generated by nixstack lab up.\n\
         foreground = yes\n\
         pid =\n\
         syslog = no\n\
         debug = warning\n\
         \n\
         [sumologic]\n\
         accept = {address}:{ENDPOINT_PORT}\n\
         connect = 127.0.0.1:{STANDIN_PORT}\n\
         cert = {}\n\
         sslVersionMin = TLSv1.2\n",
        layout.secret("standin.pem").display()
    )
}

/// The recorded stand-in process `daemon`, if it still runs.
fn running(state: &State, daemon: &str) -> Option<Identity> {
    state
        .process(SUMO_HOST, daemon)
        .map(|(pid, start_time)| Identity { pid, start_time })
        .filter(|identity| process::is_running(*identity, &sumo_netns()))
}

/// `lab status`: the stand-in's processes, what they answer, and how much arrived.
pub fn status(topology: &Topology, state: &State) -> Option<HostStatus> {
    if !enabled(topology) {
        return None;
    }
    let address = standin_address(topology).ok()?;
    let ca = super::secrets_dir().join("ca.crt");
    let check = |daemon: &str, probe: &dyn Fn() -> Result<String>| {
        let identity = state.process(SUMO_HOST, daemon);
        let alive = running(state, daemon);
        let (healthy, detail) = match alive {
            None => (false, "not running".to_string()),
            Some(_) => match probe() {
                Ok(detail) => (true, detail),
                Err(e) => (false, format!("{e:#}").lines().next().unwrap_or_default().to_string()),
            },
        };
        DaemonStatus {
            daemon: daemon.into(),
            pid: identity.map(|(pid, _)| pid),
            running: alive.is_some(),
            healthy,
            detail,
        }
    };
    let standin = check("standin", &|| {
        let sources: Vec<(Option<String>, Option<String>)> = serde_json::from_str(&api_get("/api/sources")?)?;
        Ok(format!(
            "{} source host(s) seen",
            sources.iter().filter_map(|(h, _)| h.as_ref()).collect::<BTreeSet<_>>().len()
        ))
    });
    let stunnel = check("stunnel", &|| {
        let response = Request::get(format!("https://{address}/healthz"))
            .cacert(&ca)
            .timeout(Duration::from_secs(2))
            .send(&sumo_netns())?;
        if response.status != 200 {
            bail!("https://{address}/healthz answered {}", response.status);
        }
        Ok(format!("https://{address}/receiver/v1/http/…"))
    });
    Some(HostStatus { name: format!("{SUMO_HOST} (Sumo Logic stand-in)"), daemons: vec![standin, stunnel] })
}

// ---------------------------------------------------------------------------------------
// The query API of the stand-in (loopback of its namespace)

/// `GET path` on the stand-in, from inside its namespace; the body of a 200 answer.
pub fn api_get(path: &str) -> Result<String> {
    let path = path.to_string();
    super::netns::run_in(&sumo_netns(), move || -> Result<String> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, STANDIN_PORT));
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
            .context("the monitoring stand-in does not answer")?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: stand-in\r\nConnection: close\r\n\r\n")?;
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes)?;
        let text = String::from_utf8(bytes).context("the stand-in answered non-UTF-8")?;
        let (head, body) = text.split_once("\r\n\r\n").context("the stand-in answered no HTTP")?;
        let status = head.split_whitespace().nth(1).unwrap_or_default();
        if status != "200" {
            bail!("stand-in GET {path}: {status} {body}");
        }
        Ok(body.to_string())
    })?
}

/// Records the stand-in holds matching `filters` (see `sumologic::Store::query`).
pub fn records(filters: &[(&str, String)]) -> Result<Vec<Record>> {
    let query: Vec<String> =
        filters.iter().map(|(k, v)| format!("{k}={}", v.replace('/', "%2F").replace(' ', "+"))).collect();
    let body = api_get(&format!("/api/records?{}", query.join("&")))?;
    serde_json::from_str(&body).context("cannot read the stand-in's records")
}

// ---------------------------------------------------------------------------------------
// collectd on the hosts

/// Readies collectd's start on `host`: its state directory, Sumo Logic's plugin linked where
/// the config expects it, and the secrets file filled from the host's secrets (mode 0600),
/// as the NixOS module's ExecStartPre does.
pub fn prepare_collectd(topology: &Topology, host: &Host, layout: &Layout, uid: u32, gid: u32) -> Result<()> {
    let plugin = Path::new(COLLECTD_PLUGIN_DIR);
    if !plugin.join("sumologic_collectd_metrics/__init__.py").exists() {
        bail!("Sumo Logic's collectd plugin is missing in {COLLECTD_PLUGIN_DIR}: run scripts/setup");
    }
    if !Path::new(COLLECTD).exists() {
        bail!("{COLLECTD} is missing: run scripts/setup (collectd-core)");
    }
    std::fs::create_dir_all(layout.state.join("collectd"))?;
    std::os::unix::fs::chown(layout.state.join("collectd"), Some(uid), Some(gid))?;
    // The CA is public; collectd (not in the secrets group) verifies the stand-in with a copy.
    std::fs::copy(layout.ca_cert(), collectd_ca(layout))?;
    std::fs::set_permissions(collectd_ca(layout), std::fs::Permissions::from_mode(0o644))?;
    let link = render_monitoring::collectd_python_path(layout);
    if std::fs::read_link(&link).ok().as_deref() != Some(plugin) {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(plugin, &link).with_context(|| format!("cannot link {}", link.display()))?;
    }
    let mut values = Vec::new();
    for (placeholder, file) in render_monitoring::collectd_secret_inputs(topology, host, layout) {
        let value = std::fs::read_to_string(&file).with_context(|| format!("cannot read secret {}", file.display()))?;
        values.push((placeholder, value));
    }
    let values: Vec<(&str, &str)> = values.iter().map(|(p, v)| (*p, v.as_str())).collect();
    let text = render_monitoring::fill_collectd_secrets(
        &render_monitoring::collectd_secrets_template(topology, host, layout),
        &values,
    );
    let path = render_monitoring::collectd_secrets_path(layout);
    let dir = path.parent().expect("secrets file in a dir");
    std::fs::create_dir_all(dir)?;
    // As modules/monitoring.nix does: the directory 0750 and the file 0600, collectd's own.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text)?;
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
    std::os::unix::fs::chown(&temporary, Some(uid), Some(gid))?;
    std::fs::rename(&temporary, &path)?;
    Ok(())
}

/// What the lab adds to collectd's unit environment, a named deviation: the lab's Sumo Logic
/// stand-in has a certificate of the internal CA (the real endpoint's is public), so the
/// plugin verifies against the host's copy of that CA, and it never uses a proxy.
pub fn collectd_environment(layout: &Layout) -> Vec<(String, String)> {
    let ca = collectd_ca(layout).display().to_string();
    vec![("REQUESTS_CA_BUNDLE".to_string(), ca.clone()), ("CURL_CA_BUNDLE".into(), ca), ("NO_PROXY".into(), "*".into())]
}

/// The copy of the internal CA collectd reads (see [`collectd_environment`]).
fn collectd_ca(layout: &Layout) -> std::path::PathBuf {
    layout.config("collectd-ca.crt")
}

/// collectd on `host` is healthy when its host metrics reached the stand-in lately, with the
/// host's category.
pub fn collectd_health(topology: &Topology, host: &Host) -> Result<String> {
    let interval = f64::from(render_monitoring::collectd_interval_seconds(&Layout::lab(&host.name)));
    let window = 3.0 * interval + 2.0;
    let records = records(&[
        ("host", host.name.clone()),
        ("kind", "metrics".into()),
        ("metric", "load".into()),
        ("since", format!("{:.3}", now() - window)),
    ])?;
    let Some(last) = records.last() else {
        bail!("no metrics from {} at the stand-in in the last {window:.0}s", host.name)
    };
    let category = render_monitoring::source_category(topology, host);
    if last.category.as_deref() != Some(category.as_str()) {
        bail!("metrics from {} arrive with category {:?}, not {category}", host.name, last.category);
    }
    Ok(format!("shipping to the stand-in ({category}), last {:.1}s ago", (now() - last.received_at).max(0.0)))
}

/// SQL creating the account the collectors read MariaDB's status with: local socket only,
/// `PROCESS, REPLICATION CLIENT`, password from the lab's secrets. Empty when no db host is
/// monitored.
pub fn monitor_user_sql(topology: &Topology) -> Result<String> {
    if topology.monitoring.is_none() || !topology.hosts.iter().any(|h| h.monitored && h.has(crate::spec::Role::Db)) {
        return Ok(String::new());
    }
    let file = super::secrets_dir().join(crate::secrets::db_monitor_password_file());
    let password = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let password = password.trim().replace('\\', "\\\\").replace('\'', "\\'");
    let user = render_monitoring::DB_MONITOR_USER;
    Ok(format!(
        "CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY '{password}';\n\
         ALTER USER '{user}'@'localhost' IDENTIFIED BY '{password}';\n\
         GRANT PROCESS, REPLICATION CLIENT ON *.* TO '{user}'@'localhost';\n"
    ))
}

// ---------------------------------------------------------------------------------------
// Scenario steps

/// Connects of `probes`, grouped by source namespace, compared with their expectations;
/// mismatches as failure lines.
fn run_probes(probes: &[Probe], timeout: Duration) -> Result<(usize, Vec<String>)> {
    let mut by_source: BTreeMap<&Source, Vec<&Probe>> = BTreeMap::new();
    for probe in probes.iter().filter(|p| p.address.is_some()) {
        by_source.entry(&probe.from).or_default().push(probe);
    }
    let outcomes: Vec<Vec<(&Probe, Connect)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = by_source
            .iter()
            .map(|(source, probes)| {
                scope.spawn(move || -> Result<Vec<(&Probe, Connect)>> {
                    let netns = match source {
                        Source::Internet => address_plan::INTERNET.to_string(),
                        Source::Admin => address_plan::ADMIN.to_string(),
                        Source::Host(name) => host_netns(name),
                    };
                    let targets: Vec<(Ipv4Addr, u16)> =
                        probes.iter().map(|p| (p.address.expect("filtered"), p.port)).collect();
                    let got = probe::tcp_connect_many(&netns, &targets, timeout)?;
                    Ok(probes.iter().copied().zip(got).collect())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a probe thread panicked"))?)
            .collect::<Result<Vec<_>>>()
    })?;
    let mut failures = Vec::new();
    let mut n = 0;
    for (probe, got) in outcomes.into_iter().flatten() {
        n += 1;
        if !probe.accepts(got) {
            failures.push(format!(
                "{} → {} {}:{}: expected {}, got {} — {}",
                probe.from,
                probe.to,
                probe.address.expect("filtered"),
                probe.port,
                probe.expect.symbol(),
                got.symbol(),
                probe.reason
            ));
        }
    }
    Ok((n, failures))
}

/// The `plugin=` tags of the samples of `records`.
fn plugins(records: &[&Record]) -> BTreeSet<String> {
    records
        .iter()
        .filter_map(|r| match &r.payload {
            Payload::Metrics { samples, .. } => Some(samples),
            Payload::Logs { .. } => None,
        })
        .flatten()
        .filter_map(|s| s.tags.get("plugin").cloned())
        .collect()
}

pub(super) fn metrics_arrive(
    _lab: &Lab,
    log: &StepLog,
    endpoint: Ipv4Addr,
    hosts: &[MonitoredHost],
    egress: &[Probe],
    within_ms: u64,
) -> Result<Verdict> {
    let mut failures = Vec::new();
    let (n, mismatches) = run_probes(egress, Duration::from_millis(500))?;
    if mismatches.is_empty() {
        log.line(format!("{n} connects from the hosts to the endpoint {endpoint} match their egress rules (443 open, 80 as the firewall says)"));
    }
    failures.extend(mismatches);

    // The endpoint refuses a wrong token, as Sumo Logic does: the URL is the secret.
    if let Some(first) = hosts.first() {
        let netns = host_netns(&first.host);
        let ca = Layout::lab(&first.host).ca_cert();
        match Request::get(format!("https://{endpoint}/receiver/v1/http/not-the-token"))
            .cacert(&ca)
            .arg("--data-binary")
            .arg("x")
            .send(&netns)
        {
            Ok(r) if r.status == 401 => log.line(format!("{} → POST with a wrong token: 401", first.host)),
            Ok(r) => failures.push(format!("POST with a wrong token answered {}", r.status)),
            Err(e) => failures.push(format!("POST with a wrong token from {}: {e:#}", first.host)),
        }
    }

    let expected: BTreeMap<&str, &MonitoredHost> = hosts.iter().map(|h| (h.host.as_str(), h)).collect();
    let started = now();
    let deadline = Instant::now() + Duration::from_millis(within_ms);
    let window = 10.0;
    let (received, missing) = loop {
        let received = records(&[("kind", "metrics".into()), ("since", format!("{:.3}", now() - window))])?;
        let missing: Vec<String> = hosts
            .iter()
            .filter_map(|host| {
                let of_host: Vec<&Record> =
                    received.iter().filter(|r| r.host.as_deref() == Some(host.host.as_str())).collect();
                let seen = plugins(&of_host);
                let lacking: Vec<&String> = host.plugins.iter().filter(|p| !seen.contains(*p)).collect();
                (!lacking.is_empty()).then(|| {
                    format!(
                        "{}: no {} metrics",
                        host.host,
                        lacking.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    )
                })
            })
            .collect();
        if missing.is_empty() || Instant::now() >= deadline {
            break (received, missing);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    failures.extend(missing);
    let mut per_host: BTreeMap<String, (usize, usize, BTreeSet<Option<String>>)> = BTreeMap::new();
    for record in &received {
        let host = record.host.clone().unwrap_or_else(|| "(no X-Sumo-Host)".into());
        let entry = per_host.entry(host).or_default();
        entry.0 += 1;
        if let Payload::Metrics { samples, .. } = &record.payload {
            entry.1 += samples.len();
        }
        entry.2.insert(record.category.clone());
    }
    for (host, (posts, samples, categories)) in &per_host {
        let shown: Vec<String> = categories.iter().map(|c| c.clone().unwrap_or_else(|| "(none)".into())).collect();
        match expected.get(host.as_str()) {
            Some(want) if categories.len() == 1 && categories.contains(&Some(want.category.clone())) => {
                log.line(format!(
                    "{host:<8} {posts:>3} posts, {samples:>5} samples in {window:.0}s · X-Sumo-Category {}",
                    want.category
                ));
            }
            Some(want) => failures.push(format!("{host}: categories {shown:?}, expected {}", want.category)),
            None => failures.push(format!("metrics from {host} (categories {shown:?}), which is not a monitored host")),
        }
    }
    let waited = now() - started;
    if waited > 0.5 {
        log.line(format!("waited {waited:.1}s for every host's metrics"));
    }
    Ok(Verdict::from_failures(
        log,
        &failures,
        format!("{} hosts ship over HTTPS through their egress rule, each with its name and category", hosts.len()),
    ))
}

/// A defaults file with the monitor account's password (never on a command line).
struct ClientDefaults(tempfile::NamedTempFile);

impl ClientDefaults {
    fn new(user: &str) -> Result<Self> {
        let file = super::secrets_dir().join(crate::secrets::db_monitor_password_file());
        let password = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let mut defaults = tempfile::Builder::new().prefix("nxs-monitor-").suffix(".cnf").tempfile()?;
        write!(defaults, "[client]\nuser={user}\npassword={}\n", password.trim())?;
        defaults.flush()?;
        Ok(ClientDefaults(defaults))
    }

    fn arg(&self) -> String {
        format!("--defaults-extra-file={}", self.0.path().display())
    }
}

pub(super) fn collector_endpoints_local(lab: &Lab, log: &StepLog, endpoints: &[LocalEndpoint]) -> Result<Verdict> {
    let mut failures = Vec::new();
    let mut remote = Vec::new();
    for endpoint in endpoints {
        let netns = host_netns(&endpoint.host);
        let local = match (endpoint.source, &endpoint.url) {
            (CollectorSource::NginxStubStatus, Some(url)) => {
                Request::get(url).timeout(Duration::from_secs(2)).send(&netns).and_then(|r| {
                    if r.status == 200 && r.body.contains("Active connections") {
                        Ok(format!("{url}: {}", r.body.lines().next().unwrap_or_default().trim()))
                    } else {
                        bail!("{url} answered {}", r.status)
                    }
                })
            }
            (CollectorSource::HaproxyStats, Some(url)) => {
                Request::get(format!("{url};csv")).timeout(Duration::from_secs(2)).send(&netns).and_then(|r| {
                    if r.status == 200 && r.body.starts_with("# pxname") {
                        Ok(format!("{url}: {} stats rows", r.body.lines().count().saturating_sub(1)))
                    } else {
                        bail!("{url};csv answered {}", r.status)
                    }
                })
            }
            (CollectorSource::MariadbStatus, _) => {
                let defaults =
                    ClientDefaults::new(endpoint.user.as_deref().unwrap_or(render_monitoring::DB_MONITOR_USER))?;
                let socket = Layout::lab(&endpoint.host).mysql_socket();
                Cmd::new("mariadb")
                    .args([
                        defaults.arg(),
                        format!("--socket={}", socket.display()),
                        "--batch".into(),
                        "--skip-column-names".into(),
                        "--connect-timeout=3".into(),
                    ])
                    .args(["-e", "SHOW GLOBAL STATUS LIKE 'wsrep_cluster_size'"])
                    .netns(&netns)
                    .timeout(Duration::from_secs(10))
                    .stdout()
                    .map_err(anyhow::Error::new)
                    .map(|out| {
                        format!(
                            "{} over {}: {}",
                            endpoint.user.as_deref().unwrap_or_default(),
                            socket.display(),
                            out.trim().replace('\t', " ")
                        )
                    })
            }
            (_, None) => Err(anyhow::anyhow!("no URL to read")),
        };
        match local {
            Ok(detail) => log.line(format!("{:<8} local: {detail}", endpoint.host)),
            Err(e) => failures.push(format!("{} local {:?}: {e:#}", endpoint.host, endpoint.source)),
        }
        remote.extend(endpoint.remote.iter().cloned());
        for from in &endpoint.remote_logins {
            match remote_login(lab, endpoint, from) {
                Ok(refusal) => log.line(format!(
                    "{from} → {}:{} as {}: refused ({refusal})",
                    endpoint.host,
                    endpoint.port,
                    endpoint.user.as_deref().unwrap_or_default()
                )),
                Err(e) => failures.push(format!("{from} → {}: {e:#}", endpoint.host)),
            }
        }
    }
    let (n, mismatches) = run_probes(&remote, Duration::from_millis(500))?;
    let opened: Vec<String> = remote
        .iter()
        .filter(|p| p.expect == Connect::Open)
        .map(|p| format!("{} → {}:{} ({})", p.from, p.to, p.port, p.reason))
        .collect();
    if mismatches.is_empty() {
        log.line(format!("{n} connects from the internet, the admin network and the other hosts end as the bind addresses and firewalls say"));
        for line in &opened {
            log.line(format!("reachable by design: {line}"));
        }
    }
    failures.extend(mismatches);
    Ok(Verdict::from_failures(
        log,
        &failures,
        format!(
            "{} collector endpoints answer locally, {} remote connects refused or filtered",
            endpoints.len(),
            n - opened.len()
        ),
    ))
}

/// Logs in as the monitor account from `from` over TCP: Ok(the server's refusal) when it is
/// refused as it must be.
fn remote_login(lab: &Lab, endpoint: &LocalEndpoint, from: &str) -> Result<String> {
    let user = endpoint.user.as_deref().unwrap_or(render_monitoring::DB_MONITOR_USER);
    let defaults = ClientDefaults::new(user)?;
    let address = lab.host(&endpoint.host).address;
    let mut command = Cmd::new("mariadb")
        .args([
            defaults.arg(),
            format!("--host={address}"),
            format!("--port={}", endpoint.port),
            "--connect-timeout=3".into(),
        ])
        .netns(&host_netns(from))
        .timeout(Duration::from_secs(10));
    if lab.topology.internal_tls {
        command = command.args(["--ssl".to_string(), format!("--ssl-ca={}", Layout::lab(from).ca_cert().display())]);
    }
    match command.args(["-e", "SELECT 1"]).run() {
        Ok(_) => bail!("logged in as {user}: the monitor account must be local only"),
        Err(super::cmd::CmdError::Failed { stderr_tail, .. }) => {
            let answer = stderr_tail.lines().last().unwrap_or_default().trim_start_matches("ERROR ").to_string();
            // The server's own refusal of the account from that address, not a network error.
            if answer.contains("Access denied for user") || answer.contains("is not allowed to connect") {
                Ok(answer)
            } else {
                bail!("the login failed for another reason, the refusal is unproven: {answer}")
            }
        }
        Err(e) => bail!("{e}"),
    }
}

/// One request of the paced load.
#[derive(Debug, Clone)]
struct Sent {
    status: u16,
    web: String,
    error: String,
}

/// What a paced load did.
#[derive(Debug, Clone)]
struct LoadReport {
    sent: Vec<Sent>,
    /// Wall-clock window of the sends.
    from: f64,
    to: f64,
    /// How late the scheduler sent, at worst.
    worst_lag: Duration,
}

/// Sends `rate` requests per second for `duration` from the internet namespace through
/// the virtual IP, open loop: request i is due at i/rate, whatever the earlier ones take
/// (curl processes on a pool of threads), as real clients arrive.
fn paced_load(domain: &str, vip: Ipv4Addr, path: &str, rate: u32, duration: Duration) -> Result<LoadReport> {
    let count = (f64::from(rate) * duration.as_secs_f64()).round() as usize;
    let ca = super::public_trust();
    let url = format!("https://{domain}{path}");
    let resolve = format!("{domain}:443:{vip}");
    super::netns::run_in(address_plan::INTERNET, move || {
        let (jobs, queue) = mpsc::channel::<()>();
        let queue = Arc::new(Mutex::new(queue));
        let sent = Arc::new(Mutex::new(Vec::with_capacity(count)));
        let workers: Vec<_> = (0..LOAD_WORKERS)
            .map(|_| {
                let (queue, sent, ca, url, resolve) =
                    (queue.clone(), sent.clone(), ca.clone(), url.clone(), resolve.clone());
                // Threads started here are in the internet namespace, and so are their curls.
                std::thread::spawn(move || loop {
                    if queue.lock().expect("queue").recv().is_err() {
                        break;
                    }
                    let output = std::process::Command::new("curl")
                        .args([
                            "--silent",
                            "--show-error",
                            "--output",
                            "/dev/null",
                            "--max-time",
                            "5",
                            "--write-out",
                            "%{http_code} %header{x-served-by}",
                        ])
                        .arg("--cacert")
                        .arg(&ca)
                        .args(["--resolve", &resolve, &url])
                        .output();
                    let request = match output {
                        Ok(out) => {
                            let text = String::from_utf8_lossy(&out.stdout).to_string();
                            let mut fields = text.split_whitespace();
                            let status = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                            let web = fields.next().unwrap_or_default().to_string();
                            Sent { status, web, error: String::from_utf8_lossy(&out.stderr).trim().to_string() }
                        }
                        Err(e) => Sent { status: 0, web: String::new(), error: format!("curl: {e}") },
                    };
                    sent.lock().expect("sent").push(request);
                })
            })
            .collect();
        let started = Instant::now();
        let from = now();
        let mut worst_lag = Duration::ZERO;
        for i in 0..count {
            let due = started + Duration::from_secs_f64(i as f64 / f64::from(rate));
            let wait = due.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                worst_lag = worst_lag.max(Instant::now() - due);
            } else {
                std::thread::sleep(wait);
            }
            let _ = jobs.send(());
        }
        let to = from + count as f64 / f64::from(rate);
        drop(jobs);
        for worker in workers {
            let _ = worker.join();
        }
        let sent = sent.lock().expect("sent").clone();
        LoadReport { sent, from, to, worst_lag }
    })
}

/// A host's QPS from a counter: before the load and during it.
#[derive(Debug, Clone, Serialize)]
struct HostQps {
    host: String,
    before: Option<rate::Rate>,
    during: Option<rate::Rate>,
}

impl HostQps {
    fn added(&self) -> Option<f64> {
        Some(self.during?.per_second - self.before.map_or(0.0, |b| b.per_second))
    }
}

fn series(metric: &str, since: f64) -> Result<BTreeMap<String, Vec<Point>>> {
    let received = records(&[("kind", "metrics".into()), ("metric", metric.into()), ("since", format!("{since:.3}"))])?;
    Ok(rate::series_by_host(&received, metric))
}

pub(super) fn web_qps(lab: &Lab, log: &StepLog, step: &Step) -> Result<Verdict> {
    let Step::WebQps {
        domain,
        vip,
        path,
        rate: target,
        duration_ms,
        web_hosts,
        lbs,
        web_metric,
        lb_metric,
        interval_ms,
        tolerance_percent,
    } = step
    else {
        bail!("not a web QPS step")
    };
    let interval = *interval_ms as f64 / 1000.0;
    let counted: Vec<(&String, &String)> =
        web_hosts.iter().map(|h| (h, web_metric)).chain(lbs.iter().map(|h| (h, lb_metric))).collect();

    // 1. The rate before the load, with nothing else running (the earlier steps' requests
    //    must not count): the LBs' health checks and collectd's own stub_status reads.
    //    Data points read after this step began: collectd stamps whole seconds, the reading
    //    happened within the second after its stamp.
    let quiet_from = now() + 1.0;
    let baseline = probe::wait_for(
        "data points of every counter before the load",
        Duration::from_secs_f64(5.0 * interval + 10.0),
        Duration::from_millis(500),
        || {
            let web = series(web_metric, quiet_from - 5.0)?;
            let lb = series(lb_metric, quiet_from - 5.0)?;
            let rates: Vec<(String, Option<rate::Rate>)> = counted
                .iter()
                .map(|(host, metric)| {
                    let all = if *metric == web_metric { &web } else { &lb };
                    let rate = all
                        .get(host.as_str())
                        .and_then(|points| rate::counter_rate(points, quiet_from, f64::INFINITY))
                        .filter(|r| r.points >= BASELINE_POINTS);
                    (host.to_string(), rate)
                })
                .collect();
            Ok(rates.iter().all(|(_, r)| r.is_some()).then_some(rates))
        },
    )?;
    let before: BTreeMap<String, rate::Rate> = baseline.into_iter().filter_map(|(h, r)| Some((h, r?))).collect();

    // 2. The load, through whichever LB holds the VIP.
    let active = context::vip_holder(lab);
    let load = paced_load(domain, *vip, path, *target, Duration::from_millis(*duration_ms))?;
    let seconds = load.to - load.from;
    let ok = load.sent.iter().filter(|s| s.status == 200).count();
    let generated = load.sent.len() as f64 / seconds;
    let mut served: BTreeMap<&str, usize> = BTreeMap::new();
    for sent in &load.sent {
        *served.entry(if sent.web.is_empty() { "?" } else { sent.web.as_str() }).or_default() += 1;
    }
    log.line(format!(
        "load: {} requests in {seconds:.1}s from the internet through {vip} ({generated:.1}/s, target {target}/s, scheduler late by ≤ {} ms), {ok} answered 200; served by {}",
        load.sent.len(),
        load.worst_lag.as_millis(),
        served.iter().map(|(w, n)| format!("{w}×{n}")).collect::<Vec<_>>().join(" ")
    ));

    // 3. Data points after the load's end from every counter, then the rates inside it.
    //    collectd stamps whole seconds (the reading happened within the second after):
    //    keep the points whose reading surely saw the load running.
    let (from, to) = (load.from + 0.5, load.to - 1.0);
    let (web, lb) = probe::wait_for(
        "data points after the load",
        Duration::from_secs_f64(3.0 * interval + 10.0),
        Duration::from_millis(500),
        || {
            let web = series(web_metric, load.from - 10.0)?;
            let lb = series(lb_metric, load.from - 10.0)?;
            let done = counted.iter().all(|(host, metric)| {
                let all = if *metric == web_metric { &web } else { &lb };
                all.get(host.as_str()).and_then(|p| rate::last_time(p)).is_some_and(|t| t >= load.to)
            });
            Ok(done.then_some((web.clone(), lb.clone())))
        },
    )?;
    let qps = |host: &str, all: &BTreeMap<String, Vec<Point>>| HostQps {
        host: host.to_string(),
        before: before.get(host).copied(),
        during: all.get(host).and_then(|points| rate::counter_rate(points, from, to)),
    };
    let web_qps: Vec<HostQps> = web_hosts.iter().map(|h| qps(h, &web)).collect();
    let lb_qps: Vec<HostQps> = lbs.iter().map(|h| qps(h, &lb)).collect();

    let mut failures = Vec::new();
    let tolerance = f64::from(*tolerance_percent) / 100.0;
    for (name, rows) in [(web_metric, &web_qps), (lb_metric, &lb_qps)] {
        for row in rows.iter() {
            let (Some(during), Some(added)) = (row.during, row.added()) else {
                failures.push(format!("{}: fewer than two {name} data points inside the load", row.host));
                continue;
            };
            let before = row.before.map_or(0.0, |b| b.per_second);
            let holder = if active.as_deref() == Some(row.host.as_str()) { " (holds the VIP)" } else { "" };
            log.line(format!(
                "{:<8} {name}: {:>6.2} q/s during the load, {before:>5.2} q/s before → {added:>6.2} q/s from the load ({} points over {:.0}s{}){holder}",
                row.host,
                during.per_second,
                during.points,
                during.seconds,
                if during.resets > 0 { format!(", {} reset(s)", during.resets) } else { String::new() },
            ));
        }
    }
    let within = |measured: f64| (measured - generated).abs() <= tolerance * generated;
    let web_sum: f64 = web_qps.iter().filter_map(HostQps::added).sum();
    log.line(format!(
        "web tier: {web_sum:.2} q/s from the load by the nginx counters, generated {generated:.2}/s ({:+.1}%)",
        100.0 * (web_sum - generated) / generated
    ));
    if !within(web_sum) {
        failures.push(format!("the web hosts' QPS sums to {web_sum:.2}/s, generated {generated:.2}/s: off by more than {tolerance_percent}%"));
    }
    if !lb_qps.is_empty() {
        let lb_sum: f64 = lb_qps.iter().filter_map(HostQps::added).sum();
        log.line(format!(
            "load balancers: {lb_sum:.2} q/s from the load by HAProxy's frontend counter ({:+.1}%)",
            100.0 * (lb_sum - generated) / generated
        ));
        if !within(lb_sum) {
            failures.push(format!(
                "the LBs' QPS sums to {lb_sum:.2}/s, generated {generated:.2}/s: off by more than {tolerance_percent}%"
            ));
        }
    }
    if (ok as f64) < 0.99 * load.sent.len() as f64 {
        let error = load
            .sent
            .iter()
            .find(|s| s.status != 200)
            .map(|s| format!("status {} {}", s.status, s.error))
            .unwrap_or_default();
        failures.push(format!("{} of {} requests failed (first: {error})", load.sent.len() - ok, load.sent.len()));
    }
    if generated < 0.9 * f64::from(*target) {
        failures.push(format!(
            "the client sent {generated:.1}/s, not the {target}/s asked: the lab machine is too busy to judge"
        ));
    }
    Ok(Verdict::from_failures(
        log,
        &failures,
        format!("web QPS from the counters {web_sum:.1}/s for a load of {generated:.1}/s (±{tolerance_percent}%)"),
    ))
}

// ---------------------------------------------------------------------------------------
// `nixstack lab qps`

/// One row of `lab qps`.
#[derive(Debug, Clone, Serialize)]
struct QpsRow {
    host: String,
    tier: &'static str,
    /// Requests per second over the window; `None` without two data points.
    qps: Option<f64>,
    /// Seconds since the newest data point.
    age: Option<f64>,
    holds_vip: bool,
}

/// `nixstack lab qps [--json] [--watch]`: requests per second per web host and per LB over
/// the last seconds, from the counters the stand-in received, as Sumo Logic would chart them.
pub fn qps_command(json: bool, watch: bool) -> Result<i32> {
    let Some(state) = State::load()? else { bail!("no lab is up: run `nixstack lab up` first") };
    let topology = crate::topology::compile(&crate::spec::SpecSource {
        name: state.spec_name.clone(),
        text: state.spec_text.clone(),
    })
    .map_err(anyhow::Error::new)?;
    if !enabled(&topology) {
        bail!("the lab's spec has no monitored host: nothing ships request counters");
    }
    let plan = address_plan::plan(&topology)?;
    let interval = f64::from(render_monitoring::collectd_interval_seconds(&Layout::lab(&topology.hosts[0].name)));
    let window = 5.0 * interval;
    let state = Mutex::new(state);
    let reporter = super::event::Reporter::new(json);
    let lab = Lab { topology: &topology, plan: &plan, state: &state, reporter: &reporter };
    loop {
        let rows = qps_rows(&lab, window)?;
        if json {
            println!(
                "{}",
                serde_json::to_string(&serde_json::json!({ "time": now(), "window_seconds": window, "hosts": rows }))?
            );
        } else {
            print!("{}", qps_table(&rows, window));
        }
        if !watch {
            return Ok(0);
        }
        std::io::stdout().flush()?;
        std::thread::sleep(Duration::from_secs_f64(interval));
    }
}

fn qps_rows(lab: &Lab, window: f64) -> Result<Vec<QpsRow>> {
    let t = now();
    let mut rows = Vec::new();
    let holder = context::vip_holder(lab);
    let tiers = [
        ("web", crate::spec::Role::Web, crate::stack::scenario::WEB_REQUESTS_METRIC),
        ("lb", crate::spec::Role::Lb, crate::stack::scenario::LB_REQUESTS_METRIC),
    ];
    for (tier, role, metric) in tiers {
        let all = series(metric, t - window - 10.0)?;
        for host in lab.topology.hosts_with(role).filter(|h| h.monitored) {
            let points = all.get(&host.name).map(Vec::as_slice).unwrap_or_default();
            rows.push(QpsRow {
                host: host.name.clone(),
                tier,
                qps: rate::counter_rate(points, t - window, t).map(|r| r.per_second),
                age: rate::last_time(points).map(|last| (t - last).max(0.0)),
                holds_vip: holder.as_deref() == Some(host.name.as_str()),
            });
        }
    }
    Ok(rows)
}

fn qps_table(rows: &[QpsRow], window: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "QPS over the last {window:.0}s at {} UTC, from the request counters at the Sumo Logic stand-in:",
        clock(now())
    );
    for (tier, title) in [("web", "web hosts (nginx requests)"), ("lb", "load balancers (HAProxy https frontend)")] {
        let tier_rows: Vec<&QpsRow> = rows.iter().filter(|r| r.tier == tier).collect();
        if tier_rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {title}");
        for row in &tier_rows {
            let qps = row.qps.map_or_else(|| "     -".to_string(), |q| format!("{q:>6.1}"));
            let age = row.age.map_or_else(|| "no data".to_string(), |a| format!("data {a:.0}s old"));
            let _ = writeln!(
                out,
                "    {:<10} {qps} q/s   {age}{}",
                row.host,
                if row.holds_vip { "   holds the VIP" } else { "" }
            );
        }
        let total: f64 = tier_rows.iter().filter_map(|r| r.qps).sum();
        let _ = writeln!(out, "    {:<10} {total:>6.1} q/s", "total");
        if tier == "web" {
            out.push_str(
                "    (an idle web host counts the LBs' health checks and the collector's stub_status reads)\n",
            );
        }
    }
    out
}

/// `HH:MM:SS` of a time since the epoch, UTC.
fn clock(seconds: f64) -> String {
    let of_day = seconds.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", of_day / 3600, of_day / 60 % 60, of_day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stunnel_config_terminates_tls_on_the_endpoint_and_forwards_to_loopback() {
        let text = stunnel_config(&Layout::lab(SUMO_HOST), Ipv4Addr::new(192, 0, 2, 10));
        assert!(text.contains("accept = 192.0.2.10:443\n"));
        assert!(text.contains(&format!("connect = 127.0.0.1:{STANDIN_PORT}\n")));
        assert!(text.contains("cert = /var/lib/nixstack-lab/sumo/secrets/standin.pem\n"));
    }

    #[test]
    fn qps_table_sums_each_tier() {
        let rows = vec![
            QpsRow { host: "web1".into(), tier: "web", qps: Some(7.0), age: Some(1.0), holds_vip: false },
            QpsRow { host: "web2".into(), tier: "web", qps: Some(6.5), age: Some(1.0), holds_vip: false },
            QpsRow { host: "lb1".into(), tier: "lb", qps: Some(13.0), age: Some(0.0), holds_vip: true },
            QpsRow { host: "lb2".into(), tier: "lb", qps: None, age: None, holds_vip: false },
        ];
        let table = qps_table(&rows, 10.0);
        assert!(table.contains("total        13.5 q/s"), "{table}");
        assert!(table.contains("lb1          13.0 q/s   data 0s old   holds the VIP"), "{table}");
        assert!(table.contains("lb2             - q/s   no data"), "{table}");
        assert_eq!(clock(1_795_698_004.9), "13:00:04");
    }
}
