//! `deploy --dry-run --diff-closures`: per host, what the new system closure changes
//! against the one the host runs: Nix's own `nix store diff-closures` (packages, versions,
//! sizes), and, because that groups by package name and version and so says nothing about
//! a rebuilt path of the same name (a changed config), the store paths that differ and,
//! for small ones, which files inside them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::closure::{self, StorePath, Systems};
use super::host::Host;
use crate::process;

/// A changed store path is opened and compared file by file only up to this size (its
/// NAR size, old and new): configs and units, not rebuilt packages.
pub const FILE_DIFF_MAX_NAR: u64 = 1 << 20;

/// Files named per changed store path, at most.
pub const FILES_SHOWN: usize = 20;

/// How long each local `nix` query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(120);

/// One host's closure diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum HostDiff {
    /// The host already runs the new system.
    Unchanged {
        system: StorePath,
    },
    /// The host runs no system yet (never deployed): everything is new.
    NewHost {
        new: StorePath,
    },
    Changed(Box<ClosureDiff>),
    /// The diff could not be made (host unreachable, fetch failed, ...).
    Failed {
        error: String,
    },
}

/// What changes from `old` to `new`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClosureDiff {
    pub old: StorePath,
    pub new: StorePath,
    /// Whether `old` had to be fetched from the host into the local store.
    pub fetched: bool,
    /// `nix store diff-closures old new`, line by line (empty: no package, version or
    /// size change above its 8 KiB threshold).
    pub diff_closures: Vec<String>,
    /// Paths of the same name in both closures with different contents.
    pub changed: Vec<ChangedPath>,
    /// Paths only in the new closure (no same-named path left it).
    pub added: Vec<StorePath>,
    /// Paths only in the old closure.
    pub removed: Vec<StorePath>,
}

/// A store path rebuilt under the same name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedPath {
    pub name: String,
    pub old: StorePath,
    pub new: StorePath,
    /// Files (relative to the path; `.` for a path that is one file) that differ, sorted;
    /// `None` when the path is too large to compare.
    pub files: Option<Vec<String>>,
    /// More differing files than `files` lists.
    pub more_files: usize,
}

/// The closure diff of every host in `hosts_in_order`: builds their new systems in one
/// `nix build`, reads each host's current system, fetches it when the local store lacks
/// it, and compares. A host whose diff fails is reported as [`HostDiff::Failed`]; only a
/// failed build fails the whole.
pub fn diff_hosts(
    systems: &Systems,
    hosts: &BTreeMap<String, Box<dyn Host>>,
    hosts_in_order: &[String],
    build_timeout: Duration,
) -> Result<Vec<(String, HostDiff)>, closure::BuildError> {
    let built = closure::build(systems, hosts_in_order, build_timeout)?;
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = hosts_in_order
            .iter()
            .map(|name| {
                let new = &built[name];
                let host = hosts.get(name);
                scope.spawn(move || match host {
                    Some(host) => diff_host(systems, host.as_ref(), new),
                    None => HostDiff::Failed { error: format!("{name}: no such host to ask for its current system") },
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| HostDiff::Failed { error: "the diff panicked".into() }))
            .collect::<Vec<_>>()
    });
    Ok(hosts_in_order.iter().cloned().zip(results).collect())
}

/// One host: its current system against `new` (valid in the local store).
pub fn diff_host(systems: &Systems, host: &dyn Host, new: &StorePath) -> HostDiff {
    let old = match host.current_system() {
        Ok(Some(old)) => old,
        Ok(None) => return HostDiff::NewHost { new: new.clone() },
        Err(e) => return HostDiff::Failed { error: e.to_string() },
    };
    if &old == new {
        return HostDiff::Unchanged { system: old };
    }
    let fetched = match is_valid(systems, &old) {
        Ok(true) => false,
        Ok(false) => match host.fetch_closure(&old) {
            Ok(()) => true,
            Err(e) => {
                return HostDiff::Failed { error: format!("cannot fetch its current system {old} to compare: {e}") }
            }
        },
        Err(e) => return HostDiff::Failed { error: format!("{}: {e}", host.name()) },
    };
    match compare(systems, &old, new) {
        Ok(mut diff) => {
            diff.fetched = fetched;
            HostDiff::Changed(Box::new(diff))
        }
        Err(e) => HostDiff::Failed { error: format!("{}: {e}", host.name()) },
    }
}

