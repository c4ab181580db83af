//! `nixstack build` and its one writer, on real temporary directories: writes, no-op
//! rebuilds, `--check` drift, refusal to clobber hand edits, `--force`, removal of files no
//! longer generated, `local.nix` left alone, determinism, and a build aimed at the repository
//! leaving the tool's own flake alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use nixstack::output::{self, Drift, EditKind, OutputError, WriteMode, MANIFEST};
use nixstack::render::Artifacts;
use nixstack::spec::SpecSource;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

// ---------------------------------------------------------------------------------------
// Helpers

/// Every file under `dir`: relative path → (bytes, mtime).
fn tree(dir: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, (Vec<u8>, SystemTime)>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
                files.insert(relative, (std::fs::read(&path).unwrap(), mtime));
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

fn bytes(tree: &BTreeMap<String, (Vec<u8>, SystemTime)>) -> BTreeMap<String, Vec<u8>> {
    tree.iter().map(|(path, (bytes, _))| (path.clone(), bytes.clone())).collect()
}

/// A small artifact set shaped like the real one: stamped `.nix`, a verbatim module, native configs.
fn synthetic(hosts: &[&str], version: &str) -> Artifacts {
    let mut artifacts = Artifacts::new();
    artifacts.insert("flake.nix".into(), format!("{{ outputs = _: {{ v = \"{version}\"; }}; }}\n"));
    artifacts.insert(
        "modules/base.nix".into(),
        "{ lib, ... }: { options.nixstack.base.enable = lib.mkEnableOption \"base\"; }\n".into(),
    );
    for host in hosts {
        artifacts.insert(
            format!("hosts/{host}/default.nix"),
            format!("{{ imports = [ ../../modules/base.nix ]; networking.hostName = \"{host}\"; }} # {version}\n"),
        );
        artifacts.insert(format!("hosts/{host}/nginx.conf"), format!("events {{}}\n# {host} {version}\n"));
        artifacts.insert(format!("lab/{host}/nginx.conf"), format!("events {{}}\n# lab {host} {version}\n"));
    }
    output::stamp(&artifacts, "synthetic.toml")
}

fn write(out: &Path, artifacts: &Artifacts) -> output::Report {
    output::write(out, artifacts, WriteMode::Write, false).unwrap_or_else(|e| panic!("write failed: {e}"))
}

fn check(out: &Path, artifacts: &Artifacts) -> output::Report {
    output::write(out, artifacts, WriteMode::Check, false).unwrap()
}

fn edit(path: &Path, marker: &str) {
    let mut text = std::fs::read_to_string(path).unwrap();
    text.push_str(marker);
    std::fs::write(path, text).unwrap();
}

fn nixstack(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nixstack")).args(args).current_dir(cwd).output().expect("run nixstack")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn temp() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("nixstack-build-test-").tempdir().unwrap()
}

/// The generated host `.nix` files of a built tree; the real renderer must produce some.
fn host_nix_files(tree: &BTreeMap<String, (Vec<u8>, SystemTime)>) -> Vec<String> {
    let files: Vec<String> = tree.keys().filter(|p| p.starts_with("hosts/") && p.ends_with(".nix")).cloned().collect();
    assert!(
        !files.is_empty(),
        "nixstack build wrote no hosts/<host>/*.nix: render::tree::artifacts returns no host files yet (the tree renderer has not landed)"
    );
    files
}

// ---------------------------------------------------------------------------------------
// The writer, on synthetic artifact sets (independent of the renderers)

#[test]
fn writes_every_file_with_a_manifest_and_a_second_write_is_a_no_op() {
    let out = temp();
    let artifacts = synthetic(&["web1", "web2"], "1");
    let report = write(out.path(), &artifacts);
    assert_eq!(report.created.len(), artifacts.len());

    let first = tree(out.path());
    for (path, text) in &artifacts {
        assert_eq!(first[path].0, text.as_bytes(), "{path} is written byte for byte");
    }
    let manifest: serde_json::Value = serde_json::from_slice(&first[MANIFEST].0).unwrap();
    assert_eq!(manifest["files"].as_object().unwrap().len(), artifacts.len());
    assert_eq!(
        manifest["files"]["lab/web1/nginx.conf"],
        output::sha256_hex(artifacts["lab/web1/nginx.conf"].as_bytes())
    );
    // Nothing but the artifacts and the manifest: no staging leftovers, no pending intent.
    let expected: Vec<String> = artifacts.keys().cloned().chain([MANIFEST.to_string()]).collect();
    assert_eq!(first.keys().cloned().collect::<Vec<_>>(), {
        let mut e = expected;
        e.sort();
        e
    });

    std::thread::sleep(std::time::Duration::from_millis(20));
    let report = write(out.path(), &artifacts);
    assert!(report.created.is_empty() && report.updated.is_empty() && report.removed.is_empty(), "{report:?}");
    assert_eq!(report.unchanged.len(), artifacts.len());
    assert_eq!(tree(out.path()), first, "a second write changes no byte and no mtime");
}

#[test]
fn nix_files_carry_the_hash_header_and_modules_are_verbatim() {
    let artifacts = synthetic(&["web1"], "1");
    let host = &artifacts["hosts/web1/default.nix"];
    let (header, body) = host.split_once('\n').unwrap();
    assert_eq!(
        header,
        format!(
            "# generated by nixstack build from synthetic.toml; edits belong in local.nix (sha256:{})",
            output::sha256_hex(body.as_bytes())
        )
    );
    assert!(artifacts["flake.nix"].starts_with("# generated by nixstack build from synthetic.toml;"));
    assert!(artifacts["modules/base.nix"].starts_with("{ lib"), "modules are copies of the hand-written source");
    assert!(artifacts["hosts/web1/nginx.conf"].starts_with("events"), "native configs keep their own syntax");
}

#[test]
fn check_reports_missing_different_and_extra_and_writes_nothing() {
    let out = temp();
    let v1 = synthetic(&["web1", "web2"], "1");

    // An empty directory: everything is missing, and check creates nothing, not even .nixstack/.
    let report = check(out.path(), &v1);
    assert!(!report.is_fresh());
    assert_eq!(report.drift.len(), v1.len() + 1);
    assert!(report.drift.contains(&Drift::Missing(MANIFEST.into())));
    assert!(tree(out.path()).is_empty() && !out.path().join(".nixstack").exists());

    write(out.path(), &v1);
    assert!(check(out.path(), &v1).is_fresh());

    let before = tree(out.path());
    edit(&out.path().join("lab/web1/nginx.conf"), "# tweak\n");
    std::fs::remove_file(out.path().join("hosts/web2/nginx.conf")).unwrap();
    let v2 = synthetic(&["web1"], "1");
    let report = check(out.path(), &v2);
    assert!(report.drift.contains(&Drift::Different("lab/web1/nginx.conf".into())), "{:?}", report.drift);
    assert!(report.drift.contains(&Drift::Extra("hosts/web2/default.nix".into())), "{:?}", report.drift);
    assert!(report.drift.contains(&Drift::Different(MANIFEST.into())), "{:?}", report.drift);
    assert!(report.edits.iter().any(|e| e.path == "lab/web1/nginx.conf"), "the edit is named as one");
    let report = check(out.path(), &v1);
    assert!(report.drift.contains(&Drift::Missing("hosts/web2/nginx.conf".into())), "{:?}", report.drift);

    let mut after = tree(out.path());
    after.remove("lab/web1/nginx.conf");
    let mut expected = before;
    expected.remove("lab/web1/nginx.conf");
    expected.remove("hosts/web2/nginx.conf");
    assert_eq!(after, expected, "--check wrote nothing");
}

#[test]
fn an_edited_nix_file_is_refused_intact_then_force_overwrites_it() {
    let out = temp();
    write(out.path(), &synthetic(&["web1", "web2"], "1"));
    let edited = out.path().join("hosts/web1/default.nix");
    edit(&edited, "# my change\n");
    let before = tree(out.path());

    let v2 = synthetic(&["web1", "web2"], "2");
    let error = output::write(out.path(), &v2, WriteMode::Write, false).unwrap_err();
    let OutputError::Edited { edits } = &error else { panic!("expected a refusal, got {error}") };
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].path, "hosts/web1/default.nix");
    assert_eq!(edits[0].kind, EditKind::HeaderMismatch);
    let message = error.to_string();
    assert!(message.contains("hosts/web1/default.nix"), "{message}");
    assert!(message.contains("move your change to hosts/<host>/local.nix, or pass --force"), "{message}");
    assert_eq!(tree(out.path()), before, "a refused write changes nothing, not even the unedited files");

    let report = output::write(out.path(), &v2, WriteMode::Write, true).unwrap();
    assert_eq!(report.edits.len(), 1);
    assert_eq!(std::fs::read_to_string(&edited).unwrap(), v2["hosts/web1/default.nix"]);
    assert!(check(out.path(), &v2).is_fresh());
}

