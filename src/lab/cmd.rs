//! The lab's name for the one command runner ([`crate::process`]): `ip`, `nft`, `mariadb`,
//! `curl`... with a timeout, optionally inside a lab namespace.

pub use crate::process::{tail, Cmd, CommandError as CmdError};
