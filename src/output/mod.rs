//! (in progress) The one writer of artifact trees.

use std::path::Path;

use anyhow::Result;

/// `nixstack build`.
pub fn build_command(_spec: Option<&Path>, _out: &Path, _check: bool, _force: bool) -> Result<i32> {
    anyhow::bail!("nixstack build is not implemented yet")
}
