//! Selection: the exploration policies that pick the offers of a decision among the scored
//! survivors, logging for each pick the probability with which it was picked, so off-policy
//! evaluation can reweight it later.
//!
//! # Semantics
//!
//! [`select`] fills slots one after the other. Each slot chooses among the *eligible*
//! candidates: those whose score is finite and whose category no earlier slot took (at most one
//! offer per category). It stops when `k` slots are filled or no candidate is eligible.
//!
//! A candidate whose score is NaN or infinite is never picked, under any policy: a score that
//! is not a number is a defect upstream, and letting it win (+∞) or be explored (NaN, −∞) would
//! make the logged probabilities meaningless. Negative finite scores are ordinary scores: they
//! rank below positive ones and can be picked (filtering unsuitable offers is the job of the
//! rules before scoring).
//!
//! The probability logged with a pick is the probability that *its slot* picked it, given the
//! picks of the earlier slots (so the probability of the whole decision is the product over its
//! picks):
//!
//! | policy | pick | logged probability |
//! |---|---|---|
//! | `Greedy` | highest score, ties to the lower `offer` | 1 |
//! | `EpsilonGreedy { ε }` | greedy with probability 1 − ε, else uniform over the eligible | exact: ε/n, plus 1 − ε for the greedy choice |
//! | `Softmax { T }` | at random, P(i) ∝ exp((sᵢ − max s)/T) | exact |
//! | `Thompson { samples }` | argmax of one posterior draw per eligible candidate, ties to the lower `offer` | estimated from `samples` more draws, at least 1/(2·samples) |
//!
//! Parameters outside what catalogue validation accepts never panic: ε is clamped to [0, 1]
//! (NaN counts as 0), a temperature that is not above 0 (or NaN) selects greedily, and
//! `samples: 0` counts as 1.
//!
//! The same policy, candidates and RNG state always give the same picks: [`DecisionRng`] is a
//! named algorithm, and the order in which the RNG is used is fixed (documented on [`select`]).

use crate::model::Exploration;
use rand::RngExt;

/// The RNG of decisions: a named algorithm, so a seed gives the same decision on every platform
/// and rand release.
pub type DecisionRng = rand::rngs::Xoshiro256PlusPlus;

/// A candidate that survived the filters, with its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The offer's index in the compiled catalogue; also the tie-breaker (lower wins).
    pub offer: u32,
    /// The offer's interned category: a decision holds at most one offer per category.
    pub category: u32,
    /// The score (higher is better). Only finite scores can be picked.
    pub score: f64,
}

/// One slot of a decision, as picked by [`select`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    /// The picked offer (`Scored::offer`).
    pub offer: u32,
    /// Its category (`Scored::category`), which no later slot may take.
    pub category: u32,
    /// Its score (`Scored::score`; under Thompson sampling too, not the posterior draw).
    pub score: f64,
    /// The probability that this slot picked this offer given the earlier picks, in (0, 1];
    /// off-policy evaluation divides by it.
    pub probability: f64,
}

/// Picks up to `k` offers among `candidates` under `policy`, one slot after the other, at most
/// one per category; see the [module docs](self) for the policies and their probabilities.
///
/// `picks` is cleared, then filled in slot order; it is the only buffer used, so a caller that
/// reuses it allocates nothing. `draw(i, rng)` is called only under Thompson sampling: it returns
/// one posterior draw of the score of `candidates[i]`, and a NaN draw loses to every other
/// draw. Under Thompson sampling, a slot with a single eligible candidate picks it with
/// probability 1 without drawing.
///
/// RNG use, per slot: greedy uses none; epsilon-greedy one `f64`, plus one index when it
/// explores; softmax one `f64`; Thompson, with n > 1 eligible candidates, n draws for the pick
/// then `samples × n` draws for the estimate (every draw in candidate order).
///
/// The Thompson estimate is the share of the `samples` re-draws whose argmax is the picked
/// offer (the draw that picked it is not counted: it is biased towards it), clamped to at least
/// 1/(2·samples): a picked offer can have a true probability below 1/samples and score zero in
/// the re-draws, and the clamp keeps off-policy weights finite (bounded by 2·samples) at the
/// price of a small bias for such rare picks.
///
/// ```
/// # use cx_core::arbitration::explore::{DecisionRng, Pick, Scored, select};
/// # use cx_core::model::Exploration;
/// # use rand::SeedableRng;
/// let candidates = [
///     Scored { offer: 0, category: 0, score: 0.9 },
///     Scored { offer: 1, category: 0, score: 0.8 }, // same category as offer 0
///     Scored { offer: 2, category: 1, score: 0.5 },
/// ];
/// let mut rng = DecisionRng::seed_from_u64(7);
/// let mut picks = Vec::new();
/// select(&Exploration::Greedy, &candidates, 2, &mut |_, _| 0.0, &mut rng, &mut picks);
/// let offers: Vec<u32> = picks.iter().map(|p| p.offer).collect();
/// assert_eq!(offers, [0, 2]);
/// assert!(picks.iter().all(|p| p.probability == 1.0));
/// ```
pub fn select(
    policy: &Exploration,
    candidates: &[Scored],
    k: usize,
    draw: &mut dyn FnMut(usize, &mut DecisionRng) -> f64,
    rng: &mut DecisionRng,
    picks: &mut Vec<Pick>,
) {
    picks.clear();
    if let Exploration::Greedy = policy {
        greedy_top(candidates, k, picks);
        return;
    }
    select_slots(policy, candidates, k, draw, rng, picks);
}

