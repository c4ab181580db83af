//! The deploy rig shared by tests/deploy.rs and tests/deploy_diff.rs: network namespaces
//! each running OpenSSH and nginx with the lab configs, each with its own Nix store (a
//! chroot store under the host's state directory), reached from an admin namespace.
// Each test file uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nixstack::cli::compile;
use nixstack::deploy::closure::{self, LabSystems, Systems};
use nixstack::deploy::execute::{self, Options, Outcome, Rollout};
use nixstack::deploy::health::GatePolicy;
use nixstack::deploy::host::Host;
use nixstack::deploy::progress::{Event, Format, Printer};
use nixstack::deploy::{lab_hosts, make_plan, Goal};
use nixstack::render::{nginx, Layout};
use nixstack::spec::SpecSource;
use nixstack::topology::Topology;

pub const ADMIN_ADDRESS: &str = "198.51.100.10";

pub fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "`{tool}` is not installed: run scripts/setup (as root) first");
}

pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

pub fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{command:?} failed ({}):\n{text}", output.status);
    text
}

pub fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

pub fn in_ns(netns: &str, program: &str) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", netns, program]);
    command
}

pub fn topology(text: &str) -> Topology {
    compile(&SpecSource { name: "rig.toml".into(), text: text.into() }).expect("valid spec")
}

/// The rig: an admin namespace holding a bridge, one namespace per host plugged into it,
/// each host with sshd, nginx and its nftables ruleset, as `lab up` leaves a lab host.
pub struct Rig {
    prefix: String,
    pub root: tempfile::TempDir,
    /// The admin namespace.
    pub admin: String,
    pub topology: Topology,
    namespaces: Vec<String>,
    /// Daemons started in the foreground (nginx), waited for when the rig goes.
    foreground: Vec<std::process::Child>,
}

