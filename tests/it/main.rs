//! All integration tests in one binary, so they link once.

mod attempts;
mod compare;
mod compose;
mod dashboard;
mod evidence;
mod faults;
mod fleet;
mod fuzz;
mod manifests;
mod run;
mod shard;
mod stub;
mod support;
mod workflow;