#[test]
fn an_edited_native_config_or_module_is_caught_by_the_manifest() {
    for path in ["lab/web1/nginx.conf", "modules/base.nix"] {
        let out = temp();
        write(out.path(), &synthetic(&["web1"], "1"));
        edit(&out.path().join(path), "# my change\n");
        let before = tree(out.path());
        // Even when the new artifact of that file is unchanged, the edit would be lost.
        let error = output::write(out.path(), &synthetic(&["web1"], "2"), WriteMode::Write, false).unwrap_err();
        let OutputError::Edited { edits } = error else { panic!("expected a refusal") };
        assert_eq!(
            edits.iter().map(|e| (e.path.as_str(), e.kind)).collect::<Vec<_>>(),
            vec![(path, EditKind::ManifestMismatch)]
        );
        assert_eq!(tree(out.path()), before);
    }
}

#[test]
fn a_file_nixstack_did_not_write_is_never_clobbered_without_force() {
    let out = temp();
    std::fs::create_dir_all(out.path().join("hosts/web1")).unwrap();
    std::fs::write(out.path().join("hosts/web1/nginx.conf"), "operator's own\n").unwrap();
    let artifacts = synthetic(&["web1"], "1");
    let error = output::write(out.path(), &artifacts, WriteMode::Write, false).unwrap_err();
    let OutputError::Edited { edits } = error else { panic!("expected a refusal") };
    assert_eq!(edits[0].kind, EditKind::Unowned);
    assert_eq!(std::fs::read_to_string(out.path().join("hosts/web1/nginx.conf")).unwrap(), "operator's own\n");
    assert!(!out.path().join("flake.nix").exists(), "nothing was written");
    output::write(out.path(), &artifacts, WriteMode::Write, true).unwrap();
    assert!(check(out.path(), &artifacts).is_fresh());
}

