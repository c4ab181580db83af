//! OpenSSH in the lab: its sshd_config (the lab's own; NixOS configures `services.openssh`)
//! and the admin key the lab authorizes, so `ssh` from the admin namespace logs in.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::cmd::Cmd;
use crate::render::Layout;
use crate::topology::Host;

/// The admin's private key (public key beside it with `.pub`).
pub fn admin_key(admin_dir: &Path) -> PathBuf {
    admin_dir.join("id_ed25519")
}

/// A host's SSH host key, kept in its state directory.
pub fn host_key(layout: &Layout) -> PathBuf {
    layout.state.join("ssh").join("ssh_host_ed25519_key")
}

pub fn authorized_keys(layout: &Layout) -> PathBuf {
    layout.config("authorized_keys")
}

/// Creates the ed25519 key at `path` unless it exists.
pub fn ensure_key(path: &Path, comment: &str) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    Cmd::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"]).arg(path.display().to_string()).run()?;
    Ok(true)
}

/// sshd_config of `host`: key-only root login on the private address, lab paths.
pub fn config(host: &Host, layout: &Layout) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# sshd_config of {} in the nixstack lab.", host.name);
    let _ = writeln!(out, "ListenAddress {}:22", host.address);
    let _ = writeln!(out, "HostKey {}", host_key(layout).display());
    let _ = writeln!(out, "PidFile {}", layout.pid_file("sshd").display());
    let _ = writeln!(out, "AuthorizedKeysFile {}", authorized_keys(layout).display());
    out.push_str("PermitRootLogin prohibit-password\n");
    out.push_str("PasswordAuthentication no\n");
    out.push_str("KbdInteractiveAuthentication no\n");
    out.push_str("UsePAM no\n");
    out.push_str("X11Forwarding no\n");
    out.push_str("PrintMotd no\n");
    out.push_str("LogLevel INFO\n");
    out
}
