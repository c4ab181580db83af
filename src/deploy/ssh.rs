//! `SshHost`: a host reached with OpenSSH (NixOS machines, and the lab's hosts from its
//! admin namespace). Its commands run through [`crate::process`], so a failure names the
//! command, the host, the exit status and stderr's last lines, with the cause (Nix's
//! `error:` line, ssh's complaint) as its headline.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::closure::{self, StorePath};
use super::host::{self, ActivationFailure, Host, HostError, RunOutput, SecretFile, UploadReport};
use super::Goal;
use crate::process::{headline, indent, Cmd, TAIL_LINES};
pub use crate::process::{shell_quote, CommandError};
use crate::render::Layout;
use crate::stack::tls_reload::TlsReload;

/// How long `ssh` may take to connect.
pub const CONNECT_TIMEOUT_SECS: u64 = 5;

/// How long each kind of remote operation may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A short command (a health probe, a runtime-API call, reading a link).
    pub command: Duration,
    /// Copying a closure.
    pub copy: Duration,
    /// One activation (switch-to-configuration), polled while it runs detached.
    pub activation: Duration,
}

impl Timeouts {
    pub fn nixos() -> Self {
        Timeouts {
            command: Duration::from_secs(30),
            copy: Duration::from_secs(1800),
            activation: Duration::from_secs(600),
        }
    }
    pub fn lab() -> Self {
        Timeouts {
            command: Duration::from_secs(20),
            copy: Duration::from_secs(120),
            activation: Duration::from_secs(90),
        }
    }
}

/// How an activation outlives the SSH session that starts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detach {
    /// `systemd-run` (a transient unit, outside the session) when the host booted with
    /// systemd, else `setsid nohup`.
    Auto,
    /// Always `setsid nohup` (the lab: its hosts are namespaces of a machine whose systemd,
    /// if any, would start the unit outside the host's namespace).
    Setsid,
}

/// A host's Nix store: the default `/nix`, or a chroot store rooted elsewhere (the lab).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// Where `/nix` of this store really is on the host (`/` for the host's own).
    pub root: PathBuf,
    /// `--store` of the remote `nix-daemon --stdio` and `nix-env`; `None` for the default.
    pub uri: Option<String>,
}

impl Store {
    pub fn system() -> Self {
        Store { root: PathBuf::from("/"), uri: None }
    }
    /// A chroot store rooted at `root` (its paths still named `/nix/store/...`).
    pub fn chroot(root: &Path) -> Self {
        Store { root: root.to_path_buf(), uri: Some(format!("local?root={}", root.display())) }
    }
}

/// A host reached with `ssh`.
#[derive(Debug, Clone)]
pub struct SshHost {
    pub name: String,
    pub user: String,
    pub address: String,
    pub port: Option<u16>,
    /// Private key (`-i`); `None` uses the agent and ssh's defaults.
    pub identity: Option<PathBuf>,
    /// Known-hosts file (new keys accepted, changed keys refused); `None`: ssh's default.
    pub known_hosts: Option<PathBuf>,
    /// Network namespace that `ssh` and `nix copy` run in (the lab's admin namespace).
    pub netns: Option<String>,
    pub store: Store,
    /// The link naming the running system (`/run/current-system`).
    pub current_link: PathBuf,
    /// Where detached activations keep their log and exit status.
    pub work_dir: PathBuf,
    pub detach: Detach,
    pub layout: Layout,
    /// `NIX_CONFIG` for the local `nix copy`.
    pub nix_config: Option<String>,
    pub substitute_on_destination: bool,
    pub timeouts: Timeouts,
    /// The one SSH connection every command of this host shares.
    control: Arc<Control>,
}

/// A master connection (`ssh -M -N`) and its control socket. Hosts rate-limit new SSH
/// connections (the nftables ruleset allows 10 a minute per source), and a deploy runs
/// dozens of commands per host: all of them, `nix copy` included, ride this one
/// connection. Clients use `ControlMaster=no`: they never become a master themselves
/// (a master that inherits a caller's pipes is what hangs `nix copy`, NixOS/nix#3017), and
/// fall back to a connection of their own when the master is gone.
#[derive(Debug)]
struct Control {
    dir: Option<tempfile::TempDir>,
    master: Mutex<Option<Child>>,
}

