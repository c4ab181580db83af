//! `nixstack deploy`'s real code path against hosts of the test's own: network namespaces
//! each running OpenSSH and nginx with the lab configs, each with its own Nix store (a
//! chroot store under the host's state directory), reached from an admin namespace.
//! Closures are built by the real `nix build`, copied by `nix copy --to ssh-ng://`,
//! activated through the system profile and a detached `switch-to-configuration`, gated on
//! HTTPS health, and rolled back with `nix-env --rollback`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nixstack::deploy::closure::{self, LabSystems, StorePath, Systems};
use nixstack::deploy::execute::{self, Options, Rollout};
use nixstack::deploy::health::GatePolicy;
use nixstack::deploy::host::{self as deploy_host, Host};
use nixstack::deploy::progress::{Event, Format, Printer};
use nixstack::deploy::ssh::SshHost;
use nixstack::deploy::{lab_hosts, make_plan, Goal};
use nixstack::render::Layout;
use nixstack::topology::Topology;

#[path = "common/deploy_rig.rs"]
mod deploy_rig;

use deploy_rig::{in_ns, require, topology, Rig};

// ---------------------------------------------------------------------------------------
// Fixtures

/// Two web hosts, nothing else: the rig needs no load balancer to prove copy, switch,
/// health gate and rollback. Admin network as in the lab: SSH is allowed only from it.
const SPEC: &str = r#"
[stack]
name = "rig"
domain = "rig.example.com"

[networks]
private = "10.251.0.0/24"
public = "203.0.113.0/24"
admin = ["198.51.100.0/24"]

[hosts.web1]
address = "10.251.0.21"
roles = ["web"]

[hosts.web2]
address = "10.251.0.22"
roles = ["web"]

[web]
proxy_app = false
"#;

fn count(events: &[Event], pred: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| pred(e)).count()
}

