//! Carrying out a plan: build every selected system in one `nix build`, skip hosts that
//! already run theirs, copy closures and secrets, then batch by batch: drain (web hosts, in
//! every HAProxy), switch, health gate, put back; a failed gate rolls that host back and
//! stops the rollout. Nothing here ever reports success after a rollback.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::closure::{self, StorePath, Systems};
use super::health::{self, GatePolicy};
use super::host::{Host, SecretFile};
use super::plan::{Batch, Plan};
use super::progress::{Event, Progress};
use super::Goal;
use crate::spec::Role;
use crate::stack::tls_reload::TLS_FILES;
use crate::topology::Topology;

/// The HAProxy backend of the web tier (render::haproxy names it so).
pub const WEB_BACKEND: &str = "web";

/// Bounds and knobs of a rollout.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The one `nix build` (and its evaluation).
    pub build_timeout: Duration,
    /// Closures copied at once.
    pub copy_parallel: usize,
    pub gate: GatePolicy,
    /// Waiting for a drained server's sessions to end, and for a server to be back up.
    pub drain_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            build_timeout: Duration::from_secs(3600),
            copy_parallel: 4,
            gate: GatePolicy::default(),
            drain_timeout: Duration::from_secs(60),
        }
    }
}

/// Everything a rollout acts on.
pub struct Rollout<'a> {
    pub topology: &'a Topology,
    pub plan: &'a Plan,
    pub systems: &'a Systems,
    /// Every host of the topology by name: load balancers are drained through even when
    /// they are not deployed.
    pub hosts: &'a BTreeMap<String, Box<dyn Host>>,
    /// Local secrets (`nixstack secrets init`); `None` uploads nothing.
    pub secrets_dir: Option<&'a Path>,
    pub options: Options,
}

/// How a rollout ended. `ok` only when every host that needed it was activated and passed
/// its gate; a rollback is a failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    pub activated: Vec<String>,
    pub unchanged: Vec<String>,
    pub rolled_back: Vec<String>,
    pub failed: Vec<String>,
    /// What each host was told to run.
    pub systems: BTreeMap<String, StorePath>,
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// Runs `rollout`, reporting to `progress`.
pub fn execute(rollout: &Rollout, progress: &Progress) -> Outcome {
    execute_with(rollout, progress, |selected| {
        closure::build(rollout.systems, selected, rollout.options.build_timeout).map_err(|e| e.to_string())
    })
}

/// [`execute`] with the systems built by `build` (the hosts' names → their systems).
fn execute_with(
    rollout: &Rollout,
    progress: &Progress,
    build: impl FnOnce(&[String]) -> Result<BTreeMap<String, StorePath>, String>,
) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome::default();
    let result = run(rollout, progress, &mut outcome, build);
    if let Err(error) = result {
        progress.emit(Event::Failed { host: None, error });
    }
    outcome.ok = outcome.failed.is_empty() && outcome.rolled_back.is_empty();
    progress.emit(Event::Done {
        ok: outcome.ok,
        activated: outcome.activated.clone(),
        unchanged: outcome.unchanged.clone(),
        rolled_back: outcome.rolled_back.clone(),
        failed: outcome.failed.clone(),
        ms: ms(started),
    });
    outcome
}

fn host<'a>(rollout: &'a Rollout, name: &str) -> Result<&'a dyn Host, String> {
    rollout.hosts.get(name).map(|h| h.as_ref()).ok_or_else(|| format!("no way to reach host {name} was given"))
}

/// Runs `f` for every item on its own thread; results in input order.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = items.iter().map(|item| scope.spawn(move || f(item))).collect();
        handles.into_iter().map(|h| h.join().expect("deploy worker panicked")).collect()
    })
}

