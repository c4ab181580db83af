//! Deploy: plan a rolling, health-gated rollout (db → app → web → lb) and carry it out.

pub mod closure;
mod command;
pub mod diff;
pub mod execute;
pub mod health;
pub mod host;
pub mod install;
pub mod migrate;
pub mod plan;
pub mod progress;
pub mod ssh;

pub use crate::host::Goal;
pub use command::{command, lab_command, lab_hosts, make_plan, DeployArgs, LabTarget, DEPLOYED_SPEC};
pub use plan::{Batch, Change, Plan};
