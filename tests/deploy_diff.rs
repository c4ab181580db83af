//! `nixstack deploy --dry-run --diff-closures` against hosts of the test's own (the rig of
//! tests/deploy.rs, tests/common/deploy_rig.rs: network namespaces with OpenSSH, nginx and a
//! per-host Nix store, reached from an admin namespace): after a first deploy and a config change, the
//! real `nix store diff-closures`, the old closure fetched back with `nix copy --from
//! ssh-ng://`, and nothing activated.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use nixstack::deploy::closure::{self, LabSystems, Systems};
use nixstack::deploy::diff::{self, HostDiff};
use nixstack::deploy::host as deploy_host;
use nixstack::topology::Topology;

#[path = "common/deploy_rig.rs"]
mod deploy_rig;

use deploy_rig::{require, run, Rig};

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
    let rig = Rig::new(SPEC, "diff");
    let topology = rig.topology.clone();
    let nothing = Topology { hosts: Vec::new(), ..topology.clone() };
    let hosts = rig.hosts();
    let deployed = ["web1".to_string(), "web2".to_string()];

    // 1. A first deploy of web1 and web2.
    let first = LabSystems::new(&topology, &rig.lab_root());
    let (outcome, _, _) = rig.deploy(&hosts, &nothing, &topology, &rig.systems(&first), &deployed);
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.activated, deployed);
    let old = outcome.systems.clone();
    let old_web1_closure = local_closure(old["web1"].as_str());
    assert_eq!(old_web1_closure.len(), 2, "a lab system and its configs: {old_web1_closure:?}");
    let old_configs =
        std::fs::read_link(old["web1"].under(&rig.store_root("web1")).join("etc")).unwrap().display().to_string();

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
    let diffs = diff::diff_hosts(&systems, &hosts, &selected, Duration::from_secs(300))
        .expect("one nix build of the three systems");
    let text = diff::describe(&diffs);
    eprintln!("{text}");
    let by_host: BTreeMap<&str, &HostDiff> = diffs.iter().map(|(h, d)| (h.as_str(), d)).collect();

    let HostDiff::Changed(web1) = by_host["web1"] else { panic!("web1 changed:\n{text}") };
    assert_eq!(web1.old, old["web1"]);
    assert!(web1.fetched, "the old closure came back from web1's store");
    assert!(
        PathBuf::from(old["web1"].as_str()).join("bin/switch-to-configuration").exists(),
        "fetched into the local store with its files"
    );
    let configs = web1
        .changed
        .iter()
        .find(|c| c.name == "configs")
        .unwrap_or_else(|| panic!("the configs path changed:\n{text}"));
    assert_eq!(configs.old.as_str(), old_configs);
    assert_eq!(configs.files.as_deref(), Some(&["nginx.conf".to_string()][..]), "only nginx.conf differs:\n{text}");
    let system = web1
        .changed
        .iter()
        .find(|c| c.name == "nixstack-lab-system-web1")
        .unwrap_or_else(|| panic!("the system path changed:\n{text}"));
    assert_eq!(
        system.files.as_deref(),
        Some(&["etc".to_string()][..]),
        "the system's etc link points at the new configs:\n{text}"
    );
    assert!(web1.added.is_empty() && web1.removed.is_empty(), "{text}");
    assert!(text.contains("changed configs: nginx.conf"), "{text}");
    assert!(text.contains(&old_configs), "{text}");

    assert_eq!(by_host["web2"], &HostDiff::Unchanged { system: old["web2"].clone() }, "{text}");
    assert!(text.contains("  web2: unchanged"), "{text}");
    assert!(matches!(by_host["web3"], HostDiff::NewHost { .. }), "{text}");
    assert!(text.contains("  web3: new host"), "{text}");

    let events = diff::events(&diffs);
    assert_eq!(
        events.iter().map(|e| (e["host"].as_str().unwrap(), e["status"].as_str().unwrap())).collect::<Vec<_>>(),
        [("web1", "changed"), ("web2", "unchanged"), ("web3", "new_host")]
    );
    assert_eq!(
        events[0]["changed"].as_array().unwrap().iter().find(|c| c["name"] == "configs").unwrap()["files"][0],
        "nginx.conf"
    );

    // 4. Nothing activated, nothing copied: web1 runs, and its profile holds, the old system.
    let HostDiff::NewHost { new: web3_new } = by_host["web3"] else { unreachable!() };
    assert_eq!(rig.current("web1").as_deref(), Some(old["web1"].as_str()));
    assert_eq!(rig.current("web3"), None);
    assert_eq!(hosts["web1"].current_system().unwrap().as_ref(), Some(&old["web1"]));
    assert!(!web1.new.under(&rig.store_root("web1")).exists(), "the new system was not copied to web1");
    assert!(!web3_new.under(&rig.store_root("web3")).exists(), "nor to web3");
    let profile = deploy_host::system_profile(&rig.store_root("web1"));
    assert_eq!(std::fs::read_link(&profile).unwrap().display().to_string(), "system-1-link");
    assert_eq!(
        std::fs::read_to_string(rig.layout("web1").config("nginx.conf")).unwrap(),
        first.files["web1"]["nginx.conf"]
    );
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
        let out = run(Command::new("nix-build")
            .env("NIX_CONFIG", closure::OFFLINE_NIX_CONFIG)
            .arg("--no-out-link")
            .arg(&file));
        nixstack::deploy::closure::StorePath::parse(out.lines().rev().find(|l| l.starts_with("/nix/store/")).unwrap())
            .unwrap()
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