/// Whether `path` is valid in the local store (then so is its closure).
fn is_valid(systems: &Systems, path: &StorePath) -> Result<bool, String> {
    let mut command = systems.nix();
    command.args(["path-info", "--json", path.as_str()]);
    match process::run(command, None, QUERY_TIMEOUT) {
        Ok(out) => {
            let infos: Vec<serde_json::Value> = serde_json::from_str(&out.stdout)
                .map_err(|e| format!("`nix path-info --json` printed something else ({e}): {}", out.stdout.trim()))?;
            // Nix 2.8 lists an invalid path as `{"path": ..., "valid": false}` with exit 0.
            Ok(infos
                .iter()
                .any(|i| i["path"] == path.as_str() && i.get("valid") != Some(&serde_json::Value::Bool(false))))
        }
        Err(process::CommandError::Failed { headline, .. }) if headline.contains("is not valid") => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// Compares two closures valid in the local store.
pub fn compare(systems: &Systems, old: &StorePath, new: &StorePath) -> Result<ClosureDiff, String> {
    let mut command = systems.nix();
    command.args(["store", "diff-closures", old.as_str(), new.as_str()]);
    let out = process::run(command, None, QUERY_TIMEOUT).map_err(|e| e.to_string())?;
    let diff_closures = out.stdout.lines().map(strip_ansi).filter(|l| !l.trim().is_empty()).collect();

    let old_paths = closure_sizes(systems, old)?;
    let new_paths = closure_sizes(systems, new)?;
    let only_old: BTreeSet<&StorePath> = old_paths.keys().filter(|p| !new_paths.contains_key(*p)).collect();
    let only_new: BTreeSet<&StorePath> = new_paths.keys().filter(|p| !old_paths.contains_key(*p)).collect();
    let by_name = |set: &BTreeSet<&StorePath>| {
        let mut names: BTreeMap<String, Vec<StorePath>> = BTreeMap::new();
        for path in set {
            names.entry(path.name().to_string()).or_default().push((*path).clone());
        }
        names
    };
    let (old_names, new_names) = (by_name(&only_old), by_name(&only_new));
    let mut changed = Vec::new();
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for (name, olds) in &old_names {
        match (olds.as_slice(), new_names.get(name).map(Vec::as_slice)) {
            // One path of this name left and one came: the same thing, rebuilt.
            ([o], Some([n])) => {
                let small = old_paths[o] <= FILE_DIFF_MAX_NAR && new_paths[n] <= FILE_DIFF_MAX_NAR;
                let (files, more_files) = if small {
                    let mut files = differing_files(Path::new(o.as_str()), Path::new(n.as_str()));
                    let more = files.len().saturating_sub(FILES_SHOWN);
                    files.truncate(FILES_SHOWN);
                    (Some(files), more)
                } else {
                    (None, 0)
                };
                changed.push(ChangedPath { name: name.clone(), old: o.clone(), new: n.clone(), files, more_files });
            }
            _ => removed.extend(olds.iter().cloned()),
        }
    }
    for (name, news) in &new_names {
        let paired = matches!((old_names.get(name).map(Vec::as_slice), news.as_slice()), (Some([_]), [_]));
        if !paired {
            added.extend(news.iter().cloned());
        }
    }
    added.sort();
    removed.sort();
    Ok(ClosureDiff { old: old.clone(), new: new.clone(), fetched: false, diff_closures, changed, added, removed })
}

/// Every path of the closure of `path` with its NAR size (`nix path-info -r --json`).
fn closure_sizes(systems: &Systems, path: &StorePath) -> Result<BTreeMap<StorePath, u64>, String> {
    let mut command = systems.nix();
    command.args(["path-info", "--recursive", "--json", path.as_str()]);
    let out = process::run(command, None, QUERY_TIMEOUT).map_err(|e| e.to_string())?;
    #[derive(serde::Deserialize)]
    struct Info {
        path: String,
        #[serde(rename = "narSize", default)]
        nar_size: u64,
    }
    let infos: Vec<Info> = serde_json::from_str(&out.stdout)
        .map_err(|e| format!("`nix path-info --recursive --json` printed something else ({e})"))?;
    infos.into_iter().map(|i| StorePath::parse(&i.path).map(|p| (p, i.nar_size))).collect()
}

/// What a store path holds at one relative path (what a NAR records: type, executable
/// bit, contents, link target).
#[derive(Debug, PartialEq, Eq)]
enum Node {
    Dir,
    File { executable: bool, bytes: Vec<u8> },
    Link(std::path::PathBuf),
    Unreadable,
}

/// Relative paths whose node differs between the trees at `a` and `b`, sorted.
fn differing_files(a: &Path, b: &Path) -> Vec<String> {
    let (ta, tb) = (tree(a), tree(b));
    let names: BTreeSet<&String> = ta.keys().chain(tb.keys()).collect();
    names.into_iter().filter(|n| ta.get(*n) != tb.get(*n)).cloned().collect()
}

fn tree(root: &Path) -> BTreeMap<String, Node> {
    fn walk(path: &Path, rel: String, out: &mut BTreeMap<String, Node>) {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            out.insert(rel, Node::Unreadable);
            return;
        };
        let node = if meta.file_type().is_symlink() {
            std::fs::read_link(path).map(Node::Link).unwrap_or(Node::Unreadable)
        } else if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(path) {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let child = if rel == "." { name } else { format!("{rel}/{name}") };
                    walk(&entry.path(), child, out);
                }
            }
            Node::Dir
        } else {
            std::fs::read(path)
                .map(|bytes| Node::File { executable: meta.permissions().mode() & 0o111 != 0, bytes })
                .unwrap_or(Node::Unreadable)
        };
        out.insert(rel, node);
    }
    let mut out = BTreeMap::new();
    walk(root, ".".into(), &mut out);
    out
}

