//! Writes an artifact set into an output directory: plan (compare with what is there),
//! refuse hand-edited files, then stage every changed file in a temporary tree inside the
//! output directory and rename the files into place.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Component, Path};

use super::header::{self, sha256_hex, HeaderCheck};
use super::manifest::{Manifest, MANIFEST, PENDING, STATE_DIR};
use super::{Drift, Edit, EditKind, OutputError, Report, WriteMode};
use crate::render::Artifacts;

/// See [`super::write`].
pub fn write(out: &Path, artifacts: &Artifacts, mode: WriteMode, force: bool) -> Result<Report, OutputError> {
    for path in artifacts.keys() {
        validate(path)?;
    }
    // One writer at a time per output directory; `--check` writes nothing, not even a lock.
    let _lock = if mode.writes() { Some(lock(out)?) } else { None };

    let old = Manifest::read(out, MANIFEST)?.unwrap_or_default();
    let pending = Manifest::read(out, PENDING)?.unwrap_or_default();
    let new = Manifest::of(artifacts);
    let plan = plan(out, artifacts, &old, &pending)?;
    let manifest_text = new.to_text();
    let manifest_fresh = read_if_exists(&out.join(MANIFEST))?.as_deref() == Some(manifest_text.as_bytes());

    let mut report = Report {
        created: plan.create.clone(),
        updated: plan.update.clone(),
        unchanged: plan.unchanged.clone(),
        removed: plan.remove.clone(),
        edits: plan.edits.clone(),
        drift: Vec::new(),
    };

    if !mode.writes() {
        report.drift.extend(plan.create.iter().map(|path| Drift::Missing(path.clone())));
        report.drift.extend(plan.update.iter().map(|path| Drift::Different(path.clone())));
        report.drift.extend(plan.remove.iter().map(|path| Drift::Extra(path.clone())));
        if !manifest_fresh {
            let exists = out.join(MANIFEST).exists();
            report.drift.push(if exists { Drift::Different(MANIFEST.into()) } else { Drift::Missing(MANIFEST.into()) });
        }
        report.drift.sort();
        return Ok(report);
    }

    if !plan.edits.is_empty() && !force {
        return Err(OutputError::Edited { edits: plan.edits });
    }
    let pending_exists = out.join(PENDING).exists();
    if plan.create.is_empty() && plan.update.is_empty() && plan.remove.is_empty() && manifest_fresh && !pending_exists {
        return Ok(report);
    }
    apply(out, artifacts, &plan, &manifest_text)?;
    Ok(report)
}

#[derive(Debug, Default)]
struct Plan {
    create: Vec<String>,
    /// Existing files whose content changes (hand-edited ones only reach here with `--force`).
    update: Vec<String>,
    unchanged: Vec<String>,
    /// Files the writer owned that are no longer generated.
    remove: Vec<String>,
    edits: Vec<Edit>,
}

fn plan(out: &Path, artifacts: &Artifacts, old: &Manifest, pending: &Manifest) -> Result<Plan, OutputError> {
    let mut plan = Plan::default();
    for (path, text) in artifacts {
        match read_if_exists(&out.join(path))? {
            None => plan.create.push(path.clone()),
            Some(bytes) if bytes == text.as_bytes() => plan.unchanged.push(path.clone()),
            Some(bytes) => {
                if let Err(kind) = ownership(path, &bytes, old, pending) {
                    plan.edits.push(Edit { path: path.clone(), kind });
                }
                plan.update.push(path.clone());
            }
        }
    }
    // Files a previous write owned that this one no longer produces.
    let owned: BTreeSet<&String> = old.files.keys().chain(pending.files.keys()).collect();
    for path in owned {
        if artifacts.contains_key(path) {
            continue;
        }
        // A manifest is data on disk: never let it steer a removal outside the directory.
        validate(path)?;
        if let Some(bytes) = read_if_exists(&out.join(path))? {
            if ownership(path, &bytes, old, pending).is_err() {
                plan.edits.push(Edit { path: path.clone(), kind: EditKind::Orphan });
            }
            plan.remove.push(path.clone());
        }
    }
    plan.edits.sort();
    Ok(plan)
}

