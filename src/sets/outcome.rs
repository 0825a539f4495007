//! What a finished set of runs means: its exit status and the cross-run lines printed at the end.
//!
//! Pure functions of the runs' verdicts and figures, so the exit-code table in the README and in
//! `--help` is tested here once, whatever drives the runs (compose, native, CI).

use std::fmt::Write as _;

use crate::shutdown::Signal;
use crate::summary::Verdict;

/// The exit-status table of a run or a set (`scripts/repro.sh`, `reload-repro set finish`).
pub const EXIT_CODES_HELP: &str = "\
Exit status of a run or a set (scripts/repro.sh, make repro, reload-repro set finish):
  0    every run ended with the expected verdict (--expect / EXPECT=, default pass)
  1    a run measured another verdict: with the default expectation, the gateway failed
       (hang, unresponsive); with --expect hang, a run that passed
  2    the kit could not measure: infra_error (service not ready, missing image, wrong
       secret), bad options, no kit image, no Docker
  130  interrupted by Ctrl-C (SIGINT); 143 by SIGTERM
GNU make turns every non-zero status into 2: call scripts/repro.sh and scripts/diff.sh
directly (as the CI workflow does) when the exact status matters.";

/// A `--expect` entry that names no verdict.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a verdict: use a verdict as summary.json names it \
     (pass, hang, infra_error, interrupted, …), several separated by commas"
)]
pub struct ExpectError(pub String);

/// Which verdicts count as success of a call: `--expect pass`, `--expect hang`, `--expect pass,hang`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect(pub Vec<Verdict>);

impl Expect {
    /// Parses a comma-separated list of verdict names (`pass`, `hang`, `infra_error`, …).
    pub fn parse(text: &str) -> Result<Expect, ExpectError> {
        let mut verdicts = Vec::new();
        for name in text.split(',').map(str::trim) {
            let verdict: Verdict = serde_json::from_value(serde_json::Value::String(name.into()))
                .map_err(|_| ExpectError(name.to_owned()))?;
            if !verdicts.contains(&verdict) {
                verdicts.push(verdict);
            }
        }
        Ok(Expect(verdicts))
    }

    /// The list as given, e.g. `pass,hang`.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.0.iter().map(|v| v.as_str()).collect();
        names.join(",")
    }
}

impl Default for Expect {
    fn default() -> Self {
        Expect(vec![Verdict::Pass])
    }
}

/// The exit status of a set: see [`EXIT_CODES_HELP`]. `signal` is one the caller caught itself
/// (e.g. while the stack was starting, before any runner could record it).
pub fn exit_code(
    verdicts: &[(Verdict, Option<Signal>)],
    expect: &Expect,
    caught: Option<Signal>,
) -> u8 {
    if let Some(signal) = caught {
        return signal.exit_code();
    }
    if let Some(signal) = verdicts.iter().find_map(|(v, s)| {
        (*v == Verdict::Interrupted && !expect.0.contains(v))
            .then(|| s.unwrap_or(Signal::Interrupt))
    }) {
        return signal.exit_code();
    }
    if verdicts.is_empty() {
        return 2;
    }
    if verdicts.iter().all(|(v, _)| expect.0.contains(v)) {
        return 0;
    }
    let unexpected_infra = verdicts
        .iter()
        .any(|(v, _)| *v == Verdict::InfraError && !expect.0.contains(v));
    if unexpected_infra { 2 } else { 1 }
}

/// The figures of one run that the cross-run lines reduce.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFigures {
    /// The run's verdict.
    pub verdict: Verdict,
    /// Time to usable: the censored median over every scheduled scenario, milliseconds (a
    /// lower bound when `time_to_usable_reached` is false).
    pub time_to_usable_ms: Option<f64>,
    /// False when fewer than half the scenarios got their key: the median is only known to
    /// exceed `time_to_usable_ms`.
    pub time_to_usable_reached: bool,
    /// Outstanding scenarios over scheduled ones, 0 to 1.
    pub outstanding_share: Option<f64>,
}

/// Median of the finite values (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    crate::diff::stats::median(&finite)
}

/// The hyperfine-style lines printed at the end of every set, e.g.
/// `Verdicts: hang 2/2`, `Time to usable: 812 ms median (range 640 ms … 905 ms, 2 runs)`.
pub fn cross_run_lines(
    label: &str,
    set_name: &str,
    runs: &[RunFigures],
    expect: &Expect,
) -> String {
    let n = runs.len();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Set {set_name} of {label}: {n} run(s), expected {}",
        expect.names()
    );
    let mut counts: Vec<(Verdict, usize)> = Vec::new();
    for r in runs {
        match counts.iter_mut().find(|(v, _)| *v == r.verdict) {
            Some((_, c)) => *c += 1,
            None => counts.push((r.verdict, 1)),
        }
    }
    let verdicts: Vec<String> = counts
        .iter()
        .map(|(v, c)| format!("{} {c}/{n}", v.as_str()))
        .collect();
    let _ = writeln!(
        out,
        "  Verdicts:        {}",
        if verdicts.is_empty() {
            "none (no run finished)".to_owned()
        } else {
            verdicts.join(", ")
        }
    );
    // A median a run did not reach ranks above every reached one (as in `diff`), so a run that
    // lost half its policies never pulls the set's median down.
    let mut times: Vec<(bool, f64)> = runs
        .iter()
        .filter_map(|r| r.time_to_usable_ms.map(|v| (!r.time_to_usable_reached, v)))
        .filter(|(_, v)| v.is_finite())
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let shown = |(unreached, v): (bool, f64)| {
        if unreached {
            format!("> {}", ms(v))
        } else {
            ms(v)
        }
    };
    if times.is_empty() {
        let _ = writeln!(out, "  Time to usable:  not measured in any run");
    } else {
        // With an even count the upper middle: never the flattering one of the two.
        let median = times[times.len() / 2];
        let _ = writeln!(
            out,
            "  Time to usable:  {} median (range {} … {}, {} of {n} runs; p50 over all scheduled \
             scenarios, the ones without a key censored at their wait)",
            shown(median),
            shown(times[0]),
            shown(times[times.len() - 1]),
            times.len()
        );
    }
    let hangs = runs.iter().filter(|r| r.verdict == Verdict::Hang).count();
    let shares: Vec<f64> = runs.iter().filter_map(|r| r.outstanding_share).collect();
    let outstanding = median(&shares)
        .map(|s| format!("; outstanding {:.1} % median", s * 100.0))
        .unwrap_or_default();
    let _ = writeln!(out, "  Hangs:           {hangs}/{n}{outstanding}");
    out
}

