//! nginx.conf and the nftables ruleset of every host of both example specs, proven by the
//! real tools: `nginx -t` on the lab layout and on the very text NixOS installs (inside a
//! private mount namespace where the NixOS paths exist), `nft -c` in a throwaway network
//! namespace, each checker shown to fail on a broken config; then real traffic through a
//! loaded ruleset and through a running nginx in namespaces of the test's own.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nixstack::cli::compile;
use nixstack::render::{nftables, nginx, Layout};
use nixstack::spec::{Role, SpecSource};
use nixstack::topology::{Host, Topology};

// ---------------------------------------------------------------------------------------
// Fixtures

const SPECS: [&str; 2] = ["default", "whiteboard"];

fn topology(spec: &str) -> Topology {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(format!("{spec}.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    compile(&SpecSource { name: path.display().to_string(), text }).unwrap_or_else(|e| panic!("{spec}: {e:?}"))
}

/// The hosts that run nginx: web hosts, and app hosts whose app hop it terminates.
fn nginx_hosts(topology: &Topology) -> Vec<&Host> {
    topology.hosts.iter().filter(|h| nixstack::stack::runs_nginx(topology, h)).collect()
}

/// Fails (never skips) when a tool the checks need is missing.
fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "`{tool}` is not installed: run scripts/setup (as root) first");
}

/// A unique name for this test process and call: namespaces and dirs never collide
/// between tests running in parallel threads.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

fn temp_root() -> tempfile::TempDir {
    // Under /tmp explicitly: the NixOS check hides /var/lib, /var/log, /var/cache and /run.
    tempfile::Builder::new().prefix("nxs-webfw-").tempdir_in("/tmp").expect("temp dir")
}

/// Runs a command; `Err` carries the command line, the exit status and the output tail.
fn run(command: &mut Command) -> Result<String, String> {
    let output: Output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        Ok(format!("{stdout}{stderr}"))
    } else {
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
        Err(format!("{command:?} exited with {}:\n{}\n{stdout}", output.status, tail.join("\n")))
    }
}

fn must(command: &mut Command) -> String {
    run(command).unwrap_or_else(|e| panic!("{e}"))
}

/// An internal CA made by openssl, issuing certificates like `nixstack secrets init` does.
struct TestCa {
    dir: PathBuf,
}

