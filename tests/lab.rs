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
    for tool in ["/usr/sbin/haproxy", "/usr/sbin/nginx", "/usr/sbin/mariadbd", "/usr/sbin/keepalived", "/usr/sbin/nft", "/usr/sbin/sshd", "/usr/bin/curl", "/usr/bin/ssh"] {
        assert!(Path::new(tool).exists(), "{tool} is missing: run scripts/setup");
    }
    let pymysql = Command::new("/usr/bin/python3").args(["-c", "import pymysql"]).status();
    assert!(pymysql.is_ok_and(|s| s.success()), "Debian's python3-pymysql is missing: run scripts/setup");
}

/// Names of the namespaces a lab of `spec` creates.
fn lab_namespaces(spec: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(spec)).expect("spec");
    let topology = nixstack::cli::compile(&nixstack::spec::SpecSource { name: spec.into(), text }).expect("spec compiles");
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
fn check_qps_view(spec: &str) {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(spec)).expect("spec");
    let topology = nixstack::cli::compile(&nixstack::spec::SpecSource { name: spec.into(), text }).expect("spec compiles");
    let (ok, stdout, stderr, _) = nixstack(&["lab", "qps", "--json"]);
    assert!(ok, "lab qps failed:\n{stdout}\n{stderr}");
    let view: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("lab qps --json is not one JSON object ({e}): {stdout}"));
    let rows = view["hosts"].as_array().expect("hosts");
    for host in topology.hosts.iter().filter(|h| h.monitored && (h.has(nixstack::spec::Role::Web) || h.has(nixstack::spec::Role::Lb))) {
        let row = rows.iter().find(|r| r["host"] == host.name.as_str()).unwrap_or_else(|| panic!("lab qps lacks {}: {stdout}", host.name));
        assert!(row["qps"].as_f64().is_some_and(|q| q >= 0.0), "no rate for {}: {row}", host.name);
        assert!(row["age"].as_f64().is_some_and(|a| a < 10.0), "stale data for {}: {row}", host.name);
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

fn up_test_down(spec: &str, expected_steps: &[&str]) {
    require_root_and_tools();
    let _one = ONE_LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    assert!(
        !Path::new(LAB_ROOT).join("state.json").exists(),
        "a lab is already up ({LAB_ROOT}/state.json exists): run `nixstack lab down` first"
    );
    let namespaces = lab_namespaces(spec);
    let clashing: Vec<String> = existing_namespaces().into_iter().filter(|n| namespaces.contains(n)).collect();
    assert!(clashing.is_empty(), "namespaces {clashing:?} exist already; remove them (ip netns delete) or run `nixstack lab down`");

    let guard = DownOnDrop;
    let (ok, stdout, stderr, up_time) = nixstack(&["lab", "up", spec, "--json"]);
    assert!(ok, "lab up {spec} failed:\n{}\n{}", tail(&stdout, 30), tail(&stderr, 30));
    let (ok, _, _, again_time) = nixstack(&["lab", "up", spec]);
    assert!(ok, "a second lab up (idempotent) failed");
    let (ok, status, _, _) = nixstack(&["lab", "status", "--json"]);
    assert!(ok, "lab status reports an unhealthy daemon right after up:\n{status}");

    let (ok, stdout, stderr, test_time) = nixstack(&["lab", "test", "--json"]);
    let events: Vec<Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let finished: Vec<(&str, bool, &str)> = events
        .iter()
        .filter(|e| e["event"] == "step_finished")
        .map(|e| (e["step"].as_str().unwrap_or(""), e["passed"].as_bool().unwrap_or(false), e["summary"].as_str().unwrap_or("")))
        .collect();
    let report: Vec<String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "step_detail" || e["event"] == "step_finished")
        .map(|e| format!("{} {}", e["step"].as_str().unwrap_or(""), e["line"].as_str().or(e["summary"].as_str()).unwrap_or("")))
        .collect();
    assert!(ok, "lab test {spec} failed:\n{}\n{}", report.join("\n"), tail(&stderr, 20));
    let names: Vec<&str> = finished.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(names, expected_steps, "the scenario's steps");
    for (name, passed, summary) in &finished {
        assert!(passed, "step {name} failed: {summary}");
    }
    check_qps_view(spec);

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
    );
}
