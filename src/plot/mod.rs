//! Placeholder: per-run SVG plots (being written).
