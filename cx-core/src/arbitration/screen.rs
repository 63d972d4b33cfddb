//! The first look at a decision's candidates, 64 candidates at a time.
//!
//! Most candidates stop at a stage a lookup settles: not valid now, no consent for the offer's
//! purpose, an eligibility or suitability clause the decision's shared clauses found false.
//! Rather than look at each candidate in turn, a channel's [`ChannelScreen`] keeps, from when
//! the catalogue compiles, the set of candidates (bits, by position in the channel's candidate
//! order) each such lookup concerns: those of each purpose, category and budget, those valid
//! only for a while, those whose eligibility or suitability rule has each shared clause, and
//! those that always need a closer look. A decision combines whole sets
//! ([`ChannelScreen::run`]) and then visits only the candidates that survive or need a closer
//! look.
//!
//! A candidate's stages keep the pipeline's order: the first that applies is where it stops,
//! as when the stages are checked one by one.

use crate::rules::ClauseResults;

/// The checks a candidate needs made one by one, as bits in pipeline order: the lowest bit
/// set names the first to make.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Look;

impl Look {
    /// Its eligibility rule must be evaluated (it reads the offer, or is long).
    pub(crate) const RULE: u8 = 1;
    /// It has contact-policy rules of its own.
    pub(crate) const OWN_POLICY: u8 = 2;
    /// A catalogue-wide contact-policy rule holds it back.
    pub(crate) const CAPPED: u8 = 4;
    /// Its budget is used up.
    pub(crate) const BUDGET: u8 = 8;
    /// It has a suitability rule.
    pub(crate) const SUITABILITY: u8 = 16;
}

/// Where the screen stopped a candidate on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settled {
    NotValid,
    NoConsent,
    /// A shared clause of its eligibility rule is false (or undecided).
    Ineligible,
    /// A shared clause of its suitability rule is false (or undecided), and no stage before
    /// suitability needed a closer look.
    Unsuitable,
}

/// A set of a channel's candidates, by position, as bits. It may be shorter than the
/// channel: missing words are empty.
type Bits = Box<[u64]>;

fn insert(bits: &mut [u64], position: usize) {
    if let Some(word) = bits.get_mut(position / 64) {
        *word |= 1 << (position % 64);
    }
}

fn contains(bits: &[u64], position: usize) -> bool {
    bits.get(position / 64)
        .is_some_and(|word| word >> (position % 64) & 1 != 0)
}

fn union_into(into: &mut [u64], from: &[u64]) {
    for (word, more) in into.iter_mut().zip(from) {
        *word |= more;
    }
}

/// The sets, by key, of the candidates with each key, each trimmed after its last member.
fn sets_by_key(keys: impl Iterator<Item = u32>, count: usize) -> Box<[Bits]> {
    let mut sets: Vec<Vec<u64>> = vec![Vec::new(); count];
    for (position, key) in keys.enumerate() {
        if let Some(set) = sets.get_mut(key as usize) {
            if set.len() <= position / 64 {
                set.resize(position / 64 + 1, 0);
            }
            insert(set, position);
        }
    }
    sets.into_iter().map(Vec::into_boxed_slice).collect()
}

/// What the screen needs to know of one candidate, when the catalogue compiles.
#[derive(Debug, Clone)]
pub(crate) struct Row<'a> {
    pub(crate) valid_from: i64,
    pub(crate) valid_until: i64,
    pub(crate) purpose: u32,
    pub(crate) category: u32,
    /// Its budget's index, or an index past the budgets for none.
    pub(crate) budget: u32,
    /// The shared clause ids of its eligibility rule when the screen decides it (all its
    /// clauses are shared); empty otherwise.
    pub(crate) eligibility: &'a [u32],
    /// The same for its suitability rule.
    pub(crate) suitability: &'a [u32],
    /// The checks it always needs made one by one ([`Look`] bits).
    pub(crate) slow: u8,
}

