//! Propensity: the learned probability that an offer, once shown, is accepted. The model is
//! pluggable ([`PropensityModel`]); the default, [`BetaBernoulli`], learns it from resolved
//! outcomes with a Beta prior from the catalogue.

use super::explore::DecisionRng;
use crate::model::{OfferId, OutcomeKind, Prior};
use parking_lot::RwLock;
use rand_distr::{Beta, Distribution};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Learned probability that an offer, once shown, is accepted. Implementations are shared by
/// every decision (interior mutability, `Send + Sync`).
///
/// # Contract
///
/// - Offers are addressed by their index in the bound catalogue when deciding (fast), and by
///   id when learning, so an outcome resolved after a catalogue change still lands on its offer.
/// - What was learned for an offer id survives a rebind, including for ids the new catalogue
///   drops (they are kept in case a later version brings them back).
/// - Propensities are in [0, 1]; an offer index or segment the binding does not know reads the
///   per-offer value or the prior, never a panic.
/// - Which outcomes resolve a trial is decided by the caller; [`trial_result`] is the rule the
///   engine uses.
pub trait PropensityModel: Send + Sync + fmt::Debug {
    /// Starts serving a catalogue: `offers[i]` is the offer with index i in decisions;
    /// `segments` is how many propensity segments the catalogue defines (index `0..segments`; 0
    /// for a per-offer model only); `prior` the catalogue's prior. What was learned for an offer
    /// id survives a rebind.
    fn bind(&self, offers: &[OfferId], segments: usize, prior: Prior);

    /// For each offer index in `offers`, its mean propensity for the customer's segment (`None`:
    /// the per-offer model). `out` is cleared, then gets one value per index. One lock
    /// acquisition for the whole call, not one per offer: a decision asks for ~1000 at once.
    fn fill_means(&self, offers: &[u32], segment: Option<usize>, out: &mut Vec<f64>);

    /// Same as [`fill_means`](Self::fill_means), each value drawn from its posterior (Thompson
    /// sampling), in the order of `offers`.
    fn fill_samples(
        &self,
        offers: &[u32],
        segment: Option<usize>,
        rng: &mut DecisionRng,
        out: &mut Vec<f64>,
    );

    /// One posterior draw for one offer index (re-draws when estimating a Thompson probability).
    fn sample(&self, offer: u32, segment: Option<usize>, rng: &mut DecisionRng) -> f64;

    /// Records a resolved trial of `offer` (by id, so it works across catalogue versions):
    /// accepted or not, for the customer's segment (`None`: no propensity segment).
    fn observe(&self, offer: &OfferId, segment: Option<usize>, accepted: bool);
}

/// Whether an outcome resolves a trial of the propensity model, and how: `accepted` is a
/// success; `rejected` and `ignored` are failures; `shown` (the trial has only started) and
/// `converted` (a later goal, after an acceptance already counted) resolve nothing.
pub fn trial_result(kind: OutcomeKind) -> Option<bool> {
    match kind {
        OutcomeKind::Accepted => Some(true),
        OutcomeKind::Rejected | OutcomeKind::Ignored => Some(false),
        OutcomeKind::Shown | OutcomeKind::Converted => None,
    }
}

/// The default propensity model: for each offer (and, optionally, each propensity segment) a
/// Beta-Bernoulli posterior, Beta(α + successes, β + failures), where α and β are the bound
/// catalogue's [`Prior`].
///
/// - The mean is (α + s)/(α + β + s + f); a draw comes from Beta(α + s, β + f).
/// - A trial is one resolved outcome of a shown offer (see [`trial_result`]): `accepted` counts
///   as a success, `rejected` and `ignored` as failures; `shown` and `converted` are not
///   trials.
/// - With segments, each offer keeps its overall counts and one pair per segment: observing
///   with `Some(segment)` updates both, so the overall model learns from every outcome, and
///   reading with `Some(segment)` uses that segment's counts only. A segment index the binding
///   does not have falls back to the overall counts, for reading and for learning.
/// - Counts are atomics behind a read lock, so concurrent decisions and `observe` calls never
///   wait for each other; only `bind` takes the write lock.
/// - Counts are kept by offer id across rebinds. Segment counts are kept by segment *index*: a
///   catalogue version that reorders or replaces its propensity segments inherits the counts at
///   each index (a change in the number of segments drops or adds trailing segments).
/// - A prior that is not finite and above 0 (which catalogue validation rejects) is replaced by
///   the default prior rather than producing NaN propensities.
pub struct BetaBernoulli {
    table: RwLock<Table>,
}

