//! Per-host daemons of the lab: which run where, their files (secrets, the rendered
//! configs, unchanged), how each starts in its host's namespace, how readiness is probed,
//! and the bring-up in the Topology's start order (Galera bootstrap node first).

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::accounts;
use super::cmd::{self, Cmd};
use super::event::{Event, Reporter};
use super::host::NamespaceHost;
use super::probe;
use super::process::{self, Credentials, Identity, Launch};
use super::sshd;
use super::state::{Resource, State};
use crate::render::{self, Layout};
use crate::spec::Role;
use crate::stack::address_plan::{host_netns, NetworkPlan};
use crate::stack::{self, launch::ServiceLaunch};
pub use crate::stack::{for_host, Service};
use crate::topology::{Host, Topology};

/// The privilege-separation directory sshd insists on (compiled in, shared by all hosts).
const SSHD_PRIVSEP_DIR: &str = "/run/sshd";

pub use super::context::{vip_holder, DaemonStatus, HostStatus, Lab};

/// Brings every host's daemons up in the Topology's start order; hosts of one stage start
/// together. Idempotent: running daemons are left alone.
pub fn up(topology: &Topology, plan: &NetworkPlan, state: &Mutex<State>, reporter: &Reporter) -> Result<()> {
    let lab = Lab { topology, plan, state, reporter };
    prepare_common(&lab)?;
    for host in &topology.hosts {
        prepare_host(&lab, host)?;
    }
    // After a full stop the most advanced Galera node starts first, whichever it is.
    start_most_advanced_first(&lab)?;
    let mut migrated = false;
    for stage in &topology.start_order {
        if !migrated && stage.iter().any(|name| lab.host(name).has(Role::App)) {
            migrate(&lab)?;
            migrated = true;
        }
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = stage.iter().map(|name| scope.spawn(|| start_host(&lab, lab.host(name)))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a start thread panicked"))))
                .collect()
        });
        for result in results {
            result?;
        }
    }
    if let Some(lb) = &topology.lb {
        let started = Instant::now();
        let holder = probe::wait_for("the virtual IP", Duration::from_secs(15), Duration::from_millis(100), || {
            Ok(vip_holder(&lab))
        })?;
        reporter.emit(Event::Ready {
            host: holder,
            daemon: "keepalived".into(),
            detail: format!("holds the virtual IP {}", lb.vip),
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
    }
    if super::acme::enabled(topology) {
        // Every LB orders its certificate through the VIP, as on NixOS after the first boot.
        let new_root = super::acme::pebble_up(&lab)?;
        for ordered in super::acme::order_missing(&lab, new_root)? {
            reload(&lab, ordered, Service::Haproxy)?;
        }
    }
    if !super::acme::enabled(topology) {
        // What the internet client trusts: the stack CA, which signs the lab's `provided`
        // certificate (with ACME, pebble's root, written by pebble_up).
        let (source, target) = (super::secrets_dir().join("ca.crt"), super::public_trust());
        std::fs::copy(&source, &target)
            .with_context(|| format!("cannot copy {} to {}", source.display(), target.display()))?;
    }
    Ok(())
}

/// Lab-wide files: the stack secrets, the admin SSH key, sshd's privilege-separation dir.
fn prepare_common(lab: &Lab) -> Result<()> {
    let secrets = super::secrets_dir();
    let report = crate::secrets::init(lab.topology, &secrets)
        .with_context(|| format!("cannot create the lab secrets in {}", secrets.display()))?;
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
    if host.has(Role::Web) {
        link_static(lab, &layout)?;
    }
    // Secrets as modules/base.nix lays them out on NixOS: the directory 0750 and every file
    // 0640, root-owned, group the secrets group, which the units that read one hold.
    install_secrets(lab, host, &layout)?;
    let mysql = host.has(Role::Db).then(mysql_ids).transpose()?;
    for daemon in for_host(lab.topology, host) {
        let text = render::services::config(lab.topology, host, &layout, daemon);
        write_if_changed(&layout.config(daemon.config_file()), &text)?;
    }
    if stack::launch::mariadb_openssl_conf(lab.topology, host) {
        let text = render::nixos::NativeConfig::MariadbOpenssl.render(lab.topology, host, &layout);
        write_if_changed(&layout.config(stack::launch::MARIADB_OPENSSL_CONF), &text)?;
    }
    if stack::launch::sst_stunnel(lab.topology, host) {
        let text = render::nixos::NativeConfig::SstStunnel.render(lab.topology, host, &layout);
        write_if_changed(&layout.config(stack::launch::SST_STUNNEL_OPTIONS), &text)?;
        for (path, text, executable) in stack::launch::lab_sst_stunnel_files(&layout) {
            write_if_changed(&path, &text)?;
            if executable {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            }
        }
    }
    if stack::runs_nginx(lab.topology, host) {
        // nginx runs as its unit's user: its temporary files' directory is its own.
        let (uid, gid) = accounts::ensure_user(lab.state, "nginx", "nginx")?;
        for dir in render::nginx::required_dirs(&layout) {
            std::fs::create_dir_all(&dir)?;
            if dir != layout.run {
                chown(&dir, uid, gid)?;
            }
        }
    }
    if host.has(Role::Lb) {
        std::fs::create_dir_all(layout.haproxy_socket().parent().expect("socket in a dir"))?;
        if super::acme::enabled(lab.topology) {
            super::acme::ensure_placeholder(lab, &layout)?;
        }
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

/// Copies the host's secrets from the lab's secrets directory into its layout, as deploy
/// uploads them: each file staged beside its target (0640, root, the secrets group) and
/// renamed over it, so a daemon reading one (a reload, a restart) sees the old file or the
/// new one, never a partial copy. Returns the names whose content changed.
pub fn install_secrets(lab: &Lab, host: &Host, layout: &Layout) -> Result<Vec<String>> {
    let secrets_gid = accounts::ensure_group(lab.state, stack::launch::SECRETS_GROUP)?;
    std::fs::set_permissions(&layout.secrets, std::fs::Permissions::from_mode(0o750))?;
    chown(&layout.secrets, 0, secrets_gid)?;
    let mut changed = Vec::new();
    for (source, name) in crate::secrets::host_secrets(lab.topology, &host.name, &super::secrets_dir()) {
        let target = layout.secret(&name);
        let bytes = std::fs::read(&source).with_context(|| format!("cannot read secret {}", source.display()))?;
        if std::fs::read(&target).ok().as_deref() == Some(bytes.as_slice()) {
            continue;
        }
        let staged = layout.secret(&format!(".{name}.new"));
        std::fs::write(&staged, &bytes).with_context(|| format!("cannot write {}", staged.display()))?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o640))?;
        chown(&staged, 0, secrets_gid)?;
        std::fs::rename(&staged, &target)
            .with_context(|| format!("cannot install secret {} as {}", source.display(), target.display()))?;
        changed.push(name);
    }
    Ok(changed)
}

/// Makes every daemon of `host` that reads a certificate take the renewed ones, as deploy
/// does ([`stack::tls_reload`]): nginx and HAProxy through their unit's `ExecReload=`,
/// MariaDB with `FLUSH SSL` and Galera's `socket.ssl_reload`. Returns what it did.
pub fn reload_tls(lab: &Lab, host: &Host) -> Result<Vec<String>> {
    let layout = Layout::lab(&host.name);
    let mut done = Vec::new();
    for how in stack::tls_reload::reloads(lab.topology, host, &layout) {
        match how {
            stack::tls_reload::TlsReload::Unit { service, .. } => {
                reload(lab, host, service)?;
                done.push(format!("{}: ExecReload", service.name()));
            }
            stack::tls_reload::TlsReload::Sql { service, socket, statements } => {
                probe::sql(&socket, &statements, Duration::from_secs(20))
                    .with_context(|| format!("{}: {}", host.name, statements.trim().replace('\n', " ")))?;
                done.push(format!("{}: {}", service.name(), statements.trim().replace('\n', " ")));
            }
        }
    }
    Ok(done)
}

fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn mysql_ids() -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    let line = passwd
        .lines()
        .find(|l| l.starts_with("mysql:"))
        .context("no mysql user: run scripts/setup (mariadb-server)")?;
    let fields: Vec<&str> = line.split(':').collect();
    Ok((fields[2].parse()?, fields[3].parse()?))
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).with_context(|| format!("cannot chown {}", path.display()))
}