/// The sets of a channel's candidates that a decision combines (see the [module docs](self)).
#[derive(Debug, Clone, Default)]
pub(crate) struct ChannelScreen {
    /// How many candidates the channel has.
    len: usize,
    /// (position, valid from, valid until) of the candidates valid only for a while.
    windows: Box<[(u32, i64, i64)]>,
    /// Per interned purpose, the candidates needing it.
    by_purpose: Box<[Bits]>,
    /// Per interned category, its candidates.
    by_category: Box<[Bits]>,
    /// Per budget, the candidates drawing on it.
    by_budget: Box<[Bits]>,
    /// (shared clause id, positions): the candidates whose screened eligibility rule has
    /// the clause; a false clause settles them all.
    eligibility_uses: Uses,
    /// The same for screened suitability rules.
    suitability_uses: Uses,
    /// The candidates that always need a closer look.
    slow_set: Bits,
    /// Per candidate, the checks it always needs ([`Look`] bits).
    slow: Box<[u8]>,
}

impl ChannelScreen {
    /// The screen of a channel whose candidates are `rows`, in order, in a catalogue with
    /// `purposes`, `categories` and `budgets` interned.
    pub(crate) fn new(
        rows: &[Row<'_>],
        purposes: usize,
        categories: usize,
        budgets: usize,
    ) -> Self {
        let len = rows.len();
        let windows = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.valid_from != i64::MIN || r.valid_until != i64::MAX)
            .map(|(p, r)| (index(p), r.valid_from, r.valid_until))
            .collect();
        let mut slow_set = vec![0; len.div_ceil(64)];
        for (position, row) in rows.iter().enumerate() {
            if row.slow != 0 {
                insert(&mut slow_set, position);
            }
        }
        ChannelScreen {
            len,
            windows,
            by_purpose: sets_by_key(rows.iter().map(|r| r.purpose), purposes),
            by_category: sets_by_key(rows.iter().map(|r| r.category), categories),
            by_budget: sets_by_key(rows.iter().map(|r| r.budget), budgets),
            eligibility_uses: uses(rows.iter().map(|r| r.eligibility)),
            suitability_uses: uses(rows.iter().map(|r| r.suitability)),
            slow_set: slow_set.into_boxed_slice(),
            slow: rows.iter().map(|r| r.slow).collect(),
        }
    }

    /// The checks candidate `position` always needs ([`Look`] bits).
    pub(crate) fn slow(&self, position: usize) -> u8 {
        self.slow.get(position).copied().unwrap_or(0)
    }

    /// Screens every candidate for one decision: `granted` per purpose, the decision's
    /// `shared` clause results, `capped` per category, `capped_offers` (positions held back by
    /// offer-scoped rules) and `used_up` per budget.
    ///
    /// `reuse` lends its vectors (a decision's scratch keeps the last decision's).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run(
        &self,
        reuse: Screened,
        now: i64,
        granted: &[bool],
        shared: &ClauseResults,
        capped: impl Fn(usize) -> bool,
        capped_offers: impl Iterator<Item = usize>,
        used_up: impl Fn(usize) -> bool,
    ) -> Screened {
        let words = self.len.div_ceil(64);
        let Screened {
            mut not_valid,
            mut no_consent,
            mut ineligible,
            mut closer,
            mut unsuitable,
            ..
        } = reuse;
        zeroed(&mut not_valid, words);
        for &(position, from, until) in self.windows.iter() {
            if now < from || now >= until {
                insert(&mut not_valid, position as usize);
            }
        }
        zeroed(&mut no_consent, words);
        for (purpose, set) in self.by_purpose.iter().enumerate() {
            if !granted.get(purpose).copied().unwrap_or(false) {
                union_into(&mut no_consent, set);
            }
        }
        failing(&self.eligibility_uses, shared, words, &mut ineligible);
        failing(&self.suitability_uses, shared, words, &mut unsuitable);
        closer.clear();
        closer.extend_from_slice(&self.slow_set);
        closer.resize(words, 0);
        for (category, set) in self.by_category.iter().enumerate() {
            if capped(category) {
                union_into(&mut closer, set);
            }
        }
        for position in capped_offers {
            insert(&mut closer, position);
        }
        for (budget, set) in self.by_budget.iter().enumerate() {
            if used_up(budget) {
                union_into(&mut closer, set);
            }
        }
        Screened {
            len: self.len,
            not_valid,
            no_consent,
            ineligible,
            closer,
            unsuitable,
        }
    }
}

