//! System closures: where each host's system comes from (a NixOS flake's toplevel, or a
//! lab system built without nixpkgs), and building all of them in one `nix build`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use thiserror::Error;

pub use crate::host::{StorePath, STORE_DIR};
use crate::process::{self, CommandError};
use crate::render::{self, Layout};
use crate::topology::{Host, Topology};

/// Nix settings for this machine's offline Nix 2.8 (NOTES.md): no `nixbld` group, no
/// network, no sandbox. Used for the lab, whose systems need nothing from a cache.
pub const OFFLINE_NIX_CONFIG: &str =
    "experimental-features = nix-command flakes\nsubstituters =\nbuild-users-group =\nsandbox = false";

#[derive(Debug, Error)]
pub enum BuildError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("`{command}` printed something that is not what Nix prints: {detail}")]
    Output { command: String, detail: String },
    #[error("`{command}` built no system for host(s) {hosts}")]
    Missing { command: String, hosts: String },
}

/// Where the hosts' systems come from.
#[derive(Debug, Clone)]
pub enum Systems {
    /// `nixosConfigurations.<host>.config.system.build.toplevel` of a flake (what
    /// `nixstack build` writes).
    Nixos { flake: String, nix_config: Option<String> },
    /// `labSystems.<host>` of a flake written by [`LabSystems::write`].
    Lab { flake: String },
}

impl Systems {
    /// The flake output holding one entry per host, and the expression from an entry to
    /// its system derivation's path.
    fn output(&self) -> (&str, &str, &'static str, &'static str) {
        match self {
            Systems::Nixos { flake, .. } => (flake, "nixosConfigurations", "config.system.build.toplevel", "nixos"),
            Systems::Lab { flake } => (flake, "labSystems", "", "lab"),
        }
    }

    fn nix_config(&self) -> Option<&str> {
        match self {
            Systems::Nixos { nix_config, .. } => nix_config.as_deref(),
            Systems::Lab { .. } => Some(OFFLINE_NIX_CONFIG),
        }
    }

    /// The installable of one host's system, for messages and `nix build` by hand.
    pub fn installable(&self, host: &str) -> String {
        let (flake, output, attr, _) = self.output();
        if attr.is_empty() {
            format!("{flake}#{output}.{host}")
        } else {
            format!("{flake}#{output}.{host}.{attr}")
        }
    }

    /// A `nix` command with the experimental features flakes need and this source's settings.
    pub fn nix(&self) -> Command {
        nix_command(self.nix_config())
    }
}

/// `nix` with flakes enabled and, when given, extra settings in `NIX_CONFIG`.
pub fn nix_command(nix_config: Option<&str>) -> Command {
    let mut command = Command::new("nix");
    command.args(["--extra-experimental-features", "nix-command flakes"]);
    if let Some(config) = nix_config {
        command.env("NIX_CONFIG", config);
    }
    command
}