/// Starts whatever of `host`'s daemons is not running, each probed ready before the next.
fn start_host(lab: &Lab, host: &Host) -> Result<()> {
    for daemon in for_host(lab.topology, host) {
        ensure(lab, host, daemon).with_context(|| format!("{}: {}", host.name, daemon.name()))?;
    }
    Ok(())
}

/// Starts `daemon` on `host` unless it runs; waits until it is ready.
pub fn ensure(lab: &Lab, host: &Host, daemon: Service) -> Result<()> {
    let layout = Layout::lab(&host.name);
    if daemon.is_oneshot() {
        Cmd::new("nft")
            .args(["-f"])
            .arg(layout.config(daemon.config_file()).display().to_string())
            .netns(&host_netns(&host.name))
            .run()?;
        lab.reporter.emit(Event::Applied { host: host.name.clone(), what: "nftables ruleset loaded".into() });
        return Ok(());
    }
    if let Some(identity) = lab.running(&host.name, daemon) {
        lab.reporter.emit(Event::Running { host: host.name.clone(), daemon: daemon.name().into(), pid: identity.pid });
        // It may still be starting (an interrupted `up`): the next host must not start before it serves.
        let (_, process) = launch(lab, host, &layout, daemon, false)?;
        wait_ready(lab, host, &layout, daemon, identity, &process.log)?;
        return Ok(());
    }
    start(lab, host, daemon)?;
    Ok(())
}

