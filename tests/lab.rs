//! The lab end to end, through the binary: `nixstack lab up`, `lab test`, `lab down` on
//! both example specs with the real daemons; afterwards nothing of the lab may remain (no
//! lab namespace, no lab process, no lab directory). Needs root (CI runs as root).

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The lab uses fixed names and addresses: one lab at a time.
static ONE_LAB: Mutex<()> = Mutex::new(());

const LAB_ROOT: &str = "/var/lib/nixstack-lab";

fn nixstack(args: &[&str]) -> (bool, String, String, Duration) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_nixstack"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("nixstack runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed(),
    )
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn require_root_and_tools() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the lab test needs root (network namespaces, daemons): run it as root, as CI does"
    );
    for tool in [
        "/usr/sbin/haproxy",
        "/usr/sbin/nginx",
        "/usr/sbin/mariadbd",
        "/usr/sbin/keepalived",
        "/usr/sbin/nft",
        "/usr/sbin/sshd",
        "/usr/bin/curl",
        "/usr/bin/ssh",
    ] {
        assert!(Path::new(tool).exists(), "{tool} is missing: run scripts/setup");
    }
    let pymysql = Command::new("/usr/bin/python3").args(["-c", "import pymysql"]).status();
    assert!(pymysql.is_ok_and(|s| s.success()), "Debian's python3-pymysql is missing: run scripts/setup");
}

/// Names of the namespaces a lab of `spec` creates.
fn lab_namespaces(spec: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(spec)).expect("spec");
    let topology =
        nixstack::cli::compile(&nixstack::spec::SpecSource { name: spec.into(), text }).expect("spec compiles");
    let mut names: Vec<String> = topology.hosts.iter().map(|h| format!("nxs-{}", h.name)).collect();
    names.extend(["nxs-sw", "nxs-internet", "nxs-admin", "nxs-sumo"].map(String::from));
    names
}

fn existing_namespaces() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Processes whose command line names the lab directory (every lab daemon's does).
fn lab_processes() -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").filter_map(|e| e.ok()) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(LAB_ROOT) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// `nixstack lab qps`: the operator's view lists every monitored web host (and LB) with a
/// rate from fresh data points, and the stand-in shows in `lab status`.
///
/// The scenario's last step restarts a load balancer's HAProxy, whose request counter then
/// starts again from zero: like Sumo Logic's `rate counter`, the view skips the reset and
/// has no rate for that host until two samples after it. So the view is read until every
/// host has a rate, for at most the view's window plus two collection intervals.
fn check_qps_view(spec: &str) {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(spec)).expect("spec");
    let topology =
        nixstack::cli::compile(&nixstack::spec::SpecSource { name: spec.into(), text }).expect("spec compiles");
    let monitored: Vec<&str> = topology
        .hosts
        .iter()
        .filter(|h| h.monitored && (h.has(nixstack::spec::Role::Web) || h.has(nixstack::spec::Role::Lb)))
        .map(|h| h.name.as_str())
        .collect();
    let started = Instant::now();
    loop {
        let (ok, stdout, stderr, _) = nixstack(&["lab", "qps", "--json"]);
        assert!(ok, "lab qps failed:\n{stdout}\n{stderr}");
        let view: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("lab qps --json is not one JSON object ({e}): {stdout}"));
        let rows = view["hosts"].as_array().expect("hosts");
        let interval = view["window_seconds"].as_f64().expect("window_seconds") / 5.0;
        let mut missing = Vec::new();
        for name in &monitored {
            let row =
                rows.iter().find(|r| r["host"] == *name).unwrap_or_else(|| panic!("lab qps lacks {name}: {stdout}"));
            assert!(row["age"].as_f64().is_some_and(|a| a < 10.0), "stale data for {name}: {row}");
            if !row["qps"].as_f64().is_some_and(|q| q >= 0.0) {
                missing.push(row.to_string());
            }
        }
        if missing.is_empty() {
            break;
        }
        let waited = started.elapsed().as_secs_f64();
        assert!(waited < 7.0 * interval, "no rate after {waited:.1}s for {missing:?}");
        std::thread::sleep(Duration::from_secs_f64(interval / 2.0));
    }
    let (ok, stdout, _, _) = nixstack(&["lab", "qps"]);
    assert!(ok && stdout.contains("total"), "lab qps (human):\n{stdout}");
    let (_, status, _, _) = nixstack(&["lab", "status", "--json"]);
    assert!(status.contains("Sumo Logic stand-in"), "lab status does not show the stand-in: {status}");
}

/// Takes the lab down whatever happens to the test.
struct DownOnDrop;

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        if Path::new(LAB_ROOT).join("state.json").exists() {
            let _ = nixstack(&["lab", "down"]);
        }
    }
}

/// A field of `/proc/<pid>/status` (`Uid`, `Gid`, `Groups`), as numbers.
fn proc_ids(pid: u64, field: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap_or_default();
    line.split_whitespace().skip(1).filter_map(|n| n.parse().ok()).collect()
}

