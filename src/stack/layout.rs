//! `Layout`: where things live on a host. The same renderer produces the NixOS config
//! and the lab config; only the Layout differs, never string edits after rendering.
//!
//! Every way the lab deviates from a NixOS host is a method here, named: the lab has no Nix
//! store (programs are Debian's, store files are the rendered configs), no systemd (no
//! dynamic users), and its hosts share one file system (`/run`, `/var/lib`, `/var/log` and
//! `/etc` of a NixOS host are directories under the host's lab root).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Service;

/// Root of the lab's per-host directories (`<root>/<host>/...`). Fixed so that the
/// lab configs written by `nixstack build` are deterministic.
pub const LAB_ROOT: &str = "/var/lib/nixstack-lab";

/// The link in a lab root to the nixstack binary that brought the lab up: the lab's systems
/// restart the app through it (`lab restart`), the one way the lab starts a daemon.
pub const LAB_EXECUTABLE: &str = "nixstack";

/// Where the runtime secrets live on a NixOS host (uploaded by deploy, never in the store).
pub const NIXOS_SECRETS: &str = "/var/lib/nixstack/secrets";

/// The names a NixOS host's cards get when the spec gives their MACs. Not `ethN`: renaming a
/// card to a name the kernel may have given the other card races with the kernel, and when
/// the two cards swap places both renames fail (systemd.link(5), `Name=`).
pub const STABLE_PRIVATE_INTERFACE: &str = "priv0";
pub const STABLE_PUBLIC_INTERFACE: &str = "pub0";

/// Where a web host finds the `[web] static` package on NixOS (modules/web.nix links it).
pub const STATIC_ROOT: &str = "/etc/nixstack/static";

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
            // so the kernel's names hold. Every host has a private card and only load
            // balancers a second, public one, expected to be probed second: only the spec's
            // MACs make that certain (`Layout::nixos_for`).
            public_interface: String::from("eth1"),
            private_interface: String::from("eth0"),
        }
    }

    /// The NixOS layout of `host`. A host whose cards the spec names by MAC has them named
    /// [`STABLE_PRIVATE_INTERFACE`] and [`STABLE_PUBLIC_INTERFACE`] by their permanent
    /// address (render::nixos writes the systemd .link files); the others keep the kernel's
    /// names of [`Layout::nixos`].
    pub fn nixos_for(host: &crate::topology::Host) -> Self {
        let mut layout = Layout::nixos();
        if host.mac.is_some() {
            layout.private_interface = STABLE_PRIVATE_INTERFACE.to_string();
        }
        if host.public_mac.is_some() {
            layout.public_interface = STABLE_PUBLIC_INTERFACE.to_string();
        }
        layout
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
    /// The public certificate bundle HAProxy serves: with ACME the acme unit's `full.pem`
    /// (lego's certificate; the lab orders it from its pebble, see lab::acme), else the
    /// provided one from the secrets.
    pub fn public_pem(&self, domain: &str, acme: bool) -> PathBuf {
        if acme {
            self.translate(&format!("/var/lib/acme/{domain}/full.pem"))
        } else {
            self.secret("public.pem")
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
    /// The static assets nginx serves (`[web] static`): on NixOS a link in /etc to the
    /// package's store path (modules/web.nix, `environment.etc`), in the lab a link to the
    /// stand-in directory. A link, so the nginx config names no store path and is the same
    /// text in both.
    pub fn static_root(&self) -> PathBuf {
        self.translate(STATIC_ROOT)
    }

    /// Where a NixOS absolute path lives in this layout: itself on NixOS; under the host's
    /// lab root in the lab (`/run/x` → `run/x`, `/var/lib/x` → `state/x`, `/var/log/x` →
    /// `log/x`, `/etc/x` → `etc/x`). Other paths are the same in both.
    pub fn translate(&self, path: &str) -> PathBuf {
        if self.kind == LayoutKind::Nixos {
            return PathBuf::from(path);
        }
        for (prefix, dir) in
            [("/run/", &self.run), ("/var/lib/", &self.state), ("/var/log/", &self.log), ("/etc/", &self.etc)]
        {
            if let Some(rest) = path.strip_prefix(prefix) {
                return dir.join(rest);
            }
        }
        PathBuf::from(path)
    }

    /// [`Layout::translate`] for a command-line word: a path, or `--option=path`.
    pub fn translate_words(&self, word: &str) -> String {
        match word.split_once('=') {
            Some((option, path)) if option.starts_with('-') && path.starts_with('/') => {
                format!("{option}={}", self.translate(path).display())
            }
            _ if word.starts_with('/') => self.translate(word).display().to_string(),
            _ => word.to_string(),
        }
    }

    /// The service's main program. NixOS: its package's (the nixpkgs module decides, see
    /// `{exe}` in data/nixpkgs-units.toml). Lab: Debian's build of the same daemon.
    pub fn executable(&self, service: Service) -> String {
        if self.kind == LayoutKind::Nixos {
            return "{exe}".into();
        }
        match service {
            Service::Nftables => "/usr/sbin/nft",
            Service::Sshd => "/usr/sbin/sshd",
            Service::Mariadb => "/usr/sbin/mariadbd",
            // Debian's Python 3, which has python3-pymysql (a `python3` earlier on PATH may not).
            Service::App => "/usr/bin/python3",
            Service::Nginx => "/usr/sbin/nginx",
            Service::Haproxy => "/usr/sbin/haproxy",
            Service::Keepalived => "/usr/sbin/keepalived",
            Service::Collectd => "/usr/sbin/collectd",
        }
        .into()
    }

    /// A file of another package a unit runs (`${pkgs.coreutils}/bin/ln`): on the lab
    /// machine, Debian's file of the same name under /usr.
    pub fn package_file(&self, package: &str, rest: &str) -> String {
        match self.kind {
            LayoutKind::Nixos => format!("{{pkgs.{package}}}{rest}"),
            LayoutKind::Lab => format!("/usr{rest}"),
        }
    }

    /// The service package's prefix (`--basedir=${cfg.package}`): on the lab machine, /usr.
    pub fn package_root(&self) -> String {
        match self.kind {
            LayoutKind::Nixos => "{store:package}".into(),
            LayoutKind::Lab => "/usr".into(),
        }
    }

    /// A file the nixpkgs module writes to the store for `service` (`haproxyCfg`, the
    /// generated `my.cnf`...): on NixOS a store path (symbolic here); in the lab, the
    /// rendered config of that service, which holds the same text.
    pub fn store_file(&self, service: Service, name: &str) -> PathBuf {
        match self.kind {
            LayoutKind::Nixos => PathBuf::from(format!("{{store:{name}}}")),
            LayoutKind::Lab => self.config(service.config_file()),
        }
    }

    /// The user systemd allocates for a `DynamicUser=` unit (named after the unit). The lab
    /// has no systemd: it creates a system user of that name instead.
    pub fn dynamic_user(&self, service: Service) -> String {
        match service {
            Service::App => "nixstack-app".into(),
            other => other.name().into(),
        }
    }
}
