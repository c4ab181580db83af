//! `[secrets] backend = "sops" | "agenix"`: the host's runtime secrets encrypted with the real
//! tools (`sops`, `age`) to the host's SSH host key and the operators' recipients, for
//! sops-nix or agenix to decrypt on the host at activation. The plaintext only ever goes to
//! the tool through a pipe; what lands on disk is the encrypted file.
//!
//! ```text
//! encrypted/sops/<host>.yaml          sops: one YAML document per host, a key per runtime file
//! encrypted/age/<host>/<file>.age     agenix: one armored age file per host and runtime file
//! ```
//!
//! `nixstack build` ships these (encrypted) files in the flake as `encrypted-secrets/…`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{host_secrets, store, Init, SecretsError};
use crate::spec::SecretsBackend;
use crate::topology::Topology;

/// Where the encrypted files live in the secrets directory and (as `encrypted-secrets/`) in the
/// output tree.
pub const ENCRYPTED_DIR: &str = "encrypted";
pub const TREE_DIR: &str = "encrypted-secrets";

/// The host key sops and age decrypt with on the host (NixOS's default ed25519 host key).
pub const HOST_KEY_PATH: &str = "/etc/ssh/ssh_host_ed25519_key";

/// `encrypted-secrets/sops/<host>.yaml`, relative to the output tree.
pub fn sops_file(host: &str) -> String {
    format!("{TREE_DIR}/sops/{host}.yaml")
}

/// `encrypted-secrets/age/<host>/<name>.age`, relative to the output tree.
pub fn age_file(host: &str, name: &str) -> String {
    format!("{TREE_DIR}/age/{host}/{name}.age")
}

/// Every encrypted file `topology` needs: (path in the secrets directory, path in the tree).
pub fn encrypted_files(topology: &Topology) -> Vec<(String, String)> {
    let tree: Vec<String> = match topology.secrets.backend {
        SecretsBackend::Nixstack => Vec::new(),
        SecretsBackend::Sops => topology.hosts.iter().map(|h| sops_file(&h.name)).collect(),
        SecretsBackend::Agenix => topology
            .hosts
            .iter()
            .flat_map(|h| {
                host_secrets(topology, &h.name, Path::new("")).into_iter().map(|(_, name)| age_file(&h.name, &name))
            })
            .collect(),
    };
    tree.into_iter().map(|t| (format!("{ENCRYPTED_DIR}/{}", &t[TREE_DIR.len() + 1..]), t)).collect()
}

/// The encrypted files of `host`, relative to the secrets directory.
pub fn host_encrypted_files(topology: &Topology, host: &str) -> Vec<String> {
    let sops = sops_file(host);
    let age = format!("{TREE_DIR}/age/{host}/");
    encrypted_files(topology)
        .into_iter()
        .filter(|(_, tree)| *tree == sops || tree.starts_with(&age))
        .map(|(local, _)| local)
        .collect()
}

/// The encrypted files read from `dir` as artifacts of the output tree (`nixstack build`).
/// A missing one is an error naming `nixstack secrets init`.
pub fn tree_files(topology: &Topology, dir: &Path) -> Result<Vec<(String, String)>, SecretsError> {
    let mut files = Vec::new();
    for (local, tree) in encrypted_files(topology) {
        let path = dir.join(&local);
        if !path.exists() {
            return Err(SecretsError::Invalid {
                file: path.display().to_string(),
                reason: format!(
                    "[secrets] backend = \"{}\" needs it in the flake; run `nixstack secrets init` first",
                    topology.secrets.backend.as_str()
                ),
            });
        }
        files.push((tree, store::read(&path)?));
    }
    Ok(files)
}