fn passwd_uid(user: &str) -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f[0] == user).and_then(|f| f[2].parse().ok())
}

fn group_gid(group: &str) -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f[0] == group).and_then(|f| f[2].parse().ok())
}

/// Every daemon the lab started runs as its nixpkgs unit does, read from the record of the
/// nixpkgs source (data/nixpkgs-units.toml) and the running process (/proc), not from the
/// code that launched it: the unit's user and group, its supplementary groups among the
/// process's, every literal word of the unit's ExecStart in order on the command line, and an
/// environment of exactly the unit's `Environment=` plus `PATH` (and what the lab names as a
/// deviation: collectd's CA bundle for the Sumo Logic stand-in).
fn daemons_run_as_their_nixpkgs_units(internal_tls: bool) {
    let record: toml::Table = toml::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/nixpkgs-units.toml")).unwrap(),
    )
    .unwrap();
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(LAB_ROOT).join("state.json")).unwrap()).unwrap();
    fn table(daemon: &str) -> Option<&str> {
        match daemon {
            "mariadbd" => Some("mysql"),
            "sshd" | "nginx" | "haproxy" | "keepalived" | "collectd" => Some(daemon),
            _ => None,
        }
    }
    let mut checked = 0;
    for process in state["created"].as_array().unwrap().iter().filter(|r| r["kind"] == "process") {
        let (daemon, host) = (process["daemon"].as_str().unwrap(), process["host"].as_str().unwrap());
        let Some(pid) = process["pid"].as_u64() else { continue };
        if daemon == "app" {
            app_environment_is_what_the_app_reads(pid, host, internal_tls);
            checked += 1;
            continue;
        }
        let Some(unit) = table(daemon).and_then(|t| record.get(t)) else { continue };
        let what = format!("{daemon} on {host} (pid {pid})");
        let user = unit["user"].as_str().unwrap();
        let expected_uid =
            if user.is_empty() { 0 } else { passwd_uid(user).unwrap_or_else(|| panic!("{what}: no user {user}")) };
        assert_eq!(proc_ids(pid, "Uid")[0], expected_uid, "{what}: runs as the unit's User={user:?}");
        let group = unit["group"].as_str().unwrap();
        if !group.is_empty() {
            assert_eq!(proc_ids(pid, "Gid")[0], group_gid(group).unwrap(), "{what}: Group={group}");
        }
        let groups = proc_ids(pid, "Groups");
        for supplementary in unit["supplementary_groups"].as_array().unwrap() {
            let gid = group_gid(supplementary.as_str().unwrap()).unwrap();
            assert!(groups.contains(&gid), "{what}: SupplementaryGroups {supplementary}");
        }
        let mut cmdline: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap()
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        // sshd and nginx rewrite their title (setproctitle) over argv and environ:
        // "sshd: <argv> [listener] …", "nginx: master process <argv>".
        let retitled =
            ["sshd: ", "nginx: master process "].iter().find_map(|prefix| cmdline.first()?.strip_prefix(prefix));
        let retitled = retitled
            .map(|title| title.split(" [listener]").next().unwrap().split(' ').map(String::from).collect::<Vec<_>>());
        if let Some(words) = retitled.clone() {
            cmdline = words;
        }
        let mut rest = cmdline.iter().skip(1);
        for word in unit["exec_start"].as_array().unwrap().iter().skip(1).map(|w| w.as_str().unwrap()) {
            if word.starts_with('$') || word.contains('{') || word.contains('/') {
                continue; // symbolic, expanded or a path the Layout moves
            }
            assert!(
                rest.any(|arg| arg == word),
                "{what}: ExecStart word {word:?} missing or out of order in {cmdline:?}"
            );
        }
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let mut names: Vec<String> = environ
            .split(|b| *b == 0)
            .filter(|e| !e.is_empty())
            .filter_map(|e| String::from_utf8_lossy(e).split_once('=').map(|(k, _)| k.to_string()))
            .collect();
        // HAProxy's master sets HAPROXY_* in its own environment (for its workers and its
        // re-exec on reload; haproxy's management guide, "master-worker"): not the caller's.
        names.retain(|n| !(daemon == "haproxy" && n.starts_with("HAPROXY_")));
        names.sort();
        // Variables whose value is a store path have no meaning in the lab (no store).
        let mut expected: Vec<String> = unit["environment"]
            .as_table()
            .unwrap()
            .iter()
            .filter(|(_, v)| !v.as_str().unwrap_or("").contains("{store:"))
            .map(|(k, _)| k.clone())
            .collect();
        expected.push("PATH".into());
        if daemon == "collectd" {
            expected.extend(["CURL_CA_BUNDLE", "NO_PROXY", "REQUESTS_CA_BUNDLE"].map(String::from));
        }
        if daemon == "mariadbd" && internal_tls {
            // What modules/db.nix adds to the nixpkgs unit: the OpenSSL configuration of its groups.
            let db_module =
                std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("modules/db.nix")).unwrap();
            assert!(db_module.contains("OPENSSL_CONF = \"${cfg.opensslConfig}\";"), "modules/db.nix sets OPENSSL_CONF");
            expected.push("OPENSSL_CONF".into());
        }
        expected.sort();
        expected.dedup();
        if retitled.is_some() {
            // setproctitle reuses the memory /proc/PID/environ points at: the environment
            // cannot be read back whole; what shows must still be the unit's.
            assert!(
                names.iter().all(|n| expected.contains(n)),
                "{what}: {names:?} not in the unit's environment {expected:?}"
            );
        } else {
            assert_eq!(names, expected, "{what}: environment is the unit's, nothing of the caller's");
        }
        checked += 1;
    }
    assert!(checked >= 5, "checked {checked} daemons against their units");
}

