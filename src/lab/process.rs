//! Lab daemons as processes: spawn one detached inside a host's namespace (with the host's
//! own hostname), identify it later by pid + start time + namespace, and stop it.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::netns;

/// How to start one daemon in the foreground.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The namespace it runs in.
    pub netns: String,
    /// The hostname it sees (its own UTS namespace), e.g. `web1`.
    pub hostname: String,
    /// stdout and stderr are appended here.
    pub log: PathBuf,
    /// Who it runs as, as its systemd unit's `User=`/`Group=`/`SupplementaryGroups=` say;
    /// `None`: root.
    pub credentials: Option<Credentials>,
    /// The unit's `UMask=`.
    pub umask: u32,
}

/// A process's user, primary group, supplementary groups and the capabilities it keeps
/// (systemd's `AmbientCapabilities=`), resolved to numbers before the fork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// Capability numbers (`CAP_NET_BIND_SERVICE` = 10, ...).
    pub ambient: Vec<u32>,
}

/// What identifies a running process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub pid: u32,
    pub start_time: u64,
}

/// Starts `launch` detached (own session, no terminal, output to its log); returns its identity.
/// The process is not waited for: it outlives `nixstack lab up`.
pub fn spawn(launch: &Launch) -> Result<Identity> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log)
        .with_context(|| format!("cannot open log {}", launch.log.display()))?;
    let namespace = std::fs::File::open(netns::path(&launch.netns))
        .with_context(|| format!("namespace {} is missing", launch.netns))?;
    let mut command = unit_command(launch, &launch.program, &launch.args, &namespace)?;
    command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {} in {} (run scripts/setup?)", launch.program, launch.netns))?;
    let pid = child.id();
    // The child is not waited for here; `reap` collects it if it dies while we run.
    drop(child);
    let start_time =
        start_time(pid).with_context(|| format!("{} exited at once; see {}", launch.program, launch.log.display()))?;
    Ok(Identity { pid, start_time })
}

/// Runs `argv` as one of `launch`'s unit commands (`ExecStartPre=`, `ExecReload=`): in its
/// namespace, as its user with its capabilities, umask and environment; waits for it and
/// fails with its output when it fails.
pub fn run_unit_command(launch: &Launch, argv: &[String]) -> Result<String> {
    let namespace = std::fs::File::open(netns::path(&launch.netns))
        .with_context(|| format!("namespace {} is missing", launch.netns))?;
    let command = unit_command(launch, &argv[0], &argv[1..], &namespace)?;
    let output = crate::process::run(command, None, UNIT_COMMAND_TIMEOUT)?;
    Ok(format!("{}{}", output.stdout, output.stderr))
}

/// How long one of a unit's own commands may take (systemd's default `TimeoutStartSec=`
/// is 90 s for the whole start; a config check or a key setup takes seconds).
const UNIT_COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

/// The command `program args` set up as `launch`'s unit runs it: a clean environment holding
/// only the unit's, its own session and hostname, the host's namespace, the unit's umask,
/// user, groups and ambient capabilities.
fn unit_command(launch: &Launch, program: &str, args: &[String], namespace: &std::fs::File) -> Result<Command> {
    let namespace_fd = namespace.as_raw_fd();
    let hostname = CString::new(launch.hostname.clone()).context("hostname with NUL")?;
    let mut command = Command::new(program);
    // As systemd does: the daemon gets the unit's environment and nothing of ours.
    command.env_clear().args(args).envs(launch.env.iter().map(|(k, v)| (k, v))).current_dir("/");
    let credentials = launch.credentials.clone();
    let umask = launch.umask;
    // SAFETY: only async-signal-safe system calls between fork and exec; every value used
    // was prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setns(namespace_fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::unshare(libc::CLONE_NEWUTS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::sethostname(hostname.as_ptr(), hostname.as_bytes().len()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::umask(umask as libc::mode_t);
            if let Some(credentials) = &credentials {
                drop_privileges(credentials)?;
            }
            Ok(())
        });
    }
    Ok(command)
}