/// Whether an existing file that differs from the new artifact is still exactly what
/// nixstack wrote (then it may be replaced), or why not.
fn ownership(path: &str, bytes: &[u8], old: &Manifest, pending: &Manifest) -> Result<(), EditKind> {
    let hash = sha256_hex(bytes);
    if old.files.get(path) == Some(&hash) || pending.files.get(path) == Some(&hash) {
        return Ok(());
    }
    if path.ends_with(".nix") {
        match std::str::from_utf8(bytes).map(header::check) {
            Ok(HeaderCheck::Intact) => return Ok(()),
            Ok(HeaderCheck::Edited) => return Err(EditKind::HeaderMismatch),
            Ok(HeaderCheck::Absent) | Err(_) => {}
        }
    }
    if old.files.contains_key(path) || pending.files.contains_key(path) {
        Err(EditKind::ManifestMismatch)
    } else {
        Err(EditKind::Unowned)
    }
}

/// Stages, then moves into place. Until the first rename nothing outside
/// `.nixstack/` has changed; a failure there leaves the old tree as it was.
fn apply(out: &Path, artifacts: &Artifacts, plan: &Plan, manifest_text: &str) -> Result<(), OutputError> {
    let state = out.join(STATE_DIR);
    remove_stale_staging(&state)?;
    let staging = tempfile::Builder::new().prefix("tmp-").tempdir_in(&state).map_err(|source| OutputError::Io {
        action: "create a staging directory in",
        path: state.clone(),
        source,
    })?;

    // 1. Every new file's bytes, durable, in the staging tree (same file system as `out`).
    //    One file-system sync after writing them all, not an fsync per file: thousands of
    //    fsyncs (a large stack has several files per host) cost seconds of journal commits.
    let changed: Vec<&String> = plan.create.iter().chain(&plan.update).collect();
    let mut staged = Vec::with_capacity(changed.len());
    for (index, path) in changed.iter().enumerate() {
        let temp = staging.path().join(index.to_string());
        write_file(&temp, artifacts[*path].as_bytes())?;
        staged.push((temp, out.join(path)));
    }
    let manifest_temp = staging.path().join("manifest.json");
    write_file(&manifest_temp, manifest_text.as_bytes())?;
    sync_file_system(staging.path())?;

    // 2. The intent: the new manifest as `pending`, so a write interrupted during the
    //    renames is recognised (not taken for hand edits) by the next one.
    let pending_temp = staging.path().join("pending.json");
    write_durably(&pending_temp, manifest_text.as_bytes())?;
    rename(&pending_temp, &out.join(PENDING))?;
    sync_dir(&state)?;

    // 3. Renames: each file is replaced atomically.
    let mut touched_dirs = BTreeSet::new();
    for (temp, target) in &staged {
        let parent = target.parent().expect("artifact paths have a parent").to_path_buf();
        fs::create_dir_all(&parent).map_err(|source| OutputError::Io {
            action: "create",
            path: parent.clone(),
            source,
        })?;
        rename(temp, target)?;
        touched_dirs.insert(parent);
    }

    // 4. Files no longer generated, and the directories that held only them.
    for path in &plan.remove {
        let target = out.join(path);
        fs::remove_file(&target).map_err(|source| OutputError::Io {
            action: "remove",
            path: target.clone(),
            source,
        })?;
        let mut dir = target.parent().map(Path::to_path_buf);
        while let Some(current) = dir {
            if current == out || fs::remove_dir(&current).is_err() {
                touched_dirs.insert(current);
                break;
            }
            dir = current.parent().map(Path::to_path_buf);
        }
    }
    // The renames and removals, durable before the manifest says they are done: one sync of
    // the file system rather than one per directory (a directory noted early may have been
    // removed by a later removal; its parent is noted then).
    if touched_dirs.iter().any(|dir| dir.exists()) {
        sync_file_system(out)?;
    }

    // 5. The manifest last, then the intent is done.
    rename(&manifest_temp, &out.join(MANIFEST))?;
    let pending = out.join(PENDING);
    fs::remove_file(&pending).map_err(|source| OutputError::Io { action: "remove", path: pending, source })?;
    sync_dir(&state)?;
    Ok(())
}

