//! `nixstack deploy --dry-run --diff-closures` against hosts of the test's own (the rig of
//! tests/deploy.rs, copied: network namespaces with OpenSSH, nginx and a per-host Nix
//! store, reached from an admin namespace): after a first deploy and a config change, the
//! real `nix store diff-closures`, the old closure fetched back with `nix copy --from
//! ssh-ng://`, and nothing activated.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nixstack::cli::compile;
use nixstack::deploy::closure::{self, LabSystems, Systems};
use nixstack::deploy::diff::{self, HostDiff};
use nixstack::deploy::execute::{self, Options, Outcome, Rollout};
use nixstack::deploy::health::GatePolicy;
use nixstack::deploy::host::{self as deploy_host, Host};
use nixstack::deploy::progress::{Format, Printer};
use nixstack::deploy::{lab_hosts, make_plan, Goal};
use nixstack::render::{nginx, Layout};
use nixstack::spec::SpecSource;
use nixstack::topology::Topology;

/// Three web hosts: two deployed first, one never (a new host for the diff).
const SPEC: &str = r#"
[stack]
name = "rig"
domain = "rig.example.com"

[networks]
private = "10.252.0.0/24"
public = "203.0.113.0/24"
admin = ["198.51.100.0/24"]

[hosts.web1]
address = "10.252.0.21"
roles = ["web"]

[hosts.web2]
address = "10.252.0.22"
roles = ["web"]

[hosts.web3]
address = "10.252.0.23"
roles = ["web"]

[web]
proxy_app = false
"#;

const ADMIN_ADDRESS: &str = "198.51.100.10";

fn require(tool: &str) {
    let found = std::env::var_os("PATH").map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file())).unwrap_or(false);
    assert!(found, "`{tool}` is not installed: run scripts/setup (as root) first");
}

fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{command:?} failed ({}):\n{text}", output.status);
    text
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

fn in_ns(netns: &str, program: &str) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", netns, program]);
    command
}

fn topology(text: &str) -> Topology {
    compile(&SpecSource { name: "rig.toml".into(), text: text.into() }).expect("valid spec")
}

/// The rig: an admin namespace holding a bridge, one namespace per host plugged into it,
/// each host with sshd, nginx and its nftables ruleset, as `lab up` leaves a lab host.
struct Rig {
    prefix: String,
    root: tempfile::TempDir,
    admin: String,
    topology: Topology,
    namespaces: Vec<String>,
}

impl Rig {
    fn new(spec: &str) -> Rig {
        for tool in ["ip", "ssh", "sshd", "ssh-keygen", "nix", "nix-env", "nginx", "nft", "curl", "setsid", "nohup"] {
            require(tool);
        }
        let prefix = unique("nxs-diff-");
        let root = tempfile::Builder::new().prefix("nxs-diff-").tempdir_in("/tmp").expect("temp dir");
        // nginx's workers (nobody) serve files from below it.
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let topology = topology(spec);
        let admin = format!("{prefix}-adm");
        let mut rig = Rig { prefix, root, admin: admin.clone(), topology, namespaces: Vec::new() };
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
        run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "rig-admin", "-f"]).arg(admin_dir.join("id_ed25519")));
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
            ip(&["-n", &netns, "addr", "add", &format!("{}/{}", host.address, rig.topology.networks.private.prefix_len()), "dev", "priv0"]);
            ip(&["-n", &netns, "link", "set", "priv0", "up"]);
            ip(&["-n", &netns, "route", "add", &rig.topology.networks.admin[0].to_string(), "dev", "priv0"]);

            // What `lab up` leaves: dirs, secrets, the rendered configs, running daemons.
            let layout = rig.layout(&host.name);
            for dir in [&layout.secrets, &layout.state, &layout.run, &layout.log, &layout.etc, layout.web_root.as_ref().unwrap()] {
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
            std::fs::write(layout.web_root.as_ref().unwrap().join("index.html"), format!("hello from {}\n", host.name)).unwrap();
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
            run(in_ns(&netns, "/usr/sbin/sshd").arg("-f").arg(layout.config("sshd_config")).arg("-E").arg(layout.log_file("sshd.log")));
            run(in_ns(&netns, "nginx").arg("-c").arg(layout.config("nginx.conf")));
        }
        rig
    }

    fn netns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }
    fn lab_root(&self) -> PathBuf {
        self.root.path().join("lab")
    }
    fn layout(&self, host: &str) -> Layout {
        Layout::lab_at(&self.lab_root(), host)
    }
    fn secrets_dir(&self) -> PathBuf {
        self.root.path().join("secrets")
    }
    fn admin_dir(&self) -> PathBuf {
        self.root.path().join("admin")
    }

    fn hosts(&self) -> BTreeMap<String, Box<dyn Host>> {
        let admin = self.admin_dir();
        lab_hosts(&self.topology, &self.lab_root(), &admin.join("id_ed25519"), &admin.join("known_hosts"), &self.admin)
    }

    /// The lab systems of `topology` as a flake in a fresh directory of the rig.
    fn systems(&self, systems: &LabSystems) -> Systems {
        let dir = self.root.path().join(unique("flake-"));
        systems.write(&dir).expect("write the lab systems' flake")
    }

    /// Deploys `systems` (built from `new`) over `old` on the hosts `on`, as `nixstack
    /// deploy` does (the executor, health gate included).
    fn deploy(&self, hosts: &BTreeMap<String, Box<dyn Host>>, old: &Topology, new: &Topology, systems: &Systems, on: &[String]) -> Outcome {
        let plan = make_plan(Some(old), new, on, Goal::Switch, 1).expect("plan");
        let (progress, printer) = Printer::start(Format::Human { bar: false }, Box::new(std::io::stderr()));
        let options = Options { gate: GatePolicy { timeout: Duration::from_secs(6), interval: Duration::from_millis(300), consecutive: 3 }, ..Options::default() };
        let plan = nixstack::deploy::Plan { blockers: Vec::new(), ..plan };
        let secrets = self.secrets_dir();
        let rollout = Rollout { topology: new, plan: &plan, systems, hosts, secrets_dir: Some(&secrets), options };
        let outcome = execute::execute(&rollout, &progress);
        printer.finish(progress);
        outcome
    }

    /// The system `host` runs, read on the host's file system.
    fn current(&self, host: &str) -> Option<String> {
        std::fs::read_link(self.layout(host).run.join("current-system")).ok().map(|p| p.display().to_string())
    }

    fn store_root(&self, host: &str) -> PathBuf {
        closure::lab_store_root(&self.layout(host))
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
        std::thread::sleep(Duration::from_millis(200));
        for netns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", netns]).status();
        }
    }
}


