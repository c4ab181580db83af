//! Per-host daemons of the lab: which run where, their files (secrets, the rendered
//! configs, unchanged), how each starts in its host's namespace, how readiness is probed,
//! and the bring-up in the Topology's start order (Galera bootstrap node first).

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::cmd::{self, Cmd};
use super::event::{Event, Reporter};
use super::network::{self, host_netns, NetworkPlan};
use super::probe::{self, Connect, Request};
use super::process::{self, Identity, Launch};
use super::sshd;
use super::state::{Resource, State};
use crate::render::{self, Layout};
use crate::spec::Role;
use crate::topology::{Host, Topology};

/// The demo app, embedded so the lab needs nothing but this binary and Debian's packages.
pub const DEMO_APP: &str = include_str!("../../app/nixstack_demo_app.py");

/// Debian's Python 3, which has python3-pymysql (a `python3` earlier on PATH may not).
const PYTHON: &str = "/usr/bin/python3";

/// The privilege-separation directory sshd insists on (compiled in, shared by all hosts).
const SSHD_PRIVSEP_DIR: &str = "/run/sshd";

/// One daemon (or one-shot setup) of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Daemon {
    /// The firewall: `nft -f` once, no process.
    Nftables,
    Sshd,
    Mariadb,
    App,
    Nginx,
    Haproxy,
    Keepalived,
    /// The monitoring agent (collectd in the lab, see [`super::monitoring`]).
    Collectd,
}

impl Daemon {
    pub fn name(self) -> &'static str {
        match self {
            Daemon::Nftables => "nftables",
            Daemon::Sshd => "sshd",
            Daemon::Mariadb => "mariadbd",
            Daemon::App => "app",
            Daemon::Nginx => "nginx",
            Daemon::Haproxy => "haproxy",
            Daemon::Keepalived => "keepalived",
            Daemon::Collectd => "collectd",
        }
    }

    /// Whether it is a one-shot action rather than a process.
    pub fn is_oneshot(self) -> bool {
        self == Daemon::Nftables
    }

    /// The process name (`/proc/<pid>/comm`) of its processes, workers included.
    pub fn comm(self) -> &'static str {
        match self {
            Daemon::Nftables => "nft",
            Daemon::Sshd => "sshd",
            Daemon::Mariadb => "mariadbd",
            Daemon::App => "python3",
            Daemon::Nginx => "nginx",
            Daemon::Haproxy => "haproxy",
            Daemon::Keepalived => "keepalived",
            Daemon::Collectd => "collectd",
        }
    }

    /// Its config file in `Layout.etc`.
    pub fn config_file(self) -> &'static str {
        match self {
            Daemon::Nftables => "nftables.conf",
            Daemon::Sshd => "sshd_config",
            Daemon::Mariadb => "my.cnf",
            Daemon::App => "nixstack-demo-app.py",
            Daemon::Nginx => "nginx.conf",
            Daemon::Haproxy => "haproxy.cfg",
            Daemon::Keepalived => "keepalived.conf",
            Daemon::Collectd => "collectd.conf",
        }
    }
}

/// The daemons of `host`, in the order they start.
pub fn for_host(host: &Host) -> Vec<Daemon> {
    let mut daemons = vec![Daemon::Nftables, Daemon::Sshd];
    if host.has(Role::Db) {
        daemons.push(Daemon::Mariadb);
    }
    if host.has(Role::App) {
        daemons.push(Daemon::App);
    }
    if host.has(Role::Web) {
        daemons.push(Daemon::Nginx);
    }
    if host.has(Role::Lb) {
        daemons.extend([Daemon::Haproxy, Daemon::Keepalived]);
    }
    if host.monitored {
        // Last: it reads the other daemons' status endpoints.
        daemons.push(Daemon::Collectd);
    }
    daemons
}

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

    pub fn identity(&self, host: &str, daemon: Daemon) -> Option<Identity> {
        let state = self.state.lock().expect("state lock");
        state.process(host, daemon.name()).map(|(pid, start_time)| Identity { pid, start_time })
    }

    /// The recorded process of `daemon` on `host`, if it still runs.
    pub fn running(&self, host: &str, daemon: Daemon) -> Option<Identity> {
        self.identity(host, daemon).filter(|identity| process::is_running(*identity, &host_netns(host)))
    }
}