impl Control {
    fn new() -> Self {
        Control { dir: tempfile::Builder::new().prefix("nixstack-ssh-").tempdir().ok(), master: Mutex::new(None) }
    }

    fn socket(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("master"))
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        if let Some(mut child) = self.master.get_mut().ok().and_then(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl SshHost {
    /// A NixOS machine at the spec's `ssh_target` (`user@host[:port]`).
    pub fn nixos(host: &crate::topology::Host) -> Self {
        let target = host.ssh();
        SshHost {
            name: host.name.clone(),
            user: target.user,
            address: target.host,
            port: target.port,
            identity: None,
            known_hosts: None,
            netns: None,
            store: Store::system(),
            current_link: PathBuf::from("/run/current-system"),
            work_dir: PathBuf::from("/var/lib/nixstack/deploy"),
            detach: Detach::Auto,
            layout: Layout::nixos(),
            nix_config: None,
            substitute_on_destination: false,
            timeouts: Timeouts::nixos(),
            control: Arc::new(Control::new()),
        }
    }

    /// A lab host under `root`: its sshd on the private address, reached from the admin
    /// namespace `netns` with the lab's admin key; its own chroot Nix store.
    pub fn lab(host: &crate::topology::Host, root: &Path, identity: &Path, known_hosts: &Path, netns: &str) -> Self {
        let layout = Layout::lab_at(root, &host.name);
        SshHost {
            name: host.name.clone(),
            user: "root".into(),
            address: host.address.to_string(),
            port: None,
            identity: Some(identity.to_path_buf()),
            known_hosts: Some(known_hosts.to_path_buf()),
            netns: Some(netns.to_string()),
            store: Store::chroot(&closure::lab_store_root(&layout)),
            current_link: layout.run.join("current-system"),
            work_dir: layout.state.join("deploy"),
            detach: Detach::Setsid,
            layout,
            nix_config: Some(closure::OFFLINE_NIX_CONFIG.into()),
            substitute_on_destination: false,
            timeouts: Timeouts::lab(),
            control: Arc::new(Control::new()),
        }
    }

    /// Options of every `ssh` of this host: the master's socket as a client (see [`Control`]).
    fn ssh_options(&self) -> Vec<String> {
        let mut options = self.connection_options();
        let path = self.control.socket().map_or_else(|| "none".to_string(), |p| p.display().to_string());
        options.extend(["-o".into(), "ControlMaster=no".into(), "-o".into(), format!("ControlPath={path}")]);
        options
    }

    /// Starts the master connection unless it runs; waits (bounded by the connect
    /// timeout) for its socket. A master that cannot connect is not an error here: the
    /// command that follows connects itself and reports why it could not.
    fn ensure_master(&self) {
        let Some(socket) = self.control.socket() else { return };
        let mut master = self.control.master.lock().expect("ssh master lock");
        if let Some(child) = master.as_mut() {
            if matches!(child.try_wait(), Ok(None)) && socket.exists() {
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&socket);
        }
        // Long-lived (it outlives this call), so spawned here rather than run to completion.
        let mut command = self
            .local("ssh")
            .args(self.connection_options())
            .args(["-M", "-N", "-o", "ControlPersist=no", "-o"])
            .arg(format!("ControlPath={}", socket.display()))
            .arg(self.target())
            .command();
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let Ok(mut child) = command.spawn() else { return };
        // Until it is up or gone: a command that went around a master still connecting
        // would spend another of the host's few new connections a minute.
        let deadline = Instant::now() + Duration::from_secs(CONNECT_TIMEOUT_SECS + 10);
        while !socket.exists() && Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        *master = Some(child);
    }

    fn connection_options(&self) -> Vec<String> {
        let connect_timeout = format!("ConnectTimeout={CONNECT_TIMEOUT_SECS}");
        let mut options: Vec<String> = [
            connect_timeout.as_str(),
            "BatchMode=yes",
            "ServerAliveInterval=5",
            "ServerAliveCountMax=3",
            "StrictHostKeyChecking=accept-new",
            "LogLevel=ERROR",
        ]
        .iter()
        .flat_map(|o| ["-o".to_string(), o.to_string()])
        .collect();
        if let Some(known) = &self.known_hosts {
            options.extend(["-o".into(), format!("UserKnownHostsFile={}", known.display())]);
        }
        if let Some(identity) = &self.identity {
            options.extend(["-o".into(), "IdentitiesOnly=yes".into(), "-i".into(), identity.display().to_string()]);
        }
        if let Some(port) = self.port {
            options.extend(["-p".into(), port.to_string()]);
        }
        options
    }

    /// `program`, inside the namespace when there is one.
    fn local(&self, program: &str) -> Cmd {
        Cmd::new(program).netns_opt(self.netns.as_deref())
    }

    fn target(&self) -> String {
        format!("{}@{}", self.user, self.address)
    }

    /// Runs `body` with `sh` on the host, the script on stdin (never in arguments, where
    /// other users could read it). The script is one block, parsed before it runs, so its
    /// commands cannot read the rest of it as their input.
    fn script(&self, body: &str, timeout: Duration) -> Result<RunOutput, HostError> {
        self.ensure_master();
        let script = format!("{{\n{body}\n}} </dev/null\n");
        self.local("ssh")
            .args(self.ssh_options())
            .arg("-T")
            .arg(self.target())
            .arg("--")
            .arg(if self.user == "root" { "sh -s" } else { "sudo -n sh -s" })
            .stdin(script)
            .timeout(timeout)
            .run()
            .map(|o| RunOutput { stdout: o.stdout, stderr: o.stderr })
            .map_err(|error| HostError::Command { host: self.name.clone(), error: Box::new(error) })
    }

    /// The host's store as `nix copy` reaches it: `ssh-ng://` with its store as the
    /// remote daemon's `--store` (`remote-store=`).
    fn store_url(&self) -> String {
        let mut query = Vec::new();
        if let Some(uri) = &self.store.uri {
            query.push(format!("remote-store={}", percent_encode(uri)));
        }
        format!(
            "ssh-ng://{}{}",
            self.target(),
            if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) }
        )
    }

