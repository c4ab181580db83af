//! A small store-path type of our own (crates.io `nix-compat` is an empty placeholder): what
//! a host runs and what deploy copies to it.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// Where Nix keeps its store on every host (the lab's per-host stores are chroot stores
/// whose *logical* store directory is this one, so a path is the same everywhere).
pub const STORE_DIR: &str = "/nix/store";

/// A path in the Nix store, `/nix/store/<32 base32 chars>-<name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct StorePath(String);

impl StorePath {
    /// Validates the shape of a store path (not that it exists anywhere).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let rest = text
            .strip_prefix(STORE_DIR)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| format!("{text:?} is not under {STORE_DIR}"))?;
        let (hash, name) =
            rest.split_at_checked(32).ok_or_else(|| format!("{text:?} is too short for a store path"))?;
        // Nix's base32 alphabet: digits and lowercase letters without e, o, u, t.
        let base32 = |c: char| c.is_ascii_digit() || (c.is_ascii_lowercase() && !"eout".contains(c));
        if !hash.chars().all(base32) {
            return Err(format!("{text:?} has no valid store hash"));
        }
        let name = name.strip_prefix('-').ok_or_else(|| format!("{text:?} has no name after its hash"))?;
        if name.is_empty() || name.contains('/') {
            return Err(format!("{text:?} is not a top-level store path"));
        }
        Ok(StorePath(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name after the hash, e.g. `nixos-system-web1-25.11`.
    pub fn name(&self) -> &str {
        &self.0[STORE_DIR.len() + 34..]
    }

    /// The real file-system path of this store path in a store rooted at `root` (`/` for
    /// a host's own `/nix`, the chroot root for a lab host's store).
    pub fn under(&self, root: &Path) -> PathBuf {
        root.join(self.0.trim_start_matches('/'))
    }
}

impl std::fmt::Display for StorePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_paths_parse_and_reject() {
        let path = StorePath::parse("/nix/store/9cmka2dja2wqlbayf8irpxv657i3g52w-sys-a\n").unwrap();
        assert_eq!(path.name(), "sys-a");
        assert_eq!(
            path.under(Path::new("/var/lib/x/nix")),
            Path::new("/var/lib/x/nix/nix/store/9cmka2dja2wqlbayf8irpxv657i3g52w-sys-a")
        );
        assert_eq!(path.under(Path::new("/")), Path::new("/nix/store/9cmka2dja2wqlbayf8irpxv657i3g52w-sys-a"));
        for bad in [
            "/nix/store/short-x",
            "/tmp/9cmka2dja2wqlbayf8irpxv657i3g52w-x",
            "/nix/store/9cmka2dja2wqlbayf8irpxv657i3g52e-x",
            "/nix/store/9cmka2dja2wqlbayf8irpxv657i3g52w",
            "/nix/store/9cmka2dja2wqlbayf8irpxv657i3g52w-a/bin",
        ] {
            assert!(StorePath::parse(bad).is_err(), "{bad}");
        }
    }
}