/// Brings every host's daemons up in the Topology's start order; hosts of one stage start
/// together. Idempotent: running daemons are left alone.
pub fn up(topology: &Topology, plan: &NetworkPlan, state: &Mutex<State>, reporter: &Reporter) -> Result<()> {
    let lab = Lab { topology, plan, state, reporter };
    prepare_common(&lab)?;
    for host in &topology.hosts {
        prepare_host(&lab, host)?;
    }
    for stage in &topology.start_order {
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = stage.iter().map(|name| scope.spawn(|| start_host(&lab, lab.host(name)))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a start thread panicked")))).collect()
        });
        for result in results {
            result?;
        }
    }
    if let Some(lb) = &topology.lb {
        let started = Instant::now();
        let holder = probe::wait_for("the virtual IP", Duration::from_secs(15), Duration::from_millis(100), || Ok(vip_holder(&lab)))?;
        reporter.emit(Event::Ready {
            host: holder,
            daemon: "keepalived".into(),
            detail: format!("holds the virtual IP {}", lb.vip),
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
    }
    Ok(())
}

/// The LB whose public interface carries the virtual IP now.
pub fn vip_holder(lab: &Lab) -> Option<String> {
    let lb = lab.topology.lb.as_ref()?;
    let vip = lb.vip.to_string();
    lb.hosts.iter().find(|name| {
        Cmd::new("ip")
            .args(["-n", &host_netns(name), "-4", "-o", "addr", "show", "dev", network::PUBLIC_IF])
            .stdout()
            .map(|out| out.split_whitespace().any(|word| word.split('/').next() == Some(vip.as_str())))
            .unwrap_or(false)
    }).cloned()
}

/// Lab-wide files: the stack secrets, the admin SSH key, sshd's privilege-separation dir.
fn prepare_common(lab: &Lab) -> Result<()> {
    let secrets = super::secrets_dir();
    let report = crate::secrets::init(lab.topology, &secrets).with_context(|| format!("cannot create the lab secrets in {}", secrets.display()))?;
    if !report.created.is_empty() {
        lab.reporter.created("secrets", format!("{} ({} files)", secrets.display(), report.created.len()));
    }
    // The lab points the monitoring endpoint at its own stand-in (`monitoring::up`).
    let endpoint = lab.topology.monitoring.as_ref().map(|m| m.endpoint_secret.as_str());
    for note in report.notes.iter().filter(|note| endpoint.is_none_or(|name| !note.starts_with(name))) {
        lab.reporter.warning(format!("secrets: {note}"));
    }
    let admin = super::admin_dir();
    std::fs::create_dir_all(&admin)?;
    if sshd::ensure_key(&sshd::admin_key(&admin), "nixstack-lab-admin")? {
        lab.reporter.created("ssh key", sshd::admin_key(&admin).display().to_string());
    }
    let privsep = Path::new(SSHD_PRIVSEP_DIR);
    if !privsep.exists() {
        lab.state.lock().expect("state lock").record(Resource::Dir { path: privsep.to_path_buf() })?;
        std::fs::create_dir_all(privsep)?;
        std::fs::set_permissions(privsep, std::fs::Permissions::from_mode(0o755))?;
        lab.reporter.created("dir", SSHD_PRIVSEP_DIR);
    }
    super::monitoring::up(lab)?;
    Ok(())
}

/// A host's directories, secrets and rendered configs (rewritten on every `up`: the text
/// is deterministic, so an unchanged spec writes the same bytes).
fn prepare_host(lab: &Lab, host: &Host) -> Result<()> {
    let layout = Layout::lab(&host.name);
    for dir in [&layout.secrets, &layout.state, &layout.run, &layout.log, &layout.etc] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if let Some(www) = &layout.web_root {
        std::fs::create_dir_all(www)?;
    }
    // Secrets: 0700/0600 root, except that MariaDB (user mysql) reads its TLS key and the
    // password files through the group, as on NixOS.
    let mysql = host.has(Role::Db).then(mysql_ids).transpose()?;
    std::fs::set_permissions(&layout.secrets, std::fs::Permissions::from_mode(if mysql.is_some() { 0o750 } else { 0o700 }))?;
    if let Some((_, gid)) = mysql {
        chown(&layout.secrets, 0, gid)?;
    }
    for (source, name) in crate::secrets::host_secrets(lab.topology, &host.name, &super::secrets_dir()) {
        let target = layout.secret(&name);
        std::fs::copy(&source, &target).with_context(|| format!("cannot copy secret {} to {}", source.display(), target.display()))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(if mysql.is_some() { 0o640 } else { 0o600 }))?;
        if let Some((_, gid)) = mysql {
            chown(&target, 0, gid)?;
        }
    }
    for daemon in for_host(host) {
        let text = render_config(lab, host, &layout, daemon)?;
        write_if_changed(&layout.config(daemon.config_file()), &text)?;
    }
    if host.has(Role::Web) {
        for dir in render::nginx::required_dirs(&layout) {
            std::fs::create_dir_all(&dir)?;
        }
    }
    if host.has(Role::Lb) {
        std::fs::create_dir_all(layout.haproxy_socket().parent().expect("socket in a dir"))?;
    }
    if let Some((uid, gid)) = mysql {
        for dir in [layout.mysql_datadir(), layout.mysql_socket().parent().expect("socket in a dir").to_path_buf()] {
            std::fs::create_dir_all(&dir)?;
            chown(&dir, uid, gid)?;
        }
        // MariaDB writes its error log and pid file itself, as mysql.
        chown(&layout.log, 0, gid)?;
        std::fs::set_permissions(&layout.log, std::fs::Permissions::from_mode(0o775))?;
        chown(&layout.run, 0, gid)?;
        std::fs::set_permissions(&layout.run, std::fs::Permissions::from_mode(0o775))?;
    }
    sshd::ensure_key(&sshd::host_key(&layout), &format!("root@{}", host.name))?;
    let admin_public = std::fs::read_to_string(sshd::admin_key(&super::admin_dir()).with_extension("pub"))?;
    write_if_changed(&sshd::authorized_keys(&layout), &admin_public)?;
    Ok(())
}

