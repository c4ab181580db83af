//! `[secrets] backend = "sops" | "agenix"` end to end with the real tools: host SSH keys made by
//! ssh-keygen, `nixstack secrets init` encrypting with the real `age` / `sops`, `nixstack build`'s
//! tree evaluated by the real Nix evaluator with the sops-nix / agenix stand-ins of
//! tests/nix_render/ (each host declares every runtime secret at its runtime path,
//! root:nixstack-secrets 0640), the very file each host declares decrypted with that host's SSH
//! key (and not with another host's), and no plaintext secret anywhere in the tree. What runs on
//! a real host (sops-install-secrets, agenix's activation script) cannot run here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use nixstack::secrets;
use nixstack::spec::{SecretsBackend, SpecSource};
use nixstack::topology::Topology;
use serde_json::Value;

#[path = "common/nix.rs"]
mod nix;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const SOPS_VENV: &str = "/opt/nixstack/sops-venv/bin/sops";

fn temp(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

/// `sops` from scripts/setup's venv when it is there (the tool reads `$NIXSTACK_SOPS`).
fn sops_program() -> String {
    static SET: Once = Once::new();
    let program = if Path::new(SOPS_VENV).exists() { SOPS_VENV.to_string() } else { "sops".to_string() };
    SET.call_once(|| std::env::set_var("NIXSTACK_SOPS", &program));
    program
}

fn run(command: &mut Command) -> std::process::Output {
    let program = command.get_program().to_string_lossy().into_owned();
    command.output().unwrap_or_else(|e| panic!("cannot run {program} ({e}): run scripts/setup"))
}

/// An ed25519 key pair made by ssh-keygen: (private key file, public key line).
fn ssh_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let output = run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"]).arg(&key));
    assert!(output.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&output.stderr));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap().trim().to_string();
    (key, public)
}

struct Stack {
    topology: Topology,
    /// Per host its SSH private key.
    host_keys: Vec<(String, PathBuf)>,
    operator_key: PathBuf,
    secrets: tempfile::TempDir,
    tree: tempfile::TempDir,
    _keys: tempfile::TempDir,
}

/// examples/default.toml with `backend`, a host_key per host and one operator recipient;
/// `secrets init` into a temporary secrets directory; the tree `nixstack build` writes.
fn stack(backend: &str) -> Stack {
    sops_program();
    let keys = temp("nxs-backend-keys-");
    let text = std::fs::read_to_string(Path::new(REPO).join("examples/default.toml")).unwrap();
    let mut spec = String::new();
    let mut host_keys = Vec::new();
    for line in text.lines() {
        spec.push_str(line);
        spec.push('\n');
        if let Some(host) = line.strip_prefix("[hosts.").and_then(|rest| rest.strip_suffix(']')) {
            let (private, public) = ssh_key(keys.path(), host);
            spec.push_str(&format!("host_key = \"{public}\"\n"));
            host_keys.push((host.to_string(), private));
        }
    }
    let (operator_key, operator) = ssh_key(keys.path(), "operator");
    spec.push_str(&format!("\n[secrets]\nbackend = \"{backend}\"\nrecipients = [\"{operator}\"]\n"));
    let topology =
        nixstack::cli::compile(&SpecSource { name: "stack.toml".into(), text: spec }).unwrap_or_else(|e| panic!("{e}"));
    assert!(!host_keys.is_empty());

    let secrets_dir = temp("nxs-backend-secrets-");
    // The operator's real Sumo Logic URL (a secret, unlike init's public placeholder).
    if let Some(monitoring) = &topology.monitoring {
        std::fs::set_permissions(secrets_dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let endpoint = format!("https://endpoint9.collection.sumologic.com/receiver/v1/http/{}", "Zk3".repeat(20));
        std::fs::write(secrets_dir.path().join(&monitoring.endpoint_secret), endpoint).unwrap();
        std::fs::set_permissions(
            secrets_dir.path().join(&monitoring.endpoint_secret),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
    }
    let report = secrets::init(&topology, secrets_dir.path()).unwrap_or_else(|e| panic!("secrets init: {e}"));
    assert!(report.created.iter().any(|f| f.starts_with("encrypted/")), "{report:?}");

    let tree = temp("nxs-backend-tree-");
    let mut artifacts = nixstack::output::artifacts(&topology);
    artifacts.extend(secrets::tree_files(&topology, secrets_dir.path()).unwrap());
    nixstack::output::write(tree.path(), &artifacts, nixstack::output::WriteMode::Write, false).unwrap();
    Stack { topology, host_keys, operator_key, secrets: secrets_dir, tree, _keys: keys }
}

/// The tree's flake evaluated with the stand-in inputs (tests/nix_render/eval-flake.nix).
fn flake(dir: &Path) -> Value {
    let harness = Path::new(REPO).join("tests/nix_render/eval-flake.nix");
    let expr = format!("import {} {{ flakeDir = {}; }}", harness.display(), dir.display());
    nix::nix_json(
        Command::new("nix-instantiate").args(["--eval", "--strict", "--json", "--expr", &expr]).current_dir(dir),
        "evaluating the flake",
    )
}

/// Every file under `dir` as (relative path, bytes).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().display().to_string();
                found.push((relative, std::fs::read(&path).unwrap()));
            }
        }
    }
    found.sort();
    found
}