/// Starts `daemon` on `host` (recorded in the state file first) and waits until it is ready.
pub fn start(lab: &Lab, host: &Host, daemon: Service) -> Result<Identity> {
    let layout = Layout::lab(&host.name);
    let netns = host_netns(&host.name);
    let mut bootstrap = false;
    if daemon == Service::Mariadb {
        bootstrap = prepare_mariadb(lab, host, &layout)?;
    }
    if daemon == Service::Collectd {
        let (uid, gid) = accounts::ensure_user(lab.state, "collectd", "collectd")?;
        super::monitoring::prepare_collectd(lab.topology, host, &layout, uid, gid)?;
    }
    if let Some(app) = lab.topology.app.as_ref().filter(|_| daemon == Service::App) {
        if app.source.is_some() && app.lab_command.is_none() {
            bail!(
                "app.source `{}` is built by Nix, which the lab does not have: set [app.lab] command to how the app starts here",
                app.source.as_deref().unwrap_or_default()
            );
        }
    }
    let (service, mut launch) = launch(lab, host, &layout, daemon, bootstrap)?;
    if daemon == Service::App && !launch.program.starts_with('/') {
        // `[app.lab] command` relative to where `lab up` runs (the lab starts daemons in `/`).
        launch.program = std::env::current_dir()?.join(&launch.program).display().to_string();
    }
    unit_directories(&service, launch.credentials.as_ref())?;
    load_credentials(&service, launch.credentials.as_ref(), &layout)?;
    // The lab's stand-in for the journal: the daemon's log file, which a daemon logging to a
    // file itself (collectd's logfile plugin) reopens as its own user.
    if let Some(credentials) = &launch.credentials {
        std::fs::OpenOptions::new().create(true).append(true).open(&launch.log)?;
        chown(&launch.log, credentials.uid, credentials.gid)?;
    }
    // The units' generated shell scripts (mysql's preStart: mysql_install_db on an empty
    // datadir) are the lab's own code: prepare_mariadb does that step.
    for pre in service.pre.iter().filter(|argv| !argv[0].starts_with("{script:")) {
        process::run_unit_command(&launch, pre).with_context(|| format!("ExecStartPre {}", pre.join(" ")))?;
    }
    lab.state.lock().expect("state lock").record_process_intent(&host.name, daemon.name(), &netns)?;
    let started = Instant::now();
    let identity = process::spawn(&launch)?;
    lab.state.lock().expect("state lock").record_process_started(
        &host.name,
        daemon.name(),
        identity.pid,
        identity.start_time,
    )?;
    if daemon == Service::App {
        // The other daemons write their own pid files into Layout.run; the app does not.
        std::fs::write(layout.pid_file("app"), format!("{}\n", identity.pid))?;
    }
    lab.reporter.emit(Event::Started { host: host.name.clone(), daemon: daemon.name().into(), pid: identity.pid });
    let detail = wait_ready(lab, host, &layout, daemon, identity, &launch.log)?;
    lab.reporter.emit(Event::Ready {
        host: host.name.clone(),
        daemon: daemon.name().into(),
        detail,
        elapsed_ms: started.elapsed().as_millis() as u64,
    });
    if daemon == Service::Mariadb && bootstrap {
        create_databases(lab, &layout)?;
        lab.reporter.emit(Event::Applied { host: host.name.clone(), what: "databases and users created".into() });
    }
    Ok(identity)
}

