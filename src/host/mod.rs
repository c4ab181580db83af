//! `Host`: what nixstack can do on a machine, as colmena's trait: abilities with default
//! methods that say "unsupported", so a kind of host implements only what it can. Two
//! kinds exist: deploy's `SshHost` (NixOS machines, and the lab's hosts over SSH) and the
//! lab's `NamespaceHost` (a lab host's network namespace, entered directly). Both run the
//! same health checks ([`health`]), so bring-up, `lab status`, the scenario and deploy's
//! gates mean one thing by "healthy". This module sits below `lab` and `deploy`, which
//! both import it and neither of which it imports.

pub mod galera;
mod goal;
pub mod health;
mod store_path;

use std::path::PathBuf;

use thiserror::Error;

pub use goal::Goal;
pub use store_path::{StorePath, STORE_DIR};

use crate::process::CommandError;
use crate::stack::Layout;

#[derive(Debug, Error)]
pub enum HostError {
    /// A command ran and failed, or could not run, or did not finish in time.
    #[error("{host}: {error}")]
    Command { host: String, error: Box<CommandError> },
    #[error("{host}: {operation} is not supported by this kind of host")]
    Unsupported { host: String, operation: &'static str },
    /// Activation ran detached and reported failure (or never reported).
    #[error("{host}: activation ({}) of {} failed: {}\n  command: {}\n  exit status: {}\n  last lines of its log:\n{}", .failure.goal, .failure.path, .failure.headline, .failure.command, .failure.status, .failure.tail)]
    Activation { host: String, failure: Box<ActivationFailure> },
    #[error("{host}: {detail}")]
    Other { host: String, detail: String },
}

impl HostError {
    pub fn host(&self) -> &str {
        match self {
            HostError::Command { host, .. }
            | HostError::Unsupported { host, .. }
            | HostError::Activation { host, .. }
            | HostError::Other { host, .. } => host,
        }
    }
}

/// Why an activation failed.
#[derive(Debug)]
pub struct ActivationFailure {
    pub goal: &'static str,
    pub path: String,
    pub command: String,
    pub status: String,
    /// The cause: the log's last error line.
    pub headline: String,
    /// The log's last lines.
    pub tail: String,
}

/// A secret file to place on a host: its name in the host's secrets directory and its
/// local source (read at upload time; the bytes never pass through the Nix store).
#[derive(Debug, Clone)]
pub struct SecretFile {
    pub name: String,
    pub source: PathBuf,
}

/// What an upload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadReport {
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
}

/// The output of a command run on a host.
#[derive(Debug, Clone, Default)]
pub struct RunOutput {
    pub stdout: String,
    pub stderr: String,
}

/// A machine nixstack can act on (deploy switches it; the lab and deploy check its health).
/// Every method has a bound on how long it may take.
pub trait Host: Send + Sync + std::fmt::Debug {
    /// The host's name in the spec.
    fn name(&self) -> &str;

    /// Where things live on the host (secrets, sockets): what the health checks use.
    fn layout(&self) -> &Layout;

    /// The system the host runs now (`/run/current-system` on NixOS); `None` if it has
    /// never been deployed.
    fn current_system(&self) -> Result<Option<StorePath>, HostError> {
        Err(HostError::Unsupported { host: self.name().into(), operation: "reading the current system" })
    }

    /// Makes `path` and its closure valid in the host's store.
    fn copy_closure(&self, path: &StorePath) -> Result<(), HostError> {
        let _ = path;
        Err(HostError::Unsupported { host: self.name().into(), operation: "copying a closure" })
    }

    /// Makes `path` and its closure valid in the local store, from the host's store (to
    /// compare a system the host runs with a new one: `nix store diff-closures`).
    fn fetch_closure(&self, path: &StorePath) -> Result<(), HostError> {
        let _ = path;
        Err(HostError::Unsupported { host: self.name().into(), operation: "fetching a closure" })
    }

    /// Places secret files in the host's secrets directory (mode 0640 when the directory
    /// belongs to a service group, 0600 otherwise; atomically; over SSH, never the store).
    fn upload_secrets(&self, files: &[SecretFile]) -> Result<UploadReport, HostError> {
        let _ = files;
        Err(HostError::Unsupported { host: self.name().into(), operation: "uploading secrets" })
    }

    /// Makes the daemons that read certificates take the renewed ones without a restart
    /// ([`crate::stack::tls_reload`]: nginx and HAProxy by their unit's `ExecReload=`,
    /// MariaDB/Galera by SQL). Returns what it did, one line per daemon.
    fn reload_tls(&self, reloads: &[crate::stack::tls_reload::TlsReload]) -> Result<Vec<String>, HostError> {
        let _ = reloads;
        Err(HostError::Unsupported { host: self.name().into(), operation: "reloading certificates" })
    }

    /// Sets the system profile to `path` (for goals that do) and runs its
    /// `switch-to-configuration <goal>` so that a dropped connection does not kill it.
    /// Returns the activation's output.
    fn switch(&self, path: &StorePath, goal: Goal) -> Result<String, HostError> {
        let _ = (path, goal);
        Err(HostError::Unsupported { host: self.name().into(), operation: "activation" })
    }

    /// Returns to the system that ran before the last [`Host::switch`]: the profile's
    /// previous generation (`nix-env --rollback`) for goals that set the profile, else
    /// `previous` itself, and activates it. Returns the path now active.
    fn rollback(&self, previous: Option<&StorePath>, goal: Goal) -> Result<StorePath, HostError> {
        let _ = (previous, goal);
        Err(HostError::Unsupported { host: self.name().into(), operation: "rollback" })
    }

    /// Runs the app's schema migration that `system` carries (its `nixstack-app-migrate`
    /// unit; `system` is in the host's store but not active) and waits for it to end.
    /// `Ok(None)`: the system has no migration; `Ok(Some(log))`: it ran and succeeded.
    fn migrate(&self, system: &StorePath) -> Result<Option<String>, HostError> {
        let _ = system;
        Err(HostError::Unsupported { host: self.name().into(), operation: "running the app's migration" })
    }

    /// Runs a shell script on the host (health checks, the HAProxy runtime API).
    fn run(&self, script: &str) -> Result<RunOutput, HostError> {
        let _ = script;
        Err(HostError::Unsupported { host: self.name().into(), operation: "running commands" })
    }
}
