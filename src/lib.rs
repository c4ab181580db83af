//! nixstack: one `stack.toml` compiled into a NixOS flake, a namespace lab and a rollout.
//!
//! The pipeline flows one way: [`spec`] (what the user wrote) → [`topology`] (resolved)
//! → [`audit`] (findings) and [`render`] (files), which the lab and deploy consume.

pub mod audit;
pub mod cli;
// pub mod nixcheck; (added by the nixcheck work)
pub mod render;
pub mod spec;
pub mod topology;