/// nixstack's demo assets (app/static, shipped in every artifact tree): what the lab serves
/// for `[web] static` without `[web.lab] static`.
fn demo_static() -> impl Iterator<Item = (&'static str, &'static str)> {
    render::tree::APP.iter().filter_map(|(path, text)| path.strip_prefix("app/static/").map(|name| (name, *text)))
}

/// `[web] static` in the lab: the layout's static link (NixOS: /etc/nixstack/static into the
/// store) points at `[web.lab] static`, or at the demo assets written into the host's state.
fn link_static(lab: &Lab, layout: &Layout) -> Result<()> {
    let Some(web) = lab.topology.web.as_ref().filter(|web| web.static_package.is_some()) else { return Ok(()) };
    let target = match &web.lab_static {
        Some(dir) => std::env::current_dir()?.join(dir),
        None => {
            let dir = layout.state.join("static-demo");
            for (name, text) in demo_static() {
                let file = dir.join(name);
                std::fs::create_dir_all(file.parent().expect("a file in a directory"))?;
                write_if_changed(&file, text)?;
            }
            dir
        }
    };
    if !target.is_dir() {
        bail!("web.lab.static `{}` is not a directory", target.display());
    }
    let link = layout.static_root();
    std::fs::create_dir_all(link.parent().expect("under etc"))?;
    if std::fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).with_context(|| format!("cannot link {}", link.display()))?;
    }
    Ok(())
}

/// The app's schema migration (`[app] migrate`), once, before the first app starts: on the
/// first app host, as modules/app.nix's `nixstack-app-migrate` unit runs it (the app's user,
/// environment and credentials), against the first `DATABASE_HOSTS` node. Skipped when that
/// host's app already runs (a repeated `lab up` changes nothing). Its failure fails `lab up`.
fn migrate(lab: &Lab) -> Result<()> {
    let Some(app) = &lab.topology.app else { return Ok(()) };
    let (Some(migrate), Some(name)) = (&app.migrate, app.hosts.first()) else { return Ok(()) };
    let host = lab.host(name);
    if lab.running(&host.name, Service::App).is_some() {
        return Ok(());
    }
    let layout = Layout::lab(&host.name);
    let (service, launch) = launch(lab, host, &layout, Service::App, false)?;
    let mut argv = match (&app.lab_migrate, &app.lab_command) {
        (Some(argv), _) => argv.clone(),
        (None, None) if app.source.is_none() => {
            // The demo app's source under Debian's Python, with the migration's arguments.
            service.argv.iter().cloned().chain(migrate[1..].iter().cloned()).collect()
        }
        _ => bail!("app.migrate `{}` has no [app.lab] migrate: set how the lab runs it", migrate.join(" ")),
    };
    if !argv[0].starts_with('/') {
        argv[0] = std::env::current_dir()?.join(&argv[0]).display().to_string();
    }
    unit_directories(&service, launch.credentials.as_ref())?;
    load_credentials(&service, launch.credentials.as_ref(), &layout)?;
    let started = Instant::now();
    let output = process::run_unit_command(&launch, &argv)
        .with_context(|| format!("{}: app migration {}", host.name, argv.join(" ")))?;
    std::fs::write(layout.log_file("app-migrate.log"), &output)?;
    lab.reporter.emit(Event::Applied {
        host: host.name.clone(),
        what: format!("app migration ran ({} ms): {}", started.elapsed().as_millis(), migrate.join(" ")),
    });
    Ok(())
}

/// Creates the unit's runtime, state and logs directories with its modes, owned by its
/// user, as systemd does before it starts the unit.
fn unit_directories(service: &ServiceLaunch, credentials: Option<&Credentials>) -> Result<()> {
    for dir in &service.directories {
        std::fs::create_dir_all(&dir.path).with_context(|| format!("cannot create {}", dir.path.display()))?;
        std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(dir.mode))?;
        if let Some(credentials) = credentials {
            chown(&dir.path, credentials.uid, credentials.gid)?;
        }
    }
    Ok(())
}

