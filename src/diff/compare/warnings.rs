//! What the reader of a comparison should know: left-out runs, too few runs, stub runs, the
//! same build on both sides, summaries older than the censored statistics.

use super::SideInfo;
use super::stats::MIN_RUNS_FOR_TEST;
use crate::diff::side::Side;

pub(super) fn collect_warnings(a: &Side, b: &Side, ai: &SideInfo, bi: &SideInfo) -> Vec<String> {
    let mut out = Vec::new();
    for (name, side, info) in [("A", a, ai), ("B", b, bi)] {
        let excluded = info.runs - info.usable_runs;
        if excluded > 0 {
            out.push(format!(
                "{name} ({}): {excluded} of {} runs left out (infra_error or interrupted: they \
                 measured nothing comparable)",
                info.label, info.runs
            ));
        }
        if info.usable_runs < MIN_RUNS_FOR_TEST {
            out.push(format!(
                "{name} ({}): {} usable run(s); Mann-Whitney needs at least {MIN_RUNS_FOR_TEST} \
                 per side, so no metric can be significant (run with --runs 5, or RUNS=5)",
                info.label, info.usable_runs
            ));
        }
        out.extend(side.warnings.iter().map(|w| format!("{name}: {w}")));
    }
    if a.runs.iter().chain(&b.runs).any(|r| r.is_stub) {
        out.push("a side ran against the kit's stub gateway: not a Tyk result".into());
    }
    if let Some(w) = same_build_warning(a, b) {
        out.push(w);
    }
    for (name, info) in [("A", ai), ("B", bi)] {
        if info.derived_usable_runs > 0 {
            out.push(format!(
                "{name} ({}): {} run(s) predate the time-to-usable statistics (schema 1): \
                 derived from their latency histogram, with every lost scenario taken as waiting \
                 the run's length minus the load's duration",
                info.label, info.derived_usable_runs
            ));
        }
    }
    out
}

/// A warning when A and B report the same gateway version and the same image: the diff then
/// compares a build with itself, whatever the labels say.
fn same_build_warning(a: &Side, b: &Side) -> Option<String> {
    let (va, vb) = (a.gateway_versions(), b.gateway_versions());
    if va != vb || va == "unknown" {
        return None;
    }
    let (ia, ib) = (a.gateway_images(), b.gateway_images());
    if ia.is_empty() || ia != ib {
        return None;
    }
    Some(format!(
        "A and B report the same gateway version ({va}) and the same image ({}): both sides \
         ran the same build; check TYK / TYK_PR_IMAGE",
        ia.join(", ")
    ))
}