/// Decrypts `secret` of the file a host declares, with the SSH private key `key`.
fn decrypt(backend: SecretsBackend, file: &str, key_name: &str, key: &Path) -> Result<Vec<u8>, String> {
    let output = match backend {
        SecretsBackend::Agenix => run(Command::new("age").arg("--decrypt").arg("--identity").arg(key).arg(file)),
        SecretsBackend::Sops => run(Command::new(sops_program())
            .args(["decrypt", "--extract", &format!("[{}]", serde_json::to_string(key_name).unwrap()), file])
            .env("SOPS_AGE_SSH_PRIVATE_KEY_FILE", key)
            .env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("SOPS_AGE_KEY")
            .env("HOME", "/var/empty")),
        SecretsBackend::Nixstack => unreachable!(),
    };
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn backend_end_to_end(name: &str, backend: SecretsBackend) {
    let stack = stack(name);
    let topology = &stack.topology;
    assert_eq!(topology.secrets.backend, backend);
    let flake = flake(stack.tree.path());

    // The input, following our nixpkgs, and its module on every host.
    let (input, url) = match backend {
        SecretsBackend::Sops => ("sops-nix", "github:Mic92/sops-nix"),
        _ => ("agenix", "github:ryantm/agenix"),
    };
    assert_eq!(flake["inputs"][input]["url"], url, "{}", flake["inputs"]);
    assert_eq!(flake["inputs"][input]["follows"]["nixpkgs"], "nixpkgs");
    let other = if backend == SecretsBackend::Sops { "agenix" } else { "sops-nix" };
    assert!(flake["inputs"].get(other).is_none(), "{}", flake["inputs"]);

    for (host, key) in &stack.host_keys {
        let checked = flake["secrets"][host].as_array().unwrap_or_else(|| panic!("{host}: {}", flake["secrets"]));
        assert_eq!(checked.len(), 1, "{host}: exactly one backend module: {checked:?}");
        let declared = checked[0]["secrets"].as_object().unwrap();
        let needed = secrets::host_secrets(topology, host, stack.secrets.path());
        let names: BTreeSet<&str> = needed.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(declared.keys().map(String::as_str).collect::<BTreeSet<_>>(), names, "{host}");
        if backend == SecretsBackend::Sops {
            assert_eq!(
                checked[0]["environment"]["SOPS_AGE_SSH_PRIVATE_KEY_FILE"], "/etc/ssh/ssh_host_ed25519_key",
                "{host}"
            );
        }
        for (plaintext_file, name) in &needed {
            let secret = &declared[name.as_str()];
            assert_eq!(secret["path"], format!("/var/lib/nixstack/secrets/{name}"), "{host}: {secret}");
            assert_eq!(secret["owner"], "root", "{host}: {secret}");
            assert_eq!(secret["group"], "nixstack-secrets", "{host}: {secret}");
            assert_eq!(secret["mode"], "0640", "{host}: {secret}");
            let file = if backend == SecretsBackend::Sops {
                assert_eq!(secret["key"], name.as_str());
                assert_eq!(secret["format"], "yaml");
                &secret["sopsFile"]
            } else {
                &secret["file"]
            };
            assert_eq!(file["exists"], true, "{host}: {secret}");
            let file = file["path"].as_str().unwrap();
            assert!(file.starts_with(&stack.tree.path().display().to_string()), "{file}: not in the tree");
            // The host's own key gets back exactly the secret; so does the operator's.
            let expected = std::fs::read(plaintext_file).unwrap();
            assert_eq!(decrypt(backend, file, name, key).unwrap_or_else(|e| panic!("{host} {name}: {e}")), expected);
            assert_eq!(decrypt(backend, file, name, &stack.operator_key).unwrap(), expected, "operator, {file}");
        }
        // Another host's key cannot decrypt this host's files.
        let (stranger, stranger_key) = stack.host_keys.iter().find(|(h, _)| h != host).unwrap();
        let (_, name) = &needed[0];
        let file = declared[name.as_str()][if backend == SecretsBackend::Sops { "sopsFile" } else { "file" }]["path"]
            .as_str()
            .unwrap();
        assert!(decrypt(backend, file, name, stranger_key).is_err(), "{stranger}'s key decrypts {host}'s {file}");
    }

    // No plaintext secret in any file of the tree (public certificates aside).
    let tree = files(stack.tree.path());
    let mut checked = 0;
    for (relative, bytes) in files(stack.secrets.path()) {
        if relative.starts_with("encrypted/") || relative.ends_with(".crt") {
            continue;
        }
        let text = String::from_utf8(bytes).unwrap();
        let needles: Vec<&str> =
            text.lines().map(str::trim).filter(|l| l.len() >= 16 && !l.starts_with("-----")).collect();
        assert!(!needles.is_empty(), "{relative}");
        for (path, content) in &tree {
            let content = String::from_utf8_lossy(content);
            for needle in &needles {
                assert!(!content.contains(needle), "{path} holds a line of secrets/{relative}");
            }
        }
        checked += 1;
    }
    assert!(checked > 5, "{checked}");

    // Every .nix file parses with the real parser.
    for (path, _) in tree.iter().filter(|(p, _)| p.ends_with(".nix")) {
        let output = nix::nix_output(Command::new("nix-instantiate").arg("--parse").arg(stack.tree.path().join(path)));
        assert!(output.status.success(), "{path}: {}", String::from_utf8_lossy(&output.stderr));
    }

    // `secrets rotate --hosts web1` encrypts web1's renewed secrets again, and only web1's:
    // web1's key decrypts the new certificate from the encrypted files, web2's stay as they were.
    let encrypted = |host: &str| {
        files(stack.secrets.path())
            .into_iter()
            .filter(|(p, _)| {
                p == &format!("encrypted/sops/{host}.yaml") || p.starts_with(&format!("encrypted/age/{host}/"))
            })
            .collect::<Vec<_>>()
    };
    let (web1_before, web2_before) = (encrypted("web1"), encrypted("web2"));
    assert!(!web1_before.is_empty() && !web2_before.is_empty());
    let report = secrets::rotate(topology, stack.secrets.path(), &["web1".to_string()]).unwrap();
    assert!(report.notes.iter().any(|n| n.contains("encrypted again")), "{report:?}");
    assert_eq!(encrypted("web2"), web2_before, "web2 was not rotated");
    assert_ne!(encrypted("web1"), web1_before);
    let renewed = std::fs::read(stack.secrets.path().join("hosts/web1/host.crt")).unwrap();
    let file = match backend {
        SecretsBackend::Sops => stack.secrets.path().join("encrypted/sops/web1.yaml"),
        _ => stack.secrets.path().join("encrypted/age/web1/host.crt.age"),
    };
    let web1_key = &stack.host_keys.iter().find(|(h, _)| h == "web1").unwrap().1;
    assert_eq!(decrypt(backend, file.to_str().unwrap(), "host.crt", web1_key).unwrap(), renewed);
}

#[test]
fn agenix_hosts_decrypt_their_secrets_with_the_host_key() {
    backend_end_to_end("agenix", SecretsBackend::Agenix);
}

#[test]
fn sops_hosts_decrypt_their_secrets_with_the_host_key() {
    backend_end_to_end("sops", SecretsBackend::Sops);
}