fn run(
    rollout: &Rollout,
    progress: &Progress,
    outcome: &mut Outcome,
    build: impl FnOnce(&[String]) -> Result<BTreeMap<String, StorePath>, String>,
) -> Result<(), String> {
    let plan = rollout.plan;
    let goal = plan.goal;
    let selected: Vec<String> = plan.batches.iter().flat_map(|b| b.hosts.iter().cloned()).collect();
    progress.emit(Event::Start {
        hosts: selected.clone(),
        batches: plan.batches.iter().map(|b| b.hosts.clone()).collect(),
        goal: goal.as_str().into(),
    });
    if !plan.blockers.is_empty() && goal.requires_activation() {
        outcome.failed = selected;
        return Err(format!("the plan is blocked: {}", plan.blockers.join("; ")));
    }
    for name in &selected {
        host(rollout, name)?;
    }

    // 1. Build every selected system in one nix build.
    let build_started = Instant::now();
    progress
        .note(None, format!("building {} system(s): {} ...", selected.len(), rollout.systems.installable("<host>")));
    let built = build(&selected).map_err(|e| {
        outcome.failed = selected.clone();
        format!("build failed: {e}")
    })?;
    progress.emit(Event::Built {
        systems: built.iter().map(|(h, p)| (h.clone(), p.to_string())).collect(),
        ms: ms(build_started),
    });
    outcome.systems = built.clone();

    // 2. What runs now; hosts already running their system are done.
    let currents = parallel(&selected, |name| (name.clone(), rollout.hosts[name].current_system()));
    let mut previous: BTreeMap<String, Option<StorePath>> = BTreeMap::new();
    let mut unreachable = Vec::new();
    for (name, current) in currents {
        match current {
            Ok(current) if current.as_ref() == Some(&built[&name]) => {
                progress.emit(Event::Unchanged { host: name.clone(), path: built[&name].to_string() });
                outcome.unchanged.push(name);
            }
            Ok(current) => {
                progress.emit(Event::Outdated {
                    host: name.clone(),
                    current: current.as_ref().map(ToString::to_string),
                    new: built[&name].to_string(),
                });
                previous.insert(name, current);
            }
            Err(e) => {
                progress.emit(Event::Failed { host: Some(name.clone()), error: e.to_string() });
                unreachable.push(name);
            }
        }
    }
    if !unreachable.is_empty() {
        outcome.failed = unreachable.clone();
        return Err(format!("cannot read the running system of {}: nothing was changed", unreachable.join(", ")));
    }
    let outdated: Vec<String> = selected.iter().filter(|h| previous.contains_key(*h)).cloned().collect();

    // 3. Copy closures and upload secrets before any activation: a host that cannot
    //    receive its system stops the rollout while nothing has changed yet.
    for chunk in outdated.chunks(rollout.options.copy_parallel.max(1)) {
        let results = parallel(chunk, |name| {
            let started = Instant::now();
            rollout.hosts[name].copy_closure(&built[name]).map(|()| ms(started))
        });
        let mut failed = Vec::new();
        for (name, result) in chunk.iter().zip(results) {
            match result {
                Ok(ms) => progress.emit(Event::Copied { host: name.clone(), path: built[name].to_string(), ms }),
                Err(e) => {
                    progress.emit(Event::Failed { host: Some(name.clone()), error: e.to_string() });
                    failed.push(name.clone());
                }
            }
        }
        if !failed.is_empty() {
            outcome.failed = failed.clone();
            return Err(format!("copying the closure to {} failed: nothing was activated", failed.join(", ")));
        }
    }
    // Secrets go to every selected host, not only those whose system changed: renewed
    // certificates (`nixstack secrets rotate`) change no system.
    let mut tls_changed: Vec<String> = Vec::new();
    if let Some(dir) = rollout.secrets_dir {
        let results = parallel(&selected, |name| {
            let files: Vec<SecretFile> = crate::secrets::host_secrets(rollout.topology, name, dir)
                .into_iter()
                .map(|(source, name)| SecretFile { name, source })
                .collect();
            rollout.hosts[name].upload_secrets(&files)
        });
        let mut failed = Vec::new();
        for (name, result) in selected.iter().zip(results) {
            match result {
                Ok(report) => {
                    if report.updated.iter().any(|f| TLS_FILES.contains(&f.as_str())) {
                        tls_changed.push(name.clone());
                    }
                    // A host that runs its system already reports only a change.
                    if previous.contains_key(name) || !report.updated.is_empty() {
                        progress.emit(Event::SecretsUploaded {
                            host: name.clone(),
                            unchanged: report.unchanged.len(),
                            updated: report.updated,
                        });
                    }
                }
                Err(e) => {
                    progress.emit(Event::Failed { host: Some(name.clone()), error: e.to_string() });
                    failed.push(name.clone());
                }
            }
        }
        if !failed.is_empty() {
            outcome.failed = failed.clone();
            return Err(format!("uploading secrets to {} failed: nothing was activated", failed.join(", ")));
        }
    }

    // 4. The app's schema migration, once, on one app host this deploy switches, before any
    //    host switches: a failed migration stops the rollout while nothing has changed.
    if goal != Goal::DryActivate {
        if let Some(name) = super::migrate::host(rollout.topology, &outdated) {
            let started = Instant::now();
            match rollout.hosts[name].migrate(&built[name]) {
                Ok(Some(_)) => progress.emit(Event::Migrated { host: name.clone(), ms: ms(started) }),
                Ok(None) => {
                    progress.note(Some(name), format!("its system has no {}: no migration ran", super::migrate::UNIT))
                }
                Err(e) => {
                    progress.emit(Event::Failed {
                        host: Some(name.clone()),
                        error: format!("the app's migration failed: {e}"),
                    });
                    outcome.failed.push(name.clone());
                    return Err(format!("the app's migration failed on {name}: nothing was switched"));
                }
            }
        }
    }

    // 5. Renewed certificates: each host's daemons reload them (no restart, no drain: a
    //    reload finishes the requests in flight), one host at a time in rollout order, each
    //    gated on its health before the next.
    if goal.requires_activation() {
        for name in plan.batches.iter().flat_map(|b| &b.hosts).filter(|h| tls_changed.contains(h)) {
            let host = rollout.hosts[name].as_ref();
            let started = Instant::now();
            let spec_host = rollout.topology.host(name).ok_or_else(|| format!("{name} is not in the spec"))?;
            let reloads = crate::stack::tls_reload::reloads(rollout.topology, spec_host, host.layout());
            let lbs = load_balancers(rollout);
            // A web backend leaves every HAProxy's pool first, as for a switch: nginx's old
            // workers close their idle keep-alive connections as they finish, which an
            // HAProxy reusing one would answer with an error.
            let backend = rollout.topology.lb.as_ref().is_some_and(|lb| lb.backends.iter().any(|b| &b.host == name));
            let drained = if backend { drain_one(rollout, progress, &lbs, name) } else { Ok(()) };
            let result = drained
                .and_then(|()| host.reload_tls(&reloads).map_err(|e| format!("reloading its certificates failed: {e}")))
                .and_then(|reloaded| gate(rollout, host, &lbs).map(|_| reloaded));
            if backend && result.is_ok() && !undrain(rollout, progress, &lbs, std::slice::from_ref(name)).is_empty() {
                outcome.failed.push(name.clone());
                return Err(format!("{name} took its renewed certificates but is not back in every load balancer"));
            }
            match result {
                Ok(reloaded) => progress.emit(Event::TlsReloaded { host: name.clone(), reloaded, ms: ms(started) }),
                Err(error) => {
                    progress.emit(Event::Failed { host: Some(name.clone()), error: error.clone() });
                    outcome.failed.push(name.clone());
                    return Err(format!("{name}: renewed certificates not taken ({error}): nothing was activated"));
                }
            }
        }
    }
    if outdated.is_empty() {
        progress.note(None, "every selected host already runs its system: nothing to copy or activate");
        return Ok(());
    }

    // 6. Batch by batch, the load balancer holding the VIP last.
    for batch in &vip_holder_last(rollout, progress, &plan.batches) {
        let members: Vec<String> = batch.hosts.iter().filter(|h| previous.contains_key(*h)).cloned().collect();
        if members.is_empty() {
            continue;
        }
        let ok = run_batch(rollout, progress, outcome, batch.tier, &members, &built, &previous, goal);
        if !ok {
            let rest: Vec<String> = plan
                .batches
                .iter()
                .flat_map(|b| &b.hosts)
                .filter(|h| {
                    previous.contains_key(*h)
                        && !outcome.activated.contains(h)
                        && !outcome.rolled_back.contains(h)
                        && !outcome.failed.contains(h)
                })
                .cloned()
                .collect();
            if !rest.is_empty() {
                progress.note(None, format!("rollout stopped; not deployed: {}", rest.join(", ")));
            }
            return Ok(());
        }
    }
    Ok(())
}

