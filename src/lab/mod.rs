//! The lab: the whole topology on this machine, one network namespace per host, running
//! the real daemons with the lab-layout configs that `nixstack build` renders, unchanged.
//!
//! `up` builds the network ([`network`]), installs secrets and configs, and starts the
//! daemons in the Topology's start order ([`daemons`]); `test` runs the one [`scenario`];
//! `status` shows each host's daemons and health; `down` removes exactly what `up` created,
//! read from the [state file](state), also after a crash.

mod accounts;
pub mod acme;
pub mod backup;
pub mod chaos;
pub mod cmd;
mod context;
pub mod daemons;
mod event;
pub mod galera;
pub mod host;
pub mod monitoring;
pub mod netns;
pub mod network;
pub mod probe;
pub mod process;
pub mod run;
pub mod sshd;
pub mod state;
mod step;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::render::LAB_ROOT;
use crate::spec::SpecSource;
use crate::topology::Topology;

pub use event::{Event, Reporter};
use state::{Resource, State};

/// The lab creates network namespaces and runs daemons as other users: root only.
pub fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the lab creates network namespaces and runs daemons: run it as root");
    }
    Ok(())
}

/// Where operator files of the lab live: the admin SSH key, the generated secrets.
pub fn admin_dir() -> PathBuf {
    Path::new(LAB_ROOT).join("admin")
}

/// The stack secrets of the lab (`nixstack secrets init` output).
pub fn secrets_dir() -> PathBuf {
    Path::new(LAB_ROOT).join("secrets")
}

/// What the lab's internet client trusts for the stack's domain (written by `lab up`).
pub fn public_trust() -> PathBuf {
    Path::new(LAB_ROOT).join("public-trust.pem")
}

/// The spec the lab runs: the one recorded by a running lab, else the one given (or the
/// default search). A running lab with another spec is an error: one lab at a time.
fn lab_spec(spec: Option<&Path>, state: Option<&State>) -> Result<SpecSource> {
    match (state, spec) {
        (Some(state), None) if !state.spec_text.is_empty() => {
            Ok(SpecSource { name: state.spec_name.clone(), text: state.spec_text.clone() })
        }
        (Some(state), Some(path)) if !state.spec_text.is_empty() => {
            let source = crate::spec::read(Some(path))?;
            if source.text != state.spec_text {
                bail!(
                    "the lab is up with spec {}; run `nixstack lab down` before starting {}",
                    state.spec_name,
                    source.name
                );
            }
            Ok(source)
        }
        _ => crate::spec::read(spec),
    }
}

fn compile(source: &SpecSource) -> Result<Topology> {
    crate::topology::compile(source).map_err(anyhow::Error::new)
}

/// `lab up`: creates what is missing and starts what is not running.
pub fn up(spec: Option<&Path>, reporter: &Reporter) -> Result<i32> {
    let existing = State::load()?;
    let source = lab_spec(spec, existing.as_ref())?;
    let topology = compile(&source)?;
    let root = Path::new(LAB_ROOT);
    let fresh = existing.is_none();
    let mut state = existing.unwrap_or_default();
    // The state file lives in the lab root, so the root is recorded right after it is
    // made. An empty root without a state file is what a crash between the two leaves:
    // ours as well.
    let root_is_ours = !root.exists() || (fresh && root.read_dir().map(|mut d| d.next().is_none()).unwrap_or(false));
    if root_is_ours {
        std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
        reporter.created("dir", root.display().to_string());
        state.record(Resource::Dir { path: root.to_path_buf() })?;
    }
    state.spec_name = source.name.clone();
    state.spec_text = source.text.clone();
    state.save()?;
    // The lab's systems restart the app through this binary (`lab restart`, from their
    // switch-to-configuration).
    let exe = root.join(crate::stack::LAB_EXECUTABLE);
    let _ = std::fs::remove_file(&exe);
    std::os::unix::fs::symlink(std::env::current_exe()?, &exe)
        .with_context(|| format!("cannot link {}", exe.display()))?;

    let plan = crate::stack::address_plan::plan(&topology)?;
    let result = network::apply(&plan, &mut state, reporter).and_then(|()| {
        let state = Mutex::new(state);
        daemons::up(&topology, &plan, &state, reporter)
    });
    if let Err(error) = result {
        reporter.done("up", false);
        return Err(error.context(
            "lab up stopped; `nixstack lab status` shows what runs, `nixstack lab down` removes everything it created",
        ));
    }
    reporter.done("up", true);
    Ok(0)
}

