//! The monitoring agents' configs: the collector YAML uses only components of the pinned
//! otelcol-contrib release and holds no secret; every collectd.conf of both example specs is
//! accepted by Debian's real collectd 5.12 with Sumo Logic's real plugin, which delivers
//! metrics with the host's name and category to a Sumo Logic stand-in.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nixstack::render::monitoring::{
    collectd, collectd_python_path, collectd_secret_inputs, collectd_secrets_path, collectd_secrets_template,
    fill_collectd_secrets, otelcol, otelcol_components, otelcol_credential_path, otelcol_credentials, source_category,
    OTELCOL_CONTRIB_RELEASE, PLACEHOLDER_DB_MONITOR_PASSWORD, PLACEHOLDER_SUMOLOGIC_URL,
};
use nixstack::render::Layout;
use nixstack::topology::{Host, Topology};
use serde_json::Value;

#[path = "common/examples.rs"]
mod examples;

use examples::spec;

const SPECS: [&str; 2] = ["default", "whiteboard"];

fn components_file() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/otelcol-contrib-components.json");
    serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap()
}

/// Parses YAML with a real YAML parser (PyYAML), returning it as JSON.
fn parse_yaml(text: &str) -> Value {
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 missing: run scripts/setup");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "YAML rejected (or python3-yaml missing: run scripts/setup): {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The component type of a config key: `sumologic/custom` → `sumologic`.
fn component_type(key: &str) -> &str {
    key.split('/').next().unwrap()
}

#[test]
fn collector_uses_only_components_of_the_pinned_release() {
    let data = components_file();
    assert_eq!(data["release"], OTELCOL_CONTRIB_RELEASE, "renderer and data file pin different releases");
    assert!(data["source"]["repository"].as_str().is_some_and(|r| r.contains("opentelemetry-collector-releases")));
    for spec_name in SPECS {
        let topology = spec(spec_name);
        for host in &topology.hosts {
            let layout = Layout::nixos();
            let config = parse_yaml(&otelcol(&topology, host, &layout));
            let mut used = nixstack::render::monitoring::Components::default();
            for (kind, list) in [
                ("receivers", &mut used.receivers),
                ("processors", &mut used.processors),
                ("exporters", &mut used.exporters),
                ("extensions", &mut used.extensions),
            ] {
                let section = config[kind].as_object().unwrap_or_else(|| panic!("{}: no {kind}", host.name));
                for key in section.keys() {
                    let kind_types = &data["types"][kind];
                    let module = kind_types[component_type(key)].as_str().unwrap_or_else(|| {
                        panic!(
                            "{spec_name}/{}: {kind} `{key}` is not in otelcol-contrib {OTELCOL_CONTRIB_RELEASE}",
                            host.name
                        )
                    });
                    assert!(
                        data["modules"][kind].as_array().unwrap().iter().any(|m| m == module),
                        "{module} is not a module of the release"
                    );
                    list.push(key.clone());
                }
            }
            // What the renderer says it uses is what the YAML holds.
            let declared = otelcol_components(&topology, host, &layout);
            let sorted = |v: &Vec<String>| v.iter().cloned().collect::<BTreeSet<_>>();
            assert_eq!(sorted(&declared.receivers), sorted(&used.receivers));
            assert_eq!(sorted(&declared.processors), sorted(&used.processors));

            // Every pipeline references defined components only, and every receiver is used.
            let mut piped = BTreeSet::new();
            for (name, pipeline) in config["service"]["pipelines"].as_object().unwrap() {
                for kind in ["receivers", "processors", "exporters"] {
                    for id in pipeline[kind].as_array().unwrap() {
                        let id = id.as_str().unwrap();
                        assert!(
                            config[kind].get(id).is_some(),
                            "{}: pipeline {name} uses undefined {kind} {id}",
                            host.name
                        );
                        if kind == "receivers" {
                            piped.insert(id.to_string());
                        }
                    }
                }
            }
            assert_eq!(piped, sorted(&used.receivers), "{}: a receiver outside every pipeline", host.name);
            for ext in config["service"]["extensions"].as_array().unwrap() {
                assert!(config["extensions"].get(ext.as_str().unwrap()).is_some());
            }

            // Role-specific receivers and the Sumo Logic metadata.
            let receivers: BTreeSet<&str> =
                config["receivers"].as_object().unwrap().keys().map(|k| k.as_str()).collect();
            use nixstack::spec::Role;
            assert_eq!(receivers.contains("nginx"), host.has(Role::Web), "{}", host.name);
            assert_eq!(receivers.contains("haproxy"), host.has(Role::Lb), "{}", host.name);
            assert_eq!(receivers.contains("mysql"), host.has(Role::Db), "{}", host.name);
            let attributes = config["processors"]["resource"]["attributes"].as_array().unwrap();
            let category = attributes.iter().find(|a| a["key"] == "_sourceCategory").unwrap();
            assert_eq!(category["value"], source_category(&topology, host));
            assert_eq!(
                config["exporters"]["sumologic"]["endpoint"],
                "${file:/run/credentials/opentelemetry-collector.service/sumologic-endpoint}"
            );
        }
    }
}

#[test]
fn a_component_outside_the_release_is_caught() {
    let data = components_file();
    assert!(data["types"]["receivers"]["nginx"].is_string());
    assert!(data["types"]["receivers"]["no_such_receiver"].is_null(), "the check would let anything through");
    assert!(data["types"]["exporters"]["sumologic"].is_string());
}

#[test]
fn rendered_monitoring_files_hold_secret_paths_never_secrets() {
    let url = "https://collectors.example.sumologic.com/receiver/v1/http/TOKEN-never-rendered";
    for spec_name in SPECS {
        let topology = spec(spec_name);
        for host in &topology.hosts {
            for layout in [Layout::nixos(), Layout::lab(&host.name)] {
                let template = collectd_secrets_template(&topology, host, &layout);
                for text in [otelcol(&topology, host, &layout), collectd(&topology, host, &layout), template.clone()] {
                    assert!(
                        !text.contains("TOKEN-never-rendered") && !text.contains("receiver/v1/http"),
                        "{}",
                        host.name
                    );
                }
                // Every placeholder in the template has a secret file to fill it from.
                let inputs = collectd_secret_inputs(&topology, host, &layout);
                for (placeholder, file) in &inputs {
                    assert!(template.contains(placeholder), "{placeholder} unused");
                    assert!(file.starts_with(&layout.secrets), "{} is no secret path", file.display());
                }
                let filled = fill_collectd_secrets(
                    &template,
                    &[(PLACEHOLDER_SUMOLOGIC_URL, url), (PLACEHOLDER_DB_MONITOR_PASSWORD, "p\"w\\x\n")],
                );
                assert!(!filled.contains('@'), "{}: unfilled placeholder:\n{filled}", host.name);
                assert!(filled.contains(&format!("URL \"{url}\"")));
                for (name, file) in otelcol_credentials(&topology, host, &layout) {
                    let path = otelcol_credential_path(&layout, name);
                    assert!(
                        otelcol(&topology, host, &layout).contains(&format!("${{file:{}}}", path.display())),
                        "{name} unused"
                    );
                    assert!(file.starts_with(&layout.secrets));
                }
            }
        }
    }
    // Quotes and backslashes in a secret cannot break out of the collectd string.
    assert_eq!(
        fill_collectd_secrets("Password \"@DB_MONITOR_PASSWORD@\"", &[(PLACEHOLDER_DB_MONITOR_PASSWORD, "a\"b\\c\n")]),
        "Password \"a\\\"b\\\\c\""
    );
}

#[test]
fn monitoring_snapshots() {
    for spec_name in SPECS {
        let topology = spec(spec_name);
        for host in &topology.hosts {
            let name = &host.name;
            insta::assert_snapshot!(
                format!("otelcol__{spec_name}__{name}"),
                otelcol(&topology, host, &Layout::nixos())
            );
            insta::assert_snapshot!(
                format!("collectd_nixos__{spec_name}__{name}"),
                collectd(&topology, host, &Layout::nixos())
            );
            insta::assert_snapshot!(
                format!("collectd_lab__{spec_name}__{name}"),
                collectd(&topology, host, &Layout::lab(name))
            );
            insta::assert_snapshot!(
                format!("collectd_secrets__{spec_name}__{name}"),
                collectd_secrets_template(&topology, host, &Layout::lab(name))
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The real collectd.

const PLUGIN_DIR: &str = "/opt/nixstack/collectd-python";

/// A Sumo Logic HTTP source stand-in: records each POST (decompressed) as a JSON line.
const STAND_IN: &str = r#"
import gzip, http.server, json, sys, zlib
port, out, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class Source(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path, "headers": dict(self.headers), "body": body.decode("utf-8", "replace")}) + "\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", port), Source)
open(ready, "w").close()
server.serve_forever()
"#;

static NAMESPACES: AtomicUsize = AtomicUsize::new(0);

/// A namespace with the host's private address, a stand-in inside, torn down on drop.
struct Sandbox {
    netns: String,
    stand_in: Option<Child>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(mut child) = self.stand_in.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).status();
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("`ip` missing: run scripts/setup");
    assert!(status.success(), "ip {args:?} failed");
}

impl Sandbox {
    fn new(host: &Host, root: &Path, records: &Path) -> Sandbox {
        let netns = format!("nxs-mon-{}-{}", std::process::id(), NAMESPACES.fetch_add(1, Ordering::SeqCst));
        ip(&["netns", "add", &netns]);
        let mut sandbox = Sandbox { netns, stand_in: None };
        let ns = sandbox.netns.clone();
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&["-n", &ns, "link", "add", "nxs0", "type", "veth", "peer", "name", "nxs1"]);
        ip(&["-n", &ns, "addr", "add", &format!("{}/24", host.address), "dev", "nxs0"]);
        ip(&["-n", &ns, "link", "set", "nxs0", "up"]);
        ip(&["-n", &ns, "link", "set", "nxs1", "up"]);
        let script = root.join("stand_in.py");
        fs::write(&script, STAND_IN).unwrap();
        let ready = root.join("stand_in.ready");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, "/usr/bin/python3"])
            .arg(&script)
            .arg("18080")
            .arg(records)
            .arg(&ready)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the stand-in");
        sandbox.stand_in = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "the Sumo Logic stand-in did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        sandbox
    }
}