/// The config text of `daemon` on `host`: the renderers' output for the lab layout.
fn render_config(lab: &Lab, host: &Host, layout: &Layout, daemon: Daemon) -> Result<String> {
    let topology = lab.topology;
    Ok(match daemon {
        Daemon::Nftables => render::nftables::render(topology, host, layout),
        Daemon::Sshd => sshd::config(host, layout),
        Daemon::Mariadb => render::galera::lab_ini(topology, host, layout),
        Daemon::App => DEMO_APP.to_string(),
        Daemon::Nginx => render::nginx::render(topology, host, layout),
        Daemon::Haproxy => render::haproxy::render(topology, host, layout),
        Daemon::Keepalived => render::keepalived::render(topology, host, layout),
        // The lab runs collectd whatever `monitoring.agent` says (no otelcol build here).
        Daemon::Collectd => render::monitoring::collectd(topology, host, layout),
    })
}

fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn mysql_ids() -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    let line = passwd.lines().find(|l| l.starts_with("mysql:")).context("no mysql user: run scripts/setup (mariadb-server)")?;
    let fields: Vec<&str> = line.split(':').collect();
    Ok((fields[2].parse()?, fields[3].parse()?))
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).with_context(|| format!("cannot chown {}", path.display()))
}

/// Starts whatever of `host`'s daemons is not running, each probed ready before the next.
fn start_host(lab: &Lab, host: &Host) -> Result<()> {
    for daemon in for_host(host) {
        ensure(lab, host, daemon).with_context(|| format!("{}: {}", host.name, daemon.name()))?;
    }
    Ok(())
}

/// Starts `daemon` on `host` unless it runs; waits until it is ready.
pub fn ensure(lab: &Lab, host: &Host, daemon: Daemon) -> Result<()> {
    let layout = Layout::lab(&host.name);
    if daemon.is_oneshot() {
        Cmd::new("nft").args(["-f"]).arg(layout.config(daemon.config_file()).display().to_string()).netns(&host_netns(&host.name)).run()?;
        lab.reporter.emit(Event::Applied { host: host.name.clone(), what: "nftables ruleset loaded".into() });
        return Ok(());
    }
    if let Some(identity) = lab.running(&host.name, daemon) {
        lab.reporter.emit(Event::Running { host: host.name.clone(), daemon: daemon.name().into(), pid: identity.pid });
        // It may still be starting (an interrupted `up`): the next host must not start before it serves.
        let launch = launch(lab, host, &layout, daemon, false);
        wait_ready(lab, host, &layout, daemon, identity, &launch.log)?;
        return Ok(());
    }
    start(lab, host, daemon)?;
    Ok(())
}

