//! Nix as the tests that evaluate the rendered tree run it: with the offline settings of
//! this machine (NOTES.md); a missing Nix fails with the fix, a failed evaluation with
//! Nix's own error.
// Each test file uses a different part of it.
#![allow(dead_code)]

use std::process::{Command, Output};

use serde_json::Value;

pub use nixstack::deploy::closure::OFFLINE_NIX_CONFIG;

/// Runs `command` (`nix` or `nix-instantiate`) with the offline settings.
pub fn nix_output(command: &mut Command) -> Output {
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .env("NIX_CONFIG", OFFLINE_NIX_CONFIG)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program} ({error}): run scripts/setup (Debian package nix-bin)"))
}

/// The JSON that `command` prints; `what` names it if it fails.
pub fn nix_json(command: &mut Command, what: &str) -> Value {
    let output = nix_output(command);
    assert!(output.status.success(), "{what}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}
