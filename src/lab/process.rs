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
    let namespace = std::fs::File::open(netns::path(&launch.netns)).with_context(|| format!("namespace {} is missing", launch.netns))?;
    let namespace_fd = namespace.as_raw_fd();
    let hostname = CString::new(launch.hostname.clone()).context("hostname with NUL")?;
    let mut command = Command::new(&launch.program);
    command.args(&launch.args).envs(launch.env.iter().map(|(k, v)| (k, v)));
    command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
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
            Ok(())
        });
    }
    let child = command.spawn().with_context(|| format!("cannot start {} in {} (run scripts/setup?)", launch.program, launch.netns))?;
    let pid = child.id();
    // The child is not waited for here; `reap` collects it if it dies while we run.
    drop(child);
    let start_time = start_time(pid).with_context(|| format!("{} exited at once; see {}", launch.program, launch.log.display()))?;
    Ok(Identity { pid, start_time })
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
    if fields.first().map(String::as_str) == Some("Z") || fields.get(19).and_then(|s| s.parse::<u64>().ok()) != Some(identity.start_time) {
        return false;
    }
    let Some(namespace) = netns::inode(netns) else { return false };
    std::fs::metadata(format!("/proc/{}/ns/net", identity.pid)).map(|m| m.ino()).ok() == Some(namespace)
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| bytes.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect::<Vec<_>>().join(" "))
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