impl TestCa {
    fn new(dir: &Path) -> TestCa {
        require("openssl");
        std::fs::create_dir_all(dir).unwrap();
        must(
            Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
                .args(["-subj", "/CN=nixstack test CA", "-days", "2", "-keyout"])
                .arg(dir.join("ca.key"))
                .arg("-out")
                .arg(dir.join("ca.crt")),
        );
        TestCa { dir: dir.to_path_buf() }
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// Writes `host.crt`, `host.key` (and the CA's `ca.crt`) into `secrets` for a leaf with
    /// the given names.
    fn issue(&self, secrets: &Path, common_name: &str, dns: &[String], ips: &[Ipv4Addr]) {
        std::fs::create_dir_all(secrets).unwrap();
        let mut san: Vec<String> = dns.iter().map(|name| format!("DNS:{name}")).collect();
        san.extend(ips.iter().map(|ip| format!("IP:{ip}")));
        let ext = secrets.join("leaf.ext");
        std::fs::write(&ext, format!("subjectAltName={}\nextendedKeyUsage=serverAuth,clientAuth\n", san.join(",")))
            .unwrap();
        must(
            Command::new("openssl")
                .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
                .arg("-subj")
                .arg(format!("/CN={common_name}"))
                .arg("-keyout")
                .arg(secrets.join("host.key"))
                .arg("-out")
                .arg(secrets.join("host.csr")),
        );
        must(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-in"])
                .arg(secrets.join("host.csr"))
                .arg("-CA")
                .arg(self.cert())
                .arg("-CAkey")
                .arg(self.dir.join("ca.key"))
                .arg("-CAcreateserial")
                .arg("-CAserial")
                .arg(self.dir.join("ca.srl"))
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(secrets.join("host.crt")),
        );
        std::fs::copy(self.cert(), secrets.join("ca.crt")).unwrap();
    }

    /// The certificate the topology says the internal CA issues for `host`.
    fn issue_for(&self, secrets: &Path, topology: &Topology, host: &str) {
        let certificate = topology.certificates.iter().find(|c| c.host == host).expect("every host has a certificate");
        self.issue(secrets, &certificate.common_name, &certificate.dns_names, &certificate.ip_addresses);
    }
}

// ---------------------------------------------------------------------------------------
// nginx -t

/// Runs `script` with sh in a new network namespace of its own that holds `address` (nginx
/// -t binds its listeners, so the host's address must exist), and with a private mount
/// namespace when `private_mounts`. Both vanish with the process: nothing to clean up.
fn in_host_namespace(address: Ipv4Addr, private_mounts: bool, script: &str) -> Result<String, String> {
    require("unshare");
    require("ip");
    let script = format!("set -e\nip link set lo up\nip addr add {address}/32 dev lo\n{script}");
    let mut command = Command::new("unshare");
    command.arg("--net");
    if private_mounts {
        command.args(["--mount", "--propagation", "private"]);
    }
    run(command.args(["sh", "-c", &script]))
}

/// `nginx -t` on the lab layout under `root`: the dirs the config needs are made, the
/// config is written where the lab keeps it, nginx runs with the host's lab prefix.
fn nginx_check_lab(text: &str, layout: &Layout, prefix: &Path, address: Ipv4Addr) -> Result<String, String> {
    require("nginx");
    for dir in nginx::required_dirs(layout) {
        std::fs::create_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&layout.etc).unwrap();
    let file = layout.config("nginx.conf");
    // As the lab installs it: the nixpkgs module's prelude (pid, error_log, daemon) in front.
    std::fs::write(&file, nixstack::stack::launch::nginx_config_as_installed(layout, text)).unwrap();
    in_host_namespace(
        address,
        false,
        &format!("exec nginx -t -c '{}' -p '{}' -e stderr", file.display(), prefix.display()),
    )
}

/// What NixOS writes as nginx.conf around `services.nginx.config` (nixpkgs
/// `nixos/modules/services/web-servers/nginx/default.nix`, `configFile`): pid, error log
/// and daemon lines first, then the option's text; no events or http block is added when
/// `config` is set and `eventsConfig` is empty.
fn nixos_nginx_conf(config: &str) -> String {
    format!("pid /run/nginx/nginx.pid;\nerror_log stderr;\ndaemon off;\n\n{config}\n")
}

/// nixpkgs' `writers.writeNginxConfig` re-indents the file with this awk program and drops
/// blank lines before installing it (then runs gixy); the check runs on that output.
const NIXPKGS_AWK_FORMAT_NGINX: &str = r#"{sub(/^[ \t]+/,"");idx=0}
/\{/{ctx++;idx=1}
/\}/{ctx--}
{id="";for(i=idx;i<ctx;i++)id=sprintf("%s%s", id, "\t");printf "%s%s\n", id, $0}
"#;

/// `nginx -t` on the NixOS text inside a private mount namespace: tmpfs over /var/lib,
/// /var/log, /var/cache and /run, where the NixOS paths (secrets, the unit's log, cache and
/// runtime directories) are created; nothing of the machine's own is touched.
fn nginx_check_nixos(config: &str, secrets: &Path, work: &Path, address: Ipv4Addr) -> Result<String, String> {
    require("nginx");
    require("awk");
    let raw = work.join("nixos-nginx.raw");
    let awk = work.join("format-nginx.awk");
    let file = work.join("nixos-nginx.conf");
    std::fs::write(&raw, nixos_nginx_conf(config)).unwrap();
    std::fs::write(&awk, NIXPKGS_AWK_FORMAT_NGINX).unwrap();
    let formatted = must(Command::new("awk").arg("-f").arg(&awk).arg(&raw));
    let formatted: String =
        formatted.lines().filter(|line| !line.trim().is_empty()).map(|line| format!("{line}\n")).collect();
    std::fs::write(&file, formatted).unwrap();
    let layout = Layout::nixos();
    let mut script =
        String::from("for d in /var/lib /var/log /var/cache /run; do mount -t tmpfs nxs-nginx-check \"$d\"; done\n");
    for dir in nginx::required_dirs(&layout).iter().chain([&layout.secrets, &PathBuf::from("/run/nginx")]) {
        script.push_str(&format!("mkdir -p '{}'\n", dir.display()));
    }
    for name in ["ca.crt", "host.crt", "host.key"] {
        script.push_str(&format!("cp '{}' '{}'\n", secrets.join(name).display(), layout.secret(name).display()));
    }
    script.push_str(&format!("exec nginx -t -c '{}' -e stderr\n", file.display()));
    in_host_namespace(address, true, &script)
}

#[test]
fn nginx_accepts_every_host_config_in_both_layouts() {
    for spec in SPECS {
        let topology = topology(spec);
        let hosts = nginx_hosts(&topology);
        assert!(hosts.iter().any(|h| h.has(Role::Web)), "{spec} has web hosts");
        if topology.internal_tls {
            assert!(
                hosts.iter().any(|h| h.has(Role::App) && !h.has(Role::Web)),
                "{spec}: app hosts run the terminator"
            );
        }
        let root = temp_root();
        let ca = TestCa::new(&root.path().join("ca"));
        for host in hosts {
            let layout = Layout::lab_at(root.path(), &host.name);
            ca.issue_for(&layout.secrets, &topology, &host.name);
            let lab = nginx::render(&topology, host, &layout);
            let prefix = root.path().join(&host.name);
            let out = nginx_check_lab(&lab, &layout, &prefix, host.address)
                .unwrap_or_else(|e| panic!("{spec}/{} lab:\n{lab}\n{e}", host.name));
            assert!(out.contains("test is successful"), "{out}");
            // nginx made its temp dirs where the config says, under this host's root only.
            assert!(layout.state.join("nginx/client_body").is_dir());

            let nixos = nginx::render(&topology, host, &Layout::nixos());
            let out = nginx_check_nixos(&nixos, &layout.secrets, root.path(), host.address)
                .unwrap_or_else(|e| panic!("{spec}/{} NixOS:\n{nixos}\n{e}", host.name));
            assert!(out.contains("test is successful"), "{out}");
        }
    }
}

#[test]
fn nginx_checks_fail_on_broken_configs() {
    let topology = topology("default");
    let host = topology.host("web1").unwrap();
    let root = temp_root();
    let ca = TestCa::new(&root.path().join("ca"));
    let layout = Layout::lab_at(root.path(), "web1");
    ca.issue_for(&layout.secrets, &topology, "web1");
    let prefix = root.path().join("web1");
    let good = nginx::render(&topology, host, &layout);
    nginx_check_lab(&good, &layout, &prefix, host.address).expect("the rendered config passes");

    let unknown = good.replace("worker_processes auto;", "worker_processes auto;\nworker_bogus on;");
    let err = nginx_check_lab(&unknown, &layout, &prefix, host.address).expect_err("an unknown directive fails");
    assert!(err.contains("unknown directive \"worker_bogus\""), "{err}");

    // A key that does not belong to the certificate: nginx -t loads both and must refuse.
    let other = root.path().join("other");
    ca.issue(&other, "other", &["other".into()], &[]);
    std::fs::copy(other.join("host.key"), layout.host_key()).unwrap();
    let err = nginx_check_lab(&good, &layout, &prefix, host.address).expect_err("a mismatched key fails");
    assert!(err.contains("key values mismatch") || err.contains("SSL_CTX_use_PrivateKey"), "{err}");
    ca.issue_for(&layout.secrets, &topology, "web1");

    // NixOS writes its own pid line in front: one in the rendered text must fail its check.
    let with_pid = format!("pid /run/nginx/other.pid;\n{good}");
    let err = nginx_check_nixos(&with_pid, &layout.secrets, root.path(), host.address)
        .expect_err("a second pid fails under NixOS");
    assert!(err.contains("\"pid\" directive is duplicate"), "{err}");
    let nixos = nginx::render(&topology, host, &Layout::nixos());
    nginx_check_nixos(&nixos, &layout.secrets, root.path(), host.address).expect("the NixOS text passes");
    let err = nginx_check_nixos(
        &nixos.replace("ssl_protocols TLSv1.2 TLSv1.3;", "ssl_protocols TLSv9;"),
        &layout.secrets,
        root.path(),
        host.address,
    )
    .expect_err("a bad value fails under NixOS too");
    assert!(err.contains("TLSv9"), "{err}");
}

// ---------------------------------------------------------------------------------------
// nft -c

/// Network namespaces and processes of one test, removed on drop whatever happens.
struct Namespaces {
    names: Vec<String>,
    children: Vec<Child>,
}

impl Namespaces {
    fn new() -> Namespaces {
        require("ip");
        Namespaces { names: Vec::new(), children: Vec::new() }
    }