/// Builds the systems of `hosts` with one evaluation (`nix eval --json` of every selected
/// host's derivation path, which maps each result back to its host: Nix 2.8 prints
/// `nix build` results in no particular order) and one `nix build` of all derivations.
pub fn build(
    systems: &Systems,
    hosts: &[String],
    timeout: Duration,
) -> Result<BTreeMap<String, StorePath>, BuildError> {
    if hosts.is_empty() {
        return Ok(BTreeMap::new());
    }
    let (flake, output, attr, _) = systems.output();
    let mut apply = String::from("entries: {");
    for host in hosts {
        let path = if attr.is_empty() { String::new() } else { format!(".{attr}") };
        let _ = write!(apply, " {q} = entries.{q}{path}.drvPath;", q = nix_string(host));
    }
    apply.push_str(" }");
    let mut eval = systems.nix();
    eval.args(["eval", "--json", &format!("{flake}#{output}"), "--apply", &apply]);
    let eval_out = process::run(eval, None, timeout)?;
    let drvs: BTreeMap<String, String> = serde_json::from_str(&eval_out.stdout).map_err(|e| BuildError::Output {
        command: "nix eval".into(),
        detail: format!("{e}: {}", eval_out.stdout.trim()),
    })?;

    let mut build = systems.nix();
    build.args(["build", "--no-link", "--json"]);
    for host in hosts {
        let drv =
            drvs.get(host).ok_or_else(|| BuildError::Missing { command: "nix eval".into(), hosts: host.clone() })?;
        build.arg(drv);
    }
    let build_out = process::run(build, None, timeout)?;
    #[derive(serde::Deserialize)]
    struct Built {
        #[serde(rename = "drvPath")]
        drv_path: String,
        outputs: BTreeMap<String, String>,
    }
    let built: Vec<Built> = serde_json::from_str(&build_out.stdout).map_err(|e| BuildError::Output {
        command: "nix build --json".into(),
        detail: format!("{e}: {}", build_out.stdout.trim()),
    })?;
    let by_drv: BTreeMap<&str, &Built> = built.iter().map(|b| (b.drv_path.as_str(), b)).collect();
    let mut result = BTreeMap::new();
    let mut missing = Vec::new();
    for host in hosts {
        let out = by_drv.get(drvs[host].as_str()).and_then(|b| b.outputs.get("out"));
        match out {
            Some(out) => {
                let path = StorePath::parse(out)
                    .map_err(|detail| BuildError::Output { command: "nix build --json".into(), detail })?;
                result.insert(host.clone(), path);
            }
            None => missing.push(host.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(BuildError::Missing { command: "nix build".into(), hosts: missing.join(", ") });
    }
    Ok(result)
}

/// A Nix string literal (host names are plain, but quoting costs nothing).
fn nix_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' | '$' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The lab's host systems: per host a derivation (no nixpkgs: `builtins.derivation` with
/// `/bin/sh` as builder) holding that host's lab configs, rendered by the same renderers as
/// everywhere, and a `bin/switch-to-configuration` that installs them into the host's lab
/// `etc` directory and reloads the daemon, as NixOS's does with units.
#[derive(Debug, Clone)]
pub struct LabSystems {
    /// host → (file name → text) of the configs the system carries.
    pub files: BTreeMap<String, BTreeMap<String, String>>,
    /// host → its lab layout (where the switch installs the configs).
    pub layouts: BTreeMap<String, Layout>,
    pub system: String,
    /// The lab root (its `nixstack` link restarts a new app version).
    pub root: PathBuf,
}

/// Configs the lab switch applies in place (checked first, then installed and reloaded);
/// a change to any other file is refused before anything is installed.
pub const LAB_RELOADABLE: &[&str] = &["nginx.conf", "nftables.conf", DEMO_APP_FILE];

/// The demo app's code, the lab's stand-in for the app's package: a new one restarts the app
/// (`nixstack lab restart`, SIGTERM and a graceful stop), as NixOS restarts its unit.
const DEMO_APP_FILE: &str = "nixstack-demo-app.py";

impl LabSystems {
    /// The systems of every host of `topology` in the lab under `root` (normally
    /// [`render::LAB_ROOT`]).
    pub fn new(topology: &Topology, root: &Path) -> Self {
        let mut files = BTreeMap::new();
        let mut layouts = BTreeMap::new();
        for host in &topology.hosts {
            let layout = Layout::lab_at(root, &host.name);
            files.insert(host.name.clone(), lab_configs(topology, host, &layout));
            layouts.insert(host.name.clone(), layout);
        }
        LabSystems { files, layouts, system: topology.stack.system.clone(), root: root.to_path_buf() }
    }

    /// Replaces one config of one host (what a bad deploy looks like in a test).
    pub fn with_file(mut self, host: &str, name: &str, text: String) -> Self {
        self.files.entry(host.to_string()).or_default().insert(name.to_string(), text);
        self
    }

    /// The flake's files: `flake.nix`, `builder.sh`, per host `hosts/<host>/configs/*`
    /// and `hosts/<host>/switch-to-configuration`. Deterministic.
    pub fn artifacts(&self) -> render::Artifacts {
        let mut out = render::Artifacts::new();
        let mut flake = String::new();
        flake.push_str("# The nixstack lab's host systems (generated by `nixstack deploy --lab`): no nixpkgs,\n");
        flake.push_str("# a /bin/sh builder, the host's rendered lab configs and its switch-to-configuration.\n");
        flake.push_str("{\n  outputs = { self }:\n    let\n");
        flake.push_str("      system = host: builtins.derivation {\n");
        flake.push_str("        name = \"nixstack-lab-system-${host}\";\n");
        let _ = writeln!(flake, "        system = {};", nix_string(&self.system));
        flake.push_str("        builder = \"/bin/sh\";\n");
        flake.push_str("        args = [ ./builder.sh ];\n");
        flake.push_str("        PATH = \"/usr/bin:/bin\";\n");
        flake.push_str("        inherit host;\n");
        flake.push_str("        configs = ./hosts + \"/${host}/configs\";\n");
        flake.push_str("        switch = ./hosts + \"/${host}/switch-to-configuration\";\n");
        flake.push_str("      };\n    in {\n      labSystems = {\n");
        for host in self.files.keys() {
            let _ = writeln!(flake, "        {} = system {};", nix_string(host), nix_string(host));
        }
        flake.push_str("      };\n    };\n}\n");
        out.insert("flake.nix".into(), flake);
        out.insert("builder.sh".into(), BUILDER.into());
        for (host, files) in &self.files {
            for (name, text) in files {
                out.insert(format!("hosts/{host}/configs/{name}"), text.clone());
            }
            out.insert(
                format!("hosts/{host}/switch-to-configuration"),
                lab_switch_script(host, &self.layouts[host], &self.root, files),
            );
        }
        out
    }

    /// Writes the flake into `dir` (created; existing files replaced) and returns the
    /// [`Systems`] that builds from it.
    pub fn write(&self, dir: &Path) -> std::io::Result<Systems> {
        for (path, text) in self.artifacts() {
            let target = dir.join(&path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&target, text)?;
        }
        let dir = std::fs::canonicalize(dir)?;
        Ok(Systems::Lab { flake: format!("path:{}", dir.display()) })
    }
}

/// The builder of a lab system: links the configs (a second store path, so a closure has
/// more than one path, as a real one does) and installs the switch script.
const BUILDER: &str = r#"set -eu
mkdir -p "$out/bin"
ln -s "$configs" "$out/etc"
cp "$switch" "$out/bin/switch-to-configuration"
chmod 555 "$out/bin/switch-to-configuration"
printf '%s\n' "$host" > "$out/nixstack-host"
"#;

/// The lab configs of `host` as `lab up` writes them (sshd's excepted: its renderer is
/// private to the lab, and the deploy never changes how it logs in).
pub fn lab_configs(topology: &Topology, host: &Host, layout: &Layout) -> BTreeMap<String, String> {
    use crate::stack::Service;
    let mut files = BTreeMap::new();
    for service in crate::stack::for_host(topology, host) {
        // sshd and the monitoring agent are not part of a lab deploy (yet).
        if matches!(service, Service::Sshd | Service::Collectd) {
            continue;
        }
        files.insert(service.config_file().to_string(), render::services::config(topology, host, layout, service));
    }
    files
}

/// Where a lab host keeps its own Nix store: a chroot store rooted here (the store itself
/// is `<root>/nix/store`, its paths are named `/nix/store/...` as everywhere).
pub fn lab_store_root(layout: &Layout) -> PathBuf {
    layout.state.join("nix")
}

/// `switch-to-configuration` of a lab host. It finds its own store root from its path (a
/// chroot store's paths live under that root), compares the carried configs with the
/// installed ones, checks every changed one with its daemon's checker before installing
/// anything, installs, points `current-system` at itself and reloads. A change the lab
/// cannot apply in place (MariaDB, HAProxy, keepalived, the app) is refused up front.
fn lab_switch_script(host: &str, layout: &Layout, root: &Path, files: &BTreeMap<String, String>) -> String {
    let etc = layout.etc.display();
    let current = layout.run.join("current-system");
    let nginx_pid = crate::stack::launch::nginx_pid_file(layout);
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/sh\n# switch-to-configuration of {host} in the nixstack lab (generated).");
    s.push_str("set -eu\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\n");
    s.push_str("goal=\"${1:-}\"\n");
    s.push_str("case \"$goal\" in switch|boot|test|dry-activate) ;; *) echo \"usage: $0 switch|boot|test|dry-activate\" >&2; exit 1 ;; esac\n");
    s.push_str("self=$(readlink -f \"$0\")\n");
    s.push_str("out=${self%/bin/switch-to-configuration}\n");
    s.push_str("root=${out%/nix/store/*}\n");
    s.push_str("logical=${out#\"$root\"}\n");
    s.push_str("configs=\"$root$(readlink \"$out/etc\")\"\n");
    let _ = writeln!(s, "etc={etc}");
    s.push_str("changed=\"\"\n");
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    let _ = writeln!(s, "for name in {}; do", names.join(" "));
    s.push_str("  cmp -s \"$configs/$name\" \"$etc/$name\" || changed=\"$changed $name\"\n");
    s.push_str("done\n");
    s.push_str("echo \"configs changed:${changed:- none}\"\n");
    s.push_str("if [ \"$goal\" = dry-activate ]; then exit 0; fi\n");
    s.push_str("if [ \"$goal\" = boot ]; then echo 'boot: the lab has no boot loader; the profile is set, nothing is activated'; exit 0; fi\n");
    s.push_str("for name in $changed; do\n  case \"$name\" in\n");
    s.push_str("    nginx.conf) nginx -t -q -c \"$configs/nginx.conf\" ;;\n");
    s.push_str("    nftables.conf) nft -c -f \"$configs/nftables.conf\" ;;\n");
    let _ = writeln!(s, "    {DEMO_APP_FILE}) /usr/bin/python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' \"$configs/{DEMO_APP_FILE}\" ;;");
    let _ = writeln!(s, "    *) echo \"{host}: the lab applies only {} in place; $name changed: run 'nixstack lab down' and 'nixstack lab up' instead\" >&2; exit 2 ;;", LAB_RELOADABLE.join(" and "));
    s.push_str("  esac\ndone\n");
    s.push_str("for name in $changed; do\n");
    s.push_str("  cp \"$configs/$name\" \"$etc/.$name.new\"\n  chmod 644 \"$etc/.$name.new\"\n  mv -f \"$etc/.$name.new\" \"$etc/$name\"\n");
    s.push_str("done\n");
    let _ = writeln!(s, "ln -sfn \"$logical\" {}", current.display());
    s.push_str("for name in $changed; do\n  case \"$name\" in\n");
    s.push_str("    nftables.conf) nft -f \"$etc/nftables.conf\"; echo 'nftables: ruleset loaded' ;;\n");
    let exe = root.join(crate::stack::LAB_EXECUTABLE);
    let _ = writeln!(s, "    {DEMO_APP_FILE}) {} lab restart {host} app; echo 'app: restarted' ;;", exe.display());
    s.push_str("    nginx.conf)\n");
    // A reload is asynchronous: wait until the old workers have finished their requests
    // and exited, so that the health gate that follows judges the new configuration.
    let _ = writeln!(s, "      master=$(cat {})", nginx_pid.display());
    s.push_str("      old=$(ps -o pid= --ppid \"$master\" | tr -d ' ' | tr '\\n' ' ')\n");
    s.push_str("      nginx -c \"$etc/nginx.conf\" -s reload\n");
    s.push_str("      i=0\n      while :; do\n        left=\"\"\n");
    s.push_str("        for pid in $old; do if [ \"$(ps -o ppid= -p \"$pid\" | tr -d ' ')\" = \"$master\" ]; then left=\"$left $pid\"; fi; done\n");
    s.push_str("        [ -z \"$left\" ] && break\n        i=$((i + 1))\n");
    s.push_str("        if [ $i -ge 300 ]; then echo \"nginx did not take the new configuration within 30s: old workers$left still run (a reload error is in nginx's log)\" >&2; exit 3; fi\n");
    s.push_str("        sleep 0.1\n      done\n");
    s.push_str("      echo 'nginx: reloaded' ;;\n");
    s.push_str("  esac\ndone\n");
    s.push_str("echo \"activated $logical\"\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_flake_lists_every_host_and_is_deterministic() {
        let topology = crate::topology::compile(&crate::spec::SpecSource::embedded_default()).unwrap();
        let systems = LabSystems::new(&topology, Path::new(render::LAB_ROOT));
        let a = systems.artifacts();
        assert_eq!(a, LabSystems::new(&topology, Path::new(render::LAB_ROOT)).artifacts());
        for host in &topology.hosts {
            assert!(a["flake.nix"].contains(&format!("\"{0}\" = system \"{0}\";", host.name)));
            assert!(a.contains_key(&format!("hosts/{}/switch-to-configuration", host.name)));
        }
        assert!(a.contains_key("hosts/web1/configs/nginx.conf"));
        assert!(a.contains_key("hosts/db1/configs/my.cnf"));
        assert!(!a.keys().any(|k| k.contains("secrets")), "no secret enters the store");
        let switch = &a["hosts/web1/switch-to-configuration"];
        assert!(switch.contains("etc=/var/lib/nixstack-lab/web1/etc"), "{switch}");
        assert!(switch.contains("nginx -t -q -c"), "{switch}");
    }
}
