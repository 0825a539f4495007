//! The statistics of the diff: Mann-Whitney U, Fisher's exact test, a bootstrap CI.
//!
//! `statrs` gives the normal CDF and ln-binomials; what it lacks (the tests themselves, the
//! exact U distribution, the bootstrap) is written here and checked against published values.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};
use statrs::function::factorial::ln_binomial;

/// Runs per side below which Mann-Whitney cannot reach p < 0.05 (benchstat's "need >= 4").
pub const MIN_RUNS_FOR_TEST: usize = 4;

/// Largest side for which the exact U distribution is used (as scipy: both sides below 8).
const EXACT_MAX_N: usize = 7;

/// How a p-value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PMethod {
    /// The exact permutation distribution of U (small samples without ties).
    Exact,
    /// Normal approximation with tie and continuity corrections.
    Normal,
}

/// Result of a two-sided Mann-Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U statistic of the first sample.
    pub u: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Exact or normal approximation.
    pub method: PMethod,
}

/// Median of `xs`; `None` when empty. NaNs must be filtered out by the caller.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// Two-sided Mann-Whitney U test of `a` against `b`; `None` if a side is empty.
///
/// Exact when both sides have fewer than 8 values and there are no ties, otherwise the normal
/// approximation with tie correction and continuity correction (scipy's `mannwhitneyu` defaults).
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (ranks, tie_groups) = rank_with_ties(a, b);
    let r1: f64 = ranks[..n1].iter().sum();
    let u1 = r1 - (n1 * (n1 + 1)) as f64 / 2.0;
    let has_ties = tie_groups.iter().any(|&t| t > 1);
    if !has_ties && n1 <= EXACT_MAX_N && n2 <= EXACT_MAX_N {
        let p_value = exact_two_sided_p(n1, n2, u1);
        return Some(MannWhitney {
            u: u1,
            p_value,
            method: PMethod::Exact,
        });
    }
    let (nf1, nf2) = (n1 as f64, n2 as f64);
    let n = nf1 + nf2;
    let tie_term: f64 = tie_groups
        .iter()
        .map(|&t| {
            let t = t as f64;
            t * t * t - t
        })
        .sum();
    let variance = nf1 * nf2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    let mu = nf1 * nf2 / 2.0;
    let p_value = if variance <= 0.0 {
        // Every value is the same: nothing distinguishes the sides.
        1.0
    } else {
        let z = ((u1 - mu).abs() - 0.5).max(0.0) / variance.sqrt();
        (2.0 * (1.0 - Normal::standard().cdf(z))).clamp(0.0, 1.0)
    };
    Some(MannWhitney {
        u: u1,
        p_value,
        method: PMethod::Normal,
    })
}

/// Midranks (1-based) of `a ++ b` and the sizes of the groups of equal values.
fn rank_with_ties(a: &[f64], b: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let all: Vec<f64> = a.iter().chain(b).copied().collect();
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&i, &j| all[i].total_cmp(&all[j]));
    let mut ranks = vec![0.0; all.len()];
    let mut groups = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && all[order[end]] == all[order[start]] {
            end += 1;
        }
        // Positions start..end hold equal values: each gets the mean of ranks start+1..=end.
        let midrank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = midrank;
        }
        groups.push(end - start);
        start = end;
    }
    (ranks, groups)
}

/// Two-sided exact p-value of U for sample sizes `n1`, `n2` (no ties).
fn exact_two_sided_p(n1: usize, n2: usize, u1: f64) -> f64 {
    let counts = u_distribution(n1, n2);
    let total: f64 = counts.iter().sum();
    let u_max = n1 * n2;
    // The distribution is symmetric: use the smaller tail of min(U1, U2).
    let u = u1.min(u_max as f64 - u1).round() as usize;
    let tail: f64 = counts[..=u].iter().sum();
    (2.0 * tail / total).min(1.0)
}