/// Per word of a channel's candidate sets, (shared clause id, bits): the candidates of that
/// word whose rule has the clause, in clause id order.
type Uses = Box<[Box<[(u32, u64)]>]>;

/// Which candidates' rules have each clause, from each candidate's clause ids.
fn uses<'a>(rules: impl Iterator<Item = &'a [u32]>) -> Uses {
    let mut uses: Vec<Vec<(u32, u64)>> = Vec::new();
    for (position, ids) in rules.enumerate() {
        let word = position / 64;
        if uses.len() <= word {
            uses.resize(word + 1, Vec::new());
        }
        let Some(in_word) = uses.get_mut(word) else {
            continue;
        };
        for &id in ids {
            match in_word.binary_search_by_key(&id, |&(clause, _)| clause) {
                Ok(at) => {
                    if let Some((_, bits)) = in_word.get_mut(at) {
                        *bits |= 1 << (position % 64);
                    }
                }
                Err(at) => in_word.insert(at, (id, 1 << (position % 64))),
            }
        }
    }
    uses.into_iter().map(Vec::into_boxed_slice).collect()
}

/// The candidates (of `words` words) whose rule has a clause that does not hold.
///
/// Branch-free over the clauses: which clauses fail changes from one customer to the next, so
/// a branch on it is mispredicted often, and costs more than or-ing a word with nothing. Each
/// word is gathered in a register and stored once.
fn failing(uses: &Uses, shared: &ClauseResults, words: usize, set: &mut Vec<u64>) {
    zeroed(set, words);
    for (word, in_word) in set.iter_mut().zip(uses.iter()) {
        *word = in_word.iter().fold(0, |failed, &(id, bits)| {
            // All ones if the clause does not hold (`passes` is 0 or 1), else none.
            failed | bits & u64::from(shared.passes(id)).wrapping_sub(1)
        });
    }
}

/// Empties `set` and makes it `words` empty words.
fn zeroed(set: &mut Vec<u64>, words: usize) {
    set.clear();
    set.resize(words, 0);
}

fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// What the screen found for one decision's candidates.
#[derive(Debug, Default)]
pub(crate) struct Screened {
    len: usize,
    not_valid: Vec<u64>,
    no_consent: Vec<u64>,
    ineligible: Vec<u64>,
    /// Candidates needing a closer look if the screen does not settle them.
    closer: Vec<u64>,
    /// Candidates whose suitability rule the screen finds false: settled unless they need a
    /// closer look (which checks suitability last).
    unsuitable: Vec<u64>,
}

impl Screened {
    /// Where the screen stopped candidate `position`, if it did.
    pub(crate) fn settled(&self, position: usize) -> Option<Settled> {
        if contains(&self.not_valid, position) {
            Some(Settled::NotValid)
        } else if contains(&self.no_consent, position) {
            Some(Settled::NoConsent)
        } else if contains(&self.ineligible, position) {
            Some(Settled::Ineligible)
        } else if contains(&self.unsuitable, position) && !contains(&self.closer, position) {
            Some(Settled::Unsuitable)
        } else {
            None
        }
    }

    /// How many candidates need a closer look (at most how many a closer look excludes).
    pub(crate) fn closer_count(&self) -> usize {
        let settled = self
            .not_valid
            .iter()
            .zip(&self.no_consent)
            .zip(&self.ineligible);
        settled
            .zip(&self.closer)
            .map(|(((a, b), c), closer)| (closer & !(a | b | c)).count_ones() as usize)
            .sum()
    }

