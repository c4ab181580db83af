//! Deploy: plan a rolling, health-gated rollout (db → app → web → lb) and carry it out.

mod goal;
pub mod plan;

pub use goal::Goal;
pub use plan::{Batch, Change, Plan};
