//! (in progress) The lab.

use anyhow::Result;

use crate::cli::LabCommand;

/// `nixstack lab ...`.
pub fn command(_command: LabCommand) -> Result<i32> {
    anyhow::bail!("nixstack lab is not implemented yet")
}