impl Init<'_> {
    /// With sops or agenix: every host's runtime secrets encrypted to its host key and the
    /// operators. An existing encrypted file is kept (remove it to encrypt again, e.g. after
    /// changing a secret or the recipients).
    pub(super) fn encrypt(&mut self) -> Result<(), SecretsError> {
        let backend = self.topology.secrets.backend;
        if backend.deploy_uploads() {
            return Ok(());
        }
        if self.topology.secrets.recipients.is_empty() {
            self.report.notes.push(
                "no operator recipients ([secrets] recipients or ed25519 stack.ssh_keys): only the hosts can decrypt the encrypted files".into(),
            );
        }
        for host in &self.topology.hosts {
            let Some(host_key) = &host.host_key else { continue };
            let mut recipients = vec![host_key.clone()];
            recipients.extend(self.topology.secrets.recipients.iter().cloned());
            let secrets = host_secrets(self.topology, &host.name, self.dir);
            match backend {
                SecretsBackend::Agenix => {
                    for (source, name) in secrets {
                        let local = format!("{ENCRYPTED_DIR}/age/{}/{name}.age", host.name);
                        if self.dir.join(&local).exists() {
                            self.existing(&local)?;
                            continue;
                        }
                        let plaintext = read_bytes(&source)?;
                        let mut args: Vec<String> = vec!["--encrypt".into(), "--armor".into()];
                        for r in &recipients {
                            args.extend(["--recipient".into(), r.clone()]);
                        }
                        let ciphertext = run_tool(&age_program(), &args, &plaintext, "encrypt with age")?;
                        self.create_dirs(&local)?;
                        self.create(&local, &ciphertext)?;
                    }
                }
                SecretsBackend::Sops => {
                    let local = format!("{ENCRYPTED_DIR}/sops/{}.yaml", host.name);
                    if self.dir.join(&local).exists() {
                        self.existing(&local)?;
                        continue;
                    }
                    let mut document = serde_json::Map::new();
                    for (source, name) in secrets {
                        let text = store::read(&source)?;
                        document.insert(name, serde_json::Value::String(text));
                    }
                    let plaintext = serde_json::to_vec(&document).expect("a JSON object");
                    let args: Vec<String> = vec![
                        "encrypt".into(),
                        "--input-type".into(),
                        "json".into(),
                        "--output-type".into(),
                        "yaml".into(),
                        "--age".into(),
                        recipients.join(","),
                        "--filename-override".into(),
                        format!("{}.yaml", host.name),
                    ];
                    let ciphertext = run_tool(&sops_program(), &args, &plaintext, "encrypt with sops")?;
                    self.create_dirs(&local)?;
                    self.create(&local, &ciphertext)?;
                }
                SecretsBackend::Nixstack => {}
            }
        }
        Ok(())
    }

    fn create_dirs(&mut self, local: &str) -> Result<(), SecretsError> {
        let mut dir = PathBuf::new();
        let parent = Path::new(local).parent().expect("a parent");
        for part in parent.components() {
            dir.push(part);
            let relative = dir.display().to_string();
            self.dir_0700(&self.dir.join(&dir), &relative)?;
        }
        Ok(())
    }
}

/// `age` from PATH, or `$NIXSTACK_AGE`.
fn age_program() -> String {
    std::env::var("NIXSTACK_AGE").unwrap_or_else(|_| "age".into())
}

/// `sops` from PATH, or `$NIXSTACK_SOPS`.
fn sops_program() -> String {
    std::env::var("NIXSTACK_SOPS").unwrap_or_else(|_| "sops".into())
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, SecretsError> {
    std::fs::read(path).map_err(|source| SecretsError::Io { action: "read", path: path.to_path_buf(), source })
}

/// Runs `program args` with `input` on its stdin (never a file) and returns its stdout.
fn run_tool(program: &str, args: &[String], input: &[u8], action: &'static str) -> Result<Vec<u8>, SecretsError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SecretsError::Crypto {
            action,
            reason: format!(
                "cannot run `{program}`: {e} (install it: scripts/setup, or see README.md \"Secrets backends\")"
            ),
        })?;
    let mut stdin = child.stdin.take().expect("piped");
    let written = stdin.write_all(input);
    drop(stdin);
    let output = child.wait_with_output().map_err(|e| SecretsError::Crypto { action, reason: e.to_string() })?;
    written.map_err(|e| SecretsError::Crypto { action, reason: format!("writing to `{program}`: {e}") })?;
    if !output.status.success() {
        return Err(SecretsError::Crypto {
            action,
            reason: format!("`{program}` failed: {}", String::from_utf8_lossy(&output.stderr).trim()),
        });
    }
    Ok(output.stdout)
}