impl Rig {
    /// The rig of `spec`; `name` tells its namespaces and directory from other tests' rigs.
    pub fn new(spec: &str, name: &str) -> Rig {
        for tool in ["ip", "ssh", "sshd", "ssh-keygen", "nix", "nix-env", "nginx", "nft", "curl", "setsid", "nohup"] {
            require(tool);
        }
        let prefix = unique(&format!("nxs-{name}-"));
        let root = tempfile::Builder::new().prefix(&format!("nxs-{name}-")).tempdir_in("/tmp").expect("temp dir");
        // nginx's workers (nobody) serve files from below it.
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let topology = topology(spec);
        let admin = format!("{prefix}-adm");
        let mut rig =
            Rig { prefix, root, admin: admin.clone(), topology, namespaces: Vec::new(), foreground: Vec::new() };
        ip(&["netns", "add", &admin]);
        rig.namespaces.push(admin.clone());
        ip(&["-n", &admin, "link", "set", "lo", "up"]);
        ip(&["-n", &admin, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &admin, "addr", "add", &format!("{ADMIN_ADDRESS}/24"), "dev", "br0"]);
        ip(&["-n", &admin, "link", "set", "br0", "up"]);
        ip(&["-n", &admin, "route", "add", &rig.topology.networks.private.to_string(), "dev", "br0"]);

        let secrets = rig.secrets_dir();
        nixstack::secrets::init(&rig.topology, &secrets).expect("secrets init");
        let admin_dir = rig.admin_dir();
        std::fs::create_dir_all(&admin_dir).unwrap();
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "rig-admin", "-f"])
            .arg(admin_dir.join("id_ed25519")));
        let admin_public = std::fs::read_to_string(admin_dir.join("id_ed25519.pub")).unwrap();

        let hosts = rig.topology.hosts.clone();
        for (index, host) in hosts.iter().enumerate() {
            let netns = rig.netns(&host.name);
            ip(&["netns", "add", &netns]);
            rig.namespaces.push(netns.clone());
            ip(&["-n", &netns, "link", "set", "lo", "up"]);
            let port = format!("h{index}");
            ip(&["-n", &admin, "link", "add", &port, "type", "veth", "peer", "name", "priv0", "netns", &netns]);
            ip(&["-n", &admin, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &admin, "link", "set", &port, "up"]);
            ip(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{}/{}", host.address, rig.topology.networks.private.prefix_len()),
                "dev",
                "priv0",
            ]);
            ip(&["-n", &netns, "link", "set", "priv0", "up"]);
            ip(&["-n", &netns, "route", "add", &rig.topology.networks.admin[0].to_string(), "dev", "priv0"]);

            // What `lab up` leaves: dirs, secrets, the rendered configs, running daemons.
            let layout = rig.layout(&host.name);
            for dir in [
                &layout.secrets,
                &layout.state,
                &layout.run,
                &layout.log,
                &layout.etc,
                layout.web_root.as_ref().unwrap(),
            ] {
                std::fs::create_dir_all(dir).unwrap();
            }
            std::fs::set_permissions(&layout.secrets, std::fs::Permissions::from_mode(0o700)).unwrap();
            for (source, name) in nixstack::secrets::host_secrets(&rig.topology, &host.name, &secrets) {
                std::fs::copy(&source, layout.secret(&name)).unwrap();
                std::fs::set_permissions(layout.secret(&name), std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            for dir in nginx::required_dirs(&layout) {
                std::fs::create_dir_all(dir).unwrap();
            }
            // What nginx's unit has systemd create (RuntimeDirectory= holds its pid file).
            let nginx_launch =
                nixstack::stack::launch::launch(&rig.topology, host, &layout, nixstack::stack::Service::Nginx, false)
                    .expect("web hosts run nginx");
            for dir in &nginx_launch.directories {
                std::fs::create_dir_all(&dir.path).unwrap();
            }
            std::fs::write(layout.web_root.as_ref().unwrap().join("index.html"), format!("hello from {}\n", host.name))
                .unwrap();
            for (name, text) in closure::lab_configs(&rig.topology, host, &layout) {
                std::fs::write(layout.config(&name), text).unwrap();
            }
            run(in_ns(&netns, "nft").arg("-f").arg(layout.config("nftables.conf")));

            let host_key = layout.state.join("ssh_host_ed25519_key");
            run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&host_key));
            std::fs::write(layout.config("authorized_keys"), &admin_public).unwrap();
            let sshd_config = format!(
                "ListenAddress {}:22\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 # The rig lives under /tmp (world-writable): sshd's ownership check of the key's path would refuse it.\nStrictModes no\n",
                host.address,
                host_key.display(),
                layout.pid_file("sshd").display(),
                layout.config("authorized_keys").display()
            );
            std::fs::write(layout.config("sshd_config"), sshd_config).unwrap();
            std::fs::create_dir_all("/run/sshd").unwrap();
            run(in_ns(&netns, "/usr/sbin/sshd")
                .arg("-f")
                .arg(layout.config("sshd_config"))
                .arg("-E")
                .arg(layout.log_file("sshd.log")));
            // The config is as the nginx module installs it (`daemon off;`, errors to
            // stderr): the rig plays systemd, keeping the master in the foreground.
            let log = std::fs::File::create(layout.log_file("nginx.stderr")).unwrap();
            let nginx = in_ns(&netns, "nginx")
                .arg("-c")
                .arg(layout.config("nginx.conf"))
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("nginx in {netns}: {e}"));
            rig.foreground.push(nginx);
            let pid = nixstack::stack::launch::nginx_pid_file(&layout);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !pid.exists() {
                assert!(
                    Instant::now() < deadline,
                    "nginx in {netns} wrote no {}: {}",
                    pid.display(),
                    std::fs::read_to_string(layout.log_file("nginx.stderr")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        rig
    }

    pub fn netns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }
    pub fn lab_root(&self) -> PathBuf {
        self.root.path().join("lab")
    }
    pub fn layout(&self, host: &str) -> Layout {
        Layout::lab_at(&self.lab_root(), host)
    }
    pub fn secrets_dir(&self) -> PathBuf {
        self.root.path().join("secrets")
    }
    pub fn admin_dir(&self) -> PathBuf {
        self.root.path().join("admin")
    }

    pub fn hosts(&self) -> BTreeMap<String, Box<dyn Host>> {
        let admin = self.admin_dir();
        lab_hosts(&self.topology, &self.lab_root(), &admin.join("id_ed25519"), &admin.join("known_hosts"), &self.admin)
    }

    /// The lab systems of `topology` as a flake in a fresh directory of the rig.
    pub fn systems(&self, systems: &LabSystems) -> Systems {
        let dir = self.root.path().join(unique("flake-"));
        systems.write(&dir).expect("write the lab systems' flake")
    }

    /// Deploys `systems` (built from `new`) over `old` on the hosts `on` (all when empty), one
    /// at a time, as `nixstack deploy` does (the executor, health gate included); returns the
    /// outcome, the events and the time it took. `hosts` live across deploys, as in one
    /// `nixstack deploy`: one SSH connection per host (the hosts' firewalls allow 10 new SSH
    /// connections a minute per source).
    pub fn deploy(
        &self,
        hosts: &BTreeMap<String, Box<dyn Host>>,
        old: &Topology,
        new: &Topology,
        systems: &Systems,
        on: &[String],
    ) -> (Outcome, Vec<Event>, Duration) {
        let plan = make_plan(Some(old), new, on, Goal::Switch, 1).expect("plan");
        let (progress, printer) = Printer::start(Format::Human { bar: false }, Box::new(std::io::stderr()));
        let options = Options {
            gate: GatePolicy { timeout: Duration::from_secs(6), interval: Duration::from_millis(300), consecutive: 3 },
            ..Options::default()
        };
        // A one-host tier is "blocked" (no rolling deploy possible); the rig has two web hosts.
        let plan = nixstack::deploy::Plan { blockers: Vec::new(), ..plan };
        let secrets = self.secrets_dir();
        let rollout = Rollout { topology: new, plan: &plan, systems, hosts, secrets_dir: Some(&secrets), options };
        let started = Instant::now();
        let outcome = execute::execute(&rollout, &progress);
        let elapsed = started.elapsed();
        let events = progress.events();
        printer.finish(progress);
        (outcome, events, elapsed)
    }

    /// The system `host` runs, read on the host's file system.
    pub fn current(&self, host: &str) -> Option<String> {
        std::fs::read_link(self.layout(host).run.join("current-system")).ok().map(|p| p.display().to_string())
    }

    pub fn store_root(&self, host: &str) -> PathBuf {
        closure::lab_store_root(&self.layout(host))
    }

    /// `GET url` from inside `host`'s namespace with the stack's CA: (status, body).
    pub fn get(&self, host: &str, url: &str) -> (String, String) {
        let out = in_ns(&self.netns(host), "curl")
            .args(["-sS", "--max-time", "3", "-w", "\n%{http_code}", "--cacert"])
            .arg(self.layout(host).ca_cert())
            .arg(url)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", ""));
        (status.to_string(), body.to_string())
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // Everything left in our namespaces is ours: daemons, detached activations.
        for netns in self.namespaces.iter().rev() {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", netns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        // SAFETY: signalling a process of a namespace this test created.
                        unsafe {
                            libc::kill(pid, libc::SIGKILL);
                        }
                    }
                }
            }
        }
        for child in &mut self.foreground {
            let _ = child.kill();
            let _ = child.wait();
        }
        std::thread::sleep(Duration::from_millis(200));
        for netns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", netns]).status();
        }
    }
}