    fn store_flag(&self) -> String {
        self.store.uri.as_ref().map(|uri| format!("--store {} ", shell_quote(uri))).unwrap_or_default()
    }

    fn profile(&self) -> PathBuf {
        host::system_profile(&self.store.root)
    }

    /// Starts `command` detached on the host and waits (bounded) for its exit status,
    /// reconnecting if the connection drops meanwhile.
    fn run_detached(&self, command: &str, path: &StorePath, goal: Goal) -> Result<String, HostError> {
        let id = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        );
        let work = self.work_dir.join(&id);
        let w = shell_quote(&work.display().to_string());
        let run_sh =
            format!("{{ {command} ; }} > {w}/log 2>&1\necho $? > {w}/status.tmp\nmv {w}/status.tmp {w}/status\n");
        let systemd = self.detach == Detach::Auto;
        let launch = format!(
            "set -eu\nmkdir -p {w}\ncat > {w}/run.sh <<'NIXSTACK_RUN'\n{run_sh}NIXSTACK_RUN\n\
             if {systemd} && [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then\n\
               systemd-run --unit=nixstack-activate-{id} --collect --quiet /bin/sh {w}/run.sh\n\
             else\n\
               setsid nohup /bin/sh {w}/run.sh </dev/null >/dev/null 2>&1 &\n\
             fi\necho launched"
        );
        self.script(&launch, self.timeouts.command)?;
        let poll = format!(
            "w={w}; i=0\nwhile [ ! -e \"$w/status\" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done\n\
             if [ -e \"$w/status\" ]; then echo \"status=$(cat \"$w/status\")\"; else echo running; fi\n\
             echo '--- log ---'; tail -n {TAIL_LINES} \"$w/log\" 2>/dev/null || true"
        );
        let deadline = Instant::now() + self.timeouts.activation;
        let mut last_error: Option<HostError>;
        loop {
            match self.script(&poll, self.timeouts.command.max(Duration::from_secs(20))) {
                Ok(out) => {
                    let (head, log) = out.stdout.split_once("--- log ---\n").unwrap_or((&out.stdout, ""));
                    if let Some(status) = head.trim().strip_prefix("status=") {
                        if status == "0" {
                            let _ = self.script(&format!("rm -rf {w}"), self.timeouts.command);
                            return Ok(log.to_string());
                        }
                        return Err(HostError::Activation {
                            host: self.name.clone(),
                            failure: Box::new(ActivationFailure {
                                goal: goal.as_str(),
                                path: path.to_string(),
                                command: command.to_string(),
                                status: format!("exit code {status}"),
                                headline: headline(log, "", status),
                                tail: indent(log.trim_end()),
                            }),
                        });
                    }
                    last_error = None;
                }
                // The connection dropped (the activation may restart sshd or the network): retry.
                Err(e) => last_error = Some(e),
            }
            if Instant::now() >= deadline {
                let why = last_error.map(|e| format!(" (last poll: {e})")).unwrap_or_default();
                return Err(HostError::Activation {
                    host: self.name.clone(),
                    failure: Box::new(ActivationFailure {
                        goal: goal.as_str(),
                        path: path.to_string(),
                        command: command.to_string(),
                        status: "still running".into(),
                        headline: format!(
                            "no exit status after {:.0}s{why}; it was left running, its log is {}/log",
                            self.timeouts.activation.as_secs_f64(),
                            work.display()
                        ),
                        tail: String::new(),
                    }),
                });
            }
            if last_error.is_some() {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }

    /// `nix copy <direction> <the host's store> path` (`--to` or `--from`) over the shared
    /// SSH connection, unsigned paths accepted (`--no-check-sigs`).
    fn nix_copy(&self, direction: &str, path: &StorePath, substitute_on_destination: bool) -> Result<(), HostError> {
        let url = self.store_url();
        self.ensure_master();
        let mut command = self
            .local("nix")
            .args(["--extra-experimental-features", "nix-command", "copy", direction, &url])
            .arg("--no-check-sigs");
        if substitute_on_destination {
            command = command.arg("--substitute-on-destination");
        }
        command =
            command.arg(path.as_str()).env("NIX_SSHOPTS", self.ssh_options().join(" ")).timeout(self.timeouts.copy);
        if let Some(config) = &self.nix_config {
            command = command.env("NIX_CONFIG", config);
        }
        command
            .run()
            .map(|_| ())
            .map_err(|error| HostError::Command { host: self.name.clone(), error: Box::new(error) })
    }

    /// The command that activates `path` with `goal`.
    fn activation(&self, path: &StorePath, goal: Goal) -> String {
        format!(
            "{} {}",
            shell_quote(&path.under(&self.store.root).join("bin/switch-to-configuration").display().to_string()),
            goal.as_str()
        )
    }
}

impl Host for SshHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn current_system(&self) -> Result<Option<StorePath>, HostError> {
        let link = shell_quote(&self.current_link.display().to_string());
        let out = self.script(&format!("if [ -L {link} ]; then readlink {link}; fi"), self.timeouts.command)?;
        let text = out.stdout.trim();
        if text.is_empty() {
            return Ok(None);
        }
        StorePath::parse(text).map(Some).map_err(|detail| HostError::Other {
            host: self.name.clone(),
            detail: format!("{} is not a store path: {detail}", self.current_link.display()),
        })
    }