/// Nix colours its output even into a pipe in some versions: keep the text.
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The diffs for humans: a section after the plan, one block per host in deploy order.
pub fn describe(diffs: &[(String, HostDiff)]) -> String {
    let mut out = String::from("closure diff (new system against the one each host runs):\n");
    for (host, diff) in diffs {
        match diff {
            HostDiff::Unchanged { system } => {
                let _ = writeln!(out, "  {host}: unchanged ({system})");
            }
            HostDiff::NewHost { new } => {
                let _ = writeln!(out, "  {host}: new host (runs no system yet; would get {new})");
            }
            HostDiff::Failed { error } => {
                let _ = writeln!(out, "  {host}: no diff: {}", error.lines().collect::<Vec<_>>().join("\n      "));
            }
            HostDiff::Changed(diff) => {
                let _ = writeln!(
                    out,
                    "  {host}: {} → {}{}",
                    diff.old,
                    diff.new,
                    if diff.fetched { " (old closure fetched from the host)" } else { "" }
                );
                if diff.diff_closures.is_empty() {
                    let _ = writeln!(out, "    nix store diff-closures: no package, version or size change");
                } else {
                    let _ = writeln!(out, "    nix store diff-closures:");
                    for line in &diff.diff_closures {
                        let _ = writeln!(out, "      {line}");
                    }
                }
                for path in &diff.changed {
                    let files = match &path.files {
                        Some(files) if files.is_empty() => String::new(),
                        Some(files) => format!(
                            ": {}{}",
                            files.join(", "),
                            if path.more_files > 0 { format!(" and {} more", path.more_files) } else { String::new() }
                        ),
                        None => " (too large to compare file by file)".into(),
                    };
                    let _ = writeln!(out, "    changed {}{files}\n      {} → {}", path.name, path.old, path.new);
                }
                for path in &diff.added {
                    let _ = writeln!(out, "    added   {path}");
                }
                for path in &diff.removed {
                    let _ = writeln!(out, "    removed {path}");
                }
            }
        }
    }
    out
}