/// The counts of one (offer, segment) cell.
#[derive(Debug, Default)]
struct Cell {
    successes: AtomicU64,
    failures: AtomicU64,
}

impl Cell {
    fn load(&self) -> (u64, u64) {
        (
            self.successes.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }
}

/// Counts laid out in rows of `1 + segments` cells: column 0 is the offer overall, column
/// `1 + s` segment `s`. Rows `0..offers` are the bound catalogue's offers in index order (so a
/// decision reads memory in order), then the rows of ids learned earlier and not in it.
#[derive(Debug)]
struct Table {
    prior: Prior,
    segments: usize,
    /// Offer index → row (the identity unless the catalogue repeats an id).
    rows: Vec<usize>,
    /// Every id ever bound → its row.
    by_id: HashMap<OfferId, usize>,
    cells: Vec<Cell>,
}

impl Table {
    fn width(&self) -> usize {
        1 + self.segments
    }

    fn column(&self, segment: Option<usize>) -> usize {
        match segment {
            Some(s) if s < self.segments => 1 + s,
            _ => 0,
        }
    }

    /// The (successes, failures) of an offer index, or `None` when the index is not bound.
    fn counts_at(&self, offer: u32, column: usize) -> Option<(u64, u64)> {
        let row = *self.rows.get(usize::try_from(offer).ok()?)?;
        self.cells.get(row * self.width() + column).map(Cell::load)
    }

    fn mean(&self, counts: Option<(u64, u64)>) -> f64 {
        let (s, f) = counts.unwrap_or((0, 0));
        posterior_mean(self.prior, s, f)
    }

    fn sample(&self, counts: Option<(u64, u64)>, rng: &mut DecisionRng) -> f64 {
        let (s, f) = counts.unwrap_or((0, 0));
        let (a, b) = (self.prior.alpha + s as f64, self.prior.beta + f as f64);
        match Beta::new(a, b) {
            Ok(beta) => {
                let x: f64 = beta.sample(rng);
                if x.is_finite() {
                    // Extreme parameters can round a draw to 0 or 1; keep it a probability
                    // strictly inside (0, 1) like the posterior's support.
                    x.clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON / 2.0)
                } else {
                    posterior_mean(self.prior, s, f)
                }
            }
            Err(_) => posterior_mean(self.prior, s, f),
        }
    }
}

fn posterior_mean(prior: Prior, successes: u64, failures: u64) -> f64 {
    let a = prior.alpha + successes as f64;
    a / (a + prior.beta + failures as f64)
}

fn sane(prior: Prior) -> Prior {
    let ok = |v: f64| v.is_finite() && v > 0.0;
    if ok(prior.alpha) && ok(prior.beta) {
        prior
    } else {
        Prior::default()
    }
}

impl BetaBernoulli {
    /// An unbound model: every propensity is the default prior's mean until [`bind`] is called,
    /// and outcomes for offers it was never bound to are ignored.
    ///
    /// [`bind`]: PropensityModel::bind
    pub fn new() -> Self {
        BetaBernoulli {
            table: RwLock::new(Table {
                prior: Prior::default(),
                segments: 0,
                rows: Vec::new(),
                by_id: HashMap::new(),
                cells: Vec::new(),
            }),
        }
    }

    /// The (successes, failures) recorded for `offer`, overall (`None`) or in a segment;
    /// (0, 0) for an id the model was never bound to.
    pub fn counts(&self, offer: &OfferId, segment: Option<usize>) -> (u64, u64) {
        let table = self.table.read();
        let column = table.column(segment);
        table
            .by_id
            .get(offer)
            .and_then(|&row| table.cells.get(row * table.width() + column))
            .map_or((0, 0), Cell::load)
    }
}

impl Default for BetaBernoulli {
    fn default() -> Self {
        BetaBernoulli::new()
    }
}

