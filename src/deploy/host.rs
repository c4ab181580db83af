//! Deploy's view of [`crate::host`]: the trait and its types live there, below both
//! deploy and the lab; what is NixOS-profile specific stays here.

use std::path::{Path, PathBuf};

pub use crate::host::{ActivationFailure, Host, HostError, RunOutput, SecretFile, UploadReport};

/// The profile of the system, relative to a store root.
pub const SYSTEM_PROFILE: &str = "/nix/var/nix/profiles/system";

/// `SYSTEM_PROFILE` in a store rooted at `root`.
pub fn system_profile(root: &Path) -> PathBuf {
    root.join(SYSTEM_PROFILE.trim_start_matches('/'))
}