/// Reloads `daemon` on `host` as its unit's `ExecReload=` does (`$MAINPID` the recorded
/// daemon): HAProxy re-reads its config and certificates without dropping a connection.
pub fn reload(lab: &Lab, host: &Host, daemon: Service) -> Result<()> {
    let layout = Layout::lab(&host.name);
    let identity =
        lab.running(&host.name, daemon).with_context(|| format!("{} does not run on {}", daemon.name(), host.name))?;
    let (service, launch) = launch(lab, host, &layout, daemon, false)?;
    if service.reload.is_empty() {
        bail!("{}'s unit has no ExecReload", daemon.name());
    }
    for argv in &service.reload {
        let argv: Vec<String> = argv.iter().map(|word| word.replace("$MAINPID", &identity.pid.to_string())).collect();
        process::run_unit_command(&launch, &argv).with_context(|| format!("ExecReload {}", argv.join(" ")))?;
    }
    Ok(())
}

/// The unit's credentials in its `$CREDENTIALS_DIRECTORY`, as systemd's `LoadCredential=`
/// copies them before the start: fresh copies, readable by the unit's user only.
fn load_credentials(service: &ServiceLaunch, credentials: Option<&Credentials>, layout: &Layout) -> Result<()> {
    if service.credentials.is_empty() {
        return Ok(());
    }
    let dir = stack::app::credentials_directory(layout);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (uid, gid) = credentials.map_or((0, 0), |c| (c.uid, c.gid));
    for credential in &service.credentials {
        let target = dir.join(credential.name);
        std::fs::copy(&credential.source, &target)
            .with_context(|| format!("LoadCredential {}: {}", credential.name, credential.source.display()))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o400))?;
        chown(&target, uid, gid)?;
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500))?;
    chown(&dir, uid, gid)?;
    Ok(())
}

/// How `daemon` starts: the catalogue's launch (the nixpkgs unit's argv, user, groups,
/// umask, capabilities and environment, resolved through the lab `Layout`), plus the lab's
/// named deviations ([`foreground`]).
fn launch(
    lab: &Lab,
    host: &Host,
    layout: &Layout,
    daemon: Service,
    bootstrap: bool,
) -> Result<(ServiceLaunch, Launch)> {
    let service = stack::launch::launch(lab.topology, host, layout, daemon, bootstrap)
        .expect("a daemon, not the one-shot firewall");
    let mut argv = service.argv.clone();
    argv.extend(foreground(host, layout, daemon));
    let credentials = service.user.as_deref().map(|user| credentials(lab, &service, user)).transpose()?;
    let mut env: Vec<(String, String)> = service.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    // systemd gives every unit a PATH (NixOS: the unit's `path` packages); Debian's here.
    if !service.environment.contains_key("PATH") {
        env.push(("PATH".into(), stack::launch::LAB_PATH.into()));
    }
    if daemon == Service::Collectd {
        env.extend(super::monitoring::collectd_environment(layout));
    }
    // systemd sets it for a unit with credentials.
    if !service.credentials.is_empty() {
        let dir = stack::app::credentials_directory(layout);
        env.push(("CREDENTIALS_DIRECTORY".into(), dir.display().to_string()));
    }
    let process = Launch {
        program: argv[0].clone(),
        args: argv[1..].to_vec(),
        env,
        netns: host_netns(&host.name),
        hostname: host.name.clone(),
        log: layout.log_file(&format!("{}.log", daemon.name())),
        credentials,
        umask: service.umask,
    };
    Ok((service, process))
}

