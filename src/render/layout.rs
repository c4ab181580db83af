//! `Layout`: where things live on a host. The same renderer produces the NixOS config
//! and the lab config; only the Layout differs, never string edits after rendering.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// Root of the lab's per-host directories (`<root>/<host>/...`). Fixed so that the
/// lab configs written by `nixstack build` are deterministic.
pub const LAB_ROOT: &str = "/var/lib/nixstack-lab";

/// Where the runtime secrets live on a NixOS host (uploaded by deploy, never in the store).
pub const NIXOS_SECRETS: &str = "/var/lib/nixstack/secrets";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutKind {
    Nixos,
    Lab,
}

/// Paths of one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub kind: LayoutKind,
    /// Runtime secrets: `ca.crt`, `host.crt`, `host.key`, `host.pem` (certificate + key),
    /// passwords, the monitoring endpoint.
    pub secrets: PathBuf,
    /// Service state (databases, ACME certificates).
    pub state: PathBuf,
    /// Sockets and pid files.
    pub run: PathBuf,
    /// Log files of daemons that log to files.
    pub log: PathBuf,
    /// Rendered configs on the host.
    pub etc: PathBuf,
    /// Static files served by nginx; `None` means `web.root` from the spec.
    pub web_root: Option<PathBuf>,
    /// Interface on the public network (keepalived puts the virtual IP on it).
    pub public_interface: String,
    /// Interface on the private network.
    pub private_interface: String,
}

impl Layout {
    pub fn nixos() -> Self {
        Layout {
            kind: LayoutKind::Nixos,
            secrets: PathBuf::from(NIXOS_SECRETS),
            state: PathBuf::from("/var/lib"),
            run: PathBuf::from("/run"),
            log: PathBuf::from("/var/log"),
            etc: PathBuf::from("/etc/nixstack"),
            web_root: None,
            // NixOS names interfaces predictably (ens3, enp1s0...) unless
            // `networking.usePredictableInterfaceNames = false`; the host modules set that
            // so these two names hold on every machine. Every host has a private card and
            // only load balancers a second, public one: the private card is the first.
            public_interface: String::from("eth1"),
            private_interface: String::from("eth0"),
        }
    }

    /// The lab layout of `host` under [`LAB_ROOT`].
    pub fn lab(host: &str) -> Self {
        Layout::lab_at(Path::new(LAB_ROOT), host)
    }

    /// The lab layout of `host` under another root (tests run real checkers there).
    pub fn lab_at(root: &Path, host: &str) -> Self {
        let base = root.join(host);
        Layout {
            kind: LayoutKind::Lab,
            secrets: base.join("secrets"),
            state: base.join("state"),
            run: base.join("run"),
            log: base.join("log"),
            etc: base.join("etc"),
            web_root: Some(base.join("www")),
            // The lab names each host's veth ends itself.
            public_interface: String::from("pub0"),
            private_interface: String::from("priv0"),
        }
    }

    pub fn is_lab(&self) -> bool {
        self.kind == LayoutKind::Lab
    }

    pub fn secret(&self, name: &str) -> PathBuf {
        self.secrets.join(name)
    }
    /// The internal CA certificate every host trusts.
    pub fn ca_cert(&self) -> PathBuf {
        self.secret("ca.crt")
    }
    pub fn host_cert(&self) -> PathBuf {
        self.secret("host.crt")
    }
    pub fn host_key(&self) -> PathBuf {
        self.secret("host.key")
    }
    /// Certificate and key in one file, as HAProxy wants them.
    pub fn host_pem(&self) -> PathBuf {
        self.secret("host.pem")
    }
    /// The public certificate bundle HAProxy serves. On NixOS with ACME it is lego's
    /// `full.pem`; in the lab the internal CA signs one for the domain instead.
    pub fn public_pem(&self, domain: &str, acme: bool) -> PathBuf {
        match (self.kind, acme) {
            (LayoutKind::Nixos, true) => self.state.join("acme").join(domain).join("full.pem"),
            _ => self.secret("public.pem"),
        }
    }
    pub fn mysql_datadir(&self) -> PathBuf {
        self.state.join("mysql")
    }
    pub fn mysql_socket(&self) -> PathBuf {
        self.run.join("mysqld").join("mysqld.sock")
    }
    /// HAProxy's admin socket (the deploy drains backends through it). Not `haproxy.sock`:
    /// NixOS's haproxy module already puts its own `level user` socket there.
    pub fn haproxy_socket(&self) -> PathBuf {
        self.run.join("haproxy").join("admin.sock")
    }
    pub fn pid_file(&self, daemon: &str) -> PathBuf {
        self.run.join(format!("{daemon}.pid"))
    }
    pub fn log_file(&self, name: &str) -> PathBuf {
        self.log.join(name)
    }
    pub fn config(&self, name: &str) -> PathBuf {
        self.etc.join(name)
    }
}