/// `lab restart HOST DAEMON`: stops the daemon as systemd stops a unit (SIGTERM, then waits
/// until it has exited, up to systemd's default `TimeoutStopSec=` of 90 s) and starts it as
/// `lab up` does.
pub fn restart(host: &str, daemon: &str, reporter: &Reporter) -> Result<i32> {
    let Some(existing) = State::load()? else { bail!("no lab is up: run `nixstack lab up` first") };
    let source = lab_spec(None, Some(&existing))?;
    let topology = compile(&source)?;
    let plan = crate::stack::address_plan::plan(&topology)?;
    let Some(spec_host) = topology.host(host) else { bail!("the lab's spec has no host {host}") };
    let services = crate::stack::for_host(&topology, spec_host);
    let Some(service) = services.iter().copied().find(|s| s.name() == daemon && !s.is_oneshot()) else {
        let names: Vec<&str> = services.iter().filter(|s| !s.is_oneshot()).map(|s| s.name()).collect();
        bail!("{host} runs no daemon {daemon}; it runs: {}", names.join(", "));
    };
    let state = Mutex::new(existing);
    let lab = context::Lab { topology: &topology, plan: &plan, state: &state, reporter };
    let stopped = daemons::kill(host, service, libc::SIGTERM);
    daemons::wait_gone(host, service, Duration::from_secs(90))?;
    reporter.emit(Event::Applied { host: host.into(), what: format!("{daemon} stopped (pids {stopped:?})") });
    daemons::start(&lab, lab.host(host), service)?;
    reporter.done("restart", true);
    Ok(0)
}

/// `lab test`: runs the scenario against the running lab.
pub fn test(spec: Option<&Path>, reporter: &Reporter) -> Result<i32> {
    let Some(existing) = State::load()? else { bail!("no lab is up: run `nixstack lab up` first") };
    let source = lab_spec(spec, Some(&existing))?;
    let topology = compile(&source)?;
    let plan = crate::stack::address_plan::plan(&topology)?;
    let scenario = crate::stack::scenario::Scenario::for_topology(&topology);
    let state = Mutex::new(existing);
    let ok = run::run(&scenario, &topology, &plan, &state, reporter)?;
    reporter.done("test", ok);
    Ok(if ok { 0 } else { 1 })
}

/// `lab chaos`: the db tier's fault suite against the running lab ([`chaos`]). Exit 1 when
/// any fault lost, duplicated or diverged a write, or the tier did not recover.
pub fn chaos(spec: Option<&Path>, faults: &[chaos::Fault], timing: chaos::Timing, reporter: &Reporter) -> Result<i32> {
    let Some(existing) = State::load()? else { bail!("no lab is up: run `nixstack lab up` first") };
    let source = lab_spec(spec, Some(&existing))?;
    let topology = compile(&source)?;
    let plan = crate::stack::address_plan::plan(&topology)?;
    let state = Mutex::new(existing);
    let reports = chaos::run(&topology, &plan, &state, reporter, faults, timing)?;
    let ok = reports.len() == faults.len() && reports.iter().all(|r| r.passed);
    reporter.done("chaos", ok);
    Ok(if ok { 0 } else { 1 })
}

/// `lab acme`: orders (or renews) each selected LB's certificate from the lab's pebble.
/// Exit 1 when an order fails.
pub fn acme_orders(spec: Option<&Path>, renew: bool, on: &[String], reporter: &Reporter) -> Result<i32> {
    let Some(existing) = State::load()? else { bail!("no lab is up: run `nixstack lab up` first") };
    let source = lab_spec(spec, Some(&existing))?;
    let topology = compile(&source)?;
    let Some(lb) = topology.lb.as_ref().filter(|_| acme::enabled(&topology)) else {
        bail!("the spec's load balancers do not use ACME (lb.tls.mode = \"acme\")")
    };
    if let Some(unknown) = on.iter().find(|name| !lb.hosts.contains(name)) {
        bail!("`{unknown}` is not a load balancer of the spec (they are {})", lb.hosts.join(", "));
    }
    let plan = crate::stack::address_plan::plan(&topology)?;
    let state = Mutex::new(existing);
    let lab = context::Lab { topology: &topology, plan: &plan, state: &state, reporter };
    let new_root = acme::pebble_up(&lab)?;
    if new_root {
        reporter.warning("pebble was restarted with a new root: every LB orders again".to_string());
    }
    // Renewing now: `--days` above any certificate's lifetime makes lego renew at once (the
    // units renew within validMinDays of expiry; the lab cannot wait for that).
    let order = if renew { crate::stack::acme::Order::Renew { days: 36500 } } else { crate::stack::acme::Order::Run };
    let mut ok = true;
    for name in lb.hosts.iter().filter(|name| new_root || on.is_empty() || on.contains(name)) {
        let host = lab.host(name);
        let ordered =
            acme::order(&lab, host, order).and_then(|_| daemons::reload(&lab, host, crate::stack::Service::Haproxy));
        if let Err(error) = ordered {
            reporter.warning(format!("{name}: {error:#}"));
            ok = false;
        }
    }
    reporter.done("acme", ok);
    Ok(if ok { 0 } else { 1 })
}