/// Number of arrangements giving each U = 0..=n1·n2 (Mann & Whitney's recursion).
fn u_distribution(n1: usize, n2: usize) -> Vec<f64> {
    let size = n1 * n2 + 1;
    // table[i][j] is the distribution for sizes (i, j); built bottom-up.
    let mut table: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); n2 + 1]; n1 + 1];
    for i in 0..=n1 {
        for j in 0..=n2 {
            let mut dist = vec![0.0; i * j + 1];
            if i == 0 || j == 0 {
                dist[0] = 1.0;
            } else {
                // The largest value is from the first sample (adds j to U) or from the second.
                for (u, slot) in dist.iter_mut().enumerate() {
                    let from_first = if u >= j {
                        table[i - 1][j].get(u - j).copied().unwrap_or(0.0)
                    } else {
                        0.0
                    };
                    let from_second = table[i][j - 1].get(u).copied().unwrap_or(0.0);
                    *slot = from_first + from_second;
                }
            }
            table[i][j] = dist;
        }
    }
    let mut out = std::mem::take(&mut table[n1][n2]);
    out.resize(size, 0.0);
    out
}

/// Two-sided Fisher exact test of `[[a, b], [c, d]]` (rows: sides, columns: hang, not hang).
///
/// Sums the probabilities of all tables with the same margins that are no more likely than the
/// observed one (R's and scipy's definition).
pub fn fisher_exact(table: [[u64; 2]; 2]) -> f64 {
    let [[a, b], [c, d]] = table;
    let (row1, row2, col1) = (a + b, c + d, a + c);
    let n = row1 + row2;
    if n == 0 {
        return 1.0;
    }
    let ln_p = |x: u64| ln_binomial(row1, x) + ln_binomial(row2, col1 - x) - ln_binomial(n, col1);
    let lo = col1.saturating_sub(row2);
    let hi = col1.min(row1);
    let observed = ln_p(a);
    let p: f64 = (lo..=hi)
        .map(ln_p)
        // Relative tolerance so tables equal to the observed one up to rounding are counted.
        .filter(|&lp| lp <= observed + 1e-7)
        .map(f64::exp)
        .sum();
    p.min(1.0)
}

