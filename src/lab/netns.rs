//! Network namespaces: create, delete, enter from a thread, and find the processes inside.

use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::cmd::Cmd;

/// Where `ip netns` keeps its namespace handles.
pub const NETNS_DIR: &str = "/run/netns";

pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

pub fn exists(name: &str) -> bool {
    path(name).exists()
}

pub fn add(name: &str) -> Result<()> {
    Cmd::new("ip").args(["netns", "add", name]).run()?;
    Ok(())
}

pub fn delete(name: &str) -> Result<()> {
    Cmd::new("ip").args(["netns", "delete", name]).run()?;
    Ok(())
}

/// The inode identifying the namespace (what `/proc/<pid>/ns/net` of its processes points to).
pub fn inode(name: &str) -> Option<u64> {
    std::fs::metadata(path(name)).ok().map(|m| m.ino())
}

/// Every namespace `ip netns` knows, sorted.
pub fn list() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(NETNS_DIR)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Pids of every process whose network namespace is `name` (what `ip netns pids` prints).
pub fn pids(name: &str) -> Vec<u32> {
    let Some(target) = inode(name) else { return Vec::new() };
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return pids };
    for entry in entries.filter_map(|e| e.ok()) {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if std::fs::metadata(format!("/proc/{pid}/ns/net")).map(|m| m.ino()).ok() == Some(target) {
            pids.push(pid);
        }
    }
    pids
}

/// Runs `f` on a thread that has entered namespace `name`. Threads `f` spawns inherit
/// the namespace, and sockets created there belong to it.
pub fn run_in<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    let handle = std::fs::File::open(path(name)).with_context(|| format!("network namespace {name} does not exist"))?;
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                // SAFETY: setns on the calling thread with a namespace fd we hold open; it
                // changes only this thread's network namespace.
                let rc = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    return Err(anyhow::anyhow!(
                        "cannot enter network namespace {name}: {}",
                        std::io::Error::last_os_error()
                    ));
                }
                Ok(f())
            })
            .join()
            .map_err(|_| anyhow::anyhow!("a thread in namespace {name} panicked"))?
    })
}