/// Becomes `credentials`' user keeping only its ambient capabilities, as systemd does for
/// `User=` with `AmbientCapabilities=`. Runs between fork and exec: system calls only.
///
/// # Safety
/// Only async-signal-safe calls; `credentials` was built before the fork.
unsafe fn drop_privileges(credentials: &Credentials) -> std::io::Result<()> {
    let fail = || Err(std::io::Error::last_os_error());
    if libc::setgroups(credentials.groups.len(), credentials.groups.as_ptr()) != 0 {
        return fail();
    }
    if libc::setgid(credentials.gid) != 0 {
        return fail();
    }
    // Keep the permitted set across setuid, then narrow it to the ambient capabilities.
    if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 {
        return fail();
    }
    if libc::setuid(credentials.uid) != 0 {
        return fail();
    }
    let mut mask: u64 = 0;
    for cap in &credentials.ambient {
        mask |= 1u64 << cap;
    }
    let header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let data = [
        CapData { effective: mask as u32, permitted: mask as u32, inheritable: mask as u32 },
        CapData { effective: (mask >> 32) as u32, permitted: (mask >> 32) as u32, inheritable: (mask >> 32) as u32 },
    ];
    if libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) != 0 {
        return fail();
    }
    for cap in &credentials.ambient {
        if libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong, *cap as libc::c_ulong, 0, 0)
            != 0
        {
            return fail();
        }
    }
    Ok(())
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Start time of `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22).
pub fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid).and_then(|fields| fields.get(19).and_then(|s| s.parse().ok()))
}

/// Fields of `/proc/<pid>/stat` after the command name (field 3 = state is index 0).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    Some(after_name.split_whitespace().map(String::from).collect())
}

/// Collects `pid` if it is our exited child (harmless otherwise), so that it does not
/// linger as a zombie that looks alive.
fn reap(pid: u32) {
    // SAFETY: waitpid with WNOHANG never blocks; on a pid that is not our child it fails
    // with ECHILD and does nothing.
    unsafe {
        libc::waitpid(pid as i32, std::ptr::null_mut(), libc::WNOHANG);
    }
}

/// Whether the process `identity` still runs in namespace `netns`: the pid exists, is not
/// a zombie, started at the recorded time and lives in that namespace. A recycled pid
/// fails the start-time check.
pub fn is_running(identity: Identity, netns: &str) -> bool {
    reap(identity.pid);
    let Some(fields) = stat_fields(identity.pid) else { return false };
    if fields.first().map(String::as_str) == Some("Z")
        || fields.get(19).and_then(|s| s.parse::<u64>().ok()) != Some(identity.start_time)
    {
        return false;
    }
    let Some(namespace) = netns::inode(netns) else { return false };
    std::fs::metadata(format!("/proc/{}/ns/net", identity.pid)).map(|m| m.ino()).ok() == Some(namespace)
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The short command name of `pid` (`/proc/<pid>/comm`).
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim().to_string()).unwrap_or_default()
}

pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) with a pid we verified belongs to us.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

/// Sends SIGTERM to the verified process, waits up to `grace`, then SIGKILLs it.
/// Returns false if it was not running (nothing was signalled).
pub fn stop(identity: Identity, netns: &str, grace: Duration) -> bool {
    if !is_running(identity, netns) {
        return false;
    }
    signal(identity.pid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !is_running(identity, netns) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if is_running(identity, netns) {
        signal(identity.pid, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_running(identity, netns) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    true
}

/// The identity of `pid` if it exists.
pub fn identity(pid: u32) -> Option<Identity> {
    start_time(pid).map(|start_time| Identity { pid, start_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit's user keeps exactly its ambient capabilities after the switch, as under systemd.
    #[test]
    fn a_dropped_process_keeps_only_its_ambient_capabilities() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            panic!("this test needs root (it switches users), as CI runs it");
        }
        let credentials = Credentials { uid: 65534, gid: 65534, groups: vec![65534], ambient: vec![10] };
        let mut command = Command::new("/bin/sh");
        command.env_clear().args(["-c", "id -u; grep -E '^Cap(Eff|Amb)' /proc/self/status"]);
        // SAFETY: drop_privileges makes system calls only.
        unsafe {
            command.pre_exec(move || drop_privileges(&credentials));
        }
        let output = command.output().expect("runs");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
        assert!(text.starts_with("65534\n"), "{text}");
        assert!(text.contains("CapAmb:\t0000000000000400"), "CAP_NET_BIND_SERVICE only: {text}");
    }
}