#[test]
fn a_host_no_longer_generated_loses_its_files_but_not_local_nix() {
    let out = temp();
    write(out.path(), &synthetic(&["web1", "web2", "web3"], "1"));
    let local = out.path().join("hosts/web2/local.nix");
    std::fs::write(&local, "{ services.openssh.enable = true; }\n").unwrap();
    std::fs::write(out.path().join("notes.txt"), "mine\n").unwrap();

    let report = write(out.path(), &synthetic(&["web1"], "1"));
    assert_eq!(report.removed.len(), 6, "{report:?}");
    assert!(!out.path().join("hosts/web3").exists(), "an emptied host directory goes too");
    assert!(!out.path().join("lab/web3").exists());
    assert!(!out.path().join("hosts/web2/default.nix").exists());
    assert_eq!(
        std::fs::read_to_string(&local).unwrap(),
        "{ services.openssh.enable = true; }\n",
        "local.nix is never touched"
    );
    assert_eq!(std::fs::read_to_string(out.path().join("notes.txt")).unwrap(), "mine\n");
    assert!(check(out.path(), &synthetic(&["web1"], "1")).is_fresh());

    // --force never reaches local.nix either.
    write(out.path(), &synthetic(&["web1", "web2"], "1"));
    output::write(out.path(), &synthetic(&["web1"], "2"), WriteMode::Write, true).unwrap();
    assert!(local.exists());
}

#[test]
fn an_edited_file_no_longer_generated_is_not_deleted_without_force() {
    let out = temp();
    write(out.path(), &synthetic(&["web1", "web2"], "1"));
    edit(&out.path().join("lab/web2/nginx.conf"), "# keep me\n");
    let error = output::write(out.path(), &synthetic(&["web1"], "1"), WriteMode::Write, false).unwrap_err();
    let OutputError::Edited { edits } = error else { panic!("expected a refusal") };
    assert_eq!(
        edits.iter().map(|e| (e.path.as_str(), e.kind)).collect::<Vec<_>>(),
        vec![("lab/web2/nginx.conf", EditKind::Orphan)]
    );
    assert!(out.path().join("hosts/web2/default.nix").exists(), "nothing was removed");
    output::write(out.path(), &synthetic(&["web1"], "1"), WriteMode::Write, true).unwrap();
    assert!(!out.path().join("lab/web2").exists());
}

