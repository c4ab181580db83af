//! `.nixstack/manifest.json`: the sha256 of every file the writer owns in an output
//! directory, so edits to any generated file (not only `.nix` ones) are detected, and
//! files that are no longer generated can be found and removed.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::header::sha256_hex;
use super::OutputError;
use crate::render::Artifacts;

/// Directory of the writer's own state inside an output directory.
pub const STATE_DIR: &str = ".nixstack";
/// The manifest, relative to the output directory. Written last.
pub const MANIFEST: &str = ".nixstack/manifest.json";
/// The manifest of a write in progress, written before the first rename and removed after
/// the manifest: if a write dies between the two, the next one still recognises the files
/// it had already moved into place as generated, not as hand edits.
pub const PENDING: &str = ".nixstack/pending.json";

/// Path → sha256 of the bytes written there, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub files: BTreeMap<String, String>,
}

impl Manifest {
    /// The manifest of an artifact set (as the writer will write it).
    pub fn of(artifacts: &Artifacts) -> Self {
        Manifest {
            version: 1,
            files: artifacts.iter().map(|(path, text)| (path.clone(), sha256_hex(text.as_bytes()))).collect(),
        }
    }

    /// The manifest file's text: pretty JSON, sorted keys, trailing newline. Deterministic.
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest serializes") + "\n"
    }

    /// Reads `out/<relative>`; `None` when it does not exist.
    pub fn read(out: &Path, relative: &str) -> Result<Option<Self>, OutputError> {
        let path = out.join(relative);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(OutputError::Io { action: "read", path, source }),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| OutputError::Manifest {
            path,
            reason: format!("{e}; it records which files nixstack generated: restore it from version control, or delete it and pass --force"),
        })
    }
}
