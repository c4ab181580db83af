//! Runs the real Nix parser, `nix-instantiate --parse`, over emitted files.

use std::path::{Component, Path};
use std::process::Command;

use anyhow::{bail, Context as _};

/// The Nix binary; installed by `scripts/setup` (Debian package `nix-bin`).
const NIX_INSTANTIATE: &str = "nix-instantiate";

/// Nix settings for an offline machine without a Nix daemon or build users.
const OFFLINE_NIX_CONFIG: &str =
    "experimental-features = nix-command flakes\nsubstituters =\nbuild-users-group =\nsandbox = false";

/// Parses every file with `nix-instantiate --parse`. The files are written to a temporary
/// directory with their relative layout kept (paths must be relative, without `..`), so
/// the locations Nix reports name the caller's paths. The error lists every file Nix
/// rejects with Nix's own message; a missing `nix-instantiate` is an error, never a skip.
pub fn nix_instantiate_parse<P: AsRef<str>, T: AsRef<str>>(files: &[(P, T)]) -> anyhow::Result<()> {
    let version = Command::new(NIX_INSTANTIATE).arg("--version").output();
    match version {
        Ok(output) if output.status.success() => {}
        Ok(output) => bail!(
            "`{NIX_INSTANTIATE} --version` failed ({}): {}; run scripts/setup to install Nix (nix-bin)",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => {
            bail!("cannot run `{NIX_INSTANTIATE}` ({error}); run scripts/setup to install Nix (Debian package nix-bin)")
        }
    }
    let dir = tempfile::Builder::new().prefix("nixstack-parse-").tempdir().context("creating a temporary directory")?;
    let mut failures = Vec::new();
    for (path, text) in files {
        let (path, text) = (path.as_ref(), text.as_ref());
        let relative = Path::new(path);
        if !relative.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
            bail!("{path}: expected a relative path inside the flake (no `/` prefix, no `..`)");
        }
        let file = dir.path().join(relative);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        let output = Command::new(NIX_INSTANTIATE)
            .arg("--parse")
            .arg(relative)
            .current_dir(dir.path())
            .env("NIX_CONFIG", OFFLINE_NIX_CONFIG)
            .output()
            .with_context(|| format!("running `{NIX_INSTANTIATE} --parse {path}`"))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            // Nix names the file by its absolute temporary path; name it as the caller did.
            let prefix = format!("{}/", dir.path().display());
            let stderr = stderr.replace(&prefix, "");
            let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            failures.push(format!(
                "`{NIX_INSTANTIATE} --parse {path}` failed ({}):\n{}",
                output.status,
                tail.join("\n").trim_end()
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("Nix rejects {} file(s):\n{}", failures.len(), failures.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_accepts_valid_files_and_rejects_syntax_errors_with_their_location() {
        let good = ("hosts/a/default.nix", "{ lib, ... }: { imports = [ ./local.nix ]; a.b = 1; }");
        nix_instantiate_parse(&[good]).expect("valid Nix parses");
        let bad = ("hosts/b/default.nix", "{\n  a = ;\n}\n");
        let error = nix_instantiate_parse(&[good, bad]).unwrap_err().to_string();
        assert!(error.contains("hosts/b/default.nix:2:7"), "{error}");
        assert!(!error.contains("hosts/a/"), "{error}");
    }

    #[test]
    fn paths_leaving_the_flake_are_refused() {
        assert!(nix_instantiate_parse(&[("../x.nix", "1")]).is_err());
        assert!(nix_instantiate_parse(&[("/etc/x.nix", "1")]).is_err());
    }
}
