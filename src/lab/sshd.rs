//! OpenSSH in the lab: the host keys and the admin key the lab authorizes, so `ssh` from the
//! admin namespace logs in (the sshd_config is rendered by [`crate::render::sshd`]).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::cmd::Cmd;

/// The admin's private key (public key beside it with `.pub`).
pub fn admin_key(admin_dir: &Path) -> PathBuf {
    admin_dir.join("id_ed25519")
}

pub use crate::render::sshd::{authorized_keys, host_key};

/// Creates the ed25519 key at `path` unless it exists.
pub fn ensure_key(path: &Path, comment: &str) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    Cmd::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path.display().to_string())
        .run()?;
    Ok(true)
}