/// The slot-by-slot selection every policy follows (greedy has a faster equivalent).
fn select_slots(
    policy: &Exploration,
    candidates: &[Scored],
    k: usize,
    draw: &mut dyn FnMut(usize, &mut DecisionRng) -> f64,
    rng: &mut DecisionRng,
    picks: &mut Vec<Pick>,
) {
    while picks.len() < k {
        let taken: &[Pick] = picks;
        let view = |i: usize| {
            candidates
                .get(i)
                .filter(|c| c.score.is_finite() && !taken.iter().any(|p| p.category == c.category))
                .map(|c| (u64::from(c.offer), c.score))
        };
        let Some((index, probability)) = pick_one(policy, candidates.len(), &view, draw, rng)
        else {
            break;
        };
        let Some(c) = candidates.get(index) else {
            break;
        };
        picks.push(Pick {
            offer: c.offer,
            category: c.category,
            score: c.score,
            probability,
        });
    }
}

/// The exact distribution of one slot over `scores` (the scores of the eligible candidates,
/// ties going to the lower index): `out` is cleared and gets one probability per score, 0 for a
/// score that is not finite. The probabilities sum to 1 (up to rounding) unless no score is
/// finite, when they are all 0.
///
/// Thompson sampling has no exact distribution without its posteriors: for it this returns the
/// greedy distribution of `scores` (the limit of a posterior without uncertainty); use
/// [`thompson_distribution`] for a Monte Carlo estimate.
pub fn slot_distribution(policy: &Exploration, scores: &[f64], out: &mut Vec<f64>) {
    out.clear();
    out.resize(scores.len(), 0.0);
    let view = |i: usize| index_view(scores, i);
    let (best, n) = best(scores.len(), &view);
    let Some((best, max)) = best else {
        return;
    };
    match *policy {
        Exploration::EpsilonGreedy { epsilon } => {
            let epsilon = clamp_epsilon(epsilon);
            let uniform = epsilon / n as f64;
            for (i, p) in out.iter_mut().enumerate() {
                if view(i).is_some() {
                    *p = uniform;
                }
            }
            if let Some(p) = out.get_mut(best) {
                // The same expression as `select` logs, so both give the same bits.
                *p = (1.0 - epsilon + uniform).min(1.0);
            }
        }
        Exploration::Softmax { temperature } if temperature > 0.0 => {
            let z = softmax_norm(scores.len(), &view, max, temperature);
            for (i, p) in out.iter_mut().enumerate() {
                if let Some((_, s)) = view(i) {
                    *p = softmax_weight(s, max, temperature) / z;
                }
            }
        }
        _ => {
            if let Some(p) = out.get_mut(best) {
                *p = 1.0;
            }
        }
    }
}