/// `lab rotate`: renews the lab's host certificates (`secrets rotate` on the lab's secrets
/// directory), installs them on their hosts and reloads each daemon that reads one, as
/// deploy does, host by host in start order; serving never stops.
pub fn rotate(spec: Option<&Path>, hosts: &[String], reporter: &Reporter) -> Result<i32> {
    let Some(existing) = State::load()? else { bail!("no lab is up: run `nixstack lab up` first") };
    let source = lab_spec(spec, Some(&existing))?;
    let topology = compile(&source)?;
    let plan = crate::stack::address_plan::plan(&topology)?;
    let state = Mutex::new(existing);
    let lab = context::Lab { topology: &topology, plan: &plan, state: &state, reporter };
    let report = crate::secrets::rotate(&topology, &secrets_dir(), hosts)?;
    for renewed in &report.renewed {
        reporter.emit(Event::Applied {
            host: "secrets".into(),
            what: format!(
                "{} renewed: serial {} → {}, valid until {}",
                renewed.file,
                renewed.old_serial,
                renewed.serial,
                crate::secrets::date(renewed.not_after)
            ),
        });
    }
    for note in &report.notes {
        reporter.warning(format!("secrets: {note}"));
    }
    let mut ok = true;
    for name in topology.start_order.iter().flatten() {
        let host = lab.host(name);
        let result = daemons::install_secrets(&lab, host, &crate::stack::Layout::lab(name)).and_then(|changed| {
            if changed.iter().any(|f| crate::stack::tls_reload::TLS_FILES.contains(&f.as_str())) {
                reload_drained(&lab, name).map(|done| (changed, done))
            } else {
                Ok((changed, Vec::new()))
            }
        });
        match result {
            Ok((changed, done)) if !changed.is_empty() => reporter.emit(Event::Applied {
                host: name.clone(),
                what: format!(
                    "installed {}; reloaded: {}",
                    changed.join(", "),
                    if done.is_empty() { "nothing".into() } else { done.join(", ") }
                ),
            }),
            Ok(_) => {}
            Err(error) => {
                reporter.warning(format!("{name}: {error:#}"));
                ok = false;
            }
        }
    }
    reporter.done("rotate", ok);
    Ok(if ok { 0 } else { 1 })
}

/// Reloads the certificates of `name`'s daemons as deploy does: a web backend first leaves
/// every HAProxy's pool (drain, its sessions ended) and comes back once its checks pass.
fn reload_drained(lab: &context::Lab, name: &str) -> Result<Vec<String>> {
    use crate::host::health::{set_state, wait_stat};
    let topology = lab.topology;
    let backend = topology.lb.as_ref().is_some_and(|lb| lb.backends.iter().any(|b| b.host == name));
    let lbs: Vec<host::NamespaceHost> =
        topology.lb.iter().flat_map(|lb| &lb.hosts).map(|lb| host::NamespaceHost::lab(lb)).collect();
    const BACKEND: &str = "web";
    let timeout = Duration::from_secs(60);
    if backend {
        for lb in &lbs {
            set_state(lb, BACKEND, name, "drain")?;
            wait_stat(lb, BACKEND, name, timeout, |s| s.scur == 0).map_err(|(e, _)| e)?;
        }
    }
    let done = daemons::reload_tls(lab, lab.host(name))?;
    if backend {
        for lb in &lbs {
            set_state(lb, BACKEND, name, "ready")?;
            wait_stat(lb, BACKEND, name, timeout, |s| s.status.starts_with("UP")).map_err(|(e, _)| e)?;
        }
    }
    Ok(done)
}