#[test]
fn paths_the_writer_must_not_own_are_rejected() {
    let out = temp();
    for path in [
        "../escape.nix",
        "/etc/passwd",
        "hosts/web1/local.nix",
        "secrets/ca.key",
        ".nixstack/manifest.json",
        "hosts/./x",
        "",
    ] {
        let artifacts = Artifacts::from([(path.to_string(), "x\n".to_string())]);
        let error = output::write(out.path(), &artifacts, WriteMode::Write, false).unwrap_err();
        assert!(matches!(error, OutputError::BadPath { .. }), "{path:?}: {error}");
    }
    assert!(tree(out.path()).is_empty());
}

#[test]
fn a_write_interrupted_during_the_renames_is_completed_by_the_next_one() {
    let out = temp();
    let v1 = synthetic(&["web1"], "1");
    let v2 = synthetic(&["web1"], "2");
    write(out.path(), &v1);
    // What a crash after the intent and the first rename leaves: v2's manifest as
    // pending, one non-.nix file already v2, the manifest still v1.
    let pending = output::Manifest::of(&v2).to_text();
    std::fs::write(out.path().join(".nixstack/pending.json"), pending).unwrap();
    std::fs::write(out.path().join("lab/web1/nginx.conf"), &v2["lab/web1/nginx.conf"]).unwrap();
    std::fs::write(out.path().join("hosts/web1/nginx.conf"), &v2["hosts/web1/nginx.conf"]).unwrap();
    // And a staging tree.
    std::fs::create_dir_all(out.path().join(".nixstack/tmp-dead/x")).unwrap();

    let v3 = synthetic(&["web1"], "3");
    let report = write(out.path(), &v3);
    assert!(report.edits.is_empty());
    assert!(check(out.path(), &v3).is_fresh());
    assert!(!out.path().join(".nixstack/pending.json").exists());
    assert!(!out.path().join(".nixstack/tmp-dead").exists());
}

#[test]
fn two_writes_of_the_same_artifacts_are_byte_identical() {
    let (a, b) = (temp(), temp());
    write(a.path(), &synthetic(&["web1", "web2"], "1"));
    write(b.path(), &synthetic(&["web1", "web2"], "1"));
    assert_eq!(bytes(&tree(a.path())), bytes(&tree(b.path())));
}

// ---------------------------------------------------------------------------------------
// `nixstack build` through the real binary and the real renderers

