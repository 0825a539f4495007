//! reload-repro: reproduce and measure Tyk Gateway reload hangs, and compare two gateway builds.
//!
//! Parts, each in its own module:
//! - [`dashboard`]: the Tyk Dashboard mock serving `/system/policies` and publishing reloads.
//! - [`runner`]: the open-loop load runner (schedule, scenario, retry, record, output).
//! - [`stub`]: a test double of the gateway's side of the protocol (never a Tyk result).
//! - [`summary`]: the run summary model and its renderers (pure data).
//! - [`diff`]: comparison of two sets of runs (pure data).
//! - [`evidence`]: container logs, image ids and stats collected through the Docker API.
//! - [`plot`]: SVG plots of runs.
//! - [`merge`]: the shards of one sharded run combined into one run directory.
//! - [`deploy`]: Kubernetes manifests rendered from the compose file (`reload-repro manifests`).
//! - [`sets`]: run sets: the decisions around a series of runs (`reload-repro set`).
//! - [`protocol`]: wire facts shared by all of them.
//! - [`cli`], [`telemetry`], [`shutdown`]: shared plumbing.

pub mod cli;
pub mod dashboard;
pub mod deploy;
pub mod diff;
pub mod evidence;
pub mod merge;
pub mod plot;
pub mod protocol;
pub mod runner;
pub mod sets;
pub mod shutdown;
pub mod stub;
pub mod summary;
pub mod telemetry;