impl fmt::Debug for BetaBernoulli {
    /// A summary: the counts themselves can be large.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = self.table.read();
        f.debug_struct("BetaBernoulli")
            .field("prior", &table.prior)
            .field("segments", &table.segments)
            .field("bound_offers", &table.rows.len())
            .field("known_ids", &table.by_id.len())
            .finish()
    }
}

impl PropensityModel for BetaBernoulli {
    fn bind(&self, offers: &[OfferId], segments: usize, prior: Prior) {
        let mut table = self.table.write();
        let width = 1 + segments;
        let old_width = table.width();
        // New rows: the catalogue's offers in index order, then every other id known so far.
        let mut by_id: HashMap<OfferId, usize> = HashMap::with_capacity(table.by_id.len());
        let mut rows = Vec::with_capacity(offers.len());
        let mut order: Vec<Option<usize>> = Vec::with_capacity(offers.len());
        for id in offers {
            let next = order.len();
            let row = *by_id.entry(id.clone()).or_insert_with(|| {
                order.push(table.by_id.get(id).copied());
                next
            });
            rows.push(row);
        }
        for (id, &old_row) in &table.by_id {
            if !by_id.contains_key(id) {
                by_id.insert(id.clone(), order.len());
                order.push(Some(old_row));
            }
        }
        let mut cells = Vec::with_capacity(order.len() * width);
        for old_row in order {
            for column in 0..width {
                let (s, f) = old_row
                    .filter(|_| column < old_width)
                    .and_then(|r| table.cells.get(r * old_width + column))
                    .map_or((0, 0), Cell::load);
                cells.push(Cell {
                    successes: AtomicU64::new(s),
                    failures: AtomicU64::new(f),
                });
            }
        }
        *table = Table {
            prior: sane(prior),
            segments,
            rows,
            by_id,
            cells,
        };
    }

    fn fill_means(&self, offers: &[u32], segment: Option<usize>, out: &mut Vec<f64>) {
        out.clear();
        let table = self.table.read();
        let column = table.column(segment);
        out.extend(
            offers
                .iter()
                .map(|&o| table.mean(table.counts_at(o, column))),
        );
    }

    fn fill_samples(
        &self,
        offers: &[u32],
        segment: Option<usize>,
        rng: &mut DecisionRng,
        out: &mut Vec<f64>,
    ) {
        out.clear();
        let table = self.table.read();
        let column = table.column(segment);
        out.extend(
            offers
                .iter()
                .map(|&o| table.sample(table.counts_at(o, column), rng)),
        );
    }

    fn sample(&self, offer: u32, segment: Option<usize>, rng: &mut DecisionRng) -> f64 {
        let table = self.table.read();
        let column = table.column(segment);
        table.sample(table.counts_at(offer, column), rng)
    }