    /// Adds a namespace with `lo` up and returns its name.
    fn add(&mut self, prefix: &str) -> String {
        let name = unique(prefix);
        must(Command::new("ip").args(["netns", "add", &name]));
        self.names.push(name.clone());
        must(Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"]));
        name
    }

    fn exec(&self, ns: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, program]);
        command
    }

    /// Starts a long-running process inside `ns`, stopped on drop.
    fn spawn(&mut self, ns: &str, program: &str, args: &[&str]) {
        let child =
            self.exec(ns, program).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        self.children.push(child.unwrap_or_else(|e| panic!("starting {program} in {ns}: {e}")));
    }
}

/// Stops a daemon started in the foreground: SIGTERM first, because a SIGKILLed nginx master
/// leaves its workers running forever; SIGKILL after a bounded wait.
fn stop(child: &mut std::process::Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for child in &mut self.children {
            stop(child);
        }
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// `nft -c -f` on `text` inside a fresh network namespace (the check talks to the kernel,
/// so it runs where it cannot touch the machine's own ruleset).
fn nft_check(text: &str, work: &Path) -> Result<String, String> {
    require("nft");
    let mut namespaces = Namespaces::new();
    let ns = namespaces.add("nxs-nft");
    let file = work.join(format!("{}.nft", unique("ruleset")));
    std::fs::write(&file, text).unwrap();
    run(namespaces.exec(&ns, "nft").arg("-c").arg("-f").arg(&file))
}

#[test]
fn nft_accepts_every_host_ruleset() {
    let work = temp_root();
    for spec in SPECS {
        let topology = topology(spec);
        for host in &topology.hosts {
            let nixos = nftables::render(&topology, host, &Layout::nixos());
            let lab = nftables::render(&topology, host, &Layout::lab(&host.name));
            assert_eq!(nixos, lab, "a ruleset names no paths, so both layouts give the same text");
            nft_check(&nixos, work.path()).unwrap_or_else(|e| panic!("{spec}/{}:\n{nixos}\n{e}", host.name));
        }
    }
}

#[test]
fn nft_check_fails_on_a_broken_ruleset() {
    let work = temp_root();
    let topology = topology("default");
    let good = nftables::render(&topology, topology.host("db1").unwrap(), &Layout::nixos());
    nft_check(&good, work.path()).expect("the rendered ruleset passes");
    let typo = good.replacen("policy drop;", "policy dorp;", 1);
    let err = nft_check(&typo, work.path()).expect_err("a typo fails");
    assert!(err.contains("dorp") || err.contains("syntax error"), "{err}");
    // Semantically wrong, syntactically fine: a TCP port out of range.
    let range = good.replacen("tcp dport 3306", "tcp dport 70000", 1);
    assert_ne!(range, good);
    nft_check(&range, work.path()).expect_err("a port out of range fails");
}

// ---------------------------------------------------------------------------------------
// The firewall, with real traffic

/// One switch namespace with a bridge, and hosts attached to it by veth pairs.
struct Lan {
    namespaces: Namespaces,
    switch: String,
    ports: usize,
}

impl Lan {
    fn new(tag: &str) -> Lan {
        let mut namespaces = Namespaces::new();
        let switch = namespaces.add(&format!("nxs-{tag}-sw"));
        must(Command::new("ip").args(["-n", &switch, "link", "add", "br0", "type", "bridge"]));
        must(Command::new("ip").args(["-n", &switch, "link", "set", "br0", "up"]));
        Lan { namespaces, switch, ports: 0 }
    }

    /// A new namespace on the bridge with `addresses` (CIDR) on its `eth0`.
    fn host(&mut self, tag: &str, addresses: &[&str]) -> String {
        let ns = self.namespaces.add(&format!("nxs-{tag}"));
        let port = format!("p{}", self.ports);
        self.ports += 1;
        must(Command::new("ip").args([
            "-n",
            &self.switch,
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ns,
        ]));
        must(Command::new("ip").args(["-n", &self.switch, "link", "set", &port, "master", "br0", "up"]));
        for address in addresses {
            must(Command::new("ip").args(["-n", &ns, "addr", "add", address, "dev", "eth0"]));
        }
        must(Command::new("ip").args(["-n", &ns, "link", "set", "eth0", "up"]));
        ns
    }

    /// A TCP listener in `ns` on `address:port` that greets every client with `greeting`.
    fn listen(&mut self, ns: &str, address: &str, port: u16, greeting: &str) {
        require("socat");
        let listen = format!("TCP-LISTEN:{port},bind={address},reuseaddr,fork");
        let answer = format!("SYSTEM:echo {greeting}");
        self.namespaces.spawn(ns, "socat", &[&listen, &answer]);
        let deadline = Instant::now() + Duration::from_secs(5);
        let filter = format!("sport = :{port}");
        while Instant::now() < deadline {
            let out = must(self.namespaces.exec(ns, "ss").args(["-Hltn", &filter]));
            if out.contains(&format!("{address}:{port}")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("socat did not listen on {address}:{port} in {ns}");
    }

    /// Whether a TCP connection from `ns` to `address:port` gets the listener's greeting
    /// within a second (a dropped SYN is simply never answered).
    fn connects(&self, ns: &str, address: &str, port: u16, greeting: &str) -> bool {
        let target = format!("TCP:{address}:{port},connect-timeout=1");
        let output = self
            .namespaces
            .exec(ns, "socat")
            .args(["-T1", "-u", &target, "STDOUT"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains(greeting)
    }
}

#[test]
fn firewall_lets_exactly_the_allowed_flows_through() {
    require("nft");
    let topology = topology("default");
    let web1 = topology.host("web1").unwrap();
    let ruleset = nftables::render(&topology, web1, &Layout::nixos());
    let work = temp_root();
    let file = work.path().join("web1.nft");
    std::fs::write(&file, &ruleset).unwrap();

    let mut lan = Lan::new("fw");
    // web1 with its private address, and an address on the admin network so that the
    // admin peer reaches it on the link (the source address is what the rules look at).
    let web = lan.host("fw-web1", &["10.10.0.21/24", "198.51.100.1/24"]);
    let lb1 = lan.host("fw-lb1", &["10.10.0.11/24", "10.10.0.31/24"]); // lb1, and app1's address
    let stranger = lan.host("fw-other", &["10.10.0.99/24"]);
    let admin = lan.host("fw-admin", &["198.51.100.7/24"]);

    lan.listen(&web, "10.10.0.21", 443, "nxs-https");
    lan.listen(&web, "10.10.0.21", 8080, "nxs-unlisted");
    lan.listen(&web, "0.0.0.0", 22, "nxs-ssh");
    lan.listen(&lb1, "10.10.0.31", 8080, "nxs-app");
    lan.listen(&lb1, "10.10.0.11", 9999, "nxs-lb-other");

    // Before the ruleset everything connects: the failures below are the firewall's doing.
    assert!(lan.connects(&stranger, "10.10.0.21", 443, "nxs-https"));
    assert!(lan.connects(&web, "10.10.0.11", 9999, "nxs-lb-other"));

    must(lan.namespaces.exec(&web, "nft").arg("-f").arg(&file));
    let listed = must(lan.namespaces.exec(&web, "nft").args(["list", "table", "inet", "nixstack"]));
    assert!(listed.contains("policy drop"), "{listed}");

    // In: lb → web on 443 only from the load balancers.
    assert!(lan.connects(&lb1, "10.10.0.21", 443, "nxs-https"), "lb1 reaches web1:443");
    assert!(!lan.connects(&stranger, "10.10.0.21", 443, "nxs-https"), "a non-LB source must not reach web1:443");
    assert!(!lan.connects(&lb1, "10.10.0.21", 8080, "nxs-unlisted"), "a port no flow needs stays closed");
    assert!(!lan.connects(&stranger, "10.10.0.21", 22, "nxs-ssh"), "ssh only from the admin network");
    // Out: web → app 8080 allowed, anything else to the same peers dropped.
    assert!(lan.connects(&web, "10.10.0.31", 8080, "nxs-app"), "web1 reaches app1:8080");
    assert!(!lan.connects(&web, "10.10.0.11", 9999, "nxs-lb-other"), "egress is restricted");
    // Loopback stays open (nginx → local services, stub_status).
    assert!(lan.connects(&web, "127.0.0.1", 22, "nxs-ssh"));

    // SSH from the admin network, rate-limited per source: the burst gets through, a
    // flood of new connections right after it is dropped.
    let per_minute =
        topology.firewall["web1"].inbound.iter().find_map(|allow| allow.rate_limit).expect("ssh is rate-limited");
    let attempts = per_minute as usize + 5;
    let results: Vec<bool> = (0..attempts).map(|_| lan.connects(&admin, "198.51.100.1", 22, "nxs-ssh")).collect();
    assert!(results[..5].iter().all(|ok| *ok), "the first ssh connections pass: {results:?}");
    let refused = results.iter().filter(|ok| !**ok).count();
    assert!(refused >= 3, "over {per_minute}/minute new ssh connections must be dropped: {results:?}");
}

// ---------------------------------------------------------------------------------------
// nginx, with real traffic

/// `curl` from inside `ns`; returns (status, headers and body).
fn curl(namespaces: &Namespaces, ns: &str, args: &[&str]) -> (u16, String) {
    require("curl");
    let output = namespaces
        .exec(ns, "curl")
        .args(["-sS", "-i", "--max-time", "8", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let status = text.lines().last().and_then(|line| line.trim().parse().ok()).unwrap_or(0);
    (status, format!("{text}{}", String::from_utf8_lossy(&output.stderr)))
}

/// web1 of the default spec runs its lab nginx.conf in a namespace holding web1's and the
/// app hosts' addresses. An app with a certificate for the app tier's shared name is
/// reached over verified TLS; one with today's per-host certificate (host names and IP
/// SANs only) is refused, which is why nginx verifies the shared name; the health path
/// never depends on the app; stub_status answers on loopback.
#[test]
fn nginx_serves_health_verifies_the_app_and_reports_status() {
    require("nginx");
    require("openssl");
    // Without `[web] static` the web root is served (with it, the package replaces the root).
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/default.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text.lines().find(|l| l.starts_with("static = ")).expect("the default has [web] static").to_string();
    let topology =
        compile(&SpecSource { name: "no-static.toml".into(), text: text.replace(&format!("{line}\n"), "") }).unwrap();
    assert!(topology.web.as_ref().unwrap().static_package.is_none());
    let web1 = topology.host("web1").unwrap();
    let web = topology.web.as_ref().unwrap();
    let lb = topology.lb.as_ref().unwrap();
    let root = temp_root();
    let ca = TestCa::new(&root.path().join("ca"));
    let layout = Layout::lab_at(root.path(), "web1");
    ca.issue_for(&layout.secrets, &topology, "web1");
    std::fs::create_dir_all(layout.web_root.as_ref().unwrap()).unwrap();
    // nginx workers run as the compiled-in unprivileged user and must reach the static root.
    use std::os::unix::fs::PermissionsExt;
    for dir in [root.path(), &root.path().join("web1"), layout.web_root.as_ref().unwrap()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(layout.web_root.as_ref().unwrap().join("static.txt"), "nxs-static\n").unwrap();
    let config = nginx::render(&topology, web1, &layout);
    let prefix = root.path().join("web1");
    nginx_check_lab(&config, &layout, &prefix, web1.address).unwrap_or_else(|e| panic!("{e}"));

    let mut namespaces = Namespaces::new();
    let ns = namespaces.add("nxs-ngx");
    must(Command::new("ip").args(["-n", &ns, "addr", "add", &format!("{}/32", web1.address), "dev", "lo"]));
    for app in &web.app_upstream {
        must(Command::new("ip").args(["-n", &ns, "addr", "add", &format!("{}/32", app.address), "dev", "lo"]));
    }
    let conf = layout.config("nginx.conf");
    namespaces.spawn(&ns, "nginx", &["-c", conf.to_str().unwrap(), "-p", prefix.to_str().unwrap(), "-e", "stderr"]);

    // Like HAProxy: verify web1's certificate by its host name, send the site's Host.
    let base = format!("https://{}:{}", web1.name, web.port);
    let resolve = format!("{}:{}:{}", web1.name, web.port, web1.address);
    let host_header = format!("Host: {}", topology.stack.domain);
    let ca_file = ca.cert();
    let ca_arg = ca_file.to_str().unwrap();
    let get = |namespaces: &Namespaces, path: &str| {
        curl(
            namespaces,
            &ns,
            &["--cacert", ca_arg, "--resolve", &resolve, "-H", &host_header, &format!("{base}{path}")],
        )
    };

    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, text) = loop {
        let (status, text) = get(&namespaces, &lb.health_path);
        if status == 200 || Instant::now() > deadline {
            break (status, text);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // No app is running at all: health still answers, from nginx itself, over verified TLS.
    assert_eq!(status, 200, "{text}");
    assert!(text.to_ascii_lowercase().contains("x-served-by: web1"), "{text}");
    let (status, text) = get(&namespaces, "/static.txt");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("nxs-static"), "{text}");
    let (status, text) = get(&namespaces, "/dynamic");
    assert_eq!(status, 502, "no app up: {text}");
    assert!(text.to_ascii_lowercase().contains("x-served-by: web1"), "also on errors: {text}");

    // The app on app2's address with a certificate carrying the shared app-tier name.
    let app = &web.app_upstream[1];
    let app_secrets = root.path().join("app-shared-name");
    let app_host = topology.certificates.iter().find(|c| c.host == app.host).unwrap();
    let mut dns = app_host.dns_names.clone();
    dns.push(nginx::app_tls_name(&topology));
    ca.issue(&app_secrets, &app_host.common_name, &dns, &app_host.ip_addresses);
    let accept = format!("{}:{}", app.address, app.port);
    let server = |namespaces: &mut Namespaces, secrets: &Path| {
        namespaces.spawn(
            &ns,
            "openssl",
            &[
                "s_server",
                "-quiet",
                "-www",
                "-accept",
                &accept,
                "-cert",
                secrets.join("host.crt").to_str().unwrap(),
                "-key",
                secrets.join("host.key").to_str().unwrap(),
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while !must(namespaces.exec(&ns, "ss").args(["-Hltn", &format!("sport = :{}", app.port)])).contains(&accept) {
            assert!(Instant::now() < deadline, "openssl s_server did not listen on {accept}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // Every app failed above, so each rests for its fail_timeout before nginx tries it
    // again ("no live upstreams" meanwhile): poll instead of asking once.
    let poll = |namespaces: &Namespaces, done: &dyn Fn(u16, &str) -> bool| -> Vec<(u16, String)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        loop {
            let (status, text) = get(namespaces, "/dynamic");
            let finished = done(status, &text);
            seen.push((status, text));
            if finished || Instant::now() > deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    server(&mut namespaces, &app_secrets);
    let seen = poll(&namespaces, &|status, _| status == 200);
    let (status, text) = seen.last().unwrap();
    assert_eq!(*status, 200, "verified TLS to the app: {seen:?}");
    assert!(text.contains("s_server"), "the answer is the app's: {text}");
    if let Some(mut child) = namespaces.children.pop() {
        stop(&mut child);
    }

    // A certificate with a valid chain but only the host's own names (no shared tier name):
    // nginx must refuse it, which proves the upstream name is really verified.
    let per_host = root.path().join("app-per-host");
    let certificate = topology.certificates.iter().find(|c| c.host == app.host).expect("every host has a certificate");
    let own_names: Vec<String> =
        certificate.dns_names.iter().filter(|n| **n != nginx::app_tls_name(&topology)).cloned().collect();
    ca.issue(&per_host, &certificate.common_name, &own_names, &certificate.ip_addresses);
    server(&mut namespaces, &per_host);
    let error_log_path = nginx::log_dir(&layout).join("error.log");
    let mismatch = || {
        std::fs::read_to_string(&error_log_path).unwrap_or_default().contains("upstream SSL certificate does not match")
    };
    let seen = poll(&namespaces, &|_, _| mismatch());
    assert!(mismatch(), "nginx refuses a certificate without the tier name: {seen:?}");
    assert!(seen.iter().all(|(status, _)| *status == 502), "never served through an unverified app: {seen:?}");

    // stub_status: loopback only, counting the requests above.
    let status_url = format!("http://127.0.0.1:{}{}", web.status_port, nginx::STATUS_PATH);
    let (status, text) = curl(&namespaces, &ns, &[&status_url]);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Active connections:"), "{text}");
    let (status, _) =
        curl(&namespaces, &ns, &[&format!("http://{}:{}{}", web1.address, web.status_port, nginx::STATUS_PATH)]);
    assert_eq!(status, 0, "the status port is not on the private address");
    // No plaintext port beside TLS.
    let (status, _) = curl(&namespaces, &ns, &[&format!("http://{}:80/", web1.address)]);
    assert_eq!(status, 0, "nothing listens on plaintext http");

    // The access log carries the upstream timing.
    let access_log = must(Command::new("cat").arg(nginx::log_dir(&layout).join("access.log")));
    let served = access_log
        .lines()
        .find(|line| line.contains("\" 200 ") && line.contains("/dynamic"))
        .expect("the app's answer is logged");
    assert!(served.contains(&accept) && served.contains("ustatus=") && served.contains("urt="), "{served}");
}

/// The default spec with the team's app from a flake and its static package (`[web] static`).
fn static_topology() -> Topology {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/default.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replacen(
            "package = \"nixstack-demo-app\"\ncommand = \"nixstack-demo-app\"\n",
            "source = \"github:acme/shop\"\n",
            1,
        )
        .replacen("static = \"nixstack-demo-static\"", "static = \"static\"", 1);
    let topology = compile(&SpecSource { name: "static.toml".into(), text }).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(topology.web.as_ref().unwrap().static_package.as_deref(), Some("static"));
    topology
}

/// `[web] static` on web1, by a running nginx (the lab config in a namespace of its own, the
/// static link pointing at files with the store's mtime 1): a fingerprinted file is served
/// from the package with `Cache-Control: public, max-age=31536000, immutable`; another file
/// of the package is served without validators nginx would derive from that mtime (never a
/// 304) and `no-cache`; a missing asset is nginx's 404, not the app's; every other path
/// reaches the app upstream (502 while none listens, the app's answer once one does). Both
/// layouts pass `nginx -t`.
#[test]
fn static_assets_are_served_from_the_package_and_the_rest_reaches_the_app() {
    require("nginx");
    require("openssl");
    let topology = static_topology();
    let web1 = topology.host("web1").unwrap();
    let web = topology.web.as_ref().unwrap();
    let root = temp_root();
    let ca = TestCa::new(&root.path().join("ca"));
    let layout = Layout::lab_at(root.path(), "web1");
    ca.issue_for(&layout.secrets, &topology, "web1");
    // The package, as the store holds it: read-only files with mtime 1.
    let package = root.path().join("package");
    std::fs::create_dir_all(package.join("assets")).unwrap();
    std::fs::write(package.join("assets/app.3f9a1c2e.css"), "body{color:teal}\n").unwrap();
    std::fs::write(package.join("robots.txt"), "User-agent: *\n").unwrap();
    must(
        Command::new("touch")
            .args(["-h", "-d", "@1"])
            .arg(package.join("assets/app.3f9a1c2e.css"))
            .arg(package.join("robots.txt")),
    );
    use std::os::unix::fs::PermissionsExt;
    for dir in [root.path(), &root.path().join("web1"), &package, &package.join("assets")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::create_dir_all(layout.static_root().parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&package, layout.static_root()).unwrap();

    let config = nginx::render(&topology, web1, &layout);
    let prefix = root.path().join("web1");
    nginx_check_lab(&config, &layout, &prefix, web1.address).unwrap_or_else(|e| panic!("{config}\n{e}"));
    let nixos = nginx::render(&topology, web1, &Layout::nixos());
    assert!(nixos.contains("root /etc/nixstack/static;"), "{nixos}");
    let out = nginx_check_nixos(&nixos, &layout.secrets, root.path(), web1.address).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("test is successful"), "{out}");

    let mut namespaces = Namespaces::new();
    let ns = namespaces.add("nxs-stc");
    must(Command::new("ip").args(["-n", &ns, "addr", "add", &format!("{}/32", web1.address), "dev", "lo"]));
    for app in &web.app_upstream {
        must(Command::new("ip").args(["-n", &ns, "addr", "add", &format!("{}/32", app.address), "dev", "lo"]));
    }
    let conf = layout.config("nginx.conf");
    namespaces.spawn(&ns, "nginx", &["-c", conf.to_str().unwrap(), "-p", prefix.to_str().unwrap(), "-e", "stderr"]);
    wait_listening(&namespaces, &ns, web1.address, web.port);

    let base = format!("https://{}:{}", web1.name, web.port);
    let resolve = format!("{}:{}:{}", web1.name, web.port, web1.address);
    let host_header = format!("Host: {}", topology.stack.domain);
    let ca_file = ca.cert();
    let ca_arg = ca_file.to_str().unwrap();
    let get = |namespaces: &Namespaces, path: &str, extra: &[&str]| {
        let url = format!("{base}{path}");
        let mut args = vec!["--cacert", ca_arg, "--resolve", &resolve, "-H", &host_header];
        args.extend_from_slice(extra);
        args.push(&url);
        curl(namespaces, &ns, &args)
    };
    let header = |text: &str, name: &str| -> Option<String> {
        text.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{}:", name.to_ascii_lowercase())))
            .map(|l| l.split_once(':').unwrap().1.trim().to_string())
    };

    let (status, text) = get(&namespaces, "/assets/app.3f9a1c2e.css", &[]);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("body{color:teal}"), "the package's file: {text}");
    assert_eq!(header(&text, "cache-control").as_deref(), Some("public, max-age=31536000, immutable"), "{text}");
    assert_eq!(header(&text, "content-type").as_deref(), Some("text/css"), "{text}");
    assert_eq!(header(&text, "x-served-by").as_deref(), Some("web1"), "{text}");

    let (status, text) = get(&namespaces, "/robots.txt", &[]);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("User-agent: *"), "{text}");
    assert_eq!(header(&text, "cache-control").as_deref(), Some("no-cache"), "{text}");
    assert_eq!(header(&text, "etag"), None, "no ETag from the store's mtime: {text}");
    assert_eq!(header(&text, "x-served-by").as_deref(), Some("web1"), "{text}");
    let (status, text) = get(&namespaces, "/robots.txt", &["-H", "If-Modified-Since: Thu, 01 Jan 1970 00:00:01 GMT"]);
    assert_eq!(status, 200, "never a 304 from the store's mtime: {text}");

    let (status, text) = get(&namespaces, "/assets/gone.0000.css", &[]);
    assert_eq!(status, 404, "a missing asset is nginx's own 404, not a trip to the app: {text}");
    let (status, text) = get(&namespaces, "/dynamic", &[]);
    assert_eq!(status, 502, "no app up, and /dynamic went to it: {text}");
    let (status, _) = get(&namespaces, "/", &[]);
    assert_eq!(status, 502, "/ is the app's too");

    // An app on app2's address: the non-static paths get its answer.
    let app = &web.app_upstream[1];
    let app_secrets = root.path().join("app");
    let app_host = topology.certificates.iter().find(|c| c.host == app.host).unwrap();
    let mut dns = app_host.dns_names.clone();
    dns.push(nginx::app_tls_name(&topology));
    ca.issue(&app_secrets, &app_host.common_name, &dns, &app_host.ip_addresses);
    let accept = format!("{}:{}", app.address, app.port);
    namespaces.spawn(
        &ns,
        "openssl",
        &[
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            &accept,
            "-cert",
            app_secrets.join("host.crt").to_str().unwrap(),
            "-key",
            app_secrets.join("host.key").to_str().unwrap(),
        ],
    );
    wait_listening(&namespaces, &ns, app.address, app.port);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, text) = loop {
        let (status, text) = get(&namespaces, "/dynamic", &[]);
        if status == 200 || Instant::now() > deadline {
            break (status, text);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("s_server"), "the app's answer: {text}");
    assert_ne!(
        header(&text, "cache-control").as_deref(),
        Some("no-cache"),
        "the app's headers, not the static ones: {text}"
    );
    let (status, text) = get(&namespaces, "/assets/gone.0000.css", &[]);
    assert_eq!(status, 404, "still not the app's: {text}");
    let (_, text) = get(&namespaces, "/assets/app.3f9a1c2e.css", &[]);
    assert!(!text.contains("s_server"), "{text}");
}

// ---------------------------------------------------------------------------------------
// Snapshots

#[test]
fn snapshots_of_nginx_and_nftables() {
    for spec in SPECS {
        let topology = topology(spec);
        for host in &topology.hosts {
            if host.has(Role::Web) {
                for (layout_name, layout) in [("nixos", Layout::nixos()), ("lab", Layout::lab(&host.name))] {
                    let text = nginx::render(&topology, host, &layout);
                    insta::assert_snapshot!(format!("nginx__{spec}__{}__{layout_name}", host.name), text);
                }
            }
            let text = nftables::render(&topology, host, &Layout::nixos());
            insta::assert_snapshot!(format!("nftables__{spec}__{}", host.name), text);
        }
    }
}

#[test]
fn renders_are_deterministic_and_free_of_build_paths() {
    for spec in SPECS {
        let topology = topology(spec);
        for host in &topology.hosts {
            for layout in [Layout::nixos(), Layout::lab(&host.name)] {
                let first = (nginx::render(&topology, host, &layout), nftables::render(&topology, host, &layout));
                let second = (nginx::render(&topology, host, &layout), nftables::render(&topology, host, &layout));
                assert_eq!(first, second);
                for text in [&first.0, &first.1] {
                    assert!(
                        !text.contains("/home/")
                            && !text.contains("/tmp/")
                            && !text.contains(env!("CARGO_MANIFEST_DIR"))
                    );
                    assert!(!text.contains("PRIVATE KEY"));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// TLS policy, measured by a real scanner (testssl.sh): nginx and the app offer exactly
// Mozilla intermediate 5.7 (data/mozilla/server-side-tls-5.7.json).

#[path = "common/testssl.rs"]
mod testssl;

/// Polls until something listens on `address:port` inside `ns`.
fn wait_listening(namespaces: &Namespaces, ns: &str, address: Ipv4Addr, port: u16) {
    let accept = format!("{address}:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !must(namespaces.exec(ns, "ss").args(["-Hltn", &format!("sport = :{port}")])).contains(&accept) {
        assert!(Instant::now() < deadline, "nothing listens on {accept}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn nginx_and_the_app_offer_exactly_mozilla_intermediate() {
    require("nginx");
    require("openssl");
    let topology = topology("default");
    let web1 = topology.host("web1").unwrap();
    let web = topology.web.as_ref().unwrap();
    let app = topology.app.as_ref().unwrap();
    let app1 = topology.host(&app.hosts[0]).unwrap();
    let root = temp_root();
    let ca = TestCa::new(&root.path().join("ca"));
    let mut namespaces = Namespaces::new();
    let ns = namespaces.add("nxs-tls");
    // Every address on the namespace's own loopback interface: the scan never leaves it.
    for address in [web1.address, app1.address] {
        must(Command::new("ip").args(["-n", &ns, "addr", "add", &format!("{address}/32"), "dev", "lo"]));
    }
    // web1's nginx, and app1's: the app hop's TLS terminator, as each host renders it.
    for host in [web1, app1] {
        let layout = Layout::lab_at(root.path(), &host.name);
        ca.issue_for(&layout.secrets, &topology, &host.name);
        if let Some(web_root) = &layout.web_root {
            std::fs::create_dir_all(web_root).unwrap();
        }
        let config = nginx::render(&topology, host, &layout);
        let prefix = root.path().join(&host.name);
        nginx_check_lab(&config, &layout, &prefix, host.address).unwrap_or_else(|e| panic!("{e}"));
        let conf = layout.config("nginx.conf");
        namespaces.spawn(&ns, "nginx", &["-c", conf.to_str().unwrap(), "-p", prefix.to_str().unwrap(), "-e", "stderr"]);
    }
    wait_listening(&namespaces, &ns, web1.address, web.port);
    wait_listening(&namespaces, &ns, app1.address, app.port);

    let work = root.path().join("scans");
    std::fs::create_dir_all(&work).unwrap();
    testssl::assert_mozilla_intermediate(&ns, &format!("{}:{}", web1.address, web.port), None, &work);
    testssl::assert_mozilla_intermediate(&ns, &format!("{}:{}", app1.address, app.port), None, &work);
}

/// app1's nginx terminates the app hop's TLS in front of the demo app, which speaks plain
/// HTTP on loopback only, started with the environment the contract gives it (no database:
/// its own 503 proves the request reached it). Verified TLS against the internal CA and the
/// tier's shared name, as the web tier's nginx verifies it; with the app stopped, nginx
/// answers 502 at once (the web tier then retries an idempotent request elsewhere).
#[test]
fn the_app_hop_terminates_tls_in_front_of_a_plain_http_app() {
    require("nginx");
    require("openssl");
    let topology = topology("default");
    let app = topology.app.as_ref().unwrap();
    let app1 = topology.host(&app.hosts[0]).unwrap();
    let root = temp_root();
    let ca = TestCa::new(&root.path().join("ca"));
    let layout = Layout::lab_at(root.path(), &app1.name);
    ca.issue_for(&layout.secrets, &topology, &app1.name);
    let config = nginx::render(&topology, app1, &layout);
    let prefix = root.path().join(&app1.name);
    nginx_check_lab(&config, &layout, &prefix, app1.address).unwrap_or_else(|e| panic!("{e}"));

    let mut namespaces = Namespaces::new();
    let ns = namespaces.add("nxs-hop");
    must(Command::new("ip").args(["-n", &ns, "addr", "add", &format!("{}/32", app1.address), "dev", "lo"]));
    let conf = layout.config("nginx.conf");
    namespaces.spawn(&ns, "nginx", &["-c", conf.to_str().unwrap(), "-p", prefix.to_str().unwrap(), "-e", "stderr"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("app/nixstack_demo_app.py");
    let mut app_process = namespaces
        .exec(&ns, "/usr/bin/env")
        .arg("-i")
        .args(nixstack::stack::app::environment(&topology, app1).iter().map(|(k, v)| format!("{k}={v}")))
        .args(["DATABASE_TLS=off", "/usr/bin/python3", script.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(&namespaces, &ns, app1.address, app.port);
    wait_listening(&namespaces, &ns, Ipv4Addr::LOCALHOST, app.listen_port);

    let name = nginx::app_tls_name(&topology);
    let resolve = format!("{name}:{}:{}", app.port, app1.address);
    let url = format!("https://{name}:{}{}", app.port, app.health_path);
    let ca_file = ca.cert();
    let get = |namespaces: &Namespaces| {
        curl(namespaces, &ns, &["--cacert", ca_file.to_str().unwrap(), "--resolve", &resolve, &url])
    };
    let (status, text) = get(&namespaces);
    assert_eq!(status, 503, "the app's own answer without a database: {text}");
    assert!(text.contains("database unavailable"), "the body is the app's: {text}");
    assert!(text.to_ascii_lowercase().contains(&format!("x-app-host: {}", app1.name)), "{text}");
    // The plain port is on loopback only: nothing answers on the private address.
    let (status, text) =
        curl(&namespaces, &ns, &[&format!("http://{}:{}{}", app1.address, app.listen_port, app.health_path)]);
    assert_eq!(status, 0, "the plain-HTTP app is not on the private address: {text}");
    // And TLS only on the hop: plain HTTP to the terminator's port is refused by nginx.
    let (status, _) = curl(&namespaces, &ns, &[&format!("http://{}:{}/", app1.address, app.port)]);
    assert_eq!(status, 400, "plain HTTP to the TLS port");

    let _ = Command::new("kill").arg("-TERM").arg(app_process.id().to_string()).status();
    let _ = app_process.wait();
    let (status, text) = get(&namespaces);
    assert_eq!(status, 502, "the app is down: the terminator says so at once: {text}");
}

// ---------------------------------------------------------------------------------------
// An app host out of the web tier's rotation, with real traffic

/// `stack::app::out_of_rotation`, what `nixstack deploy` loads on an app host before its app
/// restarts, by the real nft and kernel between two namespaces of the test's own: a
/// connection the web host has open keeps working, a new one is refused with a reset (so
/// nginx passes the request on before sending it), the host's own health check still gets
/// in, and the way back (also loaded when nothing is out) accepts again.
#[test]
fn out_of_rotation_refuses_new_connections_and_keeps_open_ones() {
    require("nft");
    let topology = topology("default");
    let port = topology.app.as_ref().unwrap().port;
    let out =
        nixstack::stack::app::out_of_rotation(&topology, topology.host("app1").unwrap()).expect("app1 runs the app");
    assert!(nixstack::stack::app::out_of_rotation(&topology, topology.host("web1").unwrap()).is_none());
    let work = temp_root();
    let (out_file, back_file) = (work.path().join("out.nft"), work.path().join("back.nft"));
    std::fs::write(&out_file, &out).unwrap();
    std::fs::write(&back_file, nixstack::stack::app::back_in_rotation()).unwrap();
    let mut lan = Lan::new("rot");
    let app = lan.host("rot-app", &["10.99.0.31/24"]);
    let web = lan.host("rot-web", &["10.99.0.21/24"]);
    let port_text = port.to_string();
    lan.namespaces.spawn(
        &app,
        "python3",
        &["-m", "http.server", &port_text, "--bind", "10.99.0.31", "--protocol", "HTTP/1.1", "--directory", "/"],
    );
    let client = format!(
        r#"
import http.client, subprocess, sys, time
def new():
    c = http.client.HTTPConnection("10.99.0.31", {port}, timeout=5)
    c.request("HEAD", "/"); r = c.getresponse(); r.read(); return c, r.status
def nft(f):
    subprocess.run(["ip", "netns", "exec", "{app}", "nft", "-f", f], check=True)
def own_check():
    return subprocess.run(["ip", "netns", "exec", "{app}", "python3", "-c",
        "import socket; socket.create_connection(('10.99.0.31', {port}), timeout=5)"]).returncode
for _ in range(50):
    try:
        new(); break
    except OSError:
        time.sleep(0.1)
nft("{back}")
kept, status = new(); print("before", status)
nft("{out}"); nft("{out}")
kept.request("HEAD", "/"); r = kept.getresponse(); r.read(); print("open connection", r.status)
try:
    new(); print("new connection accepted")
except ConnectionRefusedError:
    print("new connection refused")
print("own health check", "gets in" if own_check() == 0 else "refused")
nft("{back}")
print("after", new()[1])
"#,
        back = back_file.display(),
        out = out_file.display(),
    );
    let stdout = must(lan.namespaces.exec(&web, "python3").args(["-c", &client]));
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["before 200", "open connection 200", "new connection refused", "own health check gets in", "after 200"],
        "{out}"
    );
}
