//! sshd_config for the lab's OpenSSH (NixOS renders its own from `services.openssh.settings`
//! in modules/base.nix: the same key-only root login).

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::stack::Layout;
use crate::topology::Host;

/// A host's SSH host key, kept in its state directory.
pub fn host_key(layout: &Layout) -> PathBuf {
    layout.state.join("ssh").join("ssh_host_ed25519_key")
}

pub fn authorized_keys(layout: &Layout) -> PathBuf {
    layout.config("authorized_keys")
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