    fn copy_closure(&self, path: &StorePath) -> Result<(), HostError> {
        // Paths built here are unsigned; the remote daemon trusts a root SSH login.
        self.nix_copy("--to", path, self.substitute_on_destination)
    }

    fn fetch_closure(&self, path: &StorePath) -> Result<(), HostError> {
        // The host's paths were built elsewhere and are unsigned; we asked for them.
        self.nix_copy("--from", path, false)
    }

    fn upload_secrets(&self, files: &[SecretFile]) -> Result<UploadReport, HostError> {
        let dir = shell_quote(&self.layout.secrets.display().to_string());
        let mut body = format!(
            "set -eu\numask 077\nd={dir}\nmkdir -p \"$d\"\ng=$(stat -c %g \"$d\")\n\
             if [ \"$g\" = 0 ]; then mode=600; else mode=640; fi\n\
             put() {{\n  t=$(mktemp \"$d/.upload.XXXXXX\")\n  base64 -d > \"$t\"\n\
               if cmp -s \"$t\" \"$d/$1\"; then rm -f \"$t\"; echo \"unchanged $1\"\n\
               else chmod \"$mode\" \"$t\"; chgrp \"$g\" \"$t\"; mv -f \"$t\" \"$d/$1\"; echo \"updated $1\"; fi\n}}\n"
        );
        for file in files {
            if file.name.is_empty() || file.name.contains('/') || file.name.starts_with('.') {
                return Err(HostError::Other {
                    host: self.name.clone(),
                    detail: format!("secret name {:?} is not a plain file name", file.name),
                });
            }
            let bytes = std::fs::read(&file.source).map_err(|e| HostError::Other {
                host: self.name.clone(),
                detail: format!("cannot read secret {}: {e} (run `nixstack secrets init`)", file.source.display()),
            })?;
            body.push_str(&format!(
                "put {} <<'NIXSTACK_SECRET'\n{}\nNIXSTACK_SECRET\n",
                shell_quote(&file.name),
                base64(&bytes)
            ));
        }
        let out = self.script(&body, self.timeouts.command)?;
        let mut report = UploadReport::default();
        for line in out.stdout.lines() {
            match line.split_once(' ') {
                Some(("updated", name)) => report.updated.push(name.to_string()),
                Some(("unchanged", name)) => report.unchanged.push(name.to_string()),
                _ => {}
            }
        }
        Ok(report)
    }