/// Arguments the lab adds to a unit's command line, each a deviation from NixOS that the
/// lab's situation forces: no systemd to follow a forking daemon or collect its log, and one
/// file system shared by every host's namespace.
fn foreground(host: &Host, layout: &Layout, daemon: Service) -> Vec<String> {
    let pid = |name: &str| layout.pid_file(name).display().to_string();
    match daemon {
        // Logs to stderr (the lab's log file) instead of the journal.
        Service::Sshd => vec!["-e".into()],
        Service::Nginx => vec!["-e".into(), "stderr".into()],
        // keepalived forks (Type=forking on NixOS), and its children's default pid files
        // under /run would be shared by every namespace.
        Service::Keepalived => vec![
            "--dont-fork".into(),
            "--log-console".into(),
            "--log-detail".into(),
            "--no-syslog".into(),
            format!("--vrrp_pid={}", pid("keepalived-vrrp")),
            format!("--checkers_pid={}", pid("keepalived-checkers")),
            format!("--bfd_pid={}", pid("keepalived-bfd")),
            format!("--config-id={}", host.name),
        ],
        _ => Vec::new(),
    }
}

/// The numbers of `service`'s user, group and groups on this machine; the accounts NixOS
/// creates that Debian lacks are created (and recorded for `lab down`).
fn credentials(lab: &Lab, service: &ServiceLaunch, user: &str) -> Result<Credentials> {
    let primary = service.group.clone().unwrap_or_else(|| user.to_string());
    let (uid, _) = accounts::ensure_user(lab.state, user, &primary)?;
    let gid = accounts::ensure_group(lab.state, &primary)?;
    let mut groups = vec![gid];
    for group in &service.groups {
        groups.push(accounts::ensure_group(lab.state, group)?);
    }
    for group in &service.user_groups {
        accounts::ensure_member(lab.state, user, group)?;
    }
    // A named deviation: a capability outside this machine's bounding set (containers drop
    // CAP_SYS_RESOURCE, which nginx's unit keeps) cannot be raised; the daemon runs without it.
    let bounding = bounding_set();
    let ambient = service
        .ambient_capabilities
        .iter()
        .map(|name| capability(name))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter(|cap| bounding & (1 << cap) != 0)
        .collect();
    Ok(Credentials { uid, gid, groups, ambient })
}

/// This process's capability bounding set (`CapBnd` of /proc/self/status).
fn bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapBnd:").map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap_or(0)))
        })
        .unwrap_or(0)
}

/// A capability's number (linux/capability.h), for the few units that keep one.
fn capability(name: &str) -> Result<u32> {
    Ok(match name {
        "CAP_CHOWN" => 0,
        "CAP_DAC_OVERRIDE" => 1,
        "CAP_DAC_READ_SEARCH" => 2,
        "CAP_FOWNER" => 3,
        "CAP_SETGID" => 6,
        "CAP_SETUID" => 7,
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_BROADCAST" => 11,
        "CAP_NET_ADMIN" => 12,
        "CAP_NET_RAW" => 13,
        "CAP_IPC_LOCK" => 14,
        "CAP_SYS_CHROOT" => 18,
        "CAP_SYS_RESOURCE" => 24,
        other => bail!("capability {other} is unknown to the lab (add its number from linux/capability.h)"),
    })
}