/// Percentile bootstrap CI of `median(b) − median(a)` at `confidence` (e.g. 0.95).
///
/// Deterministic for a given `seed`; `None` when a side is empty or `iterations` is 0.
pub fn bootstrap_median_diff_ci(
    a: &[f64],
    b: &[f64],
    iterations: u32,
    confidence: f64,
    seed: u64,
) -> Option<(f64, f64)> {
    if a.is_empty() || b.is_empty() || iterations == 0 {
        return None;
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut diffs = Vec::with_capacity(iterations as usize);
    let resample = |xs: &[f64], rng: &mut SmallRng| -> f64 {
        let sample: Vec<f64> = (0..xs.len())
            .map(|_| xs[rng.random_range(0..xs.len())])
            .collect();
        median(&sample).unwrap_or(f64::NAN)
    };
    for _ in 0..iterations {
        let ma = resample(a, &mut rng);
        let mb = resample(b, &mut rng);
        diffs.push(mb - ma);
    }
    diffs.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    Some((
        quantile_sorted(&diffs, tail),
        quantile_sorted(&diffs, 1.0 - tail),
    ))
}

/// Quantile of sorted non-empty `xs` by linear interpolation between closest ranks.
fn quantile_sorted(xs: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (xs.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    xs[lo] + (xs[hi] - xs[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn fisher_matches_the_lady_tasting_tea() {
        // Fisher (1935): 3 of 4 cups right each way; two-sided p = 34/70 = 0.4857.
        assert!(close(fisher_exact([[3, 1], [1, 3]]), 0.485_714, 1e-6));
    }

    #[test]
    fn fisher_matches_the_dieting_example_and_perfect_separation() {
        // Wikipedia "Fisher's exact test": [[1, 9], [11, 3]], two-sided p = 0.002759.
        assert!(close(fisher_exact([[1, 9], [11, 3]]), 0.002_759_456, 1e-8));
        // Four hangs against four passes: 2 / C(8, 4) = 0.02857.
        assert!(close(fisher_exact([[4, 0], [0, 4]]), 2.0 / 70.0, 1e-12));
        assert!(close(fisher_exact([[1, 0], [0, 1]]), 1.0, 1e-12));
        assert_eq!(fisher_exact([[0, 0], [0, 0]]), 1.0);
    }

    #[test]
    fn mann_whitney_matches_scipy_docs_exact_and_asymptotic() {
        // scipy.stats.mannwhitneyu docs: males vs females, U = 17.
        let males = [19.0, 22.0, 16.0, 29.0, 24.0];
        let females = [20.0, 11.0, 17.0, 12.0];
        let exact = mann_whitney_u(&males, &females).unwrap();
        assert_eq!(exact.u, 17.0);
        assert_eq!(exact.method, PMethod::Exact);
        assert!(close(exact.p_value, 0.111_111_111, 1e-9));
        // The same docs with method="asymptotic" give 0.11134688653314041.
        let nf = normal_p(&males, &females);
        assert!(close(nf, 0.111_346_886_533_140_41, 1e-9));
    }

    fn normal_p(a: &[f64], b: &[f64]) -> f64 {
        // Same formula as the normal branch, forced (the public fn picks exact for small n).
        let (ranks, groups) = rank_with_ties(a, b);
        let (n1, n2) = (a.len() as f64, b.len() as f64);
        let u1 = ranks[..a.len()].iter().sum::<f64>() - n1 * (n1 + 1.0) / 2.0;
        let n = n1 + n2;
        let tie: f64 = groups.iter().map(|&t| (t * t * t - t) as f64).sum();
        let var = n1 * n2 / 12.0 * ((n + 1.0) - tie / (n * (n - 1.0)));
        let z = ((u1 - n1 * n2 / 2.0).abs() - 0.5) / var.sqrt();
        2.0 * (1.0 - Normal::standard().cdf(z))
    }

    #[test]
    fn mann_whitney_exact_gives_the_smallest_p_for_complete_separation() {
        let p = |n: usize| {
            let a: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let b: Vec<f64> = (0..n).map(|i| (i + n) as f64).collect();
            mann_whitney_u(&a, &b).unwrap().p_value
        };
        assert!(close(p(3), 0.1, 1e-12)); // 2 / C(6, 3): 3 runs per side can never reach 0.05
        assert!(close(p(4), 2.0 / 70.0, 1e-12));
        assert!(close(p(5), 2.0 / 252.0, 1e-12));
    }

    #[test]
    fn mann_whitney_with_ties_uses_the_tie_corrected_normal_approximation() {
        // Five hang runs against five runs with no outstanding scenario (all tied at 0).
        // Ranks: the zeros share 3, hangs take 6..10: U1 = 40 − 15 = 25, ties 5³ − 5 = 120,
        // var = 25/12·(11 − 120/90) = 20.1389, z = (12.5 − 0.5)/4.4876 = 2.6740, p = 0.0075.
        let hangs = [0.1, 0.12, 0.3, 0.05, 0.2];
        let passes = [0.0; 5];
        let r = mann_whitney_u(&hangs, &passes).unwrap();
        assert_eq!(r.method, PMethod::Normal);
        assert_eq!(r.u, 25.0);
        assert!(close(r.p_value, 0.007_495, 5e-5), "p = {}", r.p_value);
        let same = mann_whitney_u(&[1.0; 4], &[1.0; 4]).unwrap();
        assert_eq!(same.p_value, 1.0);
    }

    #[test]
    fn median_handles_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_a_clear_shift() {
        let a = [100.0, 110.0, 105.0, 98.0, 102.0];
        let b = [200.0, 210.0, 190.0, 205.0, 199.0];
        let ci = bootstrap_median_diff_ci(&a, &b, 2000, 0.95, 7).unwrap();
        assert_eq!(ci, bootstrap_median_diff_ci(&a, &b, 2000, 0.95, 7).unwrap());
        assert!(ci.0 > 0.0 && ci.0 <= ci.1, "{ci:?}");
        assert!(ci.0 >= 80.0 && ci.1 <= 112.0, "{ci:?}");
        assert_eq!(bootstrap_median_diff_ci(&[], &b, 2000, 0.95, 7), None);
    }
}
