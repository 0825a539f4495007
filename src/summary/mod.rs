//! The run summary: model, statistics and renderers (`summary.json`, `summary.md`, `report.txt`).
//!
//! Nothing here imports tokio, reqwest, axum or redis: data in, data out.

pub mod attempts;
pub mod censored;
pub mod environment;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod histogram;
pub mod model;
pub mod reloads;
pub mod render;
pub mod set;
pub mod stats;

pub use environment::Environment;
pub use model::*;
