//! nixstack: one `stack.toml` compiled into a NixOS flake, a namespace lab and a rollout.
//!
//! The pipeline flows one way: [`spec`] (what the user wrote) → [`topology`] (resolved)
//! → [`audit`] (findings) and [`render`] (files), which [`output`] writes and [`lab`]
//! runs.

pub mod audit;
pub mod cli;
pub mod deploy;
pub mod exit;
pub mod lab;
pub mod nixcheck;
pub mod output;
pub mod render;
pub mod secrets;
pub mod spec;
pub mod sumologic;
pub mod topology;