fn ms(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} s", v / 1000.0)
    } else {
        format!("{v:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(vs: &[Verdict]) -> Vec<(Verdict, Option<Signal>)> {
        vs.iter().map(|v| (*v, None)).collect()
    }

    #[test]
    fn the_exit_codes_follow_the_table() {
        use Verdict::*;
        let pass = Expect::default();
        assert_eq!(exit_code(&runs(&[Pass, Pass]), &pass, None), 0);
        assert_eq!(exit_code(&runs(&[Pass, Hang]), &pass, None), 1);
        assert_eq!(
            exit_code(&runs(&[Pass, Unresponsive]), &pass, None),
            1,
            "a gateway that stopped answering is a measured failure, like a hang"
        );
        assert_eq!(exit_code(&runs(&[Hang, InfraError]), &pass, None), 2);
        assert_eq!(
            exit_code(&runs(&[Unresponsive, InfraError]), &pass, None),
            2
        );
        assert_eq!(exit_code(&runs(&[]), &pass, None), 2, "nothing measured");
        assert_eq!(exit_code(&runs(&[Pass, Interrupted]), &pass, None), 130);
        assert_eq!(
            exit_code(&[(Interrupted, Some(Signal::Terminate))], &pass, None),
            143
        );
        assert_eq!(
            exit_code(&runs(&[Pass]), &pass, Some(Signal::Terminate)),
            143
        );
    }

    #[test]
    fn expect_names_the_verdicts_that_count_as_success() {
        use Verdict::*;
        let hang = Expect::parse("hang").unwrap();
        assert_eq!(exit_code(&runs(&[Hang, Hang]), &hang, None), 0);
        assert_eq!(exit_code(&runs(&[Hang, Pass]), &hang, None), 1);
        let either = Expect::parse("pass, hang").unwrap();
        assert_eq!(exit_code(&runs(&[Hang, Pass]), &either, None), 0);
        assert_eq!(exit_code(&runs(&[Hang, InfraError]), &either, None), 2);
        let infra = Expect::parse("infra_error").unwrap();
        assert_eq!(exit_code(&runs(&[InfraError]), &infra, None), 0);
    }

    #[test]
    fn an_unknown_expected_verdict_is_refused_naming_it() {
        let err = Expect::parse("pass,hnag").unwrap_err();
        assert!(err.to_string().contains("`hnag`"), "{err}");
    }

    #[test]
    fn the_cross_run_lines_give_verdict_counts_median_and_range() {
        let figures = [
            RunFigures {
                verdict: Verdict::Hang,
                time_to_usable_ms: Some(640.0),
                time_to_usable_reached: true,
                outstanding_share: Some(0.3),
            },
            RunFigures {
                verdict: Verdict::Hang,
                time_to_usable_ms: Some(905.0),
                time_to_usable_reached: true,
                outstanding_share: Some(0.2),
            },
            RunFigures {
                verdict: Verdict::Pass,
                time_to_usable_ms: Some(812.0),
                time_to_usable_reached: true,
                outstanding_share: Some(0.0),
            },
        ];
        let text = cross_run_lines(
            "2.9.4",
            "set-20261201T100000Z",
            &figures,
            &Expect::default(),
        );
        assert!(
            text.contains("set-20261201T100000Z of 2.9.4: 3 run(s)"),
            "{text}"
        );
        assert!(text.contains("hang 2/3, pass 1/3"), "{text}");
        assert!(
            text.contains("812 ms median (range 640 ms … 905 ms, 3 of 3 runs"),
            "{text}"
        );
        assert!(
            text.contains("Hangs:           2/3; outstanding 20.0 % median"),
            "{text}"
        );
    }

    #[test]
    fn a_run_that_never_reached_its_median_ranks_above_every_reached_one() {
        let figures = [
            RunFigures {
                verdict: Verdict::Hang,
                time_to_usable_ms: Some(400.0),
                time_to_usable_reached: false,
                outstanding_share: Some(0.8),
            },
            RunFigures {
                verdict: Verdict::Pass,
                time_to_usable_ms: Some(2300.0),
                time_to_usable_reached: true,
                outstanding_share: Some(0.0),
            },
        ];
        let text = cross_run_lines("2.9.4", "set-x", &figures, &Expect::default());
        assert!(
            text.contains("> 400 ms median (range 2300 ms … > 400 ms, 2 of 2 runs"),
            "{text}"
        );
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
