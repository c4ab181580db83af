//! Load-balancer configs (`haproxy.cfg`, `keepalived.conf`) of every lb host of both example
//! specs, proven by the real daemons: `haproxy -c` and `keepalived -t` on the lab layout and,
//! inside a private mount namespace where the NixOS paths exist, on the NixOS layout; a real
//! HAProxy + keepalived run in a throwaway network namespace; insta snapshots.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nixstack::cli::compile;
use nixstack::render::{haproxy, keepalived, Layout, LAB_ROOT};
use nixstack::spec::{Role, SpecSource};
use nixstack::topology::Topology;

const EXAMPLES: [&str; 2] = ["default", "whiteboard"];

// ---------------------------------------------------------------------------------------
// Fixtures

fn example(name: &str) -> Topology {
    let path = format!("{}/examples/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = fs::read_to_string(&path).expect("example spec exists");
    compile(&SpecSource { name: format!("examples/{name}.toml"), text }).expect("example spec compiles")
}

fn lb_hosts(topology: &Topology) -> Vec<String> {
    topology.hosts_with(Role::Lb).map(|host| host.name.clone()).collect()
}

/// Fails (never skips) when a tool the checks need is missing.
fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "`{tool}` is not installed: run scripts/setup (as root) first");
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"))
}

fn run_ok(command: &mut Command) -> Output {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A unique name per test within this process run (tests run in parallel threads).
fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!("nxs-{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

// ---------------------------------------------------------------------------------------
// Certificates: a throwaway internal CA and the certificates the configs reference,
// made with the openssl CLI (independent of the crate's own rcgen code).

struct Ca {
    dir: PathBuf,
}

impl Ca {
    fn new(dir: &Path) -> Ca {
        require("openssl");
        fs::create_dir_all(dir).unwrap();
        run_ok(Command::new("openssl").current_dir(dir).args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=nixstack test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]));
        Ca { dir: dir.to_path_buf() }
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// Issues a certificate; returns (certificate PEM, key PEM).
    fn issue(&self, name: &str, dns: &[String], ips: &[Ipv4Addr]) -> (String, String) {
        static SERIAL: AtomicUsize = AtomicUsize::new(1);
        let work = self.dir.join(format!("issue-{name}"));
        fs::create_dir_all(&work).unwrap();
        let san: Vec<String> =
            dns.iter().map(|d| format!("DNS:{d}")).chain(ips.iter().map(|ip| format!("IP:{ip}"))).collect();
        fs::write(
            work.join("ext.cnf"),
            format!(
                "subjectAltName={}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n",
                san.join(",")
            ),
        )
        .unwrap();
        run_ok(Command::new("openssl").current_dir(&work).args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "req.csr",
            "-subj",
            &format!("/CN={name}"),
        ]));
        let serial = format!("{}{:04}", std::process::id(), SERIAL.fetch_add(1, Ordering::Relaxed));
        let ca_key = self.dir.join("ca.key");
        run_ok(Command::new("openssl").current_dir(&work).args([
            "x509",
            "-req",
            "-in",
            "req.csr",
            "-CA",
            self.cert().to_str().unwrap(),
            "-CAkey",
            ca_key.to_str().unwrap(),
            "-set_serial",
            &serial,
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ]));
        (fs::read_to_string(work.join("cert.pem")).unwrap(), fs::read_to_string(work.join("key.pem")).unwrap())
    }

    /// Writes the host secrets a Layout names: ca.crt, host.crt/key/pem, public.pem.
    fn install_host_secrets(&self, topology: &Topology, host: &str, secrets: &Path) {
        fs::create_dir_all(secrets).unwrap();
        let certificate = topology.certificates.iter().find(|c| c.host == host).expect("every host has a certificate");
        let (cert, key) = self.issue(host, &certificate.dns_names, &certificate.ip_addresses);
        fs::copy(self.cert(), secrets.join("ca.crt")).unwrap();
        fs::write(secrets.join("host.crt"), &cert).unwrap();
        fs::write(secrets.join("host.key"), &key).unwrap();
        fs::write(secrets.join("host.pem"), format!("{cert}{key}")).unwrap();
        let domain = &topology.stack.domain;
        let (public_cert, public_key) = self.issue(&format!("{host}-public"), std::slice::from_ref(domain), &[]);
        fs::write(secrets.join("public.pem"), format!("{public_cert}{public_key}")).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// The checkers. Strict: a non-zero exit fails, and so does any warning or alert, because
// a config the daemon accepts with a warning is usually not the config we meant.

fn haproxy_check(mut command: Command) -> Result<(), String> {
    let output = run(&mut command);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let complaints: Vec<&str> = text.lines().filter(|l| l.contains("[WARNING]") || l.contains("[ALERT]")).collect();
    if !output.status.success() || !complaints.is_empty() || !text.contains("Configuration file is valid") {
        return Err(format!("haproxy -c rejected the config ({}):\n{text}", output.status));
    }
    Ok(())
}

fn haproxy_check_file(path: &Path) -> Result<(), String> {
    require("haproxy");
    let mut command = Command::new("haproxy");
    command.arg("-c").arg("-f").arg(path);
    haproxy_check(command)
}

/// `keepalived -t` resolves interface names, so it runs inside a network namespace that has
/// the interfaces the Layouts name.
fn keepalived_check(mut command: Command) -> Result<(), String> {
    let output = run(&mut command);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // keepalived -t prints nothing on a clean config; every line is a complaint (unknown
    // keyword, missing script, deprecated usage, missing interface).
    if !output.status.success() || !stderr.trim().is_empty() {
        return Err(format!("keepalived -t rejected the config ({}):\n{stderr}", output.status));
    }
    Ok(())
}

fn keepalived_check_file(netns: &Netns, path: &Path) -> Result<(), String> {
    require("keepalived");
    let mut command = netns.command("keepalived");
    command.arg("-t").arg("-f").arg(path);
    keepalived_check(command)
}

// ---------------------------------------------------------------------------------------
// Network namespaces, removed on drop.

struct Netns {
    name: String,
}

impl Netns {
    /// A namespace with loopback up and the interfaces both Layouts name: `pub0`/`priv0`
    /// (lab) and `eth0`/`eth1` (NixOS), as two veth pairs `pub0`↔`eth0`, `priv0`↔`eth1`.
    fn new(prefix: &str) -> Netns {
        require("ip");
        let netns = Netns { name: unique(prefix) };
        run_ok(Command::new("ip").args(["netns", "add", &netns.name]));
        netns.ip(&["link", "set", "lo", "up"]);
        for (a, b) in [("pub0", "eth0"), ("priv0", "eth1")] {
            netns.ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
            netns.ip(&["link", "set", a, "up"]);
            netns.ip(&["link", "set", b, "up"]);
        }
        netns
    }

    fn ip(&self, args: &[&str]) {
        run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args));
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// A child process killed (and reaped) on drop.
struct Daemon {
    child: Child,
    what: &'static str,
}

impl Daemon {
    fn spawn(what: &'static str, mut command: Command, log: &Path) -> Daemon {
        let log = fs::File::create(log).unwrap();
        command.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let child = command.spawn().unwrap_or_else(|error| panic!("cannot start {what}: {error}"));
        Daemon { child, what }
    }

    fn assert_running(&mut self, log: &Path) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited ({status}):\n{}", self.what, fs::read_to_string(log).unwrap_or_default());
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------
// Lab layout, under a temporary root, checked by the real daemons.

/// Renders and writes both configs of `host` in the lab layout under `root`, with every
/// file they reference; returns (haproxy.cfg, keepalived.conf).
fn write_lab_host(topology: &Topology, ca: &Ca, root: &Path, host: &str) -> (PathBuf, PathBuf) {
    let layout = Layout::lab_at(root, host);
    ca.install_host_secrets(topology, host, &layout.secrets);
    for dir in [&layout.etc, &layout.run.join("haproxy"), &layout.log, &layout.state] {
        fs::create_dir_all(dir).unwrap();
    }
    // With ACME, HAProxy serves the acme unit's full.pem (in the lab under state/acme/),
    // the placeholder until lego's first order: the public certificate stands in for it.
    let acme_pem = layout.public_pem(&topology.stack.domain, true);
    fs::create_dir_all(acme_pem.parent().unwrap()).unwrap();
    fs::copy(layout.secret("public.pem"), &acme_pem).unwrap();
    let host_model = topology.host(host).unwrap();
    let haproxy_cfg = layout.config("haproxy.cfg");
    let keepalived_conf = layout.config("keepalived.conf");
    fs::write(&haproxy_cfg, haproxy::render(topology, host_model, &layout)).unwrap();
    fs::write(&keepalived_conf, keepalived::render(topology, host_model, &layout)).unwrap();
    (haproxy_cfg, keepalived_conf)
}

#[test]
fn lab_layout_configs_pass_haproxy_and_keepalived_checks() {
    let netns = Netns::new("lbcheck");
    for name in EXAMPLES {
        let topology = example(name);
        let tmp = tempfile::tempdir().unwrap();
        let ca = Ca::new(&tmp.path().join("ca"));
        let hosts = lb_hosts(&topology);
        assert!(!hosts.is_empty(), "{name} has load balancers");
        for host in hosts {
            let (haproxy_cfg, keepalived_conf) = write_lab_host(&topology, &ca, &tmp.path().join("root"), &host);
            if let Err(error) = haproxy_check_file(&haproxy_cfg) {
                panic!("{name}/{host}: {error}");
            }
            if let Err(error) = keepalived_check_file(&netns, &keepalived_conf) {
                panic!("{name}/{host}: {error}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// NixOS layout: the very text NixOS installs, checked where its paths exist. A private
// mount namespace puts tmpfs over /var/lib and /run (visible to nobody else), creates
// /var/lib/nixstack/secrets, /var/lib/acme/<domain>/full.pem, /run/haproxy and the system
// profile's curl there, and runs the checkers.

/// NixOS's haproxy module prepends this `global` to `services.haproxy.config`.
const NIXOS_HAPROXY_PREAMBLE: &str = "global\n  # needed for hot-reload to work without dropping packets in multi-worker mode\n  stats socket /run/haproxy/haproxy.sock mode 600 expose-fd listeners level user\n\n";

/// A shell script that builds the NixOS paths in a private mount namespace, then runs
/// `check`. `staging` holds the secrets to put in place.
fn nixos_namespace_script(topology: &Topology, staging: &Path, check: &str) -> String {
    let domain = &topology.stack.domain;
    let staging = staging.display();
    format!(
        "set -e
mount -t tmpfs nxs-var-lib /var/lib
mount -t tmpfs nxs-run /run
mkdir -p /var/lib/nixstack/secrets /var/lib/acme/{domain} /run/haproxy
cp {staging}/ca.crt {staging}/host.crt {staging}/host.key {staging}/host.pem {staging}/public.pem /var/lib/nixstack/secrets/
cp {staging}/public.pem /var/lib/acme/{domain}/full.pem
{check}
"
    )
}

fn nixos_command(netns: Option<&Netns>, script: String) -> Command {
    require("unshare");
    // `unshare -m` makes the new mount namespace's propagation private: nothing mounted
    // here is seen outside.
    let mut command = match netns {
        Some(netns) => netns.command("unshare"),
        None => Command::new("unshare"),
    };
    command.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    command
}

#[test]
fn nixos_layout_configs_pass_the_checkers_where_the_nixos_paths_exist() {
    require("haproxy");
    require("keepalived");
    let netns = Netns::new("lbnixos");
    for name in EXAMPLES {
        let topology = example(name);
        let tmp = tempfile::tempdir().unwrap();
        let ca = Ca::new(&tmp.path().join("ca"));
        for host in lb_hosts(&topology) {
            let staging = tmp.path().join(&host);
            ca.install_host_secrets(&topology, &host, &staging);
            let host_model = topology.host(&host).unwrap();
            let layout = Layout::nixos();
            let haproxy_text = haproxy::render(&topology, host_model, &layout);
            // Rendered paths are NixOS's, not this machine's.
            assert!(haproxy_text.contains("/var/lib/nixstack/secrets/"), "{haproxy_text}");
            let haproxy_cfg = staging.join("haproxy.cfg");
            fs::write(&haproxy_cfg, format!("{NIXOS_HAPROXY_PREAMBLE}{haproxy_text}")).unwrap();
            let keepalived_conf = staging.join("keepalived.conf");
            // modules/lb.nix's replaceVars puts curl's store path in; Debian's curl stands in.
            let keepalived_text = keepalived::render(&topology, host_model, &layout)
                .replace(keepalived::CURL_PLACEHOLDER, "/usr/bin/curl");
            fs::write(&keepalived_conf, keepalived_text).unwrap();

            let script =
                nixos_namespace_script(&topology, &staging, &format!("haproxy -c -f {}", haproxy_cfg.display()));
            if let Err(error) = haproxy_check(nixos_command(None, script)) {
                panic!("{name}/{host} (NixOS layout): {error}");
            }
            let script =
                nixos_namespace_script(&topology, &staging, &format!("keepalived -t -f {}", keepalived_conf.display()));
            if let Err(error) = keepalived_check(nixos_command(Some(&netns), script)) {
                panic!("{name}/{host} (NixOS layout): {error}");
            }
        }
    }
    // Nothing leaked out of the private mount namespaces.
    assert!(!Path::new("/var/lib/nixstack/secrets/public.pem").exists());
}

#[test]
fn nixos_layout_check_fails_outside_the_namespace() {
    // The NixOS text really depends on the paths the namespace provides: without them
    // haproxy cannot load the certificates. (Proves the namespace check is not vacuous.)
    let topology = example("default");
    let text = haproxy::render(&topology, topology.host("lb1").unwrap(), &Layout::nixos());
    if Path::new("/var/lib/acme/shop.example.com/full.pem").exists() {
        panic!("this machine has /var/lib/acme/shop.example.com; the test cannot prove anything here");
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("haproxy.cfg");
    fs::write(&cfg, text).unwrap();
    let error = haproxy_check_file(&cfg).expect_err("certificates missing outside the namespace");
    assert!(error.contains("full.pem"), "{error}");
}

// ---------------------------------------------------------------------------------------
// The checkers can fail.

#[test]
fn haproxy_check_rejects_an_unknown_keyword_and_a_warning() {
    let topology = example("default");
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(&tmp.path().join("ca"));
    let (haproxy_cfg, _) = write_lab_host(&topology, &ca, &tmp.path().join("root"), "lb1");
    haproxy_check_file(&haproxy_cfg).expect("the rendered config is valid");
    let good = fs::read_to_string(&haproxy_cfg).unwrap();

    let bad = tmp.path().join("unknown-keyword.cfg");
    fs::write(&bad, good.replace("    http-reuse safe\n", "    http-reuse safe\n    frobnicate-requests on\n"))
        .unwrap();
    let error = haproxy_check_file(&bad).expect_err("unknown keyword");
    assert!(error.contains("frobnicate-requests"), "{error}");

    // Accepted by haproxy with exit 0 but a warning: our check still fails.
    let warned = tmp.path().join("warning.cfg");
    fs::write(&warned, good.replace("    timeout client 30s\n", "")).unwrap();
    let error = haproxy_check_file(&warned).expect_err("missing client timeout warns");
    assert!(error.contains("[WARNING]"), "{error}");
}

#[test]
fn keepalived_check_rejects_an_unknown_keyword_and_a_missing_script() {
    let netns = Netns::new("lbneg");
    let topology = example("default");
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(&tmp.path().join("ca"));
    let (_, keepalived_conf) = write_lab_host(&topology, &ca, &tmp.path().join("root"), "lb2");
    keepalived_check_file(&netns, &keepalived_conf).expect("the rendered config is valid");
    let good = fs::read_to_string(&keepalived_conf).unwrap();

    let bad = tmp.path().join("unknown-keyword.conf");
    fs::write(&bad, good.replace("    advert_int 1\n", "    advert_int 1\n    frobnicate 1\n")).unwrap();
    let error = keepalived_check_file(&netns, &bad).expect_err("unknown keyword");
    assert!(error.contains("frobnicate"), "{error}");

    // keepalived exits non-zero *and* would silently run without the track script (no
    // failover on a dead HAProxy): caught.
    let missing = tmp.path().join("missing-script.conf");
    fs::write(&missing, good.replace("/usr/bin/curl", "/usr/bin/no-such-curl")).unwrap();
    let error = keepalived_check_file(&netns, &missing).expect_err("missing script");
    assert!(error.contains("chk_haproxy"), "{error}");

    // A script others could replace is refused (enable_script_security), and so caught.
    let writable = tmp.path().join("world-writable");
    fs::create_dir_all(&writable).unwrap();
    fs::copy("/usr/bin/curl", writable.join("curl")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&writable, fs::Permissions::from_mode(0o777)).unwrap();
    }
    let insecure = tmp.path().join("insecure-script.conf");
    fs::write(&insecure, good.replace("/usr/bin/curl", writable.join("curl").to_str().unwrap())).unwrap();
    let error = keepalived_check_file(&netns, &insecure).expect_err("insecure script");
    assert!(error.contains("insecure"), "{error}");

    // The build sandbox has no pub0: with `dynamic_interfaces` the NixOS text passes there
    // (keepalived waits for the card at run time), where it used to fail `nix flake check`.
    let bare = Netns { name: unique("lbbare") };
    run_ok(Command::new("ip").args(["netns", "add", &bare.name]));
    keepalived_check_file(&bare, &keepalived_conf).unwrap_or_else(|e| panic!("a namespace without pub0: {e}"));
}

// ---------------------------------------------------------------------------------------
// Snapshots: lab layout under the fixed LAB_ROOT, so they are deterministic.

#[test]
fn snapshots_of_every_lb_config() {
    for name in EXAMPLES {
        let topology = example(name);
        for host in lb_hosts(&topology) {
            let host_model = topology.host(&host).unwrap();
            for (layout_name, layout) in [("nixos", Layout::nixos()), ("lab", Layout::lab(&host))] {
                let haproxy_text = haproxy::render(&topology, host_model, &layout);
                let keepalived_text = keepalived::render(&topology, host_model, &layout);
                if layout_name == "lab" {
                    assert!(haproxy_text.contains(LAB_ROOT));
                }
                assert_eq!(haproxy_text, haproxy::render(&topology, host_model, &layout), "deterministic");
                insta::assert_snapshot!(format!("haproxy_{name}_{host}_{layout_name}"), haproxy_text);
                insta::assert_snapshot!(format!("keepalived_{name}_{host}_{layout_name}"), keepalived_text);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// A real run: HAProxy and keepalived with the lab config of lb1 in a network namespace,
// in front of three TLS web backends that present certificates of the internal CA.

/// A tiny HTTPS server per backend address: answers the health path with 200 and every
/// other path with the request's host name and the X-Forwarded-Proto it received.
const BACKEND_PY: &str = r#"
import http.server, ssl, sys, threading
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        forwarded_for = ",".join(self.headers.get_all("X-Forwarded-For") or [])
        body = ("%s proto=%s host=%s for=%s\n" % (self.server.name, self.headers.get("X-Forwarded-Proto"), self.headers.get("Host"), forwarded_for)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
servers = []
for spec in sys.argv[1:]:
    name, address, port, cert, key = spec.split(",")
    server = http.server.ThreadingHTTPServer((address, int(port)), Handler)
    server.name = name
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
print("ready", flush=True)
threading.Event().wait()
"#;

#[test]
fn haproxy_serves_https_through_the_vip_and_keepalived_follows_its_health() {
    require("python3");
    require("curl");
    require("haproxy");
    require("keepalived");
    let topology = example("default");
    let lb = topology.lb.as_ref().unwrap();
    let host = topology.host("lb1").unwrap();
    let public = host.public_address.unwrap();
    let domain = topology.stack.domain.clone();
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(&tmp.path().join("ca"));
    let root = tmp.path().join("root");
    let (haproxy_cfg, keepalived_conf) = write_lab_host(&topology, &ca, &root, "lb1");
    let layout = Layout::lab_at(&root, "lb1");

    let netns = Netns::new("lbrun");
    let public_prefix = topology.networks.public.prefix_len();
    let private_prefix = topology.networks.private.prefix_len();
    netns.ip(&["addr", "add", &format!("{public}/{public_prefix}"), "dev", "pub0"]);
    netns.ip(&["addr", "add", &format!("{}/{private_prefix}", host.address), "dev", "priv0"]);
    add_public6(&netns, &topology, host, "pub0");

    // Backends on the private network, each with its own certificate.
    let mut specs = Vec::new();
    for backend in &lb.backends {
        netns.ip(&["addr", "add", &format!("{}/32", backend.address), "dev", "eth1"]);
        let certificate = topology.certificates.iter().find(|c| c.host == backend.host).unwrap();
        let (cert, key) = ca.issue(&backend.host, &certificate.dns_names, &certificate.ip_addresses);
        let dir = tmp.path().join("backends").join(&backend.host);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("cert.pem"), cert).unwrap();
        fs::write(dir.join("key.pem"), key).unwrap();
        specs.push(format!(
            "{},{},{},{},{}",
            backend.host,
            backend.address,
            backend.port,
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        ));
    }
    let script = tmp.path().join("backend.py");
    fs::write(&script, BACKEND_PY).unwrap();
    let backend_log = tmp.path().join("backends.log");
    let mut backends_command = netns.command("python3");
    backends_command.arg(&script).args(&specs);
    let mut backends = Daemon::spawn("backend servers", backends_command, &backend_log);
    wait_until("backend servers", Duration::from_secs(10), || {
        fs::read_to_string(&backend_log).unwrap_or_default().contains("ready")
    });
    backends.assert_running(&backend_log);

    // The VIP is NOT on this host yet: HAProxy must still start (`transparent` bind).
    let haproxy_log = layout.log_file("haproxy.log");
    let mut haproxy_command = netns.command("haproxy");
    haproxy_command.arg("-db").arg("-f").arg(&haproxy_cfg);
    let mut haproxy_daemon = Daemon::spawn("haproxy", haproxy_command, &haproxy_log);

    let curl = |args: &[&str]| -> Output {
        let mut command = netns.command("curl");
        command.args(["-sS", "--max-time", "3"]).args(args);
        run(&mut command)
    };
    let stats = format!("http://{}:{}", host.address, lb.stats_port);
    wait_until("haproxy stats", Duration::from_secs(10), || curl(&["-f", &format!("{stats}/stats")]).status.success());
    haproxy_daemon.assert_running(&haproxy_log);
    assert!(layout.haproxy_socket().exists(), "admin socket at {}", layout.haproxy_socket().display());

    // Every backend passes the TLS health check (verify required against the CA).
    wait_until("three backends UP", Duration::from_secs(10), || {
        let metrics = String::from_utf8_lossy(&curl(&[&format!("{stats}/metrics")]).stdout).into_owned();
        lb.backends.iter().all(|b| {
            metrics.lines().any(|l| {
                l.starts_with("haproxy_server_status{")
                    && l.contains(&format!("server=\"{}\"", b.host))
                    && l.contains("state=\"UP\"")
                    && l.ends_with(" 1")
            })
        })
    });

    // keepalived, as the lab runs it: VRRP only, foreground, own pid files.
    let run_dir = layout.run.clone();
    let mut keepalived_command = netns.command("keepalived");
    keepalived_command
        .args(["--vrrp", "--dont-fork", "--log-console", "--use-file"])
        .arg(&keepalived_conf)
        .arg("--pid")
        .arg(run_dir.join("keepalived.pid"))
        .arg("--vrrp_pid")
        .arg(run_dir.join("vrrp.pid"))
        .arg("--checkers_pid")
        .arg(run_dir.join("checkers.pid"));
    let keepalived_log = layout.log_file("keepalived.log");
    let mut keepalived_daemon = Daemon::spawn("keepalived", keepalived_command, &keepalived_log);
    let has_vip = || {
        let mut command = netns.command("ip");
        command.args(["-4", "-o", "addr", "show", "dev", "pub0"]);
        String::from_utf8_lossy(&run(&mut command).stdout).contains(&format!("inet {}/", lb.vip))
    };
    wait_until("keepalived to put the VIP on pub0", Duration::from_secs(15), has_vip);
    keepalived_daemon.assert_running(&keepalived_log);

    // HTTPS through the VIP, verified against the internal CA, balanced over the backends.
    let resolve = format!("{domain}:443:{}", lb.vip);
    let url = format!("https://{domain}/");
    let cacert = ca.cert();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let spoofed = "X-Forwarded-For: 192.0.2.66";
        let output =
            curl(&["-f", "-i", "--cacert", cacert.to_str().unwrap(), "--resolve", &resolve, "-H", spoofed, &url]);
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
        assert!(text.to_ascii_lowercase().contains("strict-transport-security: max-age=63072000"), "{text}");
        assert!(text.contains(&format!("proto=https host={domain} for=")), "{text}");
        // The client's own X-Forwarded-For is dropped; HAProxy's is the only one.
        let forwarded_for = text.trim_end().rsplit("for=").next().unwrap_or_default();
        assert!(forwarded_for.parse::<Ipv4Addr>().is_ok(), "one client address, not {forwarded_for:?}: {text}");
        seen.insert(text.lines().last().unwrap_or_default().split(' ').next().unwrap_or_default().to_string());
    }
    assert_eq!(seen.len(), 3, "roundrobin reaches every backend: {seen:?}");

    // TLS 1.1 is refused (Mozilla intermediate: TLS 1.2+).
    let old = curl(&["--tlsv1.1", "--tls-max", "1.1", "-k", "--resolve", &resolve, &url]);
    assert!(!old.status.success(), "TLS 1.1 must be refused");

    // Plain HTTP on the public address redirects to HTTPS.
    let output = curl(&["-i", &format!("http://{public}/shop?x=1"), "-H", &format!("Host: {domain}")]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(text.starts_with("HTTP/1.1 301"), "{text}");
    assert!(text.contains(&format!("https://{domain}/shop?x=1")), "{text}");

    // HAProxy dies: the track script fails and keepalived gives the VIP up.
    drop(haproxy_daemon);
    wait_until("keepalived to release the VIP", Duration::from_secs(15), || !has_vip());
    keepalived_daemon.assert_running(&keepalived_log);
    drop(keepalived_daemon);
    drop(backends);
}

/// NixOS runs HAProxy as user `haproxy` with CAP_NET_BIND_SERVICE only. The rendered config
/// must still start there while the VIP is on the other LB (`transparent` falls back to
/// IP_FREEBIND without CAP_NET_ADMIN), and serve the VIP once keepalived moves it here.
#[test]
fn unprivileged_haproxy_binds_the_vip_before_it_arrives() {
    use std::os::unix::fs::PermissionsExt;
    require("setpriv");
    require("curl");
    require("haproxy");
    let topology = example("whiteboard");
    let lb = topology.lb.as_ref().unwrap();
    let host = topology.host("lb").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(&tmp.path().join("ca"));
    let root = tmp.path().join("root");
    let (haproxy_cfg, _) = write_lab_host(&topology, &ca, &root, "lb");
    let layout = Layout::lab_at(&root, "lb");
    // Throwaway test secrets: readable by `nobody`, like the service group on NixOS.
    let chmod = |path: &Path, mode: u32| fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    for dir in [tmp.path(), root.as_path(), &root.join("lb"), &layout.secrets, &layout.etc] {
        chmod(dir, 0o755);
    }
    for file in fs::read_dir(&layout.secrets).unwrap() {
        chmod(&file.unwrap().path(), 0o644);
    }
    chmod(&haproxy_cfg, 0o644);
    chmod(&layout.run, 0o777);
    chmod(&layout.run.join("haproxy"), 0o777);
    chmod(&layout.log, 0o777);

    let netns = Netns::new("lbcap");
    let public = host.public_address.unwrap();
    netns.ip(&["addr", "add", &format!("{public}/{}", topology.networks.public.prefix_len()), "dev", "pub0"]);
    netns.ip(&["addr", "add", &format!("{}/{}", host.address, topology.networks.private.prefix_len()), "dev", "priv0"]);
    add_public6(&netns, &topology, host, "pub0");

    let mut command = netns.command("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["--inh-caps=-all,+net_bind_service", "--ambient-caps=-all,+net_bind_service"])
        .args(["--bounding-set=-all,+net_bind_service", "haproxy", "-db", "-f"])
        .arg(&haproxy_cfg);
    let log = tmp.path().join("haproxy-unprivileged.log");
    let mut daemon = Daemon::spawn("unprivileged haproxy", command, &log);
    let curl = |url: &str| {
        let mut command = netns.command("curl");
        command.args(["-sS", "-i", "--max-time", "3", url]);
        run(&mut command)
    };
    let stats = format!("http://{}:{}/stats", host.address, lb.stats_port);
    wait_until("unprivileged haproxy", Duration::from_secs(10), || curl(&stats).status.success());
    daemon.assert_running(&log);
    let status = fs::read_to_string(format!("/proc/{}/status", daemon.child.id())).unwrap();
    assert!(status.lines().any(|l| l == "CapEff:\t0000000000000400"), "only CAP_NET_BIND_SERVICE:\n{status}");

    // keepalived's job, done by hand: the VIP arrives and the already bound socket serves it.
    netns.ip(&["addr", "add", &format!("{}/32", lb.vip), "dev", "pub0"]);
    let output = curl(&format!("http://{}/", lb.vip));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(text.starts_with("HTTP/1.1 301"), "{text}{}", String::from_utf8_lossy(&output.stderr));
}

/// A dual-stack LB's public IPv6 address on `dev`, as the lab and NixOS give it (no
/// duplicate address detection: a tentative address cannot be bound).
fn add_public6(netns: &Netns, topology: &nixstack::topology::Topology, host: &nixstack::topology::Host, dev: &str) {
    if let (Some(address), Some(public6)) = (host.public_address6, topology.networks.public6) {
        netns.ip(&["-6", "addr", "add", &format!("{address}/{}", public6.prefix_len()), "dev", dev, "nodad"]);
    }
}

// ---------------------------------------------------------------------------------------
// TLS policy at the VIP, measured by a real scanner (testssl.sh) against Mozilla's file.

#[path = "common/testssl.rs"]
mod testssl;

#[test]
fn haproxy_offers_exactly_mozilla_intermediate_at_the_vip() {
    require("haproxy");
    let topology = example("default");
    let lb = topology.lb.as_ref().unwrap();
    let host = topology.host("lb1").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(&tmp.path().join("ca"));
    let root = tmp.path().join("root");
    let (haproxy_cfg, _) = write_lab_host(&topology, &ca, &root, "lb1");
    let layout = Layout::lab_at(&root, "lb1");

    // The namespace's own loopback interface holds the public address, the VIP and the
    // private address: HAProxy binds them and the scan never leaves the namespace.
    let netns = Netns::new("lbtls");
    for address in [host.public_address.unwrap(), lb.vip, host.address] {
        netns.ip(&["addr", "add", &format!("{address}/32"), "dev", "lo"]);
    }
    for address in host.public_address6.iter().chain(&lb.vip6) {
        netns.ip(&["-6", "addr", "add", &format!("{address}/128"), "dev", "lo", "nodad"]);
    }
    let haproxy_log = layout.log_file("haproxy.log");
    let mut command = netns.command("haproxy");
    command.arg("-db").arg("-f").arg(&haproxy_cfg);
    let mut daemon = Daemon::spawn("haproxy", command, &haproxy_log);
    let stats = format!("http://{}:{}/stats", host.address, lb.stats_port);
    wait_until("haproxy stats", Duration::from_secs(10), || {
        run(netns.command("curl").args(["-sf", "--max-time", "2", &stats])).status.success()
    });
    daemon.assert_running(&haproxy_log);
    testssl::assert_mozilla_intermediate(&netns.name, &format!("{}:443", lb.vip), None, tmp.path());
}
