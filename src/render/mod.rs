//! Renderers: pure functions Topology → files (path → bytes).