/// The running app's environment holds every variable the demo app reads (its own source,
/// `env("NAME"` calls) but the optional tuning ones, and nothing else but `PATH`, the spec's
/// `app.env` and systemd's `CREDENTIALS_DIRECTORY`; that directory holds exactly the
/// credentials the app opens (`credential("NAME"` calls), readable by the app's user only.
fn app_environment_is_what_the_app_reads(pid: u64, host: &str, internal_tls: bool) {
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("app/nixstack_demo_app.py")).unwrap();
    let names_after = |marker: &str| -> std::collections::BTreeSet<String> {
        source.split(marker).skip(1).filter_map(|rest| rest.split('"').next()).map(String::from).collect()
    };
    let reads = names_after("env(\"");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environment: std::collections::BTreeMap<String, String> = environ
        .split(|b| *b == 0)
        .filter_map(|e| String::from_utf8_lossy(e).split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let names: std::collections::BTreeSet<String> = environment
        .keys()
        .filter(|k| !["PATH", "CREDENTIALS_DIRECTORY", "APP_ENV"].contains(&k.as_str()))
        .cloned()
        .collect();
    let wanted: std::collections::BTreeSet<String> = reads
        .iter()
        .filter(|r| !nixstack::stack::app::OPTIONAL_APP_VARIABLES.contains(&r.as_str()))
        .filter(|r| internal_tls || !nixstack::stack::app::INTERNAL_TLS_APP_VARIABLES.contains(&r.as_str()))
        .cloned()
        .collect();
    assert_eq!(names, wanted, "app on {host}: the environment it runs with is the one it reads");
    let directory = Path::new(environment.get("CREDENTIALS_DIRECTORY").expect("CREDENTIALS_DIRECTORY"));
    let present: std::collections::BTreeSet<String> =
        std::fs::read_dir(directory).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let mut opens = names_after("credential(\"");
    if !internal_tls {
        opens.retain(|name| name != nixstack::stack::app::DATABASE_CA_CREDENTIAL);
    }
    assert_eq!(present, opens, "app on {host}: its credentials are the ones it opens");
    use std::os::unix::fs::MetadataExt;
    let uid = proc_ids(pid, "Uid")[0];
    for name in &present {
        let meta = std::fs::metadata(directory.join(name)).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o777), (uid, 0o400), "app on {host}: credential {name}");
    }
}