/// Artifact paths are relative, stay inside the output directory, and never name what the
/// writer must not own: the operator's `local.nix`, `secrets/`, or the writer's state.
fn validate(path: &str) -> Result<(), OutputError> {
    let bad = |reason: &'static str| Err(OutputError::BadPath { path: path.to_string(), reason });
    let relative = Path::new(path);
    if path.is_empty() || path.ends_with('/') {
        return bad("it names no file");
    }
    // Checked on the string: `Path::components` silently drops interior `.` components.
    if path.split('/').any(|part| part.is_empty() || part == "." || part == "..")
        || !relative.components().all(|c| matches!(c, Component::Normal(_)))
    {
        return bad("artifact paths are relative, without `.` or `..`");
    }
    let first = relative.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or_default();
    if first == STATE_DIR || first == "secrets" {
        return bad("`.nixstack/` and `secrets/` are never generated");
    }
    if relative.file_name().is_some_and(|name| name == "local.nix") {
        return bad("local.nix belongs to the operator and is never generated");
    }
    Ok(())
}

fn lock(out: &Path) -> Result<File, OutputError> {
    let state = out.join(STATE_DIR);
    fs::create_dir_all(&state).map_err(|source| OutputError::Io { action: "create", path: state.clone(), source })?;
    let dir = File::open(&state).map_err(|source| OutputError::Io { action: "open", path: state.clone(), source })?;
    dir.lock().map_err(|source| OutputError::Io { action: "lock", path: state, source })?;
    Ok(dir)
}

/// Staging trees left by a write that died; safe to remove because we hold the lock.
fn remove_stale_staging(state: &Path) -> Result<(), OutputError> {
    let entries =
        fs::read_dir(state).map_err(|source| OutputError::Io { action: "list", path: state.to_path_buf(), source })?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("tmp-") {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, OutputError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(OutputError::Io { action: "read", path: path.to_path_buf(), source }),
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let io_error = |source| OutputError::Io { action: "write", path: path.to_path_buf(), source };
    let mut file = File::create(path).map_err(io_error)?;
    file.write_all(bytes).map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

/// Writes `bytes` to `path`, leaving durability to [`sync_file_system`].
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let io_error = |source| OutputError::Io { action: "write", path: path.to_path_buf(), source };
    let mut file = File::create(path).map_err(io_error)?;
    file.write_all(bytes).map_err(io_error)
}

/// Makes every write and rename on the file system holding `dir` durable (`syncfs(2)`).
fn sync_file_system(dir: &Path) -> Result<(), OutputError> {
    use std::os::fd::AsRawFd;
    let io_error = |source| OutputError::Io { action: "sync", path: dir.to_path_buf(), source };
    let handle = File::open(dir).map_err(io_error)?;
    // SAFETY: `handle` is an open descriptor for the whole call; syncfs reads nothing else.
    if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
        return Err(io_error(io::Error::last_os_error()));
    }
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<(), OutputError> {
    fs::rename(from, to).map_err(|source| OutputError::Io { action: "move into place", path: to.to_path_buf(), source })
}

fn sync_dir(dir: &Path) -> Result<(), OutputError> {
    File::open(dir).and_then(|handle| handle.sync_all()).map_err(|source| OutputError::Io {
        action: "sync",
        path: dir.to_path_buf(),
        source,
    })
}

/// See [`super::write_file`].
pub fn write_one(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    if path.file_name().is_none() {
        return Err(OutputError::BadPath { path: path.display().to_string(), reason: "names no file" });
    }
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let io_error = |action, source| OutputError::Io { action, path: path.to_path_buf(), source };
    // Beside the target, so the rename stays on one file system; a random name, so two
    // writers never share it; removed on drop if anything fails before the rename.
    let mut temporary = tempfile::Builder::new()
        .prefix(".nixstack-")
        .tempfile_in(dir)
        .map_err(|source| io_error("create a temporary file for", source))?;
    temporary.write_all(bytes).map_err(|source| io_error("write", source))?;
    temporary.as_file().sync_all().map_err(|source| io_error("write", source))?;
    // tempfile creates 0600; a picture is for everyone who may read the directory.
    use std::os::unix::fs::PermissionsExt;
    temporary
        .as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(|source| io_error("write", source))?;
    temporary.persist(path).map_err(|error| io_error("move into place", error.error))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn write_one_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stack.svg");
        write_one(&path, b"old").unwrap();
        write_one(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("stack.svg")]);
    }

    #[test]
    fn write_one_into_a_missing_directory_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = write_one(&dir.path().join("missing/stack.svg"), b"x").unwrap_err();
        assert!(matches!(error, OutputError::Io { .. }), "{error:?}");
        assert!(error.to_string().contains("missing/stack.svg"), "{error}");
    }
}