/// A Monte Carlo estimate of the distribution of one Thompson slot: `out` is cleared and gets,
/// for each of `scores`, the share of `samples` rounds (at least 1) whose argmax it was, each
/// round drawing `draw(i, rng)` for every finite score in index order (NaN draws lose, ties go
/// to the lower index). Scores that are not finite get 0 and are not drawn. Unlike the estimate
/// logged by [`select`], shares are not clamped, so they sum to 1 (up to rounding).
pub fn thompson_distribution(
    scores: &[f64],
    samples: u32,
    draw: &mut dyn FnMut(usize, &mut DecisionRng) -> f64,
    rng: &mut DecisionRng,
    out: &mut Vec<f64>,
) {
    out.clear();
    out.resize(scores.len(), 0.0);
    let samples = samples.max(1);
    let view = |i: usize| index_view(scores, i);
    for _ in 0..samples {
        if let Some(p) =
            thompson_argmax(scores.len(), &view, draw, rng).and_then(|i| out.get_mut(i))
        {
            *p += 1.0;
        }
    }
    for p in out.iter_mut() {
        *p /= f64::from(samples);
    }
}

/// Greedy selection in one pass: slot after slot, greedy takes the best remaining category's
/// best offer, so its picks are the k best "best of a category", in rank order. `picks` holds
/// the best of up to k categories seen so far, best first, which is the only memory needed.
fn greedy_top(candidates: &[Scored], k: usize, picks: &mut Vec<Pick>) {
    let ranks_above =
        |c: &Scored, p: &Pick| beats(c.score, c.offer.into(), p.score, p.offer.into());
    for c in candidates {
        if !c.score.is_finite() {
            continue;
        }
        // The common case: full, and not better than the worst kept (so not better than the
        // kept offer of its own category either).
        if picks.len() >= k && picks.last().is_none_or(|worst| !ranks_above(c, worst)) {
            continue;
        }
        match picks.iter().position(|p| p.category == c.category) {
            Some(same) if picks.get(same).is_some_and(|p| ranks_above(c, p)) => {
                picks.remove(same);
            }
            Some(_) => continue,
            None if picks.len() >= k => {
                picks.pop();
            }
            None => {}
        }
        let at = picks.partition_point(|p| !ranks_above(c, p));
        picks.insert(
            at,
            Pick {
                offer: c.offer,
                category: c.category,
                score: c.score,
                probability: 1.0,
            },
        );
    }
}

/// The eligible view of a plain score list: the tie-break key is the index.
fn index_view(scores: &[f64], i: usize) -> Option<(u64, f64)> {
    scores
        .get(i)
        .filter(|s| s.is_finite())
        .map(|&s| (i as u64, s))
}

/// One slot: the index picked among `0..len` and its probability, or `None` if nothing is
/// eligible. `view(i)` is `Some((tie-break key, finite score))` for an eligible candidate.
fn pick_one(
    policy: &Exploration,
    len: usize,
    view: &impl Fn(usize) -> Option<(u64, f64)>,
    draw: &mut dyn FnMut(usize, &mut DecisionRng) -> f64,
    rng: &mut DecisionRng,
) -> Option<(usize, f64)> {
    let (greedy, n) = best(len, view);
    let (greedy, max) = greedy?;
    match *policy {
        Exploration::Greedy => Some((greedy, 1.0)),
        Exploration::EpsilonGreedy { epsilon } => {
            let epsilon = clamp_epsilon(epsilon);
            let uniform = epsilon / n as f64;
            let explore = rng.random::<f64>() < epsilon;
            let picked = if explore {
                let m = rng.random_range(0..n);
                (0..len)
                    .filter(|&i| view(i).is_some())
                    .nth(m)
                    .unwrap_or(greedy)
            } else {
                greedy
            };
            let probability = if picked == greedy {
                (1.0 - epsilon + uniform).min(1.0)
            } else {
                uniform
            };
            Some((picked, probability))
        }
        Exploration::Softmax { temperature } if temperature > 0.0 => {
            let z = softmax_norm(len, view, max, temperature);
            let target = rng.random::<f64>() * z;
            let mut cumulative = 0.0;
            // Rounding can leave the target just above the final sum: the last candidate with
            // any weight takes it then.
            let mut picked = (greedy, 1.0);
            for i in 0..len {
                let Some((_, s)) = view(i) else { continue };
                let w = softmax_weight(s, max, temperature);
                if w > 0.0 {
                    picked = (i, w);
                    cumulative += w;
                    if cumulative > target {
                        break;
                    }
                }
            }
            // w / z is positive in exact arithmetic; the floor keeps it so after rounding.
            Some((picked.0, (picked.1 / z).clamp(f64::MIN_POSITIVE, 1.0)))
        }
        // A temperature that is not above 0 is the greedy limit of softmax.
        Exploration::Softmax { .. } => Some((greedy, 1.0)),
        Exploration::Thompson { samples } => {
            if n == 1 {
                return Some((greedy, 1.0));
            }
            let picked = thompson_argmax(len, view, draw, rng).unwrap_or(greedy);
            let samples = samples.max(1);
            let mut wins = 0u32;
            for _ in 0..samples {
                if thompson_argmax(len, view, draw, rng) == Some(picked) {
                    wins += 1;
                }
            }
            let samples = f64::from(samples);
            Some((picked, (f64::from(wins) / samples).max(0.5 / samples)))
        }
    }
}