/// The load balancers of the rollout that it can reach.
fn load_balancers<'a>(rollout: &Rollout<'a>) -> Vec<&'a dyn Host> {
    let names = rollout.topology.lb.iter().flat_map(|lb| &lb.hosts);
    names.filter_map(|name| rollout.hosts.get(name).map(|h| h.as_ref())).collect()
}

/// `batches` with the load balancer that holds the VIP now moved behind the other load
/// balancers. The plan puts the primary last, but the LBs do not preempt
/// (render/keepalived.rs): after a failover the VIP stays on a backup. Switching the holder
/// first would move the VIP onto the next LB to switch and then again, resetting the
/// connections in flight twice. When the holder cannot be told (unreachable, not exactly
/// one), the plan's order stands.
fn vip_holder_last(rollout: &Rollout, progress: &Progress, batches: &[Batch]) -> Vec<Batch> {
    let mut ordered = batches.to_vec();
    let Some(lb) = &rollout.topology.lb else { return ordered };
    let lbs = load_balancers(rollout);
    let holder = match health::vip_holders(&lbs, lb.vip) {
        Ok(holders) if holders.len() == 1 => holders[0].clone(),
        _ => return ordered,
    };
    let (Some(at), Some(last)) = (
        ordered.iter().position(|b| b.tier == Role::Lb && b.hosts.contains(&holder)),
        ordered.iter().rposition(|b| b.tier == Role::Lb),
    ) else {
        return ordered;
    };
    if at != last {
        let batch = ordered.remove(at);
        ordered.insert(last, batch);
        progress
            .note(Some(&holder), format!("holds the virtual IP {}: deployed after the other load balancers", lb.vip));
    }
    ordered
}