#[test]
fn build_twice_check_refuse_an_edit_and_force() {
    let out = temp();
    let out_arg = out.path().to_str().unwrap();
    let first = nixstack(Path::new(REPO), &["build", "examples/default.toml", "-o", out_arg]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let built = tree(out.path());
    assert!(built.contains_key(MANIFEST));
    let host_files = host_nix_files(&built);

    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = nixstack(Path::new(REPO), &["build", "examples/default.toml", "-o", out_arg]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert!(text(&second).contains("0 written"), "{}", text(&second));
    assert_eq!(tree(out.path()), built, "the second build is a no-op: same bytes, same mtimes");

    let fresh = nixstack(Path::new(REPO), &["build", "examples/default.toml", "-o", out_arg, "--check"]);
    assert_eq!(fresh.status.code(), Some(0), "{}", text(&fresh));

    // An operator edit: --check sees it, build refuses with the file intact, --force wins.
    let edited_path = &host_files[0];
    let edited = out.path().join(edited_path);
    edit(&edited, "# operator was here\n");
    let edited_bytes = std::fs::read(&edited).unwrap();
    let drift = nixstack(Path::new(REPO), &["build", "examples/default.toml", "-o", out_arg, "--check"]);
    assert_eq!(drift.status.code(), Some(1), "{}", text(&drift));
    assert!(text(&drift).contains(edited_path.as_str()), "{}", text(&drift));

    let local = edited.parent().unwrap().join("local.nix");
    std::fs::write(&local, "{ }\n").unwrap();
    let refused = nixstack(Path::new(REPO), &["build", "examples/default.toml", "-o", out_arg]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains(edited_path.as_str()) && text(&refused).contains("--force"), "{}", text(&refused));
    assert_eq!(std::fs::read(&edited).unwrap(), edited_bytes, "the edited file is intact");

    let forced = nixstack(Path::new(REPO), &["build", "examples/default.toml", "-o", out_arg, "--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced));
    assert_eq!(std::fs::read(&edited).unwrap(), built[edited_path].0);
    assert_eq!(std::fs::read_to_string(&local).unwrap(), "{ }\n", "local.nix is never touched");
}

#[test]
fn removing_a_host_from_the_spec_removes_its_generated_files() {
    let work = temp();
    let out = work.path().join("out");
    let spec = work.path().join("stack.toml");
    let default = std::fs::read_to_string(Path::new(REPO).join("examples/default.toml")).unwrap();
    std::fs::write(&spec, &default).unwrap();
    let run = |args: &[&str]| nixstack(work.path(), args);

    let built = run(&["build", "stack.toml", "-o", "out"]);
    assert_eq!(built.status.code(), Some(0), "{}", text(&built));
    let web3_files: Vec<String> = tree(&out).into_keys().filter(|p| p.contains("/web3/")).collect();
    assert!(
        !web3_files.is_empty(),
        "render::tree::artifacts produced no files for web3 (the tree renderer has not landed)"
    );
    std::fs::write(out.join("hosts/web1/local.nix"), "{ }\n").unwrap();

    let without_web3 = default.replace("[hosts.web3]\naddress = \"10.10.0.23\"\nroles = [\"web\"]\n", "");
    assert_ne!(without_web3, default, "the test's spec edit must remove web3");
    std::fs::write(&spec, without_web3).unwrap();
    let rebuilt = run(&["build", "stack.toml", "-o", "out"]);
    assert_eq!(rebuilt.status.code(), Some(0), "{}", text(&rebuilt));
    for file in &web3_files {
        assert!(!out.join(file).exists(), "{file} is no longer generated and was not edited: removed");
    }
    assert!(!out.join("hosts/web3").exists());
    assert!(out.join("hosts/web1/local.nix").exists());
    let check = run(&["build", "stack.toml", "-o", "out", "--check"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
}

#[test]
fn two_builds_are_byte_identical_and_name_no_build_machine_path() {
    let (a, b) = (temp(), temp());
    for out in [&a, &b] {
        let built =
            nixstack(Path::new(REPO), &["build", "examples/whiteboard.toml", "-o", out.path().to_str().unwrap()]);
        assert_eq!(built.status.code(), Some(0), "{}", text(&built));
    }
    let (tree_a, tree_b) = (bytes(&tree(a.path())), bytes(&tree(b.path())));
    assert_eq!(tree_a, tree_b);
    for (path, content) in &tree_a {
        let content = String::from_utf8_lossy(content);
        for machine_path in [REPO, a.path().to_str().unwrap(), "/home/", "/root/", "/tmp/"] {
            assert!(!content.contains(machine_path), "{path} names the build machine's {machine_path}");
        }
    }
    // An absolute spec path is not written into headers either.
    let spec = Path::new(REPO).join("examples/whiteboard.toml");
    let c = temp();
    let built = nixstack(c.path(), &["build", spec.to_str().unwrap(), "-o", "."]);
    assert_eq!(built.status.code(), Some(0), "{}", text(&built));
    for (path, content) in bytes(&tree(c.path())) {
        assert!(!String::from_utf8_lossy(&content).contains(REPO), "{path} names {REPO}");
    }
}

/// The repository carries no generated stack: its `flake.nix` is the tool's own (nix/), and a
/// build aimed at the repository root refuses to overwrite it and writes nothing.
#[test]
fn a_build_into_the_repo_leaves_the_tools_flake_alone() {
    let before = std::fs::read(Path::new(REPO).join("flake.nix")).unwrap();
    let built = nixstack(Path::new(REPO), &["build", "examples/default.toml", "-o", REPO]);
    assert_eq!(built.status.code(), Some(2), "{}", text(&built));
    assert!(text(&built).contains("flake.nix: not written by nixstack"), "{}", text(&built));
    assert_eq!(std::fs::read(Path::new(REPO).join("flake.nix")).unwrap(), before);
    assert!(!Path::new(REPO).join("hosts").exists(), "nothing was written");
    assert!(!Path::new(REPO).join(".nixstack/manifest.json").exists(), "nothing was written");

    // Every hand-written module ships: a module file the tree does not embed would be
    // neither checked nor copied into operators' flakes.
    let source = SpecSource {
        name: "examples/default.toml".into(),
        text: std::fs::read_to_string(Path::new(REPO).join("examples/default.toml")).unwrap(),
    };
    let topology = nixstack::cli::compile(&source).unwrap();
    let artifacts = output::artifacts(&topology);
    let modules: Vec<PathBuf> = std::fs::read_dir(Path::new(REPO).join("modules"))
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    for module in modules.iter().filter(|p| p.extension().is_some_and(|e| e == "nix")) {
        let relative = format!("modules/{}", module.file_name().unwrap().to_string_lossy());
        assert!(
            artifacts.contains_key(&relative),
            "{relative} is in the repo but not generated by render::tree::artifacts"
        );
    }
}

/// `examples/groups-300.toml` declares 300 hosts in four groups: the build writes every one
/// of them, and the names and addresses the groups expand to are unique and inside the
/// networks the spec gives them (read here from the spec text itself, not from the resolver).
#[test]
fn the_groups_example_builds_300_hosts_with_unique_names_and_addresses_inside_their_networks() {
    let path = Path::new(REPO).join("examples/groups-300.toml");
    let spec_text = std::fs::read_to_string(&path).unwrap();
    assert!(spec_text.lines().count() < 60, "the example is meant to be short");
    let spec: toml::Value = toml::from_str(&spec_text).unwrap();
    let net = |value: &toml::Value| -> ipnet::Ipv4Net { value.as_str().unwrap().parse().unwrap() };
    let private = net(&spec["networks"]["private"]);
    let public = net(&spec["networks"]["public"]);
    let groups = spec["groups"].as_table().unwrap();
    let declared: i64 = groups.values().map(|g| g["count"].as_integer().unwrap()).sum();
    assert_eq!(declared, 300);

    let source = SpecSource { name: "examples/groups-300.toml".into(), text: spec_text.clone() };
    let topology = nixstack::cli::compile(&source).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(topology.hosts.len(), 300);
    let names: std::collections::BTreeSet<&str> = topology.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names.len(), 300, "host names are unique");
    let addresses: std::collections::BTreeSet<_> = topology.hosts.iter().map(|h| h.address).collect();
    assert_eq!(addresses.len(), 300, "private addresses are unique");
    for (group, table) in groups {
        let count = table["count"].as_integer().unwrap() as usize;
        let network = table.get("network").map(net).unwrap_or(private);
        assert!(private.contains(&network), "{group}: {network} inside {private}");
        let members: Vec<_> = topology.hosts.iter().filter(|h| h.group.as_deref() == Some(group.as_str())).collect();
        assert_eq!(members.len(), count, "group {group}");
        for n in 1..=count {
            assert!(names.contains(format!("{group}{n}").as_str()), "{group}{n} exists");
        }
        for host in members {
            assert!(network.contains(&host.address), "{} {} outside {network}", host.name, host.address);
            assert!(host.address != network.network() && host.address != network.broadcast(), "{}", host.name);
            if let Some(address) = host.public_address {
                assert!(public.contains(&address), "{} {address} outside {public}", host.name);
            }
        }
    }
    let public_addresses: Vec<_> = topology.hosts.iter().filter_map(|h| h.public_address).collect();
    assert_eq!(public_addresses.len(), 2, "the two load balancers have public addresses");
    assert_ne!(public_addresses[0], public_addresses[1]);

    let out = temp();
    let built = nixstack(Path::new(REPO), &["build", "examples/groups-300.toml", "-o", out.path().to_str().unwrap()]);
    assert!(built.status.success(), "{}", text(&built));
    for name in &names {
        assert!(out.path().join("hosts").join(name).join("default.nix").is_file(), "hosts/{name}/default.nix");
    }
}