/// The greedy choice (highest score, ties to the lower key) with its score, and how many are
/// eligible.
fn best(len: usize, view: &impl Fn(usize) -> Option<(u64, f64)>) -> (Option<(usize, f64)>, usize) {
    let mut best: Option<(usize, u64, f64)> = None;
    let mut n = 0;
    for i in 0..len {
        if let Some((key, s)) = view(i) {
            n += 1;
            if best.is_none_or(|(_, bk, bs)| beats(s, key, bs, bk)) {
                best = Some((i, key, s));
            }
        }
    }
    (best.map(|(i, _, s)| (i, s)), n)
}

/// Whether `(score, key)` ranks above `(other, other_key)`: higher score, then lower key.
fn beats(score: f64, key: u64, other: f64, other_key: u64) -> bool {
    score > other || (score == other && key < other_key)
}

/// One Thompson round: the argmax of one draw per eligible candidate (NaN draws lose).
fn thompson_argmax(
    len: usize,
    view: &impl Fn(usize) -> Option<(u64, f64)>,
    draw: &mut dyn FnMut(usize, &mut DecisionRng) -> f64,
    rng: &mut DecisionRng,
) -> Option<usize> {
    let mut best: Option<(usize, u64, f64)> = None;
    for i in 0..len {
        let Some((key, _)) = view(i) else { continue };
        let d = draw(i, rng);
        let d = if d.is_nan() { f64::NEG_INFINITY } else { d };
        if best.is_none_or(|(_, bk, bd)| beats(d, key, bd, bk)) {
            best = Some((i, key, d));
        }
    }
    best.map(|(i, _, _)| i)
}

/// The softmax normaliser Σ exp((sᵢ − max)/T) given the highest eligible score: at least 1
/// (the best contributes exp(0)).
fn softmax_norm(
    len: usize,
    view: &impl Fn(usize) -> Option<(u64, f64)>,
    max: f64,
    temperature: f64,
) -> f64 {
    (0..len)
        .filter_map(view)
        .map(|(_, s)| softmax_weight(s, max, temperature))
        .sum()
}

/// exp((s − max)/T): in (0, 1] up to underflow, so it cannot overflow whatever the scores.
fn softmax_weight(score: f64, max: f64, temperature: f64) -> f64 {
    ((score - max) / temperature).exp()
}