/// One batch; false when the rollout must stop.
#[allow(clippy::too_many_arguments)]
fn run_batch(
    rollout: &Rollout,
    progress: &Progress,
    outcome: &mut Outcome,
    tier: Role,
    members: &[String],
    built: &BTreeMap<String, StorePath>,
    previous: &BTreeMap<String, Option<StorePath>>,
    goal: Goal,
) -> bool {
    let topology = rollout.topology;
    let activates = goal.requires_activation();
    let lbs = load_balancers(rollout);
    let is_backend = |name: &str| topology.lb.as_ref().is_some_and(|lb| lb.backends.iter().any(|b| b.host == name));

    // Galera: never take a node down unless the cluster is whole, Primary and Synced now.
    if activates && tier == Role::Db {
        for name in members {
            let host = rollout.hosts[name].as_ref();
            let checks: Vec<_> = health::checks(topology, topology.host(name).expect("planned host"), host.layout())
                .into_iter()
                .filter(|c| matches!(c, health::Check::Galera { .. }))
                .collect();
            if let Err(why) = health::probe(host, &checks) {
                progress.emit(Event::Failed { host: Some(name.clone()), error: format!("not switching: the cluster must be whole before a node restarts, or it may lose quorum ({why})") });
                outcome.failed.push(name.clone());
                return false;
            }
        }
    }

    // Drain web backends in every load balancer; wait for their sessions to end.
    let drained: Vec<String> =
        if activates { members.iter().filter(|m| is_backend(m)).cloned().collect() } else { Vec::new() };
    let pairs: Vec<(&String, &dyn Host)> =
        drained.iter().flat_map(|name| lbs.iter().map(move |lb| (name, *lb))).collect();
    let results = parallel(&pairs, |(name, lb)| {
        let started = Instant::now();
        health::set_state(*lb, WEB_BACKEND, name, "drain")
            .map_err(|e| e.to_string())
            .and_then(|()| {
                health::wait_stat(*lb, WEB_BACKEND, name, rollout.options.drain_timeout, |s| s.scur == 0)
                    .map_err(|(e, _)| e.to_string())
            })
            .map(|_| ms(started))
    });
    let mut drain_failed = false;
    for ((name, lb), result) in pairs.iter().zip(results) {
        match result {
            Ok(ms) => progress.emit(Event::Drained { host: (*name).clone(), lb: lb.name().into(), ms }),
            Err(error) => {
                progress.emit(Event::Failed {
                    host: Some((*name).clone()),
                    error: format!("draining in {} failed: {error}", lb.name()),
                });
                if !outcome.failed.contains(name) {
                    outcome.failed.push((*name).clone());
                }
                drain_failed = true;
            }
        }
    }
    if drain_failed {
        let _ = undrain(rollout, progress, &lbs, &drained);
        return false;
    }

    // App hosts leave the web tier's rotation while their app restarts.
    let rotated = if activates && tier == Role::App { out_of_rotation(rollout, progress, members) } else { Vec::new() };

    // Switch and gate every member in parallel; roll back each one that fails.
    let results = parallel(members, |name| {
        let host = rollout.hosts[name].as_ref();
        let path = &built[name];
        let started = Instant::now();
        let switched = host.switch(path, goal);
        let gated = match switched {
            Ok(_) => {
                progress.emit(Event::Activated {
                    host: name.clone(),
                    goal: goal.as_str().into(),
                    path: path.to_string(),
                    ms: ms(started),
                });
                if activates {
                    let started = Instant::now();
                    gate(rollout, host, &lbs)
                        .map(|details| progress.emit(Event::Healthy { host: name.clone(), details, ms: ms(started) }))
                } else {
                    Ok(())
                }
            }
            Err(e) => Err(format!("activation failed: {e}")),
        };
        match gated {
            Ok(()) => HostResult::Activated,
            Err(reason) => {
                progress.emit(Event::GateFailed { host: name.clone(), reason: reason.clone() });
                match host.rollback(previous[name].as_ref(), goal) {
                    Ok(to) => {
                        let recheck =
                            if activates { gate(rollout, host, &lbs) } else { Ok(vec!["not activated (goal)".into()]) };
                        let (healthy, detail) = match recheck {
                            Ok(details) => (true, details.join("; ")),
                            Err(why) => (false, why),
                        };
                        progress.emit(Event::RolledBack { host: name.clone(), to: to.to_string(), healthy, detail });
                        HostResult::RolledBack { healthy }
                    }
                    Err(e) => {
                        progress
                            .emit(Event::Failed { host: Some(name.clone()), error: format!("rollback failed: {e}") });
                        HostResult::Failed
                    }
                }
            }
        }
    });

    // Put back every drained host that is healthy (passed, or healthy again after its
    // rollback); an unhealthy one stays drained, and HAProxy's own checks keep it out.
    let mut back = Vec::new();
    let mut ok = true;
    for (name, result) in members.iter().zip(&results) {
        match result {
            HostResult::Activated => {
                outcome.activated.push(name.clone());
                back.push(name.clone());
            }
            HostResult::RolledBack { healthy } => {
                outcome.rolled_back.push(name.clone());
                ok = false;
                if *healthy {
                    back.push(name.clone());
                }
            }
            HostResult::Failed => {
                outcome.failed.push(name.clone());
                ok = false;
            }
        }
    }
    // Out of rotation ends whatever happened: a host that is still unhealthy fails the web
    // tier's requests fast (refused or 502), and nginx passes them on.
    for name in &rotated {
        match rollout.hosts[name].run(&nft_load(&crate::stack::app::back_in_rotation())) {
            Ok(_) => progress.emit(Event::BackInRotation { host: name.clone() }),
            Err(e) => {
                progress.emit(Event::Failed {
                    host: Some(name.clone()),
                    error: format!("putting it back in the web tier's rotation failed: {e}"),
                });
                if !outcome.failed.contains(name) {
                    outcome.failed.push(name.clone());
                }
                ok = false;
            }
        }
    }
    let back: Vec<String> = drained.iter().filter(|d| back.contains(d)).cloned().collect();
    let left_out: Vec<&String> = drained.iter().filter(|d| !back.contains(d)).collect();
    let not_back = undrain(rollout, progress, &lbs, &back);
    if !not_back.is_empty() {
        outcome.failed.extend(not_back);
        ok = false;
    }
    for name in left_out {
        progress.note(Some(name), "left drained in the load balancers: it is not healthy");
    }
    ok
}

