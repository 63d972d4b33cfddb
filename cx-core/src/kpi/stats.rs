//! Percentiles, survey scores and their 95% confidence intervals.
//!
//! Intervals use the normal quantile z = 1.959964 (two-sided 95%), a constant rather than a
//! statistics crate: it is the one quantile we need. Proportions (CSAT, CES top box) use the
//! Wilson score interval, which stays inside [0, 1] and behaves at small samples and extreme
//! shares where the plain normal interval does not. NPS, a difference of two shares of one
//! multinomial sample, uses the normal approximation with variance
//! `(p + d - (p - d)²) / n` (p promoters, d detractors), clamped to [-100, 100]. Means (CES) use
//! `mean ± z·s/√n` with the sample standard deviation.

use crate::model::{CesMode, Measure};

/// The two-sided 95% quantile of the standard normal distribution.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The `p`-th percentile (0-100) of `sorted` (ascending), interpolating linearly between the
/// closest ranks (SQL's `percentile_cont`, numpy's default). `None` when empty.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 || !p.is_finite() {
        return None;
    }
    let rank = (p.clamp(0.0, 100.0) / 100.0) * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let a = *sorted.get(lo)?;
    let b = *sorted.get(hi)?;
    Some(a + (b - a) * (rank - lo as f64))
}

/// The Wilson score interval of `successes` out of `n`, as shares.
pub fn wilson_interval(successes: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// The 95% interval of an NPS (in points, -100 to 100) from `promoters` and `detractors` of `n`.
pub fn nps_interval(promoters: u64, detractors: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let p = promoters as f64 / n;
    let d = detractors as f64 / n;
    let nps = p - d;
    let variance = ((p + d) - nps * nps).max(0.0) / n;
    let half = Z95 * variance.sqrt();
    Some((
        ((nps - half) * 100.0).max(-100.0),
        ((nps + half) * 100.0).min(100.0),
    ))
}

/// The 95% interval of a mean of `n` values with sample standard deviation `sd`.
pub fn mean_interval(mean: f64, sd: f64, n: u64) -> Option<(f64, f64)> {
    if n < 2 {
        return None;
    }
    let half = Z95 * sd / (n as f64).sqrt();
    Some((mean - half, mean + half))
}

/// A survey measure (NPS, CSAT, CES) over a score histogram ((score, answers), any order):
/// the value, the number of answers and the 95% interval. Other measures give `None`.
pub fn survey_summary(measure: &Measure, scores: &[(f64, u64)]) -> Option<super::Computed> {
    let n: u64 = scores.iter().map(|(_, c)| c).sum();
    let count = |keep: &dyn Fn(f64) -> bool| -> u64 {
        scores
            .iter()
            .filter(|(s, _)| keep(*s))
            .map(|(_, c)| c)
            .sum()
    };
    let share = |k: u64| (n > 0).then(|| k as f64 / n as f64);
    match measure {
        Measure::Nps { .. } => {
            let promoters = count(&|s| s >= 9.0);
            let detractors = count(&|s| s <= 6.0);
            let value = (n > 0).then(|| 100.0 * (promoters as f64 - detractors as f64) / n as f64);
            Some((value, n, nps_interval(promoters, detractors, n)))
        }
        Measure::Csat { scale, top_box, .. }
        | Measure::Ces {
            scale,
            top_box,
            mode: CesMode::TopBox,
            ..
        } => {
            let threshold = scale.max - f64::from(*top_box) + 1.0;
            let top = count(&|s| s >= threshold);
            Some((share(top), n, wilson_interval(top, n)))
        }
        Measure::Ces {
            mode: CesMode::Mean,
            ..
        } => {
            if n == 0 {
                return Some((None, 0, None));
            }
            let total: f64 = scores.iter().map(|(s, c)| s * *c as f64).sum();
            let mean = total / n as f64;
            let ss: f64 = scores
                .iter()
                .map(|(s, c)| (s - mean) * (s - mean) * *c as f64)
                .sum();
            let sd = if n > 1 {
                (ss / (n - 1) as f64).sqrt()
            } else {
                0.0
            };
            Some((Some(mean), n, mean_interval(mean, sd, n)))
        }
        _ => None,
    }
}