/// Local `nix` with the offline settings (NOTES.md).
fn nix() -> Command {
    closure::nix_command(Some(closure::OFFLINE_NIX_CONFIG))
}

/// The closure of `path` in the local store.
fn local_closure(path: &str) -> Vec<String> {
    run(nix().args(["path-info", "--recursive", path])).lines().map(String::from).collect()
}

/// Deploy web1 and web2, change web1's nginx.conf, forget web1's old closure locally (so
/// it must come back from web1's store over SSH), then the dry-run diff: web1 names the
/// changed config, web2 is unchanged, web3 (never deployed) is new; nothing is copied to or
/// activated on any host.
#[test]
fn dry_run_diff_closures_names_the_changed_config_and_activates_nothing() {
    let rig = Rig::new(SPEC);
    let topology = rig.topology.clone();
    let nothing = Topology { hosts: Vec::new(), ..topology.clone() };
    let hosts = rig.hosts();
    let deployed = ["web1".to_string(), "web2".to_string()];

    // 1. A first deploy of web1 and web2.
    let first = LabSystems::new(&topology, &rig.lab_root());
    let outcome = rig.deploy(&hosts, &nothing, &topology, &rig.systems(&first), &deployed);
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.activated, deployed);
    let old = outcome.systems.clone();
    let old_web1_closure = local_closure(old["web1"].as_str());
    assert_eq!(old_web1_closure.len(), 2, "a lab system and its configs: {old_web1_closure:?}");
    let old_configs = std::fs::read_link(old["web1"].under(&rig.store_root("web1")).join("etc")).unwrap().display().to_string();

    // 2. A config change on web1 only.
    let changed_conf = format!("{}# changed by the closure-diff test\n", first.files["web1"]["nginx.conf"]);
    let second = first.clone().with_file("web1", "nginx.conf", changed_conf);
    let systems = rig.systems(&second);

    // web1's old system is no longer in the local store: the diff must fetch it from web1.
    // (Only the top path: Nix 2.8 refuses to delete the configs source path, "still alive"
    // with no root or referrer; the fetch of the top path is what is under test.)
    run(nix().args(["store", "delete", old["web1"].as_str()]));
    assert!(!PathBuf::from(old["web1"].as_str()).exists(), "deleted locally");

    // 3. The dry-run's closure diff, as `deploy --dry-run --diff-closures` runs it.
    let selected: Vec<String> = ["web1", "web2", "web3"].map(String::from).to_vec();
    let diffs = diff::diff_hosts(&systems, &hosts, &selected, Duration::from_secs(300)).expect("one nix build of the three systems");
    let text = diff::describe(&diffs);
    eprintln!("{text}");
    let by_host: BTreeMap<&str, &HostDiff> = diffs.iter().map(|(h, d)| (h.as_str(), d)).collect();

    let HostDiff::Changed(web1) = by_host["web1"] else { panic!("web1 changed:\n{text}") };
    assert_eq!(web1.old, old["web1"]);
    assert!(web1.fetched, "the old closure came back from web1's store");
    assert!(PathBuf::from(old["web1"].as_str()).join("bin/switch-to-configuration").exists(), "fetched into the local store with its files");
    let configs = web1.changed.iter().find(|c| c.name == "configs").unwrap_or_else(|| panic!("the configs path changed:\n{text}"));
    assert_eq!(configs.old.as_str(), old_configs);
    assert_eq!(configs.files.as_deref(), Some(&["nginx.conf".to_string()][..]), "only nginx.conf differs:\n{text}");
    let system = web1.changed.iter().find(|c| c.name == "nixstack-lab-system-web1").unwrap_or_else(|| panic!("the system path changed:\n{text}"));
    assert_eq!(system.files.as_deref(), Some(&["etc".to_string()][..]), "the system's etc link points at the new configs:\n{text}");
    assert!(web1.added.is_empty() && web1.removed.is_empty(), "{text}");
    assert!(text.contains("changed configs: nginx.conf"), "{text}");
    assert!(text.contains(&old_configs), "{text}");

    assert_eq!(by_host["web2"], &HostDiff::Unchanged { system: old["web2"].clone() }, "{text}");
    assert!(text.contains("  web2: unchanged"), "{text}");
    assert!(matches!(by_host["web3"], HostDiff::NewHost { .. }), "{text}");
    assert!(text.contains("  web3: new host"), "{text}");

    let events = diff::events(&diffs);
    assert_eq!(events.iter().map(|e| (e["host"].as_str().unwrap(), e["status"].as_str().unwrap())).collect::<Vec<_>>(), [("web1", "changed"), ("web2", "unchanged"), ("web3", "new_host")]);
    assert_eq!(events[0]["changed"].as_array().unwrap().iter().find(|c| c["name"] == "configs").unwrap()["files"][0], "nginx.conf");

    // 4. Nothing activated, nothing copied: web1 runs, and its profile holds, the old system.
    let HostDiff::NewHost { new: web3_new } = by_host["web3"] else { unreachable!() };
    assert_eq!(rig.current("web1").as_deref(), Some(old["web1"].as_str()));
    assert_eq!(rig.current("web3"), None);
    assert_eq!(hosts["web1"].current_system().unwrap().as_ref(), Some(&old["web1"]));
    assert!(!web1.new.under(&rig.store_root("web1")).exists(), "the new system was not copied to web1");
    assert!(!web3_new.under(&rig.store_root("web3")).exists(), "nor to web3");
    let profile = deploy_host::system_profile(&rig.store_root("web1"));
    assert_eq!(std::fs::read_link(&profile).unwrap().display().to_string(), "system-1-link");
    assert_eq!(std::fs::read_to_string(rig.layout("web1").config("nginx.conf")).unwrap(), first.files["web1"]["nginx.conf"]);
}

