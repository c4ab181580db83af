//! Exit statuses, as ripgrep: 0 fine, 1 "found something" (error findings, drift, a failed
//! test or rollout), 2 could not do the job (invalid spec, bad input). Only `main` exits.

pub const OK: i32 = 0;
pub const FINDINGS: i32 = 1;
pub const INVALID: i32 = 2;