/// Runs `collectd -T` (parse, init, one read, shutdown) on the lab config of `host`.
/// Not `collectd -t`: in Debian's 5.12.0 it exits 0 without reading the file (collectd
/// issue #3216, fixed upstream after 5.12.0 by PR #3793).
fn run_collectd(topology: &Topology, host: &Host) -> (String, bool, Vec<Value>) {
    assert!(Path::new("/usr/sbin/collectd").exists(), "collectd missing: run scripts/setup");
    assert!(
        Path::new(PLUGIN_DIR).join("sumologic_collectd_metrics/__init__.py").exists(),
        "Sumo Logic's collectd plugin missing in {PLUGIN_DIR}: run scripts/setup"
    );
    let root = tempfile::Builder::new().prefix("nxs-mon-").tempdir().unwrap();
    let layout = Layout::lab_at(root.path(), &host.name);
    for dir in [&layout.etc, &layout.log, &layout.state, &layout.secrets] {
        fs::create_dir_all(dir).unwrap();
    }
    std::os::unix::fs::symlink(PLUGIN_DIR, collectd_python_path(&layout)).unwrap();
    // Secret files as `secrets init` makes them, then the start-time fill.
    let url = "http://127.0.0.1:18080/receiver/v1/http/lab-token";
    let mut values = Vec::new();
    for (placeholder, file) in collectd_secret_inputs(topology, host, &layout) {
        let value = if placeholder == PLACEHOLDER_SUMOLOGIC_URL { url } else { "monitor-pw" };
        fs::write(&file, format!("{value}\n")).unwrap();
        values.push((placeholder, fs::read_to_string(&file).unwrap()));
    }
    let values: Vec<(&str, &str)> = values.iter().map(|(p, v)| (*p, v.as_str())).collect();
    let secrets = collectd_secrets_path(&layout);
    fs::create_dir_all(secrets.parent().unwrap()).unwrap();
    fs::set_permissions(secrets.parent().unwrap(), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(&secrets, fill_collectd_secrets(&collectd_secrets_template(topology, host, &layout), &values)).unwrap();
    fs::set_permissions(&secrets, fs::Permissions::from_mode(0o600)).unwrap();
    let config = layout.config("collectd.conf");
    fs::write(&config, collectd(topology, host, &layout)).unwrap();

    fs::create_dir_all(&layout.run).unwrap();
    let records = root.path().join("received.jsonl");
    let sandbox = Sandbox::new(host, root.path(), &records);
    // 1. The config test: parse, load plugins and their config, init, one read, shutdown.
    let output = Command::new("timeout")
        .args(["60", "ip", "netns", "exec", &sandbox.netns, "/usr/sbin/collectd", "-T", "-C"])
        .arg(&config)
        .output()
        .unwrap();
    let mut log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    log.push_str(&fs::read_to_string(layout.log_file("collectd.log")).unwrap_or_default());
    // 2. The agent for real (-T stops the write threads before the plugin sends): run it
    //    in the foreground until the stand-in has metrics from it, bounded.
    let mut daemon = Command::new("ip")
        .args(["netns", "exec", &sandbox.netns, "/usr/sbin/collectd", "-f", "-C"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline
        && !fs::read_to_string(&records).unwrap_or_default().contains("plugin=memory")
        && daemon.try_wait().unwrap().is_none()
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("kill").arg("-TERM").arg(daemon.id().to_string()).status();
    let stop = Instant::now() + Duration::from_secs(15);
    while daemon.try_wait().unwrap().is_none() && Instant::now() < stop {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    log.push_str(&fs::read_to_string(layout.log_file("collectd.log")).unwrap_or_default());
    drop(sandbox);
    let received = fs::read_to_string(&records)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (log, output.status.success(), received)
}

#[test]
fn collectd_accepts_every_host_config_and_ships_to_sumo_logic() {
    let hosts: Vec<(String, Topology, Host)> = SPECS
        .iter()
        .flat_map(|name| {
            let topology = spec(name);
            topology.hosts.clone().into_iter().map(move |host| (name.to_string(), topology.clone(), host))
        })
        .collect();
    // Two at a time: each run waits on its reads and on the plugin's flush at shutdown.
    let failures: Vec<String> = hosts
        .chunks(2)
        .flat_map(|pair| {
            std::thread::scope(|scope| {
                let handles: Vec<_> = pair
                    .iter()
                    .map(|(spec_name, topology, host)| scope.spawn(move || check_host(spec_name, topology, host)))
                    .collect();
                handles.into_iter().filter_map(|h| h.join().unwrap().err()).collect::<Vec<_>>()
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn check_host(spec_name: &str, topology: &Topology, host: &Host) -> Result<(), String> {
    use nixstack::spec::Role;
    let who = format!("{spec_name}/{}", host.name);
    let (log, success, received) = run_collectd(topology, host);
    for marker in [
        "Parsing the config file failed",
        "failed to handle option",
        "did not register",
        "Could not find plugin",
        "Error importing module",
        "Found a configuration for the",
        "Failed to parse configurations",
        "Unhandled python exception",
    ] {
        if log.contains(marker) {
            return Err(format!("{who}: collectd rejected the config ({marker}):\n{log}"));
        }
    }
    // Hosts whose plugins need no local daemon must pass outright; the others may only fail
    // reads of the daemons this test does not run (nginx, HAProxy, MariaDB).
    let needs_daemon = host.has(Role::Web) || host.has(Role::Lb) || host.has(Role::Db);
    let only_reads_failed = needs_daemon && log.contains("one or more plugin read callbacks failed");
    if !success && !only_reads_failed {
        return Err(format!("{who}: collectd -T failed:\n{log}"));
    }
    // The Sumo Logic plugin delivered host metrics (memory: reported from the first read on)
    // with the host's metadata.
    let category = source_category(topology, host);
    let delivered = received.iter().any(|post| {
        post["path"] == "/receiver/v1/http/lab-token"
            && post["headers"]["X-Sumo-Category"] == category.as_str()
            && post["headers"]["X-Sumo-Host"] == host.name.as_str()
            && post["headers"]["Content-Type"] == "application/vnd.sumologic.carbon2"
            && post["body"].as_str().is_some_and(|b| b.contains("plugin=memory"))
    });
    if !delivered {
        return Err(format!(
            "{who}: no memory metrics with category {category} reached the stand-in: {received:#?}\n{log}"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The QPS sources, read from real daemons: the counters that reach Sumo Logic count the
// requests sent.

/// The value of the latest carbon2 line (`tags  value timestamp`) carrying all `tags`.
fn carbon2_value(received: &[Value], tags: &[&str]) -> Option<f64> {
    received
        .iter()
        .filter_map(|post| post["body"].as_str())
        .flat_map(str::lines)
        .filter(|line| tags.iter().all(|tag| line.split_whitespace().any(|t| t == *tag)))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(fields.len().wrapping_sub(2))?.parse().ok()
        })
        .next_back()
}

/// Runs collectd on `host`'s lab config next to `daemon_setup` (which starts the daemon
/// inside the namespace and sends `requests` requests), until `tags` arrive with a value.
fn counter_after_requests(
    topology: &Topology,
    host: &Host,
    daemon_config: &str,
    daemon: &str,
    url: &str,
    tags: &[&str],
) -> f64 {
    let root = tempfile::Builder::new().prefix("nxs-qps-").tempdir().unwrap();
    let layout = Layout::lab_at(root.path(), &host.name);
    for dir in [&layout.etc, &layout.log, &layout.state, &layout.secrets, &layout.run] {
        fs::create_dir_all(dir).unwrap();
    }
    std::os::unix::fs::symlink(PLUGIN_DIR, collectd_python_path(&layout)).unwrap();
    let values: Vec<(&str, &str)> = vec![
        (PLACEHOLDER_SUMOLOGIC_URL, "http://127.0.0.1:18080/receiver/v1/http/lab-token"),
        (PLACEHOLDER_DB_MONITOR_PASSWORD, "unused"),
    ];
    let secrets = collectd_secrets_path(&layout);
    fs::create_dir_all(secrets.parent().unwrap()).unwrap();
    fs::write(&secrets, fill_collectd_secrets(&collectd_secrets_template(topology, host, &layout), &values)).unwrap();
    let config = layout.config("collectd.conf");
    fs::write(&config, collectd(topology, host, &layout)).unwrap();
    let records = root.path().join("received.jsonl");
    let sandbox = Sandbox::new(host, root.path(), &records);

    let daemon_file = root.path().join("daemon.conf");
    fs::write(&daemon_file, daemon_config.replace("@ROOT@", &root.path().display().to_string())).unwrap();
    let mut server = match daemon {
        "haproxy" => Command::new("ip")
            .args(["netns", "exec", &sandbox.netns, "/usr/sbin/haproxy", "-db", "-f"])
            .arg(&daemon_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn(),
        _ => Command::new("ip")
            .args(["netns", "exec", &sandbox.netns, "/usr/sbin/nginx", "-e", "stderr", "-g", "daemon off;", "-p"])
            .arg(root.path())
            .arg("-c")
            .arg(&daemon_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn(),
    }
    .unwrap_or_else(|e| panic!("{daemon} missing ({e}): run scripts/setup"));
    // Send the requests once the daemon answers (probing, bounded).
    let curl = |target: &str| {
        Command::new("ip")
            .args(["netns", "exec", &sandbox.netns, "curl", "-s", "-o", "/dev/null", "--max-time", "2", target])
            .status()
            .unwrap()
            .success()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !curl(url) {
        assert!(Instant::now() < deadline, "{daemon} did not answer on {url}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for _ in 0..REQUESTS - 1 {
        assert!(curl(url));
    }
    let mut agent = Command::new("ip")
        .args(["netns", "exec", &sandbox.netns, "/usr/sbin/collectd", "-f", "-C"])
        .arg(&config)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut value = None;
    while value.is_none() && Instant::now() < deadline && agent.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(200));
        let received: Vec<Value> = fs::read_to_string(&records)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        value = carbon2_value(&received, tags);
    }
    for child in [&mut agent, &mut server] {
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    }
    for child in [&mut agent, &mut server] {
        let stop = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() && Instant::now() < stop {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    value.unwrap_or_else(|| {
        panic!(
            "no {tags:?} reached the stand-in:\n{}\n{}",
            fs::read_to_string(&records).unwrap_or_default(),
            fs::read_to_string(layout.log_file("collectd.log")).unwrap_or_default()
        )
    })
}

const REQUESTS: usize = 7;

#[test]
fn lb_request_counter_reaches_sumo_logic() {
    let topology = spec("default");
    let lb1 = topology.hosts.iter().find(|h| h.name == "lb1").unwrap();
    let stats = nixstack::render::monitoring::haproxy_stats_url(&topology, lb1).unwrap();
    let stats_port = topology.lb.as_ref().unwrap().stats_port;
    // A stand-in haproxy.cfg with the contract the real one keeps: stats on the private
    // address at /stats, the site's frontend named `https`.
    let haproxy = format!(
        "global\n  maxconn 100\n  pidfile @ROOT@/haproxy.pid\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         frontend stats\n  bind {addr}:{stats_port}\n  stats enable\n  stats uri {path}\n\
         frontend {front}\n  bind 127.0.0.1:18443\n  http-request return status 200 content-type text/plain string ok\n",
        addr = lb1.address,
        path = nixstack::render::monitoring::HAPROXY_STATS_PATH,
        front = nixstack::render::monitoring::HAPROXY_FRONTEND,
    );
    assert!(stats.ends_with("/stats"));
    let requests = counter_after_requests(
        &topology,
        lb1,
        &haproxy,
        "haproxy",
        "http://127.0.0.1:18443/",
        &["plugin=curl", "type=http_requests", "type_instance=https"],
    );
    assert_eq!(requests, REQUESTS as f64, "the LB's request counter (req_tot of the https frontend)");
}

#[test]
fn web_request_counter_reaches_sumo_logic() {
    let topology = spec("default");
    let web1 = topology.hosts.iter().find(|h| h.name == "web1").unwrap();
    let status = nixstack::render::monitoring::nginx_status_url(&topology).unwrap();
    let port = topology.web.as_ref().unwrap().status_port;
    // A stand-in nginx.conf with the contract the real one keeps: stub_status on loopback
    // at the status port and path.
    let nginx = format!(
        "pid @ROOT@/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path @ROOT@/tmp;\n  proxy_temp_path @ROOT@/tmp;\n  fastcgi_temp_path @ROOT@/tmp;\n  uwsgi_temp_path @ROOT@/tmp;\n  scgi_temp_path @ROOT@/tmp;\n\
         server {{\n    listen 127.0.0.1:{port};\n    location = {path} {{ stub_status; }}\n  }}\n}}\n",
        path = nixstack::render::monitoring::NGINX_STATUS_PATH,
    );
    let requests =
        counter_after_requests(&topology, web1, &nginx, "nginx", &status, &["plugin=nginx", "type=nginx_requests"]);
    // stub_status counts its own requests: ours, plus collectd's read.
    assert!(requests >= REQUESTS as f64, "nginx_requests {requests} < {REQUESTS} sent");
    assert!(requests <= REQUESTS as f64 + 2.0, "nginx_requests {requests} counts more than we sent");
}