/// Starts `daemon` on `host` (recorded in the state file first) and waits until it is ready.
pub fn start(lab: &Lab, host: &Host, daemon: Daemon) -> Result<Identity> {
    let layout = Layout::lab(&host.name);
    let netns = host_netns(&host.name);
    let mut bootstrap = false;
    if daemon == Daemon::Mariadb {
        bootstrap = prepare_mariadb(lab, host, &layout)?;
    }
    if daemon == Daemon::Collectd {
        super::monitoring::prepare_collectd(lab.topology, host, &layout)?;
    }
    let launch = launch(lab, host, &layout, daemon, bootstrap);
    lab.state.lock().expect("state lock").record_process_intent(&host.name, daemon.name(), &netns)?;
    let started = Instant::now();
    let identity = process::spawn(&launch)?;
    lab.state.lock().expect("state lock").record_process_started(&host.name, daemon.name(), identity.pid, identity.start_time)?;
    if daemon == Daemon::App {
        // The other daemons write their own pid files into Layout.run; the app does not.
        std::fs::write(layout.pid_file("app"), format!("{}\n", identity.pid))?;
    }
    lab.reporter.emit(Event::Started { host: host.name.clone(), daemon: daemon.name().into(), pid: identity.pid });
    let detail = wait_ready(lab, host, &layout, daemon, identity, &launch.log)?;
    lab.reporter.emit(Event::Ready { host: host.name.clone(), daemon: daemon.name().into(), detail, elapsed_ms: started.elapsed().as_millis() as u64 });
    if daemon == Daemon::Mariadb && bootstrap {
        create_databases(lab, &layout)?;
        lab.reporter.emit(Event::Applied { host: host.name.clone(), what: "databases and users created".into() });
    }
    Ok(identity)
}

/// How `daemon` starts, in the foreground, with the rendered config.
fn launch(lab: &Lab, host: &Host, layout: &Layout, daemon: Daemon, bootstrap: bool) -> Launch {
    let config = layout.config(daemon.config_file()).display().to_string();
    let (program, args, env): (&str, Vec<String>, Vec<(String, String)>) = match daemon {
        Daemon::Nftables => unreachable!("nftables is a one-shot"),
        Daemon::Sshd => ("/usr/sbin/sshd", vec!["-D".into(), "-e".into(), "-f".into(), config], Vec::new()),
        Daemon::Mariadb => {
            let mut args = vec![format!("--defaults-file={config}")];
            if bootstrap {
                args.push("--wsrep-new-cluster".into());
            }
            ("/usr/sbin/mariadbd", args, Vec::new())
        }
        Daemon::App => (PYTHON, vec![config], app_env(lab.topology, host, layout)),
        Daemon::Nginx => ("/usr/sbin/nginx", vec!["-e".into(), "stderr".into(), "-c".into(), config, "-g".into(), "daemon off;".into()], Vec::new()),
        Daemon::Haproxy => ("/usr/sbin/haproxy", vec!["-db".into(), "-f".into(), config], Vec::new()),
        Daemon::Keepalived => {
            // Own pid files per host: the default ones under /run are shared by every namespace.
            let pid = |name: &str| layout.pid_file(name).display().to_string();
            let args = vec![
                "--dont-fork".into(),
                "--log-console".into(),
                "--log-detail".into(),
                "--no-syslog".into(),
                "--vrrp".into(),
                format!("--use-file={config}"),
                format!("--pid={}", pid("keepalived")),
                format!("--vrrp_pid={}", pid("keepalived-vrrp")),
                format!("--checkers_pid={}", pid("keepalived-checkers")),
                format!("--bfd_pid={}", pid("keepalived-bfd")),
                format!("--config-id={}", host.name),
            ];
            ("/usr/sbin/keepalived", args, Vec::new())
        }
        Daemon::Collectd => {
            let (program, args, env) = super::monitoring::collectd_launch(layout);
            (program, args, env)
        }
    };
    Launch {
        program: program.into(),
        args,
        env,
        netns: host_netns(&host.name),
        hostname: host.name.clone(),
        log: layout.log_file(&format!("{}.log", daemon.name())),
    }
}