/// `lab status`: each host's daemons (recorded pid alive) and health (a probe).
pub fn status(json: bool) -> Result<i32> {
    let Some(state) = State::load()? else {
        if json {
            println!("{}", serde_json::json!({ "up": false }));
        } else {
            println!("no lab is up");
        }
        return Ok(0);
    };
    let topology = compile(&SpecSource { name: state.spec_name.clone(), text: state.spec_text.clone() })?;
    let plan = crate::stack::address_plan::plan(&topology)?;
    let mut report = daemons::status(&topology, &plan, &state);
    report.extend(monitoring::status(&topology, &state));
    if json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({ "up": true, "spec": state.spec_name, "hosts": report }))?
        );
    } else {
        println!("lab up with spec {}", state.spec_name);
        for host in &report {
            println!("{}", host.name);
            for daemon in &host.daemons {
                let pid = daemon.pid.map(|p| format!("pid {p}")).unwrap_or_else(|| "-".into());
                let health = if daemon.healthy { "healthy" } else { "UNHEALTHY" };
                println!("  {:<11} {:<10} {:<9} {}", daemon.daemon, pid, health, daemon.detail);
            }
        }
    }
    let healthy = report.iter().all(|h| h.daemons.iter().all(|d| d.healthy));
    Ok(if healthy { 0 } else { 1 })
}

/// `lab down`: stops the recorded processes (verified by pid, start time and namespace),
/// then any process left inside a recorded namespace, then deletes the recorded
/// namespaces and directories, newest first. Nothing else is touched.
pub fn down(reporter: &Reporter) -> Result<i32> {
    let Some(state) = State::load()? else {
        reporter.emit(Event::Warning { message: "no lab state file: nothing to remove".into() });
        reporter.done("down", true);
        return Ok(0);
    };
    let mut ok = true;
    for resource in state.created.iter().rev() {
        if let Resource::Process { host, daemon, netns, pid: Some(pid), start_time: Some(start_time) } = resource {
            let identity = process::Identity { pid: *pid, start_time: *start_time };
            if process::stop(identity, netns, Duration::from_secs(10)) {
                reporter.emit(Event::Stopped { host: host.clone(), daemon: daemon.clone(), pid: *pid });
            }
        }
    }
    // Whatever still runs inside our namespaces is ours (workers, a process whose pid was
    // never recorded because up crashed right after spawning it, scenario clients).
    for name in state.namespaces().iter().rev() {
        for pid in netns::pids(name) {
            let Some(identity) = process::identity(pid) else { continue };
            let comm = process::comm(pid);
            if process::stop(identity, name, Duration::from_secs(5)) {
                reporter.emit(Event::Stopped { host: name.trim_start_matches("nxs-").into(), daemon: comm, pid });
            }
        }
    }
    for resource in state.created.iter().rev() {
        match resource {
            Resource::Netns { name } if netns::exists(name) => match netns::delete(name) {
                Ok(()) => reporter.emit(Event::Removed { kind: "netns".into(), name: name.clone() }),
                Err(e) => {
                    ok = false;
                    reporter.warning(format!("cannot delete namespace {name}: {e:#}"));
                }
            },
            Resource::Account { account, name } => match accounts::remove(*account, name) {
                Ok(true) => {
                    reporter.emit(Event::Removed { kind: format!("{account:?}").to_lowercase(), name: name.clone() })
                }
                Ok(false) => {}
                Err(e) => {
                    ok = false;
                    reporter.warning(format!("cannot remove {account:?} {name}: {e:#}"));
                }
            },
            Resource::Dir { path } if path.exists() => match std::fs::remove_dir_all(path) {
                Ok(()) => reporter.emit(Event::Removed { kind: "dir".into(), name: path.display().to_string() }),
                Err(e) => {
                    ok = false;
                    reporter.warning(format!("cannot remove {}: {e}", path.display()));
                }
            },
            _ => {}
        }
    }
    // The state file itself, if the lab root was not ours to remove.
    let state_file = state::state_path();
    if ok && state_file.exists() {
        std::fs::remove_file(&state_file).with_context(|| format!("cannot remove {}", state_file.display()))?;
    }
    reporter.done("down", ok);
    Ok(if ok { 0 } else { 2 })
}
