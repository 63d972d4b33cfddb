//! The reference semantics of touchpoint measures
//! ([`AnalyticsStore::measure_touchpoints`](crate::store::AnalyticsStore::measure_touchpoints)):
//! an accumulator a backend without SQL feeds with the touchpoints that pass the query's filter
//! (range, kinds, channels), customer by customer.

use crate::model::{Attributes, SurveyAnswer, Value};
use crate::store::{MeasureQuery, MeasureValue, Statistic};
use std::cell::OnceCell;
use std::collections::{BTreeMap, HashSet};

/// Accumulates one [`MeasureQuery`].
#[derive(Debug)]
pub struct MeasureAcc<'q> {
    query: &'q MeasureQuery,
    /// The query's customers as a set, made on first use (a backend that filters customers
    /// its own way never pays for it).
    customers: OnceCell<HashSet<&'q str>>,
    n: u64,
    sum: f64,
    /// Percentile values, as [`order_key`]s.
    values: Vec<u64>,
    last_customer: Option<usize>,
    scores: BTreeMap<u64, (f64, u64)>,
}

impl<'q> MeasureAcc<'q> {
    /// An accumulator for `query`.
    pub fn new(query: &'q MeasureQuery) -> Self {
        MeasureAcc {
            query,
            customers: OnceCell::new(),
            n: 0,
            sum: 0.0,
            values: Vec::new(),
            last_customer: None,
            scores: BTreeMap::new(),
        }
    }

    /// The query.
    pub fn query(&self) -> &MeasureQuery {
        self.query
    }

    /// Whether touchpoints of customer `id` count at all.
    pub fn counts_customer(&self, id: &str) -> bool {
        self.query.customers.as_ref().is_none_or(|list| {
            self.customers
                .get_or_init(|| list.iter().map(|id| id.as_str()).collect())
                .contains(id)
        })
    }

    /// Adds a touchpoint that passed the filter, of the customer numbered `customer` (each
    /// customer's touchpoints are added together, under one number).
    pub fn add(&mut self, customer: usize, attributes: &Attributes, survey: Option<&SurveyAnswer>) {
        let number = |name: &str| match attributes.get(name) {
            Some(Value::Number(n)) => Some(*n),
            _ => None,
        };
        match &self.query.statistic {
            Statistic::Count => self.add_count(1),
            Statistic::DistinctCustomers => {
                if self.last_customer != Some(customer) {
                    self.last_customer = Some(customer);
                    self.add_count(1);
                }
            }
            Statistic::Sum(name) | Statistic::Avg(name) | Statistic::Percentile(name, _) => {
                if let Some(v) = number(name.as_str()) {
                    self.add_number(v);
                }
            }
            Statistic::Scores(question) => {
                if let Some(answer) = survey
                    && answer.question == *question
                {
                    self.add_score(answer.score);
                }
            }
        }
    }

    /// Adds `n` to the count: `n` more touchpoints that passed the filter (`Count`), or `n`
    /// more distinct customers with such touchpoints (`DistinctCustomers`; the caller
    /// guarantees that they are distinct). For a backend that counts on its own (columns, SQL)
    /// rather than through [`add`](Self::add).
    #[inline]
    pub fn add_count(&mut self, n: u64) {
        self.n += n;
    }

    /// Adds the value `v` of the statistic's attribute, from a touchpoint that passed the
    /// filter (`Sum`, `Avg`, `Percentile`; values are summed in the order they are added).
    #[inline]
    pub fn add_number(&mut self, v: f64) {
        self.n += 1;
        match &self.query.statistic {
            Statistic::Percentile(..) => self.values.push(order_key(v)),
            _ => self.sum += v,
        }
    }

    /// Adds an answer with `score` to the statistic's question, from a touchpoint that passed
    /// the filter (`Scores`).
    #[inline]
    pub fn add_score(&mut self, score: f64) {
        self.n += 1;
        let entry = self.scores.entry(order_key(score)).or_insert((score, 0));
        entry.1 += 1;
    }

    /// The answer.
    pub fn finish(mut self) -> MeasureValue {
        let n = self.n;
        let value = match &self.query.statistic {
            Statistic::Count | Statistic::DistinctCustomers => Some(n as f64),
            Statistic::Sum(_) => Some(self.sum),
            Statistic::Avg(_) => (n > 0).then(|| self.sum / n as f64),
            Statistic::Percentile(_, p) => percentile_unsorted(&mut self.values, *p),
            Statistic::Scores(_) => None,
        };
        MeasureValue::new(n, value, self.scores.into_values().collect())
    }
}

/// The `p`-th percentile of the values whose [`order_key`]s are `keys` (any order;
/// reordered), as [`percentile_sorted`](super::percentile_sorted) gives it, in linear time.
/// Keys are integers in the order of [`f64::total_cmp`], cheaper to compare than floats.
fn percentile_unsorted(keys: &mut [u64], p: f64) -> Option<f64> {
    let n = keys.len();
    if n == 0 || !p.is_finite() {
        return None;
    }
    let rank = (p.clamp(0.0, 100.0) / 100.0) * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let (_, a, above) = keys.select_nth_unstable(lo);
    let a = from_order_key(*a);
    if rank == lo as f64 {
        return Some(a);
    }
    // The next rank is the smallest value above the `lo`-th.
    let b = above.iter().copied().min().map_or(a, from_order_key);
    Some(a + (b - a) * (rank - lo as f64))
}

/// A key that sorts floats in the order of [`f64::total_cmp`] (for finite floats, numeric
/// order with -0 before +0).
fn order_key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The float whose [`order_key`] is `key`.
fn from_order_key(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The selection on floats this replaced.
    fn percentile_of_floats(values: &mut [f64], p: f64) -> Option<f64> {
        let n = values.len();
        if n == 0 || !p.is_finite() {
            return None;
        }
        let rank = (p.clamp(0.0, 100.0) / 100.0) * (n - 1) as f64;
        let lo = rank.floor() as usize;
        let (_, a, above) = values.select_nth_unstable_by(lo, f64::total_cmp);
        let a = *a;
        if rank == lo as f64 {
            return Some(a);
        }
        let b = above.iter().copied().min_by(f64::total_cmp).unwrap_or(a);
        Some(a + (b - a) * (rank - lo as f64))
    }

    proptest! {
        #[test]
        fn percentiles_by_key_are_those_of_the_floats(
            mut values in proptest::collection::vec(
                prop_oneof![-1e6f64..1e6, Just(0.0), Just(-0.0), (-5i32..5).prop_map(f64::from)],
                0..200,
            ),
            p in prop_oneof![0.0f64..=100.0, Just(0.0), Just(50.0), Just(100.0)],
        ) {
            let mut keys: Vec<u64> = values.iter().map(|&v| order_key(v)).collect();
            prop_assert!(keys.iter().zip(&values).all(|(&k, &v)| from_order_key(k).to_bits() == v.to_bits()));
            let got = percentile_unsorted(&mut keys, p);
            prop_assert_eq!(got.map(f64::to_bits), percentile_of_floats(&mut values.clone(), p).map(f64::to_bits));
            // And numerically, the percentile of the sorted values.
            values.sort_by(f64::total_cmp);
            prop_assert_eq!(got, crate::kpi::percentile_sorted(&values, p));
        }
    }
}