    fn observe(&self, offer: &OfferId, segment: Option<usize>, accepted: bool) {
        let table = self.table.read();
        let Some(&row) = table.by_id.get(offer) else {
            return;
        };
        let base = row * table.width();
        let column = table.column(segment);
        let columns = if column == 0 { 0..1 } else { 0..2 };
        for c in columns {
            // Column 0 then, with a segment, the segment's column.
            let index = if c == 0 { base } else { base + column };
            if let Some(cell) = table.cells.get(index) {
                let counter = if accepted {
                    &cell.successes
                } else {
                    &cell.failures
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::sync::Arc;

    fn ids(names: &[&str]) -> Vec<OfferId> {
        names.iter().map(|&n| OfferId::new(n)).collect()
    }

    const PRIOR: Prior = Prior {
        alpha: 1.0,
        beta: 9.0,
    };

    fn means(m: &BetaBernoulli, offers: &[u32], segment: Option<usize>) -> Vec<f64> {
        let mut out = vec![f64::NAN; 7]; // stale content must be cleared
        m.fill_means(offers, segment, &mut out);
        out
    }

    #[test]
    fn trials_are_resolved_by_accepted_rejected_and_ignored() {
        assert_eq!(trial_result(OutcomeKind::Accepted), Some(true));
        assert_eq!(trial_result(OutcomeKind::Rejected), Some(false));
        assert_eq!(trial_result(OutcomeKind::Ignored), Some(false));
        assert_eq!(trial_result(OutcomeKind::Shown), None);
        assert_eq!(trial_result(OutcomeKind::Converted), None);
    }

    #[test]
    fn prior_mean_before_data() {
        let m = BetaBernoulli::new();
        assert_eq!(means(&m, &[0, 5], None), [0.1, 0.1]);
        m.bind(
            &ids(&["a", "b"]),
            0,
            Prior {
                alpha: 2.0,
                beta: 2.0,
            },
        );
        assert_eq!(means(&m, &[0, 1, 2, u32::MAX], Some(3)), [0.5; 4]);
    }

    #[test]
    fn mean_after_observations() {
        let m = BetaBernoulli::default();
        m.bind(&ids(&["a", "b"]), 0, PRIOR);
        let a = OfferId::new("a");
        for accepted in [
            true, true, false, true, false, false, false, false, false, false,
        ] {
            m.observe(&a, None, accepted);
        }
        assert_eq!(m.counts(&a, None), (3, 7));
        // (1 + 3) / (1 + 9 + 3 + 7)
        assert_eq!(means(&m, &[0, 1], None), [0.2, 0.1]);
        // Unknown ids are ignored.
        m.observe(&OfferId::new("zzz"), None, true);
        assert_eq!(m.counts(&OfferId::new("zzz"), None), (0, 0));
    }

    #[test]
    fn rebind_keeps_counts_by_id_and_reindexes() {
        let m = BetaBernoulli::new();
        m.bind(&ids(&["a", "b", "c"]), 0, PRIOR);
        for _ in 0..10 {
            m.observe(&OfferId::new("b"), None, true);
        }
        m.observe(&OfferId::new("c"), None, false);
        // b moves to index 0, c leaves, d arrives.
        m.bind(&ids(&["b", "d", "a"]), 0, PRIOR);
        assert_eq!(means(&m, &[0, 1, 2], None), [0.55, 0.1, 0.1]);
        assert_eq!(m.counts(&OfferId::new("c"), None), (0, 1));
        m.observe(&OfferId::new("c"), None, false);
        // c comes back with everything it learned, even while out of the catalogue.
        m.bind(
            &ids(&["c"]),
            0,
            Prior {
                alpha: 1.0,
                beta: 1.0,
            },
        );
        assert_eq!(m.counts(&OfferId::new("c"), None), (0, 2));
        assert_eq!(means(&m, &[0], None), [0.25]);
        assert_eq!(m.counts(&OfferId::new("b"), None), (10, 0));
    }

    #[test]
    fn segments_are_learned_separately_and_overall() {
        let m = BetaBernoulli::new();
        m.bind(&ids(&["a"]), 2, PRIOR);
        let a = OfferId::new("a");
        for _ in 0..10 {
            m.observe(&a, Some(0), true);
        }
        for _ in 0..10 {
            m.observe(&a, Some(1), false);
        }
        m.observe(&a, None, true);
        // Out of range: learned overall only.
        m.observe(&a, Some(9), true);
        assert_eq!(m.counts(&a, Some(0)), (10, 0));
        assert_eq!(m.counts(&a, Some(1)), (0, 10));
        assert_eq!(m.counts(&a, None), (12, 10));
        assert_eq!(m.counts(&a, Some(9)), (12, 10));
        assert_eq!(means(&m, &[0], Some(0)), [11.0 / 20.0]);
        assert_eq!(means(&m, &[0], Some(1)), [1.0 / 20.0]);
        assert_eq!(means(&m, &[0], None), [13.0 / 32.0]);
        // A rebind with fewer segments keeps the leading ones.
        m.bind(&ids(&["a"]), 1, PRIOR);
        assert_eq!(m.counts(&a, Some(0)), (10, 0));
        assert_eq!(m.counts(&a, Some(1)), (12, 10));
        m.bind(&ids(&["a"]), 3, PRIOR);
        assert_eq!(m.counts(&a, Some(1)), (0, 0));
        assert_eq!(m.counts(&a, None), (12, 10));
    }

    #[test]
    fn a_repeated_id_shares_its_counts() {
        let m = BetaBernoulli::new();
        m.bind(&ids(&["a", "a"]), 0, PRIOR);
        m.observe(&OfferId::new("a"), None, true);
        assert_eq!(means(&m, &[0, 1], None), [2.0 / 11.0; 2]);
    }

    #[test]
    fn invalid_priors_fall_back_to_the_default() {
        let m = BetaBernoulli::new();
        for prior in [
            Prior {
                alpha: 0.0,
                beta: 1.0,
            },
            Prior {
                alpha: f64::NAN,
                beta: 1.0,
            },
            Prior {
                alpha: 1.0,
                beta: f64::INFINITY,
            },
        ] {
            m.bind(&ids(&["a"]), 0, prior);
            assert_eq!(means(&m, &[0], None), [0.1]);
            let mut rng = DecisionRng::seed_from_u64(0);
            let x = m.sample(0, None, &mut rng);
            assert!(x > 0.0 && x < 1.0);
        }
    }

    #[test]
    fn samples_are_probabilities_averaging_the_mean() {
        let m = BetaBernoulli::new();
        m.bind(&ids(&["a", "b"]), 0, PRIOR);
        for i in 0..100 {
            m.observe(&OfferId::new("a"), None, i % 4 == 0);
        }
        let mut rng = DecisionRng::seed_from_u64(5);
        let mut out = Vec::new();
        let (mut sum, n) = ([0.0; 3], 20_000);
        for _ in 0..n {
            m.fill_samples(&[0, 1, 7], None, &mut rng, &mut out);
            assert_eq!(out.len(), 3);
            for (s, x) in sum.iter_mut().zip(&out) {
                assert!(*x > 0.0 && *x < 1.0);
                *s += x / f64::from(n);
            }
        }
        // a: (1 + 25) / (10 + 100); b and the unbound index: the prior's 0.1.
        let expected = [26.0 / 110.0, 0.1, 0.1];
        for (s, e) in sum.iter().zip(expected) {
            assert!((s - e).abs() < 0.005, "{sum:?}");
        }
        // Same seed, same draws.
        let mut a = DecisionRng::seed_from_u64(1);
        let mut b = DecisionRng::seed_from_u64(1);
        assert_eq!(m.sample(0, None, &mut a), m.sample(0, None, &mut b));
    }

    #[test]
    fn samples_of_extreme_posteriors_stay_inside_the_unit_interval() {
        let m = BetaBernoulli::new();
        m.bind(
            &ids(&["a"]),
            0,
            Prior {
                alpha: 1e-3,
                beta: 1e-3,
            },
        );
        let mut rng = DecisionRng::seed_from_u64(2);
        for _ in 0..10_000 {
            let x = m.sample(0, None, &mut rng);
            assert!(x > 0.0 && x < 1.0, "{x}");
        }
    }

    #[test]
    fn concurrent_observations_count_exactly() {
        let m = Arc::new(BetaBernoulli::new());
        m.bind(&ids(&["a", "b"]), 2, PRIOR);
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    let (a, b) = (OfferId::new("a"), OfferId::new("b"));
                    let mut out = Vec::new();
                    for i in 0..10_000 {
                        m.observe(&a, Some(t % 2), i % 3 == 0);
                        m.observe(&b, None, true);
                        if i % 1000 == 0 {
                            m.fill_means(&[0, 1], Some(0), &mut out);
                            // A concurrent rebind must not lose counts either.
                            m.bind(&ids(&["a", "b"]), 2, PRIOR);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Per thread: 3334 of 10_000 accepted.
        assert_eq!(m.counts(&OfferId::new("a"), None), (16 * 3334, 16 * 6666));
        assert_eq!(m.counts(&OfferId::new("a"), Some(0)), (8 * 3334, 8 * 6666));
        assert_eq!(m.counts(&OfferId::new("a"), Some(1)), (8 * 3334, 8 * 6666));
        assert_eq!(m.counts(&OfferId::new("b"), None), (160_000, 0));
    }

    #[test]
    fn usable_as_a_shared_trait_object() {
        let m: Arc<dyn PropensityModel> = Arc::new(BetaBernoulli::new());
        m.bind(&ids(&["a"]), 0, PRIOR);
        m.observe(&OfferId::new("a"), None, true);
        let mut out = Vec::new();
        m.fill_means(&[0], None, &mut out);
        assert_eq!(out, [2.0 / 11.0]);
        assert!(format!("{m:?}").contains("bound_offers: 1"));
    }
}