/// Where Nix itself sees a change (a package's version, a size step over 8 KiB), its
/// `nix store diff-closures` line is part of the diff, beside the paths that changed.
#[test]
fn diff_closures_reports_version_changes_in_nix_words() {
    require("nix");
    let dir = tempfile::tempdir().unwrap();
    let build = |version: &str, kib: usize| {
        let file = dir.path().join(format!("sys-{version}.nix"));
        std::fs::write(
            &file,
            format!(
                "let lib = builtins.derivation {{ name = \"libdemo-{version}\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; PATH = \"/usr/bin:/bin\"; args = [ \"-c\" \"head -c {bytes} /dev/zero > $out\" ]; }};\n\
                 in builtins.derivation {{ name = \"nixos-system-demo\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; PATH = \"/usr/bin:/bin\"; args = [ \"-c\" \"mkdir $out; ln -s ${{lib}} $out/lib\" ]; }}\n",
                bytes = kib * 1024
            ),
        )
        .unwrap();
        let out = run(Command::new("nix-build").env("NIX_CONFIG", closure::OFFLINE_NIX_CONFIG).arg("--no-out-link").arg(&file));
        nixstack::deploy::closure::StorePath::parse(out.lines().rev().find(|l| l.starts_with("/nix/store/")).unwrap()).unwrap()
    };
    let (old, new) = (build("1.0", 1), build("2.0", 64));
    let systems = Systems::Nixos { flake: ".".into(), nix_config: Some(closure::OFFLINE_NIX_CONFIG.into()) };
    let diff = diff::compare(&systems, &old, &new).expect("nix store diff-closures");
    assert_eq!(diff.diff_closures, ["libdemo: 1.0 → 2.0, +63.0 KiB"], "{diff:#?}");
    let system = diff.changed.iter().find(|c| c.name == "nixos-system-demo").expect("the system path changed");
    assert_eq!(system.files.as_deref(), Some(&["lib".to_string()][..]));
    assert_eq!(diff.added.iter().map(|p| p.name()).collect::<Vec<_>>(), ["libdemo-2.0"]);
    assert_eq!(diff.removed.iter().map(|p| p.name()).collect::<Vec<_>>(), ["libdemo-1.0"]);
    let text = diff::describe(&[("demo".into(), HostDiff::Changed(Box::new(diff)))]);
    assert!(text.contains("      libdemo: 1.0 → 2.0, +63.0 KiB\n"), "{text}");
}
