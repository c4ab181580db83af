//! nixstack's own flake (flake.nix, nix/package.nix): it parses, and evaluated by the real Nix
//! evaluator with a stand-in nixpkgs (tests/tool_flake/eval.nix) its package is the crate as
//! Cargo.toml describes it, built from a source that carries every file the compiler embeds,
//! and `nix run` (apps.default) runs the binary Cargo builds. The build itself needs nixpkgs,
//! which this machine does not have: not verified here.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `nix-instantiate` with a state directory of its own: Nix creates its state on first use,
/// and two runs creating one directory at once collide ("creating symlink ... File exists").
fn nix_instantiate(args: &[&str]) -> std::process::Output {
    let state = tempfile::tempdir().expect("a temporary directory");
    Command::new("nix-instantiate")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NIX_STATE_DIR", state.path())
        .output()
        .expect("nix-instantiate runs (scripts/setup installs nix-bin)")
}

fn cargo_manifest() -> toml::Table {
    toml::from_str(&std::fs::read_to_string(repo().join("Cargo.toml")).unwrap()).unwrap()
}

#[test]
fn the_tool_flake_and_its_package_parse() {
    for file in ["flake.nix", "nix/package.nix"] {
        let path = repo().join(file);
        let output = nix_instantiate(&["--parse", path.to_str().unwrap()]);
        assert!(output.status.success(), "{file}: {}", String::from_utf8_lossy(&output.stderr));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(rnix::Root::parse(&text).errors().is_empty(), "{file}: rnix reports errors");
    }
}

/// The top-level entries of the repository that `include_str!`/`include_bytes!` in src/ read.
fn embedded_roots() -> BTreeSet<String> {
    let mut roots = BTreeSet::new();
    let mut dirs = vec![repo().join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for macro_name in ["include_str!(\"", "include_bytes!(\""] {
                for piece in text.split(macro_name).skip(1) {
                    let relative = piece.split('"').next().unwrap();
                    let mut resolved = PathBuf::from(path.parent().unwrap());
                    for component in Path::new(relative).components() {
                        match component {
                            Component::ParentDir => {
                                resolved.pop();
                            }
                            Component::Normal(part) => resolved.push(part),
                            _ => {}
                        }
                    }
                    assert!(resolved.exists(), "{}: {relative} does not exist", path.display());
                    let inside = resolved.strip_prefix(repo()).expect("embedded files are inside the repository");
                    roots.insert(inside.components().next().unwrap().as_os_str().to_string_lossy().into_owned());
                }
            }
        }
    }
    roots
}

#[test]
fn the_package_is_the_crate_and_nix_run_runs_its_binary() {
    let expr = format!("import {}/tests/tool_flake/eval.nix {{ repo = {}; }}", repo().display(), repo().display());
    let output = nix_instantiate(&["--eval", "--strict", "--json", "--expr", &expr]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let flake: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    let manifest = cargo_manifest();
    let package = &manifest["package"];
    assert_eq!(flake["package"]["pname"], package["name"].as_str().unwrap());
    assert_eq!(flake["package"]["version"], package["version"].as_str().unwrap());
    assert_eq!(flake["package"]["license"], package["license"].as_str().unwrap().to_lowercase());
    assert_eq!(flake["defaultIsNixstack"], true);
    assert_eq!(flake["systems"], serde_json::json!(["aarch64-linux", "x86_64-linux"]));
    assert_eq!(flake["inputs"]["nixpkgs"], "github:NixOS/nixpkgs/nixos-25.11");

    // `nix run`: an app whose program is the package's bin/<the binary Cargo builds>.
    let binary = manifest["bin"].as_array().unwrap()[0]["name"].as_str().unwrap();
    assert_eq!(flake["package"]["mainProgram"], binary);
    assert_eq!(flake["app"]["type"], "app");
    let program = flake["app"]["program"].as_str().unwrap();
    assert!(program.starts_with("/nix/store/") && program.ends_with(&format!("/bin/{binary}")), "{program}");

    // The source holds Cargo.toml, Cargo.lock, src/ and every directory the compiler embeds from.
    let source: BTreeSet<String> = flake["package"]["src"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Path::new(p.as_str().unwrap()).strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    assert_eq!(flake["package"]["srcRoot"], repo().display().to_string());
    let mut needed = embedded_roots();
    needed.extend(["Cargo.toml", "Cargo.lock", "src"].map(String::from));
    let missing: Vec<&String> = needed.difference(&source).collect();
    assert!(missing.is_empty(), "nix/package.nix's source lacks {missing:?} (has {source:?})");
    assert_eq!(flake["package"]["lockFile"], repo().join("Cargo.lock").display().to_string());
    // cargoLock.lockFile vendors registry crates by their checksums; a git dependency would
    // need `outputHashes`, which the package does not give.
    let lock = std::fs::read_to_string(repo().join("Cargo.lock")).unwrap();
    assert!(!lock.contains("source = \"git+"), "a git dependency needs cargoLock.outputHashes");
    // The test suite needs root and the real daemons; the sandbox has neither.
    assert_eq!(flake["package"]["doCheck"], false);
    assert_eq!(flake["shellInputsFrom"], serde_json::json!([package["name"].as_str().unwrap()]));
}