/// One JSON event per host (`{"event": "closure_diff", "host": ..., "status": ...}`).
pub fn events(diffs: &[(String, HostDiff)]) -> Vec<serde_json::Value> {
    diffs
        .iter()
        .map(|(host, diff)| {
            let mut value = serde_json::to_value(diff).unwrap_or_default();
            value["event"] = "closure_diff".into();
            value["host"] = host.as_str().into();
            value
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_colours_are_dropped() {
        assert_eq!(
            strip_ansi("\u{1b}[1mzlib\u{1b}[0m: 1.2 → 1.3, \u{1b}[31;1m+1.0 KiB\u{1b}[0m"),
            "zlib: 1.2 → 1.3, +1.0 KiB"
        );
    }

    #[test]
    fn file_trees_differ_by_content_mode_and_link() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for dir in [a.path(), b.path()] {
            std::fs::create_dir(dir.join("sub")).unwrap();
            std::fs::write(dir.join("same.conf"), "x").unwrap();
            std::fs::write(dir.join("script"), "#!/bin/sh").unwrap();
        }
        std::fs::write(a.path().join("sub/nginx.conf"), "listen 80;").unwrap();
        std::fs::write(b.path().join("sub/nginx.conf"), "listen 81;").unwrap();
        std::fs::set_permissions(b.path().join("script"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("/nix/store/a", b.path().join("etc")).unwrap();
        assert_eq!(differing_files(a.path(), b.path()), ["etc", "script", "sub/nginx.conf"]);
    }

    #[test]
    fn describe_and_events_name_every_host() {
        let p = |s: &str| StorePath::parse(&format!("/nix/store/{}-{s}", "a".repeat(32))).unwrap();
        let q = |s: &str| StorePath::parse(&format!("/nix/store/{}-{s}", "b".repeat(32))).unwrap();
        let diffs = vec![
            (
                "web1".to_string(),
                HostDiff::Changed(Box::new(ClosureDiff {
                    old: p("sys"),
                    new: q("sys"),
                    fetched: true,
                    diff_closures: vec![],
                    changed: vec![ChangedPath {
                        name: "configs".into(),
                        old: p("configs"),
                        new: q("configs"),
                        files: Some(vec!["nginx.conf".into()]),
                        more_files: 0,
                    }],
                    added: vec![],
                    removed: vec![],
                })),
            ),
            ("web2".to_string(), HostDiff::Unchanged { system: p("sys") }),
            ("web3".to_string(), HostDiff::NewHost { new: q("sys") }),
        ];
        let text = describe(&diffs);
        assert!(text.contains("  web1: /nix/store/aaaa"), "{text}");
        assert!(text.contains("    changed configs: nginx.conf\n"), "{text}");
        assert!(text.contains("  web2: unchanged"), "{text}");
        assert!(text.contains("  web3: new host"), "{text}");
        let events = events(&diffs);
        assert_eq!(events.len(), 3);
        assert_eq!(events[0]["status"], "changed");
        assert_eq!(events[0]["changed"][0]["files"][0], "nginx.conf");
        assert_eq!(events[1]["status"], "unchanged");
        assert_eq!(events[2]["status"], "new_host");
        assert!(events.iter().all(|e| e["event"] == "closure_diff"));
    }
}
