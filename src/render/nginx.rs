//! nginx.conf of a web host: TLS (or plain) listener for the LBs, static root, app upstream.

use crate::render::Layout;
use crate::topology::{Host, Topology};

/// The complete nginx.conf of `host`.
pub fn render(topology: &Topology, host: &Host, layout: &Layout) -> String {
    let _ = (topology, host, layout);
    String::new()
}