/// Takes the app hosts among `members` out of the web tier's rotation (their app hop
/// refuses new connections) when other app hosts stay in to take the requests, then waits
/// [`crate::stack::app::ROTATION_SETTLE`]. Returns the hosts taken out; one that cannot be
/// is noted and switched anyway (the web tier then retries only idempotent requests).
fn out_of_rotation(rollout: &Rollout, progress: &Progress, members: &[String]) -> Vec<String> {
    let topology = rollout.topology;
    let Some(app) = topology.app.as_ref().filter(|_| topology.web.as_ref().is_some_and(|w| w.proxy_app)) else {
        return Vec::new();
    };
    if app.hosts.iter().all(|h| members.contains(h)) {
        progress
            .note(None, "every app host switches at once: none stays to take the requests, none leaves the rotation");
        return Vec::new();
    }
    let started = Instant::now();
    let candidates: Vec<(&String, String)> = members
        .iter()
        .filter_map(|name| {
            let host = topology.host(name)?;
            crate::stack::app::out_of_rotation(topology, host).map(|ruleset| (name, ruleset))
        })
        .collect();
    let results = parallel(&candidates, |(name, ruleset)| rollout.hosts[*name].run(&nft_load(ruleset)));
    let mut out = Vec::new();
    for ((name, _), result) in candidates.iter().zip(results) {
        match result {
            Ok(_) => out.push((*name).clone()),
            Err(e) => progress.note(
                Some(name),
                format!(
                    "could not leave the web tier's rotation ({e}): a POST it is sent while its app restarts fails"
                ),
            ),
        }
    }
    if !out.is_empty() {
        std::thread::sleep(crate::stack::app::ROTATION_SETTLE);
        for name in &out {
            progress.emit(Event::OutOfRotation { host: name.clone(), ms: ms(started) });
        }
    }
    out
}