    fn reload_tls(&self, reloads: &[TlsReload]) -> Result<Vec<String>, HostError> {
        if reloads.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.script(&reload_tls_script(reloads, self.detach), self.timeouts.command)?;
        Ok(out.stdout.lines().filter_map(|l| l.strip_prefix("reloaded ")).map(str::to_string).collect())
    }

    fn switch(&self, path: &StorePath, goal: Goal) -> Result<String, HostError> {
        let switch = path.under(&self.store.root).join("bin/switch-to-configuration");
        let mut prepare = format!(
            "set -eu\nif [ ! -x {s} ]; then echo \"{p} has no bin/switch-to-configuration in the host's store: not copied, or not a system\" >&2; exit 1; fi\n",
            s = shell_quote(&switch.display().to_string()),
            p = path
        );
        if goal.should_switch_profile() {
            prepare.push_str(&format!(
                "nix-env {}-p {} --set {}\n",
                self.store_flag(),
                shell_quote(&self.profile().display().to_string()),
                path
            ));
        }
        self.script(&prepare, self.timeouts.command)?;
        self.run_detached(&self.activation(path, goal), path, goal)
    }

    fn rollback(&self, previous: Option<&StorePath>, goal: Goal) -> Result<StorePath, HostError> {
        let target = if goal.should_switch_profile() {
            let profile = shell_quote(&self.profile().display().to_string());
            let out = self.script(
                &format!("set -eu\nnix-env {}-p {profile} --rollback >&2\ngen=$(readlink {profile})\ncase \"$gen\" in /*) readlink \"$gen\" ;; *) readlink \"$(dirname {profile})/$gen\" ;; esac", self.store_flag()),
                self.timeouts.command,
            )?;
            StorePath::parse(out.stdout.trim()).map_err(|detail| HostError::Other {
                host: self.name.clone(),
                detail: format!("after nix-env --rollback the profile names no store path: {detail}"),
            })?
        } else {
            previous.cloned().ok_or_else(|| HostError::Other {
                host: self.name.clone(),
                detail: "no previous system is known to roll back to".into(),
            })?
        };
        self.run_detached(&self.activation(&target, goal), &target, goal)?;
        Ok(target)
    }

    fn migrate(&self, system: &StorePath) -> Result<Option<String>, HostError> {
        // A migration may take as long as an activation may.
        let out = self.script(
            &super::migrate::script(system, &self.store.root, Path::new(super::migrate::RUNTIME_UNITS)),
            self.timeouts.activation,
        )?;
        Ok((out.stdout.trim() != super::migrate::NONE).then_some(out.stdout))
    }