    /// The candidates the screen did not settle, in order: (position, whether it needs a
    /// closer look; if not, it survives to scoring).
    pub(crate) fn unsettled(&self) -> impl Iterator<Item = (usize, bool)> + '_ {
        let words = self
            .not_valid
            .iter()
            .zip(&self.no_consent)
            .zip(&self.ineligible)
            .zip(&self.closer)
            .zip(&self.unsuitable);
        words.enumerate().flat_map(
            move |(w, ((((&not_valid, &no_consent), &ineligible), &closer), &unsuitable))| {
                let settled = not_valid | no_consent | ineligible | (unsuitable & !closer);
                let mut open = !settled & self.within(w);
                std::iter::from_fn(move || {
                    if open == 0 {
                        return None;
                    }
                    let bit = open.trailing_zeros();
                    open &= open - 1;
                    Some((w * 64 + bit as usize, closer >> bit & 1 != 0))
                })
            },
        )
    }

    /// The bits of word `w` that are candidates.
    fn within(&self, w: usize) -> u64 {
        let past = self.len.saturating_sub(w * 64);
        if past >= 64 {
            u64::MAX
        } else {
            (1 << past) - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(purpose: u32, eligibility: &[u32], slow: u8) -> Row<'_> {
        Row {
            valid_from: i64::MIN,
            valid_until: i64::MAX,
            purpose,
            category: 0,
            budget: 1,
            eligibility,
            suitability: &[],
            slow,
        }
    }

    #[test]
    fn the_first_stage_that_applies_stops_a_candidate() {
        let (a, b) = ([0u32], [1u32, 0]);
        let mut rows: Vec<Row<'_>> = (0..130).map(|i| row(i % 2, &[], 0)).collect();
        rows[3] = row(0, &a, 0);
        rows[4] = row(1, &b, 0);
        rows[5] = row(0, &b, Look::SUITABILITY);
        rows[70] = Row {
            valid_until: 10,
            ..row(1, &[], 0)
        };
        rows[129] = row(0, &[], Look::RULE);
        // In the second word: settled by the same false clause.
        rows[126] = row(0, &b, 0);
        // Unsuitable: settled, unless a closer look comes first (candidate 6 is capped).
        rows[8].suitability = &a;
        rows[6].suitability = &a;
        let screen = ChannelScreen::new(&rows, 2, 1, 1);
        // Clause 0 is false, clause 1 true; purpose 1 not granted; candidate 6 capped.
        let shared = ClauseResults::of(&[false, true]);
        // The vectors of a run that settled everything are lent to the next: none of its
        // sets may leak into it.
        let everything = screen.run(
            Screened::default(),
            100,
            &[false, false],
            &ClauseResults::of(&[false, false]),
            |_| true,
            0..130,
            |_| true,
        );
        assert_eq!(everything.unsettled().count(), 0);
        let screened = screen.run(
            everything,
            20,
            &[true, false],
            &shared,
            |_| false,
            [6].into_iter(),
            |_| false,
        );
        assert_eq!(screened.settled(3), Some(Settled::Ineligible));
        assert_eq!(screened.settled(4), Some(Settled::NoConsent));
        assert_eq!(screened.settled(5), Some(Settled::Ineligible));
        assert_eq!(screened.settled(126), Some(Settled::Ineligible));
        assert_eq!(screened.settled(70), Some(Settled::NotValid));
        assert_eq!(screened.settled(0), None);
        assert_eq!(screened.settled(8), Some(Settled::Unsuitable));
        assert_eq!(screened.settled(6), None);
        let open: Vec<(usize, bool)> = screened.unsettled().collect();
        let expected: Vec<(usize, bool)> = (0..130)
            .filter(|&p| (p % 2 == 0 && p != 4 && p != 8 && p != 70 && p != 126) || p == 129)
            .map(|p| (p, p == 6 || p == 129))
            .collect();
        assert_eq!(open, expected);
    }
}