/// The demo app's environment: where to listen, which database nodes in which order, the
/// password file, TLS files when the hops are encrypted, plus `app.env` from the spec.
pub fn app_env(topology: &Topology, host: &Host, layout: &Layout) -> Vec<(String, String)> {
    let app = topology.app.as_ref().expect("an app host implies an app tier");
    let mut env = vec![
        ("NIXSTACK_APP_LISTEN".to_string(), format!("{}:{}", host.address, app.port)),
        ("NIXSTACK_APP_NAME".into(), host.name.clone()),
        ("NIXSTACK_DB_HOSTS".into(), app.db_writers.iter().map(|b| format!("{}:{}", b.address, b.port)).collect::<Vec<_>>().join(",")),
    ];
    if let Some(user) = topology.db.as_ref().and_then(|db| db.users.first()) {
        env.push(("NIXSTACK_DB_NAME".into(), user.database.clone()));
        env.push(("NIXSTACK_DB_USER".into(), user.name.clone()));
        env.push(("NIXSTACK_DB_PASSWORD_FILE".into(), layout.secret(&crate::secrets::db_password_file(&user.name)).display().to_string()));
    }
    if topology.internal_tls {
        env.push(("NIXSTACK_APP_TLS_CERT".into(), layout.host_cert().display().to_string()));
        env.push(("NIXSTACK_APP_TLS_KEY".into(), layout.host_key().display().to_string()));
        env.push(("NIXSTACK_DB_CA".into(), layout.ca_cert().display().to_string()));
    }
    env.push(("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()));
    env.extend(app.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// Readies the datadir; returns whether this node bootstraps a new cluster: the
/// bootstrap node when no other node of the cluster runs (then its datadir is initialised
/// if empty, and marked safe to bootstrap). Every other start joins the running cluster
/// and receives its data by state transfer.
fn prepare_mariadb(lab: &Lab, host: &Host, layout: &Layout) -> Result<bool> {
    let db = lab.topology.db.as_ref().expect("a db host implies a db tier");
    let others_running = db.hosts.iter().any(|other| other != &host.name && lab.running(other, Daemon::Mariadb).is_some());
    let bootstrap = host.name == db.bootstrap && !others_running;
    let datadir = layout.mysql_datadir();
    if bootstrap {
        if !datadir.join("mysql").exists() {
            Cmd::new("mariadb-install-db")
                .args(["--no-defaults", "--user=mysql", "--auth-root-authentication-method=socket", "--skip-test-db"])
                .arg(format!("--datadir={}", datadir.display()))
                .timeout(Duration::from_secs(120))
                .run()
                .context("mariadb-install-db")?;
            lab.reporter.emit(Event::Applied { host: host.name.clone(), what: "datadir initialised (mariadb-install-db)".into() });
        }
        let grastate = datadir.join("grastate.dat");
        if let Ok(text) = std::fs::read_to_string(&grastate) {
            // We know no node runs: this one may start the cluster again after a crash.
            std::fs::write(&grastate, text.replace("safe_to_bootstrap: 0", "safe_to_bootstrap: 1"))?;
        }
    } else if !others_running {
        bail!("{} cannot join: no node of the cluster runs (start the bootstrap node {} first)", host.name, db.bootstrap);
    }
    Ok(bootstrap)
}

/// Creates the spec's databases and users (passwords from the secrets) on a running node;
/// the cluster replicates them. Idempotent. Users connect from the private network, and
/// over TLS when the hops are encrypted.
fn create_databases(lab: &Lab, layout: &Layout) -> Result<()> {
    let Some(db) = &lab.topology.db else { return Ok(()) };
    let private = lab.topology.networks.private;
    let host_pattern = format!("{}/{}", private.network(), private.netmask());
    let mut sql = String::new();
    for database in &db.databases {
        let _ = writeln!(sql, "CREATE DATABASE IF NOT EXISTS `{database}`;");
    }
    for user in &db.users {
        let password_file = layout.secret(&crate::secrets::db_password_file(&user.name));
        let password = std::fs::read_to_string(&password_file).with_context(|| format!("cannot read {}", password_file.display()))?;
        let password = password.trim();
        let require = if lab.topology.internal_tls { " REQUIRE SSL" } else { "" };
        let _ = writeln!(sql, "CREATE USER IF NOT EXISTS '{}'@'{host_pattern}' IDENTIFIED BY '{}'{require};", user.name, sql_escape(password));
        let _ = writeln!(sql, "ALTER USER '{}'@'{host_pattern}' IDENTIFIED BY '{}'{require};", user.name, sql_escape(password));
        let _ = writeln!(sql, "GRANT ALL PRIVILEGES ON `{}`.* TO '{}'@'{host_pattern}';", user.database, user.name);
    }
    sql.push_str(&super::monitoring::monitor_user_sql(lab.topology)?);
    probe::sql(&layout.mysql_socket(), &sql, Duration::from_secs(30))?;
    Ok(())
}

fn sql_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

/// Probes `daemon` until ready; fails early, with its log's tail, if the process exits.
fn wait_ready(lab: &Lab, host: &Host, layout: &Layout, daemon: Daemon, identity: Identity, log: &Path) -> Result<String> {
    let netns = host_netns(&host.name);
    let timeout = match daemon {
        Daemon::Mariadb => Duration::from_secs(180),
        _ => Duration::from_secs(30),
    };
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer yet");
    loop {
        if !process::is_running(identity, &netns) {
            bail!("{} exited during start-up: {}\n{}", daemon.name(), last, log_tail(log, layout, daemon));
        }
        match health(lab, host, layout, daemon) {
            Ok(detail) => return Ok(detail),
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            bail!("{} not ready after {:.0}s: {last}\n{}", daemon.name(), timeout.as_secs_f64(), log_tail(log, layout, daemon));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log_tail(log: &Path, layout: &Layout, daemon: Daemon) -> String {
    let mut text = std::fs::read_to_string(log).map(|t| cmd::tail(&t, 15)).unwrap_or_default();
    if daemon == Daemon::Mariadb {
        if let Ok(err) = std::fs::read_to_string(layout.log_file("mariadbd.err")) {
            text.push_str(&cmd::tail(&err, 15));
        }
    }
    format!("--- last lines of {} ---\n{text}", log.display())
}

/// One health probe of `daemon` on `host`: Ok(detail) when it serves.
pub fn health(lab: &Lab, host: &Host, layout: &Layout, daemon: Daemon) -> Result<String> {
    let topology = lab.topology;
    let netns = host_netns(&host.name);
    let short = Duration::from_secs(1);
    match daemon {
        Daemon::Nftables => {
            let rules = Cmd::new("nft").args(["list", "table", "inet", render::nftables::TABLE]).netns(&netns).stdout();
            match (host.firewall, rules) {
                (true, Ok(text)) => Ok(format!("{} rules", text.lines().filter(|l| l.contains("accept") || l.contains("drop")).count())),
                (true, Err(e)) => bail!("no nixstack table: {e}"),
                (false, _) => Ok("no firewall on this host (spec)".into()),
            }
        }
        Daemon::Sshd => {
            let banner = probe::tcp_banner(&netns, host.address, 22, short)?;
            if !banner.starts_with("SSH-") {
                bail!("no SSH banner: {banner:?}");
            }
            Ok(banner)
        }
        Daemon::Mariadb => {
            let status = probe::wsrep_status(&layout.mysql_socket())?;
            let state = status.get("wsrep_local_state_comment").cloned().unwrap_or_default();
            let size = status.get("wsrep_cluster_size").cloned().unwrap_or_default();
            let cluster = status.get("wsrep_cluster_status").cloned().unwrap_or_default();
            if state != "Synced" || cluster != "Primary" || status.get("wsrep_ready").map(String::as_str) != Some("ON") {
                bail!("wsrep state {state:?}, cluster {cluster:?}");
            }
            Ok(format!("Synced, cluster size {size}"))
        }
        Daemon::App => {
            let app = topology.app.as_ref().expect("app tier");
            let scheme = if topology.internal_tls { "https" } else { "http" };
            let mut request = Request::get(format!("{scheme}://{}:{}{}", host.address, app.port, app.health_path)).timeout(Duration::from_secs(3));
            if topology.internal_tls {
                request = request.cacert(layout.ca_cert());
            }
            let response = request.send(&netns)?;
            if response.status != 200 {
                bail!("{} answered {}: {}", app.health_path, response.status, response.body.trim());
            }
            Ok(response.body.trim().to_string())
        }
        Daemon::Nginx => {
            let web = topology.web.as_ref().expect("web tier");
            let health_path = topology.lb.as_ref().map_or("/health", |lb| lb.health_path.as_str());
            let scheme = if topology.internal_tls { "https" } else { "http" };
            let mut request = Request::get(format!("{scheme}://{}:{}{health_path}", host.address, web.port)).timeout(Duration::from_secs(2));
            if topology.internal_tls {
                request = request.cacert(layout.ca_cert());
            }
            let response = request.send(&netns)?;
            if response.status != 200 {
                bail!("{health_path} answered {}", response.status);
            }
            Ok(format!("{health_path} 200"))
        }
        Daemon::Haproxy => {
            let lb = topology.lb.as_ref().expect("lb tier");
            let public = host.public_address.expect("an lb has a public address");
            match probe::tcp_connect(&netns, public, 443, short)? {
                Connect::Open => {}
                other => bail!("{public}:443 {}", other.symbol()),
            }
            let response = Request::get(format!("http://{}:{}/stats;csv", host.address, lb.stats_port)).timeout(Duration::from_secs(2)).send(&netns)?;
            let up = response.body.lines().filter(|l| l.starts_with("web,") && !l.starts_with("web,BACKEND") && l.contains(",UP")).count();
            Ok(format!("443 open, {up}/{} web backends UP", lb.backends.len()))
        }
        Daemon::Keepalived => {
            let holds = vip_holder(lab).as_deref() == Some(host.name.as_str());
            Ok(if holds { "MASTER (holds the virtual IP)".into() } else { "BACKUP".into() })
        }
        Daemon::Collectd => super::monitoring::collectd_health(topology, host),
    }
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

/// `lab status`: every host's daemons, whether the recorded process runs, and a probe.
pub fn status(topology: &Topology, plan: &NetworkPlan, state: &State) -> Vec<HostStatus> {
    let state = Mutex::new(state.clone());
    let reporter = Reporter::new(false);
    let lab = Lab { topology, plan, state: &state, reporter: &reporter };
    std::thread::scope(|scope| {
        let handles: Vec<_> = topology
            .hosts
            .iter()
            .map(|host| {
                let lab = &lab;
                scope.spawn(move || {
                    let layout = Layout::lab(&host.name);
                    let daemons = for_host(host)
                        .into_iter()
                        .map(|daemon| {
                            let identity = lab.identity(&host.name, daemon);
                            let running = daemon.is_oneshot() || lab.running(&host.name, daemon).is_some();
                            let (healthy, detail) = if !running {
                                (false, "not running".to_string())
                            } else {
                                match health(lab, host, &layout, daemon) {
                                    Ok(detail) => (true, detail),
                                    Err(e) => (false, format!("{e:#}").lines().next().unwrap_or_default().to_string()),
                                }
                            };
                            DaemonStatus { daemon: daemon.name().into(), pid: identity.map(|i| i.pid), running, healthy, detail }
                        })
                        .collect();
                    HostStatus { name: host.name.clone(), daemons }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("status thread")).collect()
    })
}

/// Kills every process of `daemon` in `host`'s namespace with `signal` (a crash when
/// SIGKILL: workers included, so nothing keeps serving). Returns the pids signalled.
pub fn kill(host: &str, daemon: Daemon, signal: i32) -> Vec<u32> {
    let netns = host_netns(host);
    let mut pids = Vec::new();
    for pid in super::netns::pids(&netns) {
        if process::comm(pid) == daemon.comm() {
            process::signal(pid, signal);
            pids.push(pid);
        }
    }
    pids
}

/// Waits until no process of `daemon` is left in `host`'s namespace.
pub fn wait_gone(host: &str, daemon: Daemon, timeout: Duration) -> Result<()> {
    let netns = host_netns(host);
    probe::wait_for(&format!("{daemon:?} on {host} to exit"), timeout, Duration::from_millis(20), || {
        let left = super::netns::pids(&netns).into_iter().filter(|pid| process::comm(*pid) == daemon.comm() && process::identity(*pid).is_some() && !is_zombie(*pid)).count();
        Ok((left == 0).then_some(()))
    })
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.rsplit(')').next().map(|r| r.trim_start().starts_with('Z')).unwrap_or(false)).unwrap_or(true)
}