/// A shell script loading `ruleset` with `nft -f`.
fn nft_load(ruleset: &str) -> String {
    format!("nft -f - <<'NIXSTACK_RULESET'\n{ruleset}NIXSTACK_RULESET\n")
}

enum HostResult {
    Activated,
    RolledBack { healthy: bool },
    Failed,
}

/// The gate of one host: its role checks, and for a load balancer, that exactly one load
/// balancer holds the virtual IP.
fn gate(rollout: &Rollout, host: &dyn Host, lbs: &[&dyn Host]) -> Result<Vec<String>, String> {
    let topology = rollout.topology;
    let spec_host = topology.host(host.name()).ok_or_else(|| format!("{} is not in the spec", host.name()))?;
    let checks = health::checks(topology, spec_host, host.layout());
    let mut details = health::gate(host, &checks, rollout.options.gate)?;
    if let (true, Some(lb)) = (spec_host.has(Role::Lb), &topology.lb) {
        let deadline = Instant::now() + rollout.options.gate.timeout;
        loop {
            let holders = health::vip_holders(lbs, lb.vip).map_err(|e| e.to_string())?;
            if holders.len() == 1 {
                details.push(format!("VRRP: {} holds {}", holders[0], lb.vip));
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "VRRP: {} load balancer(s) hold the virtual IP {} ({}), not exactly one",
                    holders.len(),
                    lb.vip,
                    holders.join(", ")
                ));
            }
            std::thread::sleep(rollout.options.gate.interval);
        }
    }
    Ok(details)
}

/// Drains `name` in every load balancer and waits for its sessions to end.
fn drain_one(rollout: &Rollout, progress: &Progress, lbs: &[&dyn Host], name: &str) -> Result<(), String> {
    for lb in lbs {
        let started = Instant::now();
        health::set_state(*lb, WEB_BACKEND, name, "drain")
            .map_err(|e| e.to_string())
            .and_then(|()| {
                health::wait_stat(*lb, WEB_BACKEND, name, rollout.options.drain_timeout, |s| s.scur == 0)
                    .map_err(|(e, _)| e.to_string())
            })
            .map_err(|e| format!("draining in {} failed: {e}", lb.name()))?;
        progress.emit(Event::Drained { host: name.into(), lb: lb.name().into(), ms: ms(started) });
    }
    Ok(())
}

