//! The secrets directory on disk: 0700 directories, 0600 files, each file created
//! atomically and never replaced ([`create`]), except by a rotation, which stages every
//! new file first and then renames each into place ([`stage`], [`Staged::commit`]).

use std::fs::{self, DirBuilder, File, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::SecretsError;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and parents it owns) with mode 0700, tightening an existing one.
/// Returns whether the mode had to be tightened.
pub fn ensure_dir(dir: &Path) -> Result<bool, SecretsError> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(|source| SecretsError::Io {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    tighten(dir, DIR_MODE)
}

/// Sets `mode` on `path` if its permissions are wider; returns whether it did.
pub fn tighten(path: &Path, mode: u32) -> Result<bool, SecretsError> {
    let metadata = fs::metadata(path).map_err(|source| SecretsError::Io {
        action: "inspect",
        path: path.to_path_buf(),
        source,
    })?;
    let current = metadata.permissions().mode() & 0o777;
    if current & !mode == 0 {
        return Ok(false);
    }
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(|source| SecretsError::Io {
        action: "set the mode of",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(true)
}

/// Creates `path` with `bytes`, mode 0600, atomically: the bytes go into a temporary file
/// created 0600 (so the secret is never readable by others, not even for a moment) in the
/// same directory, fsynced, then linked into place without replacing anything that exists.
pub fn create(path: &Path, bytes: &[u8]) -> Result<(), SecretsError> {
    let parent = path.parent().expect("secret paths have a parent");
    let io_error = |action, source| SecretsError::Io { action, path: path.to_path_buf(), source };
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(Permissions::from_mode(FILE_MODE))
        .tempfile_in(parent)
        .map_err(|source| io_error("create a temporary file for", source))?;
    temp.write_all(bytes).map_err(|source| io_error("write", source))?;
    temp.as_file().sync_all().map_err(|source| io_error("write", source))?;
    temp.persist_noclobber(path).map_err(|error| io_error("create", error.error))?;
    File::open(parent).and_then(|dir| dir.sync_all()).map_err(|source| SecretsError::Io {
        action: "sync",
        path: parent.to_path_buf(),
        source,
    })
}

/// A new version of a secret file, written and fsynced beside it (0600) but not yet in
/// place; dropped uncommitted, it is removed and the old file stays.
pub struct Staged {
    path: PathBuf,
    temp: tempfile::NamedTempFile,
}

/// Stages `bytes` as the next content of `path` (which may exist).
pub fn stage(path: &Path, bytes: &[u8]) -> Result<Staged, SecretsError> {
    let parent = path.parent().expect("secret paths have a parent");
    let io_error = |action, source| SecretsError::Io { action, path: path.to_path_buf(), source };
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(Permissions::from_mode(FILE_MODE))
        .tempfile_in(parent)
        .map_err(|source| io_error("create a temporary file for", source))?;
    temp.write_all(bytes).map_err(|source| io_error("write", source))?;
    temp.as_file().sync_all().map_err(|source| io_error("write", source))?;
    Ok(Staged { path: path.to_path_buf(), temp })
}

impl Staged {
    /// Renames the staged file over its target (`rename(2)`: a reader sees the old or the
    /// new file, never a mix) and syncs the directory.
    pub fn commit(self) -> Result<(), SecretsError> {
        let Staged { path, temp } = self;
        temp.persist(&path).map_err(|error| SecretsError::Io {
            action: "replace",
            path: path.clone(),
            source: error.error,
        })?;
        let parent = path.parent().expect("secret paths have a parent");
        File::open(parent).and_then(|dir| dir.sync_all()).map_err(|source| SecretsError::Io {
            action: "sync",
            path: parent.to_path_buf(),
            source,
        })
    }
}

pub fn read(path: &Path) -> Result<String, SecretsError> {
    fs::read_to_string(path).map_err(|source| SecretsError::Io { action: "read", path: path.to_path_buf(), source })
}

/// Every path in `paths` that exists.
pub fn existing(paths: &[PathBuf]) -> Vec<&PathBuf> {
    paths.iter().filter(|path| path.exists()).collect()
}

/// Removes a file that is derived from others (an encrypted copy about to be made again);
/// a file that is already gone is fine.
pub fn remove(path: &Path) -> Result<(), SecretsError> {
    match fs::remove_file(path) {
        Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
            Err(SecretsError::Io { action: "remove", path: path.to_path_buf(), source })
        }
        _ => Ok(()),
    }
}