/// Serial of the first certificate openssl reads from `input` (a PEM file, or `-` for stdin).
fn serial_of(pem: &str) -> String {
    let mut child = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(pem.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim().trim_start_matches("serial=").to_string()
}

/// Runs `args` in namespace `ns` and returns stdout (and whether it succeeded).
fn in_namespace(ns: &str, args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new("ip").args(["netns", "exec", ns]).args(args).output().unwrap();
    (
        output.status.success(),
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
    )
}

/// The LB whose namespace carries the VIP now.
fn vip_holder(lbs: &[String], vip: &str) -> Option<String> {
    lbs.iter()
        .find(|lb| in_namespace(&format!("nxs-{lb}"), &["ip", "-4", "addr"]).1.contains(&format!("{vip}/")))
        .cloned()
}

/// ACME with two LBs, against the lab's pebble (Let's Encrypt's test server): both LBs hold a
/// pebble-issued certificate (both orders validated through the VIP: the backup's challenge
/// passed on by the holder's HAProxy); a client trusting only pebble's root validates the VIP
/// before and after the holder fails, the certificate served being the holder's own; and a
/// renewal from the LB that is now the backup succeeds with a new serial, which it serves.
fn acme_certificates_survive_lb_failover(spec: &str, topology: &nixstack::topology::Topology) {
    let lb = topology.lb.as_ref().unwrap();
    let (vip, domain) = (lb.vip.to_string(), topology.stack.domain.clone());
    let full_pem = |host: &str| {
        std::fs::read_to_string(format!("{LAB_ROOT}/{host}/state/acme/{domain}/full.pem")).unwrap_or_default()
    };
    for host in &lb.hosts {
        let issuer = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-issuer", "-in", &format!("{LAB_ROOT}/{host}/state/acme/{domain}/full.pem")])
            .output()
            .unwrap();
        let issuer = String::from_utf8_lossy(&issuer.stdout).into_owned();
        assert!(issuer.contains("Pebble Intermediate CA"), "{host} serves a certificate pebble issued: {issuer}");
    }
    let (ok, root) = in_namespace(
        "nxs-internet",
        &[
            "curl",
            "-sS",
            "--cacert",
            &format!("{LAB_ROOT}/pebble/etc/lab-ca.crt"),
            &format!(
                "https://{}:15000/roots/0",
                nixstack::stack::address_plan::plan(topology).unwrap().internet_address()
            ),
        ],
    );
    assert!(ok && root.contains("BEGIN CERTIFICATE"), "pebble's root: {root}");
    let root_file = format!("{LAB_ROOT}/pebble/etc/pebble-root.pem");
    std::fs::write(&root_file, &root).unwrap();
    let served_serial = || {
        let (ok, text) = in_namespace(
            "nxs-internet",
            &[
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
                &root_file,
                "--resolve",
                &format!("{domain}:443:{vip}"),
                &format!("https://{domain}{}", lb.health_path),
            ],
        );
        assert!(ok && text.trim() == "200", "HTTPS through the VIP, verified against pebble's root: {text}");
        public_serial(&vip, &domain)
    };
    let first = vip_holder(&lb.hosts, &vip).expect("an LB holds the VIP");
    assert_eq!(served_serial(), serial_of(&full_pem(&first)), "the VIP serves its holder's certificate ({first})");

    // The holder fails (keepalived stopped: it gives the VIP up), the other LB takes over.
    // Its pid from the lab's state file: `ip netns exec` shares one pid namespace, so pgrep
    // would find every LB's keepalived.
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(LAB_ROOT).join("state.json")).unwrap()).unwrap();
    let pid = state["created"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "process" && r["daemon"] == "keepalived" && r["host"] == first.as_str())
        .and_then(|r| r["pid"].as_u64())
        .unwrap_or_else(|| panic!("no keepalived of {first} in the state file"));
    assert!(std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let second = loop {
        if let Some(holder) = vip_holder(&lb.hosts, &vip).filter(|h| *h != first) {
            break holder;
        }
        assert!(std::time::Instant::now() < deadline, "the VIP did not move off {first}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(served_serial(), serial_of(&full_pem(&second)), "after failover the VIP serves {second}'s certificate");

    // A renewal on the backup: its challenge reaches the new holder and is passed on to it.
    let before = serial_of(&full_pem(&first));
    let (ok, stdout, stderr, took) = nixstack(&["lab", "acme", "--renew", "--on", &first, "--json"]);
    assert!(ok, "renewal from the backup {first} failed:\n{}\n{}", tail(&stdout, 20), tail(&stderr, 20));
    let after = serial_of(&full_pem(&first));
    assert!(!after.is_empty() && after != before, "{first} renewed: serial {before} → {after}");
    // HAProxy's reload is asynchronous (nixpkgs' ExecReload sends SIGUSR2 to the master, which
    // forks a new worker; systemd does not wait for it), so the old worker may answer for a
    // moment: poll, bounded.
    let first_address = topology.host(&first).unwrap().public_address.unwrap().to_string();
    let served_by_first = || public_serial(&first_address, &domain);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut served = served_by_first();
    while served != after && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        served = served_by_first();
    }
    assert_eq!(served, after, "{first}'s HAProxy serves the renewed certificate (reloaded)");
    eprintln!("acme: renewal from the backup {first} took {:.1}s", took.as_secs_f64());
    // Back to a whole lab for what follows.
    let (ok, stdout, stderr, _) = nixstack(&["lab", "up", spec]);
    assert!(ok, "lab up after the failover:\n{}\n{}", tail(&stdout, 20), tail(&stderr, 20));
}

/// Every TLS listener that serves a host certificate: (host, address:port, `-starttls`).
fn internal_listeners(topology: &nixstack::topology::Topology) -> Vec<(String, String, Option<&'static str>)> {
    use nixstack::spec::Role;
    use nixstack::topology::ports;
    let mut listeners = Vec::new();
    for host in &topology.hosts {
        let at = |port: u16| format!("{}:{port}", host.address);
        if host.has(Role::Web) {
            listeners.push((host.name.clone(), at(topology.web.as_ref().unwrap().port), None));
        }
        if host.has(Role::App) && topology.app.as_ref().is_some_and(|a| a.terminator) {
            listeners.push((host.name.clone(), at(topology.app.as_ref().unwrap().port), None));
        }
        if host.has(Role::Db) {
            listeners.push((host.name.clone(), at(ports::MYSQL), Some("mysql")));
            listeners.push((host.name.clone(), at(ports::GALERA_REPLICATION), None));
        }
    }
    listeners
}

/// The serial of the certificate served for `domain` at `address`:443, asked from the
/// internet namespace as a client would (empty when nothing answered).
fn public_serial(address: &str, domain: &str) -> String {
    let (_, chain) = in_namespace(
        "nxs-internet",
        &[
            "sh",
            "-c",
            &format!("timeout 10 openssl s_client -connect {address}:443 -servername {domain} </dev/null 2>/dev/null"),
        ],
    );
    serial_of(&chain)
}

/// The serial of the certificate `address` serves, asked with `openssl s_client` from the
/// host's own namespace (the firewall accepts loopback; the listener is the real one).
fn served_serial(host: &str, address: &str, starttls: Option<&str>) -> String {
    let starttls = starttls.map(|p| format!("-starttls {p} ")).unwrap_or_default();
    let (_, chain) = in_namespace(
        &format!("nxs-{host}"),
        &["sh", "-c", &format!("timeout 10 openssl s_client {starttls}-connect {address} </dev/null 2>/dev/null")],
    );
    serial_of(&chain)
}

/// `lab rotate` under steady HTTPS through the VIP (each request LB → web → app → db, every
/// hop TLS with the internal CA): no request fails, every host certificate is renewed, and
/// afterwards every web, app-hop, MariaDB and Galera listener serves its new serial, with
/// the Galera cluster whole. The daemons were reloaded, not restarted: their pids are the same.
fn host_certificates_rotate_under_load(topology: &nixstack::topology::Topology) {
    let lb = topology.lb.as_ref().unwrap();
    let (vip, domain) = (lb.vip.to_string(), topology.stack.domain.clone());
    let listeners = internal_listeners(topology);
    let before: Vec<String> = listeners.iter().map(|(h, a, s)| served_serial(h, a, *s)).collect();
    for ((host, address, _), serial) in listeners.iter().zip(&before) {
        assert!(!serial.is_empty(), "{host} {address} serves a certificate");
    }
    let pids = |state: &Value| -> Vec<(String, String, u64)> {
        state["created"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["kind"] == "process" && ["nginx", "haproxy", "mariadbd"].contains(&r["daemon"].as_str().unwrap_or(""))
            })
            .map(|r| {
                (
                    r["host"].as_str().unwrap().to_string(),
                    r["daemon"].as_str().unwrap().to_string(),
                    r["pid"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    let state = || -> Value {
        serde_json::from_str(&std::fs::read_to_string(Path::new(LAB_ROOT).join("state.json")).unwrap()).unwrap()
    };
    let pids_before = pids(&state());
    assert!(
        pids_before.len() >= listeners.len() / 2,
        "the lab's nginx, HAProxy and mariadbd are recorded: {pids_before:?}"
    );

    // Steady load: two clients, each one HTTPS request after another.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, vip, domain) = (stop.clone(), vip.clone(), domain.clone());
            std::thread::spawn(move || {
                let (mut total, mut failed) = (0u32, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (ok, text) = in_namespace(
                        "nxs-internet",
                        &[
                            "curl",
                            "-sS",
                            "--max-time",
                            "5",
                            "-w",
                            "\nstatus=%{http_code}",
                            "--cacert",
                            &format!("{LAB_ROOT}/public-trust.pem"),
                            "--resolve",
                            &format!("{domain}:443:{vip}"),
                            &format!("https://{domain}/"),
                        ],
                    );
                    total += 1;
                    // A whole answer: HTTP 200 and the app's report of the web, app and db that served it.
                    if !(ok && text.contains("status=200") && text.contains("served-by ") && text.contains("db=")) {
                        failed.push(text.lines().last().unwrap_or_default().to_string());
                    }
                }
                (total, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let (ok, stdout, stderr, took) = nixstack(&["lab", "rotate", "--json"]);
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut total, mut failed) = (0, Vec::new());
    for worker in workers {
        let (t, f) = worker.join().unwrap();
        total += t;
        failed.extend(f);
    }
    assert!(ok, "lab rotate failed:\n{}\n{}", tail(&stdout, 30), tail(&stderr, 20));
    assert!(total >= 20, "the load ran: {total} requests");
    assert!(failed.is_empty(), "{} of {total} requests failed during the rotation: {failed:?}", failed.len());

    // Every listener serves its host's new certificate (nginx's old workers may still
    // answer for a moment after the reload: asked again until the deadline).
    for ((host, address, starttls), old) in listeners.iter().zip(&before) {
        let file = std::fs::read_to_string(format!("{LAB_ROOT}/secrets/hosts/{host}/host.crt")).unwrap();
        let new = serial_of(&file);
        assert_ne!(&new, old, "{host}: the secrets hold a renewed certificate");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let served = served_serial(host, address, *starttls);
            if served == new {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{host} {address} serves serial {served}, not the renewed {new} (was {old})"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert_eq!(pids(&state()), pids_before, "reloaded, not restarted: the same daemons run");
    let db_hosts = &topology.db.as_ref().unwrap().hosts;
    for node in db_hosts {
        let status = sql_on(
            node,
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_size','wsrep_local_state_comment');",
        );
        assert!(
            status.contains(&format!("wsrep_cluster_size\t{}", db_hosts.len())) && status.contains("Synced"),
            "{node}: {status}"
        );
    }
    eprintln!(
        "rotate under load: {} listeners renewed, {total} requests through the VIP during the rotation, {} failed; lab rotate took {:.1}s",
        listeners.len(),
        failed.len(),
        took.as_secs_f64()
    );
}

/// `lab chaos` with every fault: each must pass (every acknowledged write on every node
/// exactly once, the tier recovered), and its report must show the fault really happened:
/// writes acknowledged, clients erroring while nodes were down, kill-rolling recovered.
fn chaos_loses_no_acknowledged_write() {
    let (ok, stdout, stderr, took) = nixstack(&["lab", "chaos", "--steady-secs", "5", "--json"]);
    let reports: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "chaos")
        .map(|e| e["report"].clone())
        .collect();
    let faults: Vec<&str> = reports.iter().map(|r| r["fault"].as_str().unwrap()).collect();
    assert_eq!(
        faults,
        ["steady", "kill-one", "freeze-one", "partition-one", "kill-rolling", "kill-all"],
        "{}\n{}",
        tail(&stdout, 40),
        tail(&stderr, 20)
    );
    for report in &reports {
        let fault = report["fault"].as_str().unwrap();
        assert_eq!(report["lost"], 0, "{fault}: {report}");
        assert_eq!(report["duplicated"], 0, "{fault}: {report}");
        assert!(report["passed"].as_bool().unwrap(), "{fault}: {report}");
        assert!(report["acknowledged"].as_u64().unwrap() > 0, "{fault}: {report}");
        if fault.starts_with("kill") {
            let errors: u64 = report["client_errors"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
            assert!(errors > 0, "{fault}: no client saw the killed node: was it killed? {report}");
        }
    }
    assert!(ok, "lab chaos failed:\n{}\n{}", tail(&stdout, 40), tail(&stderr, 20));
    eprintln!(
        "lab chaos: {:.1}s; stalls (ms): {}",
        took.as_secs_f64(),
        reports.iter().map(|r| format!("{} {}", r["fault"], r["max_stall_ms"])).collect::<Vec<_>>().join(", ")
    );
}

/// Every user a role module makes a member of the secrets group (`users.users.<u>.extraGroups
/// = [ secretsGroup ]` in modules/*.nix, read here) is a member in /etc/group while the lab
/// is up, as on NixOS: any process of that user (also `mysqld --user=mysql` run by recovery
/// from a root shell) can read the keys.
fn module_memberships_are_in_etc_group() {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("modules");
    let mut users = Vec::new();
    for entry in std::fs::read_dir(&modules).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines().filter(|l| l.contains(".extraGroups = [ secretsGroup ]")) {
            let user = line.trim().trim_start_matches("users.users.").split(".extraGroups").next().unwrap();
            // db.nix names the mysql module's user option; its default is "mysql".
            users.push(if user == "${mysql.user}" { "mysql".to_string() } else { user.to_string() });
        }
    }
    assert!(users.len() >= 3, "found {users:?} in modules/");
    let groups = std::fs::read_to_string("/etc/group").unwrap();
    let members: Vec<&str> = groups
        .lines()
        .find(|l| l.starts_with("nixstack-secrets:"))
        .and_then(|l| l.split(':').nth(3))
        .map(|m| m.split(',').collect())
        .unwrap_or_default();
    for user in &users {
        assert!(members.contains(&user.as_str()), "{user} is not in nixstack-secrets in /etc/group: {members:?}");
    }
}

/// `[app] migrate` ran exactly once over both `lab up`s (the demo app's migration records
/// each run in `schema_migrations`), on the first app host, against the first
/// `DATABASE_HOSTS` node, with the app's credentials (it logged in as the app's user).
fn the_migration_ran_once(topology: &nixstack::topology::Topology, app: &nixstack::topology::AppTier, up_json: &str) {
    let first_app = &app.hosts[0];
    let db = topology.db.as_ref().expect("a db tier");
    let database = &db.users[0].database;
    let node = &db.hosts[0];
    let rows = sql_on(
        node,
        &format!(
            "SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*), MIN(host), MAX(host) FROM {database}.schema_migrations;"
        ),
    );
    assert_eq!(
        rows.split_whitespace().collect::<Vec<_>>(),
        ["1", first_app.as_str(), first_app.as_str()],
        "one migration, by {first_app}"
    );
    let applied: Vec<Value> = up_json
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["what"].as_str().is_some_and(|w| w.starts_with("app migration ran")))
        .collect();
    assert_eq!(applied.len(), 1, "lab up reports one migration: {applied:?}");
    assert_eq!(applied[0]["host"], first_app.as_str());
    let host = topology.host(first_app).unwrap();
    let first_db =
        nixstack::stack::app::environment(topology, host)["DATABASE_HOSTS"].split(',').next().unwrap().to_string();
    let log = std::fs::read_to_string(Path::new(LAB_ROOT).join(first_app).join("log/app-migrate.log")).unwrap();
    assert!(
        log.contains(&format!("applied on {first_db}")),
        "the migration used the first DATABASE_HOSTS node {first_db}: {log}"
    );
}

/// `[web] static` through the virtual IP from the internet: the demo assets (app/static, the
/// lab's stand-in for the store path) come from the web tier, a fingerprinted file with the
/// year-long immutable header and another file revalidated; `/` still reaches an app (the
/// terminator's `X-App-Host`). TLS is not what this checks (`-k`): the ACME check is.
fn static_assets_come_from_the_web_tier(topology: &nixstack::topology::Topology) {
    let lb = topology.lb.as_ref().unwrap();
    let domain = &topology.stack.domain;
    let get = |path: &str| {
        let (ok, text) = in_namespace(
            "nxs-internet",
            &[
                "curl",
                "-sSk",
                "-i",
                "--max-time",
                "10",
                "--resolve",
                &format!("{domain}:443:{}", lb.vip),
                &format!("https://{domain}{path}"),
            ],
        );
        assert!(ok, "{path}: {text}");
        text
    };
    let header = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
            .map(|l| l.split_once(':').unwrap().1.trim().to_string())
    };
    let css = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("app/static/assets/nixstack-demo.5f0c2b9e.css"),
    )
    .unwrap();
    let text = get("/assets/nixstack-demo.5f0c2b9e.css");
    assert!(text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/2 200"), "{text}");
    assert!(text.ends_with(&css), "the demo asset's bytes: {text}");
    assert_eq!(header(&text, "cache-control").as_deref(), Some("public, max-age=31536000, immutable"), "{text}");
    assert!(header(&text, "x-served-by").is_some_and(|h| h.starts_with("web")), "{text}");
    assert_eq!(header(&text, "x-app-host"), None, "no app involved: {text}");
    let text = get("/robots.txt");
    assert_eq!(header(&text, "cache-control").as_deref(), Some("no-cache"), "{text}");
    let text = get("/");
    assert!(header(&text, "x-app-host").is_some_and(|h| h.starts_with("app")), "/ is the app's: {text}");
}

/// SQL on a lab db node over its socket, as root; the output's text.
fn sql_on(node: &str, statements: &str) -> String {
    let socket = Path::new(LAB_ROOT).join(node).join("run/mysqld/mysqld.sock");
    let output = std::process::Command::new("mariadb")
        .args(["--no-defaults", "--user=root", "--batch", "--skip-column-names"])
        .arg(format!("--socket={}", socket.display()))
        .args(["-e", statements])
        .output()
        .unwrap();
    assert!(output.status.success(), "{node}: {statements}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Write, `db backup --lab`, write more, `db restore --lab` from that backup: exactly the
/// backup's rows are on every node, the cluster is whole again and takes writes on every node.
fn backup_restore_brings_back_exactly_the_backup(nodes: &[String]) {
    let first = &nodes[0];
    sql_on(first, "CREATE DATABASE IF NOT EXISTS nixstack_restore; CREATE TABLE IF NOT EXISTS nixstack_restore.rows (id INT PRIMARY KEY); DELETE FROM nixstack_restore.rows; INSERT INTO nixstack_restore.rows VALUES (1), (2), (3);");
    let (ok, stdout, stderr, backup_time) = nixstack(&["db", "backup", "--lab"]);
    assert!(ok, "db backup --lab failed:\n{stdout}\n{stderr}");
    let backup = stdout.lines().last().and_then(|l| l.split_whitespace().next()).unwrap().to_string();
    assert!(Path::new(&backup).is_dir(), "db backup --lab named {backup:?}:\n{stdout}");
    sql_on(first, "INSERT INTO nixstack_restore.rows VALUES (4), (5);");
    let (ok, stdout, stderr, restore_time) = nixstack(&["db", "restore", "--lab", "--from", &backup]);
    assert!(ok, "db restore --lab failed:\n{}\n{}", tail(&stdout, 30), tail(&stderr, 20));
    for node in nodes {
        let rows = sql_on(
            node,
            "SET SESSION wsrep_sync_wait = 1; SELECT GROUP_CONCAT(id ORDER BY id) FROM nixstack_restore.rows;",
        );
        assert_eq!(rows, "1,2,3", "{node}: exactly the backup's rows");
        let size = sql_on(node, "SHOW GLOBAL STATUS LIKE 'wsrep_cluster_size';");
        assert_eq!(size.split_whitespace().last(), Some(nodes.len().to_string().as_str()), "{node}: {size}");
    }
    for (i, node) in nodes.iter().enumerate() {
        sql_on(node, &format!("INSERT INTO nixstack_restore.rows VALUES ({});", 100 + i));
    }
    eprintln!("db backup {:.1}s, db restore {:.1}s", backup_time.as_secs_f64(), restore_time.as_secs_f64());
}

fn up_test_down(spec: &str, expected_steps: &[&str], chaos: bool) {
    require_root_and_tools();
    let _one = ONE_LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    assert!(
        !Path::new(LAB_ROOT).join("state.json").exists(),
        "a lab is already up ({LAB_ROOT}/state.json exists): run `nixstack lab down` first"
    );
    let namespaces = lab_namespaces(spec);
    let clashing: Vec<String> = existing_namespaces().into_iter().filter(|n| namespaces.contains(n)).collect();
    assert!(
        clashing.is_empty(),
        "namespaces {clashing:?} exist already; remove them (ip netns delete) or run `nixstack lab down`"
    );

    let guard = DownOnDrop;
    let (ok, stdout, stderr, up_time) = nixstack(&["lab", "up", spec, "--json"]);
    assert!(ok, "lab up {spec} failed:\n{}\n{}", tail(&stdout, 30), tail(&stderr, 30));
    let (ok, _, _, again_time) = nixstack(&["lab", "up", spec]);
    assert!(ok, "a second lab up (idempotent) failed");
    let (ok, status, _, _) = nixstack(&["lab", "status", "--json"]);
    assert!(ok, "lab status reports an unhealthy daemon right after up:\n{status}");
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(spec);
    let source = nixstack::spec::SpecSource { name: spec.into(), text: std::fs::read_to_string(&spec_path).unwrap() };
    let topology = nixstack::cli::compile(&source).expect("the spec compiles");
    daemons_run_as_their_nixpkgs_units(topology.internal_tls);
    module_memberships_are_in_etc_group();
    if let Some(app) = topology.app.as_ref().filter(|app| app.migrate.is_some()) {
        the_migration_ran_once(&topology, app, &stdout);
    }
    if topology.web.as_ref().is_some_and(|web| web.static_package.is_some()) && topology.lb.is_some() {
        static_assets_come_from_the_web_tier(&topology);
    }

    let (ok, stdout, stderr, test_time) = nixstack(&["lab", "test", "--json"]);
    let events: Vec<Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let finished: Vec<(&str, bool, &str)> = events
        .iter()
        .filter(|e| e["event"] == "step_finished")
        .map(|e| {
            (
                e["step"].as_str().unwrap_or(""),
                e["passed"].as_bool().unwrap_or(false),
                e["summary"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let report: Vec<String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "step_detail" || e["event"] == "step_finished")
        .map(|e| {
            format!(
                "{} {}",
                e["step"].as_str().unwrap_or(""),
                e["line"].as_str().or(e["summary"].as_str()).unwrap_or("")
            )
        })
        .collect();
    assert!(ok, "lab test {spec} failed:\n{}\n{}", report.join("\n"), tail(&stderr, 20));
    let names: Vec<&str> = finished.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(names, expected_steps, "the scenario's steps");
    for (name, passed, summary) in &finished {
        assert!(passed, "step {name} failed: {summary}");
    }
    check_qps_view(spec);
    if topology.lb.as_ref().is_some_and(|lb| lb.tls == nixstack::spec::TlsMode::Acme) {
        acme_certificates_survive_lb_failover(spec, &topology);
    }
    if topology.internal_tls && topology.lb.is_some() {
        host_certificates_rotate_under_load(&topology);
    }
    if chaos {
        chaos_loses_no_acknowledged_write();
        backup_restore_brings_back_exactly_the_backup(&topology.db.as_ref().unwrap().hosts);
    }

    let (ok, stdout, stderr, down_time) = nixstack(&["lab", "down"]);
    assert!(ok, "lab down failed:\n{}\n{}", tail(&stdout, 20), tail(&stderr, 20));
    drop(guard);
    let left: Vec<String> = existing_namespaces().into_iter().filter(|n| namespaces.contains(n)).collect();
    assert!(left.is_empty(), "namespaces left after down: {left:?}");
    let processes = lab_processes();
    assert!(processes.is_empty(), "lab processes left after down: {processes:#?}");
    assert!(!Path::new(LAB_ROOT).exists(), "{LAB_ROOT} left after down");
    eprintln!(
        "lab {spec}: up {:.1}s, idempotent up {:.1}s, test {:.1}s, down {:.1}s",
        up_time.as_secs_f64(),
        again_time.as_secs_f64(),
        test_time.as_secs_f64(),
        down_time.as_secs_f64()
    );
}

#[test]
fn default_spec_up_test_down_leaves_nothing_behind() {
    up_test_down(
        "examples/default.toml",
        &[
            "https via the virtual IP",
            "https via the virtual IPv6",
            "lb → web is TLS only",
            "ssh from admin",
            "multi-master writes",
            "firewall matrix",
            "metrics reach sumo logic",
            "collector endpoints are local",
            "web qps from the counters",
            "web failover",
            "db failover",
            "lb failover",
        ],
        true,
    );
}

#[test]
fn whiteboard_spec_up_test_down_leaves_nothing_behind() {
    up_test_down(
        "examples/whiteboard.toml",
        &[
            "https via the virtual IP",
            "ssh from admin",
            "multi-master writes",
            "firewall matrix",
            "metrics reach sumo logic",
            "collector endpoints are local",
            "web qps from the counters",
            "web failover",
            "db failover",
        ],
        false,
    );
}