/// Puts `names` back in every load balancer's pool and waits until each is UP there;
/// returns the hosts that are not back everywhere.
fn undrain(rollout: &Rollout, progress: &Progress, lbs: &[&dyn Host], names: &[String]) -> Vec<String> {
    let pairs: Vec<(&String, &dyn Host)> =
        names.iter().flat_map(|name| lbs.iter().map(move |lb| (name, *lb))).collect();
    let results = parallel(&pairs, |(name, lb)| {
        health::set_state(*lb, WEB_BACKEND, name, "ready").map_err(|e| e.to_string()).and_then(|()| {
            health::wait_stat(*lb, WEB_BACKEND, name, rollout.options.drain_timeout, |s| s.status.starts_with("UP"))
                .map_err(|(e, _)| e.to_string())
        })
    });
    let mut failed = Vec::new();
    for ((name, lb), result) in pairs.iter().zip(results) {
        match result {
            Ok(_) => progress.emit(Event::Undrained { host: (*name).clone(), lb: lb.name().into() }),
            Err(error) => {
                progress.emit(Event::Failed {
                    host: Some((*name).clone()),
                    error: format!("putting it back in {} failed: {error}", lb.name()),
                });
                if !failed.contains(*name) {
                    failed.push((*name).clone());
                }
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::deploy::progress::{Format, Printer};
    use crate::deploy::{make_plan, Plan};
    use crate::host::{HostError, RunOutput};
    use crate::spec::SpecSource;
    use crate::stack::Layout;
    use crate::topology::compile;

    /// What a host was asked to do, in order, across every host of a rollout.
    type Journal = Arc<Mutex<Vec<String>>>;

    /// A host that records every action deploy takes on it and answers as told: it runs
    /// `old`, takes any closure and secrets, and its migration succeeds unless told to fail.
    /// Its health probes (shell scripts) fail: no host here serves anything.
    #[derive(Debug)]
    struct Recording {
        name: String,
        layout: Layout,
        journal: Journal,
        migration_fails: bool,
        /// Answers the VIP check (`stack::health::vip_script`) with "holds".
        holds_vip: bool,
    }

    const OLD: &str = "/nix/store/00000000000000000000000000000000-nixos-system-old";

    impl Recording {
        fn log(&self, what: &str) {
            self.journal.lock().unwrap().push(format!("{} {what}", self.name));
        }
    }

    impl Host for Recording {
        fn name(&self) -> &str {
            &self.name
        }
        fn layout(&self) -> &Layout {
            &self.layout
        }
        fn current_system(&self) -> Result<Option<StorePath>, HostError> {
            Ok(Some(StorePath::parse(OLD).unwrap()))
        }
        fn copy_closure(&self, _: &StorePath) -> Result<(), HostError> {
            self.log("copy");
            Ok(())
        }
        fn migrate(&self, system: &StorePath) -> Result<Option<String>, HostError> {
            self.log(&format!("migrate {system}"));
            if self.migration_fails {
                return Err(HostError::Other { host: self.name.clone(), detail: "ERROR 1050: table exists".into() });
            }
            Ok(Some("migrated\n".into()))
        }
        fn switch(&self, path: &StorePath, goal: Goal) -> Result<String, HostError> {
            self.log(&format!("switch {} {path}", goal.as_str()));
            Ok(String::new())
        }
        fn rollback(&self, _: Option<&StorePath>, _: Goal) -> Result<StorePath, HostError> {
            self.log("rollback");
            Ok(StorePath::parse(OLD).unwrap())
        }
        fn run(&self, script: &str) -> Result<RunOutput, HostError> {
            if script.contains("addr show") {
                let stdout = if self.holds_vip { "holds\n" } else { "free\n" };
                return Ok(RunOutput { stdout: stdout.into(), stderr: String::new() });
            }
            Err(HostError::Other { host: self.name.clone(), detail: "nothing listens here".into() })
        }
    }

    fn new_system(host: &str) -> StorePath {
        StorePath::parse(&format!("/nix/store/11111111111111111111111111111111-nixos-system-{host}")).unwrap()
    }

    /// Deploys `spec` on the hosts `on` with recording hosts; the outcome, the events and the
    /// journal of every host's actions in order.
    fn deploy(spec: &str, on: &[&str], failing: &[&str]) -> (Outcome, Vec<Event>, Vec<String>) {
        deploy_with_vip_on(spec, on, failing, None)
    }

    /// [`deploy`] with `holder` answering that it holds the VIP.
    fn deploy_with_vip_on(
        spec: &str,
        on: &[&str],
        failing: &[&str],
        holder: Option<&str>,
    ) -> (Outcome, Vec<Event>, Vec<String>) {
        let topology = compile(&SpecSource { name: "stack.toml".into(), text: spec.into() }).unwrap();
        let on: Vec<String> = on.iter().map(|s| s.to_string()).collect();
        let plan = make_plan(Some(&topology), &topology, &on, Goal::Switch, 1).unwrap();
        let plan = Plan { blockers: Vec::new(), ..plan };
        let journal = Journal::default();
        let hosts: BTreeMap<String, Box<dyn Host>> = topology
            .hosts
            .iter()
            .map(|h| {
                let host = Recording {
                    name: h.name.clone(),
                    layout: Layout::nixos(),
                    journal: journal.clone(),
                    migration_fails: failing.contains(&h.name.as_str()),
                    holds_vip: holder == Some(h.name.as_str()),
                };
                (h.name.clone(), Box::new(host) as Box<dyn Host>)
            })
            .collect();
        let options = Options {
            gate: GatePolicy {
                timeout: Duration::from_millis(50),
                interval: Duration::from_millis(10),
                consecutive: 1,
            },
            drain_timeout: Duration::from_millis(50),
            ..Options::default()
        };
        let systems = Systems::Nixos { flake: "path:/nonexistent".into(), nix_config: None };
        let rollout =
            Rollout { topology: &topology, plan: &plan, systems: &systems, hosts: &hosts, secrets_dir: None, options };
        let (progress, printer) = Printer::start(Format::Json, Box::new(std::io::sink()));
        let outcome = execute_with(&rollout, &progress, |selected| {
            Ok(selected.iter().map(|h| (h.clone(), new_system(h))).collect())
        });
        let events = progress.events();
        printer.finish(progress);
        let journal = journal.lock().unwrap().clone();
        (outcome, events, journal)
    }

    fn default_spec() -> String {
        SpecSource::embedded_default().text
    }

    #[test]
    fn the_load_balancer_holding_the_vip_switches_after_the_others() {
        let first_switched = |journal: &[String]| {
            journal.iter().find(|a| a.contains(" switch ")).map(|a| a.split(' ').next().unwrap().to_string())
        };
        // The plan puts the primary lb1 last. No host here passes its health gate, so the
        // rollout stops after the first switch: the journal names who went first.
        let (_, events, journal) = deploy_with_vip_on(&default_spec(), &["lb1", "lb2"], &[], None);
        assert_eq!(first_switched(&journal).as_deref(), Some("lb2"), "{journal:#?}");
        assert!(!events.iter().any(|e| matches!(e, Event::Note { message, .. } if message.contains("virtual IP"))));
        // After a failover the backup lb2 holds the VIP (no preemption): lb1 goes first.
        let (_, events, journal) = deploy_with_vip_on(&default_spec(), &["lb1", "lb2"], &[], Some("lb2"));
        assert_eq!(first_switched(&journal).as_deref(), Some("lb1"), "{journal:#?}");
        assert!(
            events.iter().any(|e| matches!(e, Event::Note { host: Some(h), message } if h == "lb2" && message.contains("after the other load balancers"))),
            "{events:#?}"
        );
    }

    #[test]
    fn a_failing_migration_stops_the_deploy_before_any_host_switches() {
        assert!(default_spec().contains("migrate = "), "the default example has a migration");
        let (outcome, events, journal) = deploy(&default_spec(), &[], &["app1"]);
        // The CLI's exit code is 1 exactly when the outcome is not ok (deploy::command).
        assert!(!outcome.ok, "{outcome:?}");
        assert_eq!(outcome.failed, ["app1"]);
        assert!(outcome.activated.is_empty() && outcome.rolled_back.is_empty(), "{outcome:?}");
        assert!(!journal.iter().any(|a| a.contains(" switch ") || a.contains("rollback")), "{journal:#?}");
        // Every closure was copied first; the migration ran once, on app1, with app1's new system.
        let migrations: Vec<&String> = journal.iter().filter(|a| a.contains(" migrate ")).collect();
        assert_eq!(migrations, [&format!("app1 migrate {}", new_system("app1"))]);
        let first_migration = journal.iter().position(|a| a.contains(" migrate ")).unwrap();
        assert_eq!(journal.iter().filter(|a| a.ends_with(" copy")).count(), 11, "{journal:#?}");
        assert!(journal[..first_migration].iter().all(|a| a.ends_with(" copy")), "{journal:#?}");
        assert!(
            events.iter().any(
                |e| matches!(e, Event::Failed { host: Some(h), error } if h == "app1" && error.contains("ERROR 1050"))
            ),
            "{events:#?}"
        );
        assert!(matches!(events.last(), Some(Event::Done { ok: false, .. })));
    }

    #[test]
    fn the_migration_runs_once_before_the_first_app_host_switches() {
        let (_, events, journal) = deploy(&default_spec(), &["@app"], &[]);
        let migrations: Vec<usize> =
            journal.iter().enumerate().filter(|(_, a)| a.contains(" migrate ")).map(|(i, _)| i).collect();
        assert_eq!(migrations.len(), 1, "{journal:#?}");
        assert!(journal[migrations[0]].starts_with("app1 migrate "));
        let first_switch = journal.iter().position(|a| a.contains(" switch ")).expect("app hosts switch");
        assert!(migrations[0] < first_switch, "{journal:#?}");
        assert!(events.iter().any(|e| matches!(e, Event::Migrated { host, .. } if host == "app1")));
    }

    #[test]
    fn without_a_migration_nothing_runs_and_a_deploy_without_app_hosts_runs_none() {
        let spec = default_spec().replace("migrate = \"nixstack-demo-app --migrate\"\n", "");
        assert!(!spec.contains("migrate = "));
        let (_, _, journal) = deploy(&spec, &["@app"], &[]);
        assert!(!journal.iter().any(|a| a.contains(" migrate ")), "{journal:#?}");
        assert!(journal.iter().any(|a| a.contains(" switch ")), "{journal:#?}");
        let (_, _, journal) = deploy(&default_spec(), &["@web"], &["app1", "app2", "app3"]);
        assert!(!journal.iter().any(|a| a.contains(" migrate ")), "the app tier is not deployed: {journal:#?}");
    }
}
