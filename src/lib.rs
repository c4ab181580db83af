//! nixstack: one `stack.toml` compiled into a NixOS flake, a namespace lab and a rollout.
//!
//! The pipeline flows one way: [`spec`] (what the user wrote) → [`topology`] (resolved)
//! → [`audit`] (findings) and [`render`] (files), which [`output`] writes and [`lab`]
//! runs. The lab and [`deploy`] act on machines through one [`host::Host`] trait (a
//! network namespace, or SSH) and run every command through one runner, [`process`].

pub mod audit;
pub mod cli;
pub mod db;
pub mod deploy;
pub mod exit;
pub mod host;
pub mod lab;
pub mod nixcheck;
pub mod output;
pub mod process;
pub mod render;
pub mod secrets;
pub mod spec;
pub mod stack;
pub mod sumologic;
pub mod topology;
