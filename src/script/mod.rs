//! The Rhai scenario API (DESIGN.md section 4).