fn clamp_epsilon(epsilon: f64) -> f64 {
    if epsilon.is_nan() {
        0.0
    } else {
        epsilon.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_distr::{Beta, Distribution};

    fn cand(offer: u32, category: u32, score: f64) -> Scored {
        Scored {
            offer,
            category,
            score,
        }
    }

    fn no_draw() -> impl FnMut(usize, &mut DecisionRng) -> f64 {
        |_, _| panic!("draw is only for Thompson sampling")
    }

    fn run(policy: &Exploration, candidates: &[Scored], k: usize, seed: u64) -> Vec<Pick> {
        let mut rng = DecisionRng::seed_from_u64(seed);
        let mut picks = Vec::new();
        let scores: Vec<f64> = candidates.iter().map(|c| c.score).collect();
        // Thompson draws: the score times a uniform factor, enough to make the argmax random.
        let mut draw = |i: usize, rng: &mut DecisionRng| {
            scores.get(i).copied().unwrap_or(0.0) * rng.random::<f64>()
        };
        select(policy, candidates, k, &mut draw, &mut rng, &mut picks);
        picks
    }

    fn offers(picks: &[Pick]) -> Vec<u32> {
        picks.iter().map(|p| p.offer).collect()
    }

    #[test]
    fn greedy_takes_the_best_per_category_with_probability_one() {
        let c = [
            cand(0, 0, 0.2),
            cand(1, 0, 0.9),
            cand(2, 1, 0.5),
            cand(3, 2, 0.7),
            cand(4, 1, 0.6),
        ];
        let picks = run(&Exploration::Greedy, &c, 10, 1);
        assert_eq!(offers(&picks), [1, 3, 4]);
        assert!(picks.iter().all(|p| p.probability == 1.0));
        assert_eq!(picks[0].score, 0.9);
        assert_eq!(picks[0].category, 0);
        assert_eq!(offers(&run(&Exploration::Greedy, &c, 2, 1)), [1, 3]);
        assert!(run(&Exploration::Greedy, &c, 0, 1).is_empty());
        assert!(run(&Exploration::Greedy, &[], 3, 1).is_empty());
    }

    #[test]
    fn greedy_ties_go_to_the_lower_offer() {
        let c = [cand(7, 0, 0.5), cand(3, 1, 0.5), cand(5, 2, 0.5)];
        assert_eq!(offers(&run(&Exploration::Greedy, &c, 3, 0)), [3, 5, 7]);
        let mut out = Vec::new();
        slot_distribution(&Exploration::Greedy, &[0.5, 0.5], &mut out);
        assert_eq!(out, [1.0, 0.0]);
    }

    #[test]
    fn scores_that_are_not_finite_are_never_picked() {
        let c = [
            cand(0, 0, f64::NAN),
            cand(1, 1, f64::INFINITY),
            cand(2, 2, f64::NEG_INFINITY),
            cand(3, 3, -2.0),
        ];
        for policy in policies() {
            for seed in 0..50 {
                let picks = run(&policy, &c, 4, seed);
                assert_eq!(offers(&picks), [3], "{policy:?}");
                assert_eq!(picks[0].probability, 1.0, "{policy:?}");
            }
        }
        let mut out = Vec::new();
        slot_distribution(
            &Exploration::Softmax { temperature: 1.0 },
            &[f64::NAN, 1.0, f64::INFINITY, 0.0],
            &mut out,
        );
        assert_eq!(out[0], 0.0);
        assert_eq!(out[2], 0.0);
        assert!((out[1] + out[3] - 1.0).abs() < 1e-12);
        slot_distribution(&Exploration::Greedy, &[f64::NAN], &mut out);
        assert_eq!(out, [0.0]);
    }

    #[test]
    fn out_of_range_parameters_do_not_panic() {
        let c = [cand(0, 0, 1.0), cand(1, 1, 0.5), cand(2, 2, 0.1)];
        for policy in [
            Exploration::EpsilonGreedy { epsilon: f64::NAN },
            Exploration::EpsilonGreedy { epsilon: -1.0 },
            Exploration::EpsilonGreedy { epsilon: 7.0 },
            Exploration::Softmax { temperature: 0.0 },
            Exploration::Softmax { temperature: -1.0 },
            Exploration::Softmax {
                temperature: f64::NAN,
            },
            Exploration::Softmax {
                temperature: f64::INFINITY,
            },
            Exploration::Thompson { samples: 0 },
        ] {
            let picks = run(&policy, &c, 3, 3);
            assert_eq!(picks.len(), 3, "{policy:?}");
            assert!(
                picks
                    .iter()
                    .all(|p| p.probability > 0.0 && p.probability <= 1.0)
            );
            let mut out = Vec::new();
            slot_distribution(&policy, &[1.0, 0.5, 0.1], &mut out);
            assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{policy:?}");
        }
        // A temperature that is not above 0 is greedy.
        let picks = run(&Exploration::Softmax { temperature: 0.0 }, &c, 1, 3);
        assert_eq!((picks[0].offer, picks[0].probability), (0, 1.0));
    }

    #[test]
    fn epsilon_greedy_logs_the_exact_probability() {
        let c = [
            cand(0, 0, 0.1),
            cand(1, 1, 0.9),
            cand(2, 2, 0.4),
            cand(3, 3, 0.3),
        ];
        let policy = Exploration::EpsilonGreedy { epsilon: 0.2 };
        for seed in 0..200 {
            let picks = run(&policy, &c, 1, seed);
            let expected = if picks[0].offer == 1 { 0.85 } else { 0.05 };
            assert!((picks[0].probability - expected).abs() < 1e-15);
        }
        let mut out = Vec::new();
        slot_distribution(&policy, &[0.1, 0.9, 0.4, 0.3], &mut out);
        for (p, e) in out.iter().zip([0.05, 0.85, 0.05, 0.05]) {
            assert!((p - e).abs() < 1e-15, "{out:?}");
        }
    }

    #[test]
    fn softmax_is_stable_for_huge_scores_and_small_temperatures() {
        let c = [cand(0, 0, 1e300), cand(1, 1, -1e300), cand(2, 2, 1e300)];
        let picks = run(
            &Exploration::Softmax {
                temperature: 1e-300,
            },
            &c,
            3,
            9,
        );
        assert_eq!(picks.len(), 3);
        assert!(
            picks
                .iter()
                .all(|p| p.probability > 0.0 && p.probability <= 1.0)
        );
        assert!((picks[0].probability - 0.5).abs() < 1e-12);
        let mut out = Vec::new();
        slot_distribution(
            &Exploration::Softmax { temperature: 1e-3 },
            &[1e300, -1e300, 1e300],
            &mut out,
        );
        assert_eq!(out, [0.5, 0.0, 0.5]);
    }

    /// Runs `policy` over many seeds and compares the empirical frequency of every ordered pair
    /// of picks with the product of the logged probabilities (first slot times the conditional
    /// second slot), which tests the conditional meaning of the logged probability.
    fn check_logged_probabilities(policy: &Exploration, candidates: &[Scored], runs: u64) {
        use std::collections::HashMap;
        let mut seen: HashMap<(u32, u32), (u64, f64)> = HashMap::new();
        for seed in 0..runs {
            let picks = run(policy, candidates, 2, seed);
            assert_eq!(picks.len(), 2);
            let entry = seen.entry((picks[0].offer, picks[1].offer)).or_default();
            entry.0 += 1;
            let p = picks[0].probability * picks[1].probability;
            // Exact policies log the same probability every time the pair occurs.
            if entry.1 != 0.0 && !matches!(policy, Exploration::Thompson { .. }) {
                assert!((entry.1 - p).abs() < 1e-12);
            }
            entry.1 = p;
        }
        let total: f64 = seen.values().map(|&(_, p)| p).sum();
        assert!(total <= 1.0 + 1e-9);
        for ((a, b), (count, p)) in seen {
            let freq = count as f64 / runs as f64;
            // Four binomial standard deviations, plus slack for the Thompson estimate.
            let tolerance = 4.0 * (p * (1.0 - p) / runs as f64).sqrt() + 0.01;
            assert!(
                (freq - p).abs() < tolerance,
                "{policy:?}: pair ({a}, {b}) seen {freq}, logged {p}"
            );
        }
    }

    #[test]
    fn epsilon_greedy_frequencies_match_the_logged_probabilities() {
        let c = [
            cand(0, 0, 0.1),
            cand(1, 0, 0.9),
            cand(2, 1, 0.4),
            cand(3, 2, 0.3),
        ];
        check_logged_probabilities(&Exploration::EpsilonGreedy { epsilon: 0.3 }, &c, 40_000);
    }

    #[test]
    fn softmax_frequencies_match_the_logged_probabilities() {
        let c = [
            cand(0, 0, 0.1),
            cand(1, 0, 0.9),
            cand(2, 1, 0.4),
            cand(3, 2, -0.3),
        ];
        check_logged_probabilities(&Exploration::Softmax { temperature: 0.5 }, &c, 40_000);
    }

    #[test]
    fn thompson_estimates_match_the_frequencies() {
        let c = [
            cand(0, 0, 0.3),
            cand(1, 0, 0.5),
            cand(2, 1, 0.4),
            cand(3, 2, 0.2),
        ];
        check_logged_probabilities(&Exploration::Thompson { samples: 400 }, &c, 4_000);
    }

    #[test]
    fn thompson_estimate_matches_the_distribution_of_beta_posteriors() {
        // Posteriors Beta(a, b) per candidate, one category each: one slot.
        let posteriors = [(3.0, 7.0), (5.0, 5.0), (4.0, 6.0), (2.0, 2.0)];
        let betas: Vec<Beta<f64>> = posteriors
            .iter()
            .map(|&(a, b)| Beta::new(a, b).unwrap())
            .collect();
        let c: Vec<Scored> = posteriors
            .iter()
            .zip(0..)
            .map(|(&(a, b), i)| cand(i, i, a / (a + b)))
            .collect();
        let mut draw = |i: usize, rng: &mut DecisionRng| betas[i].sample(rng);
        let scores: Vec<f64> = c.iter().map(|c| c.score).collect();
        let mut rng = DecisionRng::seed_from_u64(11);
        let mut exact = Vec::new();
        thompson_distribution(&scores, 200_000, &mut draw, &mut rng, &mut exact);
        assert!((exact.iter().sum::<f64>() - 1.0).abs() < 1e-9);

        let runs = 3_000;
        let mut freq = [0.0; 4];
        let mut logged = [0.0; 4];
        let mut picks = Vec::new();
        for seed in 0..runs {
            let mut rng = DecisionRng::seed_from_u64(seed);
            let policy = Exploration::Thompson { samples: 200 };
            select(&policy, &c, 1, &mut draw, &mut rng, &mut picks);
            let p = picks[0];
            freq[p.offer as usize] += 1.0 / runs as f64;
            // The mean of the logged estimate over the runs where it was picked.
            logged[p.offer as usize] += p.probability;
        }
        for i in 0..4 {
            let logged_mean = logged[i] / (freq[i] * runs as f64);
            assert!(
                (freq[i] - exact[i]).abs() < 0.03,
                "{i}: {freq:?} vs {exact:?}"
            );
            assert!(
                (logged_mean - exact[i]).abs() < 0.03,
                "{i}: logged {logged_mean} vs {}",
                exact[i]
            );
        }
    }

    #[test]
    fn thompson_with_one_eligible_candidate_does_not_draw() {
        let c = [cand(0, 0, 0.3), cand(1, 0, 0.5), cand(2, 1, 0.4)];
        let mut rng = DecisionRng::seed_from_u64(1);
        let mut picks = Vec::new();
        let mut draws = 0;
        let mut draw = |i: usize, _: &mut DecisionRng| {
            draws += 1;
            // Candidate 0 always wins its draw.
            [1.0, 0.0, 0.5][i]
        };
        select(
            &Exploration::Thompson { samples: 10 },
            &c,
            3,
            &mut draw,
            &mut rng,
            &mut picks,
        );
        assert_eq!(offers(&picks), [0, 2]);
        assert_eq!(picks[0].probability, 1.0);
        // One draw per candidate for the pick, then 10 rounds of 3 draws; none for slot 2.
        assert_eq!(draws, 3 + 10 * 3);
        assert_eq!(picks[1].probability, 1.0);
    }

    #[test]
    fn thompson_estimate_is_clamped_and_nan_draws_lose() {
        let c = [cand(0, 0, 0.3), cand(1, 1, 0.5)];
        let mut rng = DecisionRng::seed_from_u64(1);
        let mut picks = Vec::new();
        // Offer 1 wins only the very first draw, then NaN: its re-draws never win.
        let mut calls = 0;
        let mut draw = |i: usize, _: &mut DecisionRng| {
            calls += 1;
            match (i, calls) {
                (1, 2) => 1.0,
                (1, _) => f64::NAN,
                _ => 0.1,
            }
        };
        select(
            &Exploration::Thompson { samples: 50 },
            &c,
            1,
            &mut draw,
            &mut rng,
            &mut picks,
        );
        assert_eq!(offers(&picks), [1]);
        assert_eq!(picks[0].probability, 1.0 / 100.0);
    }

    #[test]
    fn buffers_are_reused() {
        let c: Vec<Scored> = (0..100).map(|i| cand(i, i % 7, f64::from(i))).collect();
        let mut rng = DecisionRng::seed_from_u64(1);
        let mut picks = Vec::with_capacity(3);
        let ptr = picks.as_ptr();
        let mut draw = no_draw();
        for _ in 0..10 {
            select(
                &Exploration::Softmax { temperature: 5.0 },
                &c,
                3,
                &mut draw,
                &mut rng,
                &mut picks,
            );
            assert_eq!(picks.len(), 3);
        }
        assert_eq!(picks.as_ptr(), ptr);
    }

    fn policies() -> Vec<Exploration> {
        vec![
            Exploration::Greedy,
            Exploration::EpsilonGreedy { epsilon: 0.25 },
            Exploration::Softmax { temperature: 0.7 },
            Exploration::Thompson { samples: 20 },
        ]
    }

    fn policy() -> impl Strategy<Value = Exploration> {
        prop_oneof![
            Just(Exploration::Greedy),
            (0.0..=1.0f64).prop_map(|epsilon| Exploration::EpsilonGreedy { epsilon }),
            (1e-3..100.0f64).prop_map(|temperature| Exploration::Softmax { temperature }),
            (1..30u32).prop_map(|samples| Exploration::Thompson { samples }),
        ]
    }

    fn score() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => -10.0..10.0f64,
            1 => Just(0.0),
            1 => prop::num::f64::ANY,
        ]
    }

    fn candidates() -> impl Strategy<Value = Vec<Scored>> {
        prop::collection::vec((0..5u32, score()), 0..12).prop_map(|v| {
            v.into_iter()
                .zip(0..)
                .map(|((category, score), offer)| cand(offer, category, score))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn picks_respect_k_categories_and_probabilities(
            policy in policy(),
            c in candidates(),
            k in 0..6usize,
            seed: u64,
        ) {
            let picks = run(&policy, &c, k, seed);
            // Fills min(k, distinct categories with a finite score) slots.
            let mut categories: Vec<u32> =
                c.iter().filter(|c| c.score.is_finite()).map(|c| c.category).collect();
            categories.sort_unstable();
            categories.dedup();
            prop_assert_eq!(picks.len(), k.min(categories.len()));
            for (i, p) in picks.iter().enumerate() {
                prop_assert!(p.probability > 0.0 && p.probability <= 1.0, "{:?}", p);
                prop_assert!(p.score.is_finite());
                prop_assert!(picks[..i].iter().all(|q| q.category != p.category));
                prop_assert!(c.contains(&cand(p.offer, p.category, p.score)));
            }
            // Same seed, same picks.
            prop_assert_eq!(&run(&policy, &c, k, seed), &picks);
        }

        #[test]
        fn greedy_in_one_pass_equals_greedy_slot_by_slot(c in candidates(), k in 0..6usize) {
            let fast = run(&Exploration::Greedy, &c, k, 0);
            let mut slow = Vec::new();
            let mut rng = DecisionRng::seed_from_u64(0);
            select_slots(&Exploration::Greedy, &c, k, &mut no_draw(), &mut rng, &mut slow);
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn greedy_is_the_argmax(c in candidates(), seed: u64) {
            let picks = run(&Exploration::Greedy, &c, 1, seed);
            let best = c
                .iter()
                .filter(|c| c.score.is_finite())
                // partial_cmp, not total_cmp: -0.0 and 0.0 tie.
                .max_by(|a, b| a.score.partial_cmp(&b.score).unwrap().then(b.offer.cmp(&a.offer)));
            prop_assert_eq!(picks.first().map(|p| p.offer), best.map(|b| b.offer));
        }

        #[test]
        fn slot_distributions_sum_to_one(
            policy in policy(),
            scores in prop::collection::vec(score(), 0..20),
        ) {
            let mut out = Vec::new();
            slot_distribution(&policy, &scores, &mut out);
            prop_assert_eq!(out.len(), scores.len());
            let sum: f64 = out.iter().sum();
            if scores.iter().any(|s| s.is_finite()) {
                prop_assert!((sum - 1.0).abs() < 1e-9, "{} {:?}", sum, out);
            } else {
                prop_assert_eq!(sum, 0.0);
            }
            for (p, s) in out.iter().zip(&scores) {
                prop_assert!((0.0..=1.0).contains(p));
                if !s.is_finite() {
                    prop_assert_eq!(*p, 0.0);
                }
            }
        }

        #[test]
        fn the_first_pick_logs_its_slot_distribution(
            policy in policy().prop_filter("exact", |p| !matches!(p, Exploration::Thompson { .. })),
            c in candidates(),
            seed: u64,
        ) {
            let picks = run(&policy, &c, 1, seed);
            // Candidate offers are their indices here, so tie-breaks agree.
            let scores: Vec<f64> = c.iter().map(|c| c.score).collect();
            let mut out = Vec::new();
            slot_distribution(&policy, &scores, &mut out);
            if let Some(p) = picks.first() {
                let expected = out[p.offer as usize].max(f64::MIN_POSITIVE);
                prop_assert!((p.probability - expected).abs() < 1e-12, "{:?} vs {}", p, expected);
            }
        }
    }
}