/// wrk against `url` from inside `netns` for `seconds`, a new connection per request: the
/// rig has no load balancer to drain a host, and a server may close an idle keep-alive
/// connection just as a client reuses it (that race is what draining removes).
fn start_load(netns: &str, url: &str, seconds: u32) -> Child {
    in_ns(netns, "wrk")
        .args(["-t1", "-c4", &format!("-d{seconds}s"), "--timeout", "5s", "-H", "Connection: close", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk")
}

/// Parses wrk's summary: (requests, non-2xx responses + socket errors).
fn load_result(child: Child) -> (u64, u64, String) {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in").and_then(|(n, _)| n.trim().parse().ok()))
        .unwrap_or(0);
    let non_2xx: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:").map(|n| n.trim().parse().unwrap_or(u64::MAX)))
        .unwrap_or(0);
    let socket: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|rest| rest.split(',').filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    (requests, non_2xx + socket, text)
}

// ---------------------------------------------------------------------------------------
// Tests

/// The whole life of a deploy on two hosts, in order: first deploy (every host activated),
/// a no-op deploy (nothing copied, nothing activated), a spec change on every web host under
/// load (zero failed requests, the new config live), then a change that breaks one host's
/// health (rolled back to the previous generation, healthy again, outcome not ok).
#[test]
fn rig_first_noop_change_and_rollback() {
    require("wrk");
    let rig = Rig::new(SPEC, "dpl");
    let old = rig.topology.clone();
    let nothing = Topology { hosts: Vec::new(), ..old.clone() };
    let hosts = rig.hosts();

    // 1. First deploy: no host has a system yet.
    let first = LabSystems::new(&old, &rig.lab_root());
    let (outcome, events, took) = rig.deploy(&hosts, &nothing, &old, &rig.systems(&first), &[]);
    eprintln!("first deploy took {took:?}");
    assert!(outcome.ok, "{outcome:?}\n{events:#?}");
    assert_eq!(outcome.activated, ["web1", "web2"]);
    for host in ["web1", "web2"] {
        let path = &outcome.systems[host];
        assert_eq!(rig.current(host).as_deref(), Some(path.as_str()), "current-system of {host}");
        assert!(
            path.under(&rig.store_root(host)).join("bin/switch-to-configuration").exists(),
            "{host}'s own store holds the system"
        );
        let profile = deploy_host::system_profile(&rig.store_root(host));
        assert_eq!(
            std::fs::read_link(profile.with_file_name("system-1-link")).unwrap().display().to_string(),
            path.as_str()
        );
        // The closure has the configs path too, and it was copied as well.
        let configs = std::fs::read_link(path.under(&rig.store_root(host)).join("etc")).unwrap();
        assert!(StorePath::parse(&configs.display().to_string())
            .unwrap()
            .under(&rig.store_root(host))
            .join("nginx.conf")
            .exists());
        // Secrets went over SSH, not into any store.
        let store = rig.store_root(host).join("nix/store");
        let leaked = Command::new("grep").args(["-rl", "PRIVATE KEY"]).arg(&store).output().unwrap();
        assert!(
            leaked.stdout.is_empty(),
            "a private key is in {host}'s store: {}",
            String::from_utf8_lossy(&leaked.stdout)
        );
    }
    assert_eq!(count(&events, |e| matches!(e, Event::Copied { .. })), 2);

    // 2. The same again: nothing to copy, nothing to activate.
    let (outcome, events, took) = rig.deploy(&hosts, &old, &old, &rig.systems(&first), &[]);
    eprintln!("no-op deploy took {took:?}");
    assert!(outcome.ok, "{events:#?}");
    assert_eq!(outcome.unchanged, ["web1", "web2"]);
    assert!(outcome.activated.is_empty());
    assert_eq!(
        count(&events, |e| matches!(e, Event::Copied { .. } | Event::Activated { .. } | Event::SecretsUploaded { .. })),
        0,
        "{events:#?}"
    );

    // 3. A spec change on every web host (nginx's status port), under load on both.
    let changed_text = SPEC.replace("proxy_app = false", "proxy_app = false\nstatus_port = 8082");
    let new = topology(&changed_text);
    let plan = make_plan(Some(&old), &new, &[], Goal::Switch, 1).unwrap();
    assert!(plan.changes.iter().any(|c| c.host == "web1" && c.what == "nginx.conf changed"), "{:?}", plan.changes);
    let loads: Vec<Child> = ["web1", "web2"]
        .iter()
        .map(|h| start_load(&rig.netns(h), &format!("https://{}/", new.host(h).unwrap().address), 8))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let second = LabSystems::new(&new, &rig.lab_root());
    let (outcome, events, took) = rig.deploy(&hosts, &old, &new, &rig.systems(&second), &[]);
    eprintln!("config change deploy took {took:?}");
    assert!(outcome.ok, "{events:#?}");
    assert_eq!(outcome.activated, ["web1", "web2"]);
    for (host, load) in ["web1", "web2"].iter().zip(loads) {
        let (requests, errors, text) = load_result(load);
        eprintln!("{host}: {requests} requests during the deploy, {errors} failed");
        assert!(requests > 100, "load ran: {text}");
        assert_eq!(errors, 0, "a reload must not fail a request: {text}");
        let (status, _) = rig.get(host, "http://127.0.0.1:8082/nginx_status");
        assert_eq!(status, "200", "{host} runs the new config (status port 8082)");
        let profile = deploy_host::system_profile(&rig.store_root(host));
        assert_eq!(std::fs::read_link(&profile).unwrap().display().to_string(), "system-2-link");
    }
    let good = outcome.systems.clone();

    // 4. A change that breaks web2's health: rolled back, healthy again, not ok.
    let broken_conf = second.files["web2"]["nginx.conf"].replace("return 200 \"ok\\n\";", "return 503 \"broken\\n\";");
    assert_ne!(broken_conf, second.files["web2"]["nginx.conf"], "the health location is where the test expects it");
    let third = second.clone().with_file("web2", "nginx.conf", broken_conf);
    let (outcome, events, took) = rig.deploy(&hosts, &new, &new, &rig.systems(&third), &[]);
    eprintln!("breaking deploy (gate bound 6s) took {took:?}");
    assert!(!outcome.ok, "a rollback is a failure: {events:#?}");
    assert_eq!(outcome.unchanged, ["web1"], "web1's system did not change");
    assert_eq!(outcome.rolled_back, ["web2"]);
    assert!(
        events.iter().any(
            |e| matches!(e, Event::GateFailed { host, reason } if host == "web2" && reason.contains("answered 503"))
        ),
        "{events:#?}"
    );
    assert!(events.iter().any(|e| matches!(e, Event::RolledBack { host, healthy: true, to, .. } if host == "web2" && to == good["web2"].as_str())), "{events:#?}");
    assert!(matches!(events.last(), Some(Event::Done { ok: false, .. })));
    assert_eq!(rig.current("web2").as_deref(), Some(good["web2"].as_str()), "web2 runs the previous system again");
    let (status, _) = rig.get("web2", "https://10.251.0.22/health");
    assert_eq!(status, "200");
    assert_eq!(
        std::fs::read_to_string(rig.layout("web2").config("nginx.conf")).unwrap(),
        second.files["web2"]["nginx.conf"]
    );
}

/// An activation runs detached: killing the SSH session that started it (as a switch that
/// restarts sshd or the network would) neither kills it nor loses its exit status.
#[test]
fn rig_activation_survives_a_dropped_ssh_session() {
    let rig = Rig::new(SPEC, "dpl");
    // A system whose switch takes 3 s and leaves a mark when it completes.
    let dir = rig.root.path().join("slow-flake");
    std::fs::create_dir_all(&dir).unwrap();
    let mark = rig.root.path().join("switched");
    std::fs::write(
        dir.join("flake.nix"),
        format!(
            "{{ outputs = {{ self }}: {{ labSystems.web1 = builtins.derivation {{ name = \"slow-system\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; PATH = \"/usr/bin:/bin\";\n\
             args = [ \"-c\" \"mkdir -p $out/bin; printf '#!/bin/sh\\\\nsleep 3\\\\necho done > {}\\\\n' > $out/bin/switch-to-configuration; chmod 555 $out/bin/switch-to-configuration\" ]; }}; }}; }}\n",
            mark.display()
        ),
    )
    .unwrap();
    let systems = Systems::Lab { flake: format!("path:{}", dir.display()) };
    let built = closure::build(&systems, &["web1".to_string()], Duration::from_secs(120)).expect("nix build");
    let hosts = rig.hosts();
    let web1 = &hosts["web1"];
    web1.copy_closure(&built["web1"]).expect("nix copy over ssh-ng");

    let netns = rig.netns("web1");
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        // Every sshd session process (not the listener, whose parent is pid 1 or ip).
        let pids =
            String::from_utf8_lossy(&Command::new("ip").args(["netns", "pids", &netns]).output().unwrap().stdout)
                .into_owned();
        let mut killed = 0;
        for pid in pids.split_whitespace() {
            let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmdline.starts_with("sshd: root") {
                // SAFETY: a process in a namespace this test created.
                unsafe { libc::kill(pid.parse().unwrap(), libc::SIGKILL) };
                killed += 1;
            }
        }
        killed
    });
    let started = Instant::now();
    let result = web1.switch(&built["web1"], Goal::Switch);
    let killed = killer.join().unwrap();
    eprintln!("switch with a dropped session took {:?}; {killed} sshd session(s) killed", started.elapsed());
    assert!(killed > 0, "the test dropped the session that polls the activation");
    result.expect("the activation finished and its status was read after reconnecting");
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), "done\n");
    assert!(started.elapsed() >= Duration::from_secs(3));
}