    fn run(&self, script: &str) -> Result<RunOutput, HostError> {
        self.script(script, self.timeouts.command)
    }
}

/// Percent-encodes a store URI parameter value (`local?root=/x` inside `ssh-ng://...?`).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Standard base64 with padding (secrets travel inside a shell script as base64).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push('\n');
        }
        let n =
            (chunk[0] as u32) << 16 | (*chunk.get(1).unwrap_or(&0) as u32) << 8 | *chunk.get(2).unwrap_or(&0) as u32;
        for j in 0..4 {
            if j <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * j) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The script that reloads `reloads` on a host. A unit reloads through systemd
/// (`systemctl reload`, which runs its `ExecReload=`) where the host booted with it and
/// `detach` allows it; the lab's hosts (whose machine's systemd is not theirs) run the
/// recorded `ExecReload=` lines themselves, `$MAINPID` read from the unit's pid file. SQL
/// runs on the server's socket as root (unix_socket authentication).
pub fn reload_tls_script(reloads: &[TlsReload], detach: Detach) -> String {
    let mut s = String::from("set -eu\n");
    for reload in reloads {
        match reload {
            TlsReload::Unit { service, unit, exec_reload, pid_file } => {
                let recorded: Vec<String> = exec_reload
                    .iter()
                    .map(|argv| {
                        argv.iter()
                            .map(|w| if w == "$MAINPID" { "\"$MAINPID\"".to_string() } else { shell_quote(w) })
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect();
                let recorded = format!(
                    "MAINPID=$(cat {})\n  {}",
                    shell_quote(&pid_file.display().to_string()),
                    recorded.join("\n  ")
                );
                match detach {
                    Detach::Auto => s.push_str(&format!(
                        "if [ -d /run/systemd/system ]; then\n  systemctl reload {}\nelse\n  {recorded}\nfi\n",
                        shell_quote(unit)
                    )),
                    Detach::Setsid => s.push_str(&format!("{{\n  {recorded}\n}}\n")),
                }
                s.push_str(&format!("echo 'reloaded {}: ExecReload of {unit}'\n", service.name()));
            }
            TlsReload::Sql { service, socket, statements } => {
                s.push_str(&format!(
                    "mysql --socket={} -N -B -e {}\n",
                    shell_quote(&socket.display().to_string()),
                    shell_quote(&statements.replace('\n', " "))
                ));
                s.push_str(&format!(
                    "echo 'reloaded {}: {}'\n",
                    service.name(),
                    statements.trim().replace('\n', " ").replace('\'', "")
                ));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_coreutils() {
        let input: Vec<u8> = (0u8..=255).chain(b"secret\n".iter().copied()).collect();
        let ours = base64(&input);
        let decoded = Cmd::new("base64")
            .arg("-d")
            .stdin(ours.as_bytes())
            .timeout(Duration::from_secs(10))
            .run()
            .expect("base64 -d (coreutils) decodes it");
        assert_eq!(decoded.stdout.into_bytes(), String::from_utf8_lossy(&input).into_owned().into_bytes());
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }

    #[test]
    fn store_uri_is_encoded_for_the_ssh_ng_query() {
        assert_eq!(percent_encode("local?root=/var/lib/x/nix"), "local%3Froot%3D/var/lib/x/nix");
    }

    #[test]
    fn nixos_target_parses_user_host_and_port() {
        let topology = crate::topology::compile(&crate::spec::SpecSource::embedded_default()).unwrap();
        let mut host = topology.host("web1").unwrap().clone();
        let ssh = SshHost::nixos(&host);
        assert_eq!((ssh.user.as_str(), ssh.address.as_str(), ssh.port), ("root", "10.10.0.21", None));
        host.ssh_target = "deploy@web1.example.com:2222".into();
        let ssh = SshHost::nixos(&host);
        assert_eq!((ssh.user.as_str(), ssh.address.as_str(), ssh.port), ("deploy", "web1.example.com", Some(2222)));
    }
}