/// Readies the datadir; returns whether this node bootstraps a new cluster, as the shared
/// Galera recovery decides ([`super::galera::start_as`]): when no node holds data, the spec's
/// bootstrap node (its datadir initialised); after a full stop, the most advanced node (its
/// grastate.dat readied for it, that node only). Every other start joins the running cluster and
/// receives its data by state transfer.
fn prepare_mariadb(lab: &Lab, host: &Host, layout: &Layout) -> Result<bool> {
    let start = super::galera::start_as(lab, &host.name)?;
    let datadir = layout.mysql_datadir();
    let bootstrap = matches!(start, super::galera::Start::Bootstrap { .. });
    if let super::galera::Start::Bootstrap { position } = &start {
        if !datadir.join("mysql").exists() {
            Cmd::new("mariadb-install-db")
                .args(["--no-defaults", "--user=mysql", "--auth-root-authentication-method=socket", "--skip-test-db"])
                .arg(format!("--datadir={}", datadir.display()))
                // Its temporary tables under the host's runtime directory, not the machine's /tmp.
                .arg(format!("--tmpdir={}", layout.run.display()))
                .timeout(Duration::from_secs(120))
                .run()
                .context("mariadb-install-db")?;
            lab.reporter.emit(Event::Applied {
                host: host.name.clone(),
                what: "datadir initialised (mariadb-install-db)".into(),
            });
        }
        super::galera::prepare_bootstrap(&datadir, position.as_ref())?;
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
        let password = std::fs::read_to_string(&password_file)
            .with_context(|| format!("cannot read {}", password_file.display()))?;
        let password = password.trim();
        let require = if lab.topology.internal_tls { " REQUIRE SSL" } else { "" };
        let _ = writeln!(
            sql,
            "CREATE USER IF NOT EXISTS '{}'@'{host_pattern}' IDENTIFIED BY '{}'{require};",
            user.name,
            sql_escape(password)
        );
        let _ = writeln!(
            sql,
            "ALTER USER '{}'@'{host_pattern}' IDENTIFIED BY '{}'{require};",
            user.name,
            sql_escape(password)
        );
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
fn wait_ready(
    lab: &Lab,
    host: &Host,
    layout: &Layout,
    daemon: Service,
    identity: Identity,
    log: &Path,
) -> Result<String> {
    let netns = host_netns(&host.name);
    let timeout = match daemon {
        Service::Mariadb => Duration::from_secs(180),
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
            bail!(
                "{} not ready after {:.0}s: {last}\n{}",
                daemon.name(),
                timeout.as_secs_f64(),
                log_tail(log, layout, daemon)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log_tail(log: &Path, layout: &Layout, daemon: Service) -> String {
    let mut text = std::fs::read_to_string(log).map(|t| cmd::tail(&t, 15)).unwrap_or_default();
    if daemon == Service::Mariadb {
        if let Ok(err) = std::fs::read_to_string(layout.log_file("mariadbd.err")) {
            text.push_str(&cmd::tail(&err, 15));
        }
    }
    format!("--- last lines of {} ---\n{text}", log.display())
}

/// One health probe of `daemon` on `host`: Ok(detail) when it serves. The catalogue's
/// checks ([`stack::health`]), the same deploy gates on, run in the host's namespace.
pub fn health(lab: &Lab, host: &Host, layout: &Layout, daemon: Service) -> Result<String> {
    if daemon == Service::Collectd {
        return super::monitoring::collectd_health(lab.topology, host);
    }
    if daemon == Service::Nftables && !host.firewall {
        return Ok("no firewall on this host (spec)".into());
    }
    let checks = stack::health::service_checks(lab.topology, host, layout, daemon);
    let details = crate::host::health::probe(&NamespaceHost::new(&host.name, layout.clone()), &checks)
        .map_err(anyhow::Error::msg)?;
    Ok(details.join("; "))
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
                    let daemons = for_host(topology, host)
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
                            DaemonStatus {
                                daemon: daemon.name().into(),
                                pid: identity.map(|i| i.pid),
                                running,
                                healthy,
                                detail,
                            }
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
pub fn kill(host: &str, daemon: Service, signal: i32) -> Vec<u32> {
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
pub fn wait_gone(host: &str, daemon: Service, timeout: Duration) -> Result<()> {
    let netns = host_netns(host);
    probe::wait_for(&format!("{daemon:?} on {host} to exit"), timeout, Duration::from_millis(20), || {
        let left = super::netns::pids(&netns)
            .into_iter()
            .filter(|pid| process::comm(*pid) == daemon.comm() && process::identity(*pid).is_some() && !is_zombie(*pid))
            .count();
        Ok((left == 0).then_some(()))
    })
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().map(|r| r.trim_start().starts_with('Z')).unwrap_or(false))
        .unwrap_or(true)
}

/// Before the start order runs: when no db node runs, starts the node the decision chooses (its
/// daemons up to mariadbd), so the others, the spec's bootstrap node included, join it.
pub fn start_most_advanced_first(lab: &Lab) -> Result<()> {
    if lab.topology.db.is_none() || super::galera::any_running(lab) {
        return Ok(());
    }
    match super::galera::decide(lab)? {
        crate::stack::galera_recovery::Decision::Bootstrap { node, .. } => {
            let host = lab.host(&node);
            for daemon in for_host(lab.topology, host) {
                ensure(lab, host, daemon).with_context(|| format!("{node}: {}", daemon.name()))?;
                if daemon == Service::Mariadb {
                    break;
                }
            }
            Ok(())
        }
        // Joining a primary component needs nothing first; the refusals are reported where the
        // node would start (`start_as`), with their instructions.
        _ => Ok(()),
    }
}