/// A failure names the host, the command, the status and the cause; an unreachable host
/// fails within the connect timeout, not after minutes.
#[test]
fn rig_failures_name_the_cause_and_are_bounded() {
    let rig = Rig::new(SPEC, "dpl");
    let hosts = rig.hosts();
    let bogus = StorePath::parse("/nix/store/00000000000000000000000000000000-not-built").unwrap();
    let error = hosts["web1"].copy_closure(&bogus).unwrap_err().to_string();
    eprintln!("--- a failed copy reads:\n{error}");
    assert!(error.starts_with("web1: "), "{error}");
    assert!(error.contains("nix") && error.contains("copy") && error.contains("exit status"), "{error}");
    assert!(
        error.lines().next().unwrap().contains("/nix/store/00000000000000000000000000000000-not-built"),
        "headline is Nix's error: {error}"
    );

    let error = hosts["web2"].switch(&bogus, Goal::Switch).unwrap_err().to_string();
    assert!(error.contains("not copied, or not a system"), "{error}");

    // A host that does not answer at all (an address nobody has on the rig's network).
    let mut ghost_spec = rig.topology.host("web1").unwrap().clone();
    ghost_spec.address = "10.251.0.99".parse().unwrap();
    let admin = rig.admin_dir();
    let ghost =
        SshHost::lab(&ghost_spec, &rig.lab_root(), &admin.join("id_ed25519"), &admin.join("known_hosts"), &rig.admin);
    let started = Instant::now();
    let error = ghost.current_system().unwrap_err().to_string();
    eprintln!("--- an unreachable host reads ({:?}):\n{error}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(15), "bounded by ConnectTimeout: {:?}", started.elapsed());
    assert!(error.contains("10.251.0.99") && error.contains("exit code 255"), "{error}");
}

// ---------------------------------------------------------------------------------------
// The full lab

/// A lab of this test's own: `nixstack lab up`, and `lab down` on drop.
struct LabGuard;

impl LabGuard {
    /// Waits (bounded) until no lab is up, then brings up our own: a lab that is up may be
    /// in use by another session's scenario (killing daemons for failover tests), and a
    /// rolling deploy under load must not share it.
    fn up(spec: &Path) -> LabGuard {
        let deadline = Instant::now() + Duration::from_secs(900);
        while nixstack::lab::state::State::load().expect("lab state file readable").is_some() {
            assert!(
                Instant::now() < deadline,
                "a lab has been up for 15 minutes: this test needs the lab to itself (run `nixstack lab down`)"
            );
            std::thread::sleep(Duration::from_secs(5));
        }
        // Made first: a failed `lab up` is taken down too.
        let guard = LabGuard;
        let (code, out) = nixstack_cli(&["lab", "up", spec.to_str().unwrap()]);
        assert_eq!(code, 0, "nixstack lab up failed:\n{out}");
        guard
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        let (code, out) = nixstack_cli(&["lab", "down"]);
        if code != 0 {
            eprintln!("nixstack lab down failed ({code}):\n{out}");
        }
    }
}

/// Runs the nixstack binary; (exit code, stdout + stderr).
fn nixstack_cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nixstack"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("nixstack binary");
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

/// `nixstack deploy --lab --json ...`: exit code and the JSON events (the plan first).
fn deploy_cli(args: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let mut all = vec!["deploy", "--lab", "--json"];
    all.extend_from_slice(args);
    let out = Command::new(env!("CARGO_BIN_EXE_nixstack"))
        .args(&all)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("nixstack binary");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let events = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON event per line ({e}): {l}")))
        .collect();
    (out.status.code().unwrap_or(-1), events, format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
}

/// The serial of the first certificate in `pem`, as openssl prints it.
fn x509_serial(pem: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(pem.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().trim_start_matches("serial=").to_string()
}

fn names(value: &serde_json::Value) -> Vec<String> {
    value.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default()
}

fn done(events: &[serde_json::Value]) -> &serde_json::Value {
    events.iter().rev().find(|e| e["event"] == "done").expect("a done event")
}

/// Keep-alive HTTPS load through the virtual IP from the lab's internet namespace, stopped
/// with SIGINT (wrk then prints its summary).
struct Load {
    child: Option<Child>,
}

/// A wrk script that sends every request as a form POST (the demo app writes a row for it).
const POST_SCRIPT: &str = "wrk.method = \"POST\"\nwrk.body = \"visit=1\"\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n";

impl Load {
    fn start(vip: std::net::Ipv4Addr) -> Load {
        Load::start_with(vip, None)
    }

    /// Load with a wrk script (`-s`), e.g. [`POST_SCRIPT`] written to a file.
    fn start_with(vip: std::net::Ipv4Addr, script: Option<&Path>) -> Load {
        let mut command = in_ns(nixstack::stack::address_plan::INTERNET, "wrk");
        command.args(["-t2", "-c8", "-d600s", "--timeout", "5s"]);
        if let Some(script) = script {
            command.arg("-s").arg(script);
        }
        let child =
            command.arg(format!("https://{vip}/")).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("wrk");
        std::thread::sleep(Duration::from_secs(1));
        Load { child: Some(child) }
    }

    /// (requests, failed requests, wrk's report).
    fn stop(mut self) -> (u64, u64, String) {
        let child = self.child.take().unwrap();
        // SAFETY: our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        load_result(child)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The issue's scenario on the whole lab (`nixstack lab up`, default spec: 2 LBs sharing
/// the VIP, 3 web, 3 app, 3 Galera nodes), through the CLI: a first deploy of every host
/// (db → app → web → lb, each tier's gate), a no-op deploy (nothing copied or activated),
/// a config change to all web hosts under keep-alive load through the VIP (drained in both
/// HAProxies: zero failed requests), a change that breaks web2's health under load (rolled
/// back, rollout stopped, not ok, zero failed requests), and the way back to the lab's spec.
#[test]
fn lab_rolling_deploy_under_load() {
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/default.toml");
    let _lab = LabGuard::up(&spec_path);
    let old = topology(&std::fs::read_to_string(&spec_path).unwrap());
    let vip = old.lb.as_ref().unwrap().vip;
    let all: Vec<String> = old.hosts.iter().map(|h| h.name.clone()).collect();
    let webs = ["web1", "web2", "web3"];
    let logins_before: BTreeMap<String, usize> = all.iter().map(|h| (h.clone(), ssh_logins(h))).collect();

    // 1. First deploy: every host, tier by tier.
    let started = Instant::now();
    let (code, events, out) = deploy_cli(&[]);
    eprintln!("lab: first deploy of {} hosts took {:?}", all.len(), started.elapsed());
    assert_eq!(code, 0, "{out}");
    let mut touched = names(&done(&events)["activated"]);
    touched.extend(names(&done(&events)["unchanged"]));
    touched.sort();
    assert_eq!(touched, all, "{out}");

    // 2. No-op.
    let started = Instant::now();
    let (code, events, out) = deploy_cli(&[]);
    eprintln!("lab: no-op deploy took {:?}", started.elapsed());
    assert_eq!(code, 0, "{out}");
    let mut unchanged = names(&done(&events)["unchanged"]);
    unchanged.sort();
    assert_eq!(unchanged, all, "{out}");
    assert!(
        !events.iter().any(
            |e| ["copied", "activated", "secrets_uploaded", "drained"].contains(&e["event"].as_str().unwrap_or(""))
        ),
        "{out}"
    );

    // 2b. Renewed certificates of a web, an app and a db host (`secrets rotate`), deployed
    //     under keep-alive load: no system changes, the certificates are uploaded, each
    //     host's daemons reload (the web host drained first), no request fails, and each
    //     listener serves its new serial.
    let secrets_dir = nixstack::lab::secrets_dir();
    let rotated = ["web1", "app1", "db1"];
    let (code, out) = nixstack_cli(&[
        "secrets",
        "rotate",
        spec_path.to_str().unwrap(),
        "--dir",
        secrets_dir.to_str().unwrap(),
        "--hosts",
        &rotated.join(","),
    ]);
    assert_eq!(code, 0, "{out}");
    let load = Load::start(vip);
    let started = Instant::now();
    let (code, events, out) = deploy_cli(&[]);
    let took = started.elapsed();
    let (requests, failed, report) = load.stop();
    eprintln!("lab: deploying renewed certificates of {rotated:?} took {took:?}; {requests} requests through the VIP meanwhile, {failed} failed");
    assert_eq!(code, 0, "{out}");
    let reloaded: Vec<&str> =
        events.iter().filter(|e| e["event"] == "tls_reloaded").filter_map(|e| e["host"].as_str()).collect();
    assert_eq!(reloaded, ["db1", "app1", "web1"], "in rollout order, only the renewed hosts: {out}");
    assert!(!events.iter().any(|e| ["copied", "activated"].contains(&e["event"].as_str().unwrap_or(""))), "{out}");
    assert!(requests > 100, "{report}");
    assert_eq!(failed, 0, "no client request fails while certificates are reloaded:\n{report}\n{out}");
    let web_port = old.web.as_ref().unwrap().port;
    let app_port = old.app.as_ref().unwrap().port;
    for (host, port, starttls) in
        [("web1", web_port, ""), ("app1", app_port, ""), ("db1", 3306, "-starttls mysql "), ("db1", 4567, "")]
    {
        let address = old.host(host).unwrap().address;
        let file = std::fs::read_to_string(secrets_dir.join("hosts").join(host).join("host.crt")).unwrap();
        let want = x509_serial(&file);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let out = in_ns(&format!("nxs-{host}"), "sh")
                .args([
                    "-c",
                    &format!("timeout 10 openssl s_client {starttls}-connect {address}:{port} </dev/null 2>/dev/null"),
                ])
                .output()
                .unwrap();
            let served = x509_serial(&String::from_utf8_lossy(&out.stdout));
            if served == want {
                break;
            }
            assert!(Instant::now() < deadline, "{host}:{port} serves {served}, not the renewed {want}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // 3. A config change to all web hosts (nginx's status port), under load.
    let dir = tempfile::tempdir().unwrap();
    let new_text = std::fs::read_to_string(&spec_path).unwrap().replace("status_port = 8081", "status_port = 8082");
    let new_spec = dir.path().join("stack.toml");
    std::fs::write(&new_spec, &new_text).unwrap();
    let new = topology(&new_text);
    let load = Load::start(vip);
    let started = Instant::now();
    let (code, events, out) = deploy_cli(&[new_spec.to_str().unwrap()]);
    let took = started.elapsed();
    let (requests, failed, report) = load.stop();
    eprintln!("lab: rolling deploy of 3 web hosts took {took:?}; {requests} requests through the VIP meanwhile, {failed} failed");
    for event in events.iter().filter(|e| e.get("ms").is_some() && e.get("host").is_some()) {
        eprintln!(
            "  {:>5} {:<9} {:>6} ms {}",
            event["host"].as_str().unwrap_or(""),
            event["event"].as_str().unwrap_or(""),
            event["ms"],
            event["lb"].as_str().unwrap_or("")
        );
    }
    assert_eq!(code, 0, "{out}");
    assert_eq!(names(&done(&events)["activated"]), webs, "{out}");
    assert_eq!(
        events.iter().filter(|e| e["event"] == "drained").count(),
        6,
        "each web host drained in both HAProxies: {out}"
    );
    assert!(requests > 200, "{report}");
    assert_eq!(failed, 0, "no client request fails during a rolling deploy:\n{report}\n{out}");
    let (status, _) = {
        let out = in_ns("nxs-web1", "curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:8082/nginx_status"])
            .output()
            .unwrap();
        (String::from_utf8_lossy(&out.stdout).into_owned(), ())
    };
    assert_eq!(status, "200", "web1 runs the new config");

    // 4. A change that breaks web2's health, under load: the library's rollout (the CLI has
    //    no way to inject a broken config), the same code `nixstack deploy` runs.
    let lab_root = Path::new(nixstack::render::LAB_ROOT);
    let good = LabSystems::new(&new, lab_root);
    let broken = good.files["web2"]["nginx.conf"].replace("return 200 \"ok\\n\";", "return 503 \"broken\\n\";");
    let flake = dir.path().join("broken-flake");
    let systems = good.clone().with_file("web2", "nginx.conf", broken).write(&flake).unwrap();
    let admin = nixstack::lab::admin_dir();
    let hosts = lab_hosts(
        &new,
        lab_root,
        &admin.join("id_ed25519"),
        &admin.join("known_hosts"),
        nixstack::stack::address_plan::ADMIN,
    );
    let plan = make_plan(Some(&new), &new, &[], Goal::Switch, 1).unwrap();
    let secrets = nixstack::lab::secrets_dir();
    let options =
        Options { gate: GatePolicy { timeout: Duration::from_secs(8), ..GatePolicy::default() }, ..Options::default() };
    let rollout =
        Rollout { topology: &new, plan: &plan, systems: &systems, hosts: &hosts, secrets_dir: Some(&secrets), options };
    let load = Load::start(vip);
    let (progress, printer) = Printer::start(Format::Human { bar: false }, Box::new(std::io::stderr()));
    let started = Instant::now();
    let outcome = execute::execute(&rollout, &progress);
    let took = started.elapsed();
    let events = progress.events();
    printer.finish(progress);
    let (requests, failed, report) = load.stop();
    eprintln!("lab: breaking deploy took {took:?}; {requests} requests through the VIP meanwhile, {failed} failed");
    assert!(!outcome.ok);
    assert_eq!(outcome.rolled_back, ["web2"], "{events:#?}");
    assert!(outcome.activated.is_empty(), "only web2 changed: {outcome:?}");
    assert!(
        events.iter().any(|e| matches!(e, Event::RolledBack { host, healthy: true, .. } if host == "web2")),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| matches!(e, Event::Undrained { host, .. } if host == "web2")),
        "healthy again, back in the pool: {events:#?}"
    );
    assert_eq!(failed, 0, "clients never see the broken host:\n{report}");
    drop(hosts);

    // 5. Back to the lab's own spec, under load.
    let load = Load::start(vip);
    let started = Instant::now();
    let (code, events, out) = deploy_cli(&[]);
    let took = started.elapsed();
    let (requests, failed, report) = load.stop();
    eprintln!("lab: deploy back to the lab's spec took {took:?}; {requests} requests, {failed} failed");
    assert_eq!(code, 0, "{out}");
    assert_eq!(names(&done(&events)["activated"]), webs, "{out}");
    assert_eq!(failed, 0, "{report}");

    // 6. A new version of the app on every app host, one at a time, under keep-alive GET load
    //    and POST load through the VIP: each app host leaves the web tier's rotation, its app
    //    stops gracefully and starts again, and no request fails, GET or POST.
    let apps = ["app1", "app2", "app3"];
    let current = LabSystems::new(&old, lab_root);
    let mut next = current.clone();
    for app in apps {
        let code = &current.files[app]["nixstack-demo-app.py"];
        let newer = code.replace("server_version = \"nixstack-demo-app\"", "server_version = \"nixstack-demo-app/2\"");
        assert_ne!(&newer, code, "the demo app names its server version");
        next = next.with_file(app, "nixstack-demo-app.py", newer);
    }
    let systems = next.write(&dir.path().join("app-v2")).unwrap();
    let hosts = lab_hosts(
        &old,
        lab_root,
        &admin.join("id_ed25519"),
        &admin.join("known_hosts"),
        nixstack::stack::address_plan::ADMIN,
    );
    let plan = make_plan(Some(&old), &old, &[], Goal::Switch, 1).unwrap();
    let rollout = Rollout {
        topology: &old,
        plan: &plan,
        systems: &systems,
        hosts: &hosts,
        secrets_dir: Some(&secrets),
        options: Options::default(),
    };
    let pids_before: Vec<u32> = apps.iter().map(|app| lab_pid(app, "app")).collect();
    let post_script = dir.path().join("post.lua");
    std::fs::write(&post_script, POST_SCRIPT).unwrap();
    let gets = Load::start(vip);
    let posts = Load::start_with(vip, Some(&post_script));
    let (progress, printer) = Printer::start(Format::Human { bar: false }, Box::new(std::io::stderr()));
    let started = Instant::now();
    let outcome = execute::execute(&rollout, &progress);
    let took = started.elapsed();
    let events = progress.events();
    printer.finish(progress);
    let (get_requests, get_failed, get_report) = gets.stop();
    let (post_requests, post_failed, post_report) = posts.stop();
    eprintln!("lab: app rollout on {apps:?} took {took:?}; through the VIP meanwhile GET {get_requests} requests, {get_failed} failed; POST {post_requests} requests, {post_failed} failed");
    assert!(outcome.ok, "{events:#?}");
    assert_eq!(outcome.activated, apps, "{outcome:?}");
    for app in apps {
        let position = |pred: &dyn Fn(&Event) -> bool| events.iter().position(pred);
        let out = position(&|e| matches!(e, Event::OutOfRotation { host, .. } if host == app));
        let switched = position(&|e| matches!(e, Event::Activated { host, .. } if host == app));
        let back = position(&|e| matches!(e, Event::BackInRotation { host } if host == app));
        assert!(
            out < switched && switched < back && out.is_some(),
            "{app}: out of rotation, switched, back: {events:#?}"
        );
    }
    let pids_after: Vec<u32> = apps.iter().map(|app| lab_pid(app, "app")).collect();
    for (app, (before, after)) in apps.iter().zip(pids_before.iter().zip(&pids_after)) {
        assert_ne!(before, after, "{app}'s app was restarted");
        let listen = old.app.as_ref().unwrap().listen_port;
        let out = in_ns(&format!("nxs-{app}"), "curl")
            .args(["-sS", "-o", "/dev/null", "-D", "-", &format!("http://127.0.0.1:{listen}/version-probe")])
            .output()
            .unwrap();
        let headers = String::from_utf8_lossy(&out.stdout).to_lowercase();
        assert!(headers.contains("server: nixstack-demo-app/2"), "{app} runs the new app: {headers}");
    }
    assert!(get_requests > 200 && post_requests > 100, "{get_report}\n{post_report}");
    assert_eq!(get_failed, 0, "no GET fails during the app rollout:\n{get_report}");
    assert_eq!(post_failed, 0, "no POST fails during the app rollout:\n{post_report}");
    drop(hosts);

    // Seven deploys (the first, the no-op, the renewed certificates, the web change, the
    // broken one, the way back, the app), dozens of commands per host, one SSH connection per
    // host and deploy: the hosts' firewalls let 10 new SSH connections a minute in from one
    // source.
    let logins: BTreeMap<String, usize> = all.iter().map(|h| (h.clone(), ssh_logins(h) - logins_before[h])).collect();
    eprintln!("lab: SSH logins per host over the seven deploys: {logins:?}");
    assert!(logins.values().all(|n| *n <= 7), "{logins:?}");
}

/// The pid a lab host's daemon runs as (its pid file).
fn lab_pid(host: &str, daemon: &str) -> u32 {
    let file = nixstack::render::Layout::lab(host).pid_file(daemon);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())).trim().parse().unwrap()
}

/// Logins sshd accepted on a lab host so far (its log).
fn ssh_logins(host: &str) -> usize {
    let log = Layout::lab(host).log_file("sshd.log");
    std::fs::read_to_string(&log)
        .map(|text| text.lines().filter(|l| l.contains("Accepted publickey")).count())
        .unwrap_or(0)
}

/// The NixOS source evaluates `nixosConfigurations.<host>.config.system.build.toplevel`
/// (here stand-in derivations: no nixpkgs on this machine) and maps every result back to
/// its host, although `nix build --json` lists them in no particular order.
#[test]
fn nixos_toplevels_build_in_one_invocation_and_map_to_their_hosts() {
    require("nix");
    let dir = tempfile::tempdir().unwrap();
    let mut flake = String::from("{ outputs = { self }: { nixosConfigurations = {\n");
    let names = ["web10", "web1", "db-1", "app"];
    for name in names {
        flake.push_str(&format!(
            "  \"{name}\".config.system.build.toplevel = builtins.derivation {{ name = \"nixos-system-{name}\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; args = [ \"-c\" \"echo {name} > $out\" ]; }};\n"
        ));
    }
    flake.push_str("}; }; }\n");
    std::fs::write(dir.path().join("flake.nix"), flake).unwrap();
    let systems = Systems::Nixos {
        flake: format!("path:{}", dir.path().display()),
        nix_config: Some(closure::OFFLINE_NIX_CONFIG.into()),
    };
    let hosts: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let built = closure::build(&systems, &hosts, Duration::from_secs(120)).expect("nix eval + nix build");
    for name in names {
        let path = &built[name];
        assert_eq!(path.name(), format!("nixos-system-{name}"));
        assert_eq!(std::fs::read_to_string(path.as_str()).unwrap().trim(), name);
    }
    assert_eq!(
        systems.installable("web1"),
        format!("path:{}#nixosConfigurations.web1.config.system.build.toplevel", dir.path().display())
    );
}
