//! A shard's touchpoints as columns, for analytics that read every touchpoint.
//!
//! Timelines serve reads of one customer; a measure over all customers walking them chases a
//! pointer per customer (the timeline's chunks), per touchpoint (its attributes, behind an
//! `Arc`) and then searches the attributes by name. Profiled, that was most of a 12-KPI
//! scorecard over 1,000,000 touchpoints. So each shard also keeps, maintained as touchpoints
//! are stored, merged and erased, the few fields such measures read, one dense array per field
//! in storage order:
//!
//! - when it occurred, its kind and channel codes (the shard's [`Codes`](crate::stored::Codes)),
//!   and its customer's shard-local number ([`Ordinal`]): distinct-customer counts become a
//!   bitmask per customer number instead of a hash set of ids;
//! - each numeric attribute as a sparse column of (row, value), one column per attribute
//!   name, so a sum or a percentile reads only the touchpoints that have that attribute;
//! - survey answers as a sparse column of (row, question code, score).
//!
//! A measure is then a sequential scan: one mask per row says which queries keep it, and the
//! sparse columns are walked in row order against the masks. Rows are in storage order, not
//! time order (late arrivals are appended), so a time range is a test per row; the test is a
//! comparison on a dense array, cheaper than the per-customer binary search it replaces.

use crate::stored::{Dictionary, Stored};
use cx_core::model::{Name, Timestamp, Value};

/// Rows per block of the time zone map (few in tests, so that they span many blocks).
pub(crate) const BLOCK: usize = if cfg!(test) { 16 } else { 512 };

/// A customer's number within its shard, given when the customer's first touchpoint is stored
/// there and freed (for reuse) when their touchpoints leave the shard.
pub(crate) type Ordinal = u32;

/// One sparse column: the rows that have a value, ascending, and the values.
#[derive(Debug, Default)]
pub(crate) struct Sparse {
    rows: Vec<u32>,
    values: Vec<f64>,
}

impl Sparse {
    /// The (row, value) pairs, in row order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.rows.iter().copied().zip(self.values.iter().copied())
    }

    /// The (row, value) pairs of rows in `rows`, in row order.
    pub(crate) fn in_rows(
        &self,
        rows: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (u32, f64)> + '_ {
        let entries = self.entries_in(rows);
        let rows = self.rows.get(entries.clone()).unwrap_or_default();
        let values = self.values.get(entries).unwrap_or_default();
        rows.iter().copied().zip(values.iter().copied())
    }

    /// The positions of the entries of rows in `rows`.
    fn entries_in(&self, rows: std::ops::Range<usize>) -> std::ops::Range<usize> {
        let lo = self.rows.partition_point(|&r| (r as usize) < rows.start);
        let hi = self.rows.partition_point(|&r| (r as usize) < rows.end);
        lo..hi.max(lo)
    }

    fn push(&mut self, row: u32, value: f64) {
        self.rows.push(row);
        self.values.push(value);
    }
}

/// The analytics columns of one shard (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Columns {
    at: Vec<Timestamp>,
    /// The zone map: per block of [`BLOCK`] rows, the earliest and latest `at`. Touchpoints
    /// mostly arrive in time order, so a block lies wholly inside or outside most time ranges:
    /// a scan skips the blocks outside and tests no row of the blocks inside.
    blocks: Vec<(Timestamp, Timestamp)>,
    kind: Vec<u32>,
    channel: Vec<u32>,
    customer: Vec<Ordinal>,
    /// Attribute names with numeric values, coded; `numbers[code]` is that name's column.
    number_names: Dictionary<Name>,
    numbers: Vec<Sparse>,
    /// Survey answers: rows and scores, with each answer's question code alongside.
    surveys: Sparse,
    survey_questions: Vec<u32>,
    questions: Dictionary<Name>,
    /// Customer numbers handed out so far (the length of per-customer arrays), and those
    /// freed since.
    ordinals: u32,
    free: Vec<Ordinal>,
}

impl Columns {
    /// Whether `n` more rows fit (rows and codes are `u32`).
    pub(crate) fn has_room_for(&self, n: usize) -> bool {
        let most = self
            .at
            .len()
            .max(self.number_names.len())
            .max(self.questions.len())
            .max(self.ordinals as usize);
        most.saturating_add(n) < u32::MAX as usize
    }

    /// A number for a customer new to the shard.
    pub(crate) fn new_ordinal(&mut self) -> Ordinal {
        self.free.pop().unwrap_or_else(|| {
            // `has_room_for` was checked before the batch: the number fits.
            let o = self.ordinals;
            self.ordinals = self.ordinals.saturating_add(1);
            o
        })
    }

    /// How many customer numbers have been handed out: every [`Ordinal`] is below it.
    pub(crate) fn ordinal_count(&self) -> usize {
        self.ordinals as usize
    }

    /// How many rows there are.
    pub(crate) fn len(&self) -> usize {
        self.at.len()
    }

    /// Adds `t`, a touchpoint of customer `customer`, as the last row.
    pub(crate) fn push(&mut self, customer: Ordinal, t: &Stored) {
        // `has_room_for` was checked before the batch: the row number fits.
        let row = u32::try_from(self.at.len()).unwrap_or(u32::MAX);
        let at = t.occurred_at();
        match self.blocks.last_mut() {
            Some((first, last)) if !self.at.len().is_multiple_of(BLOCK) => {
                *first = (*first).min(at);
                *last = (*last).max(at);
            }
            _ => self.blocks.push((at, at)),
        }
        self.at.push(at);
        self.kind.push(t.kind());
        self.channel.push(t.channel());
        self.customer.push(customer);
        for (name, value) in t.attributes().iter() {
            if let Value::Number(v) = value {
                let code = self.number_names.code_of(name) as usize;
                if code == self.numbers.len() {
                    self.numbers.push(Sparse::default());
                }
                if let Some(column) = self.numbers.get_mut(code) {
                    column.push(row, *v);
                }
            }
        }
        if let Some(answer) = t.survey() {
            self.surveys.push(row, answer.score);
            self.survey_questions
                .push(self.questions.code_of(&answer.question));
        }
    }

    /// Drops every row of customer `customer` and frees the number.
    pub(crate) fn remove_customer(&mut self, customer: Ordinal) {
        self.free.push(customer);
        let keep: Vec<bool> = self.customer.iter().map(|&c| c != customer).collect();
        if keep.iter().all(|k| *k) {
            return;
        }
        // Where each kept row moves: its number less the dropped rows before it.
        let mut dropped = 0u32;
        let moved_to: Vec<u32> = keep
            .iter()
            .zip(0u32..)
            .map(|(&k, row)| {
                let to = row.saturating_sub(dropped);
                if !k {
                    dropped += 1;
                }
                to
            })
            .collect();
        retain_rows(&mut self.at, &keep);
        self.blocks = self
            .at
            .chunks(BLOCK)
            .map(|block| {
                let first = block.iter().min().copied().unwrap_or_default();
                let last = block.iter().max().copied().unwrap_or_default();
                (first, last)
            })
            .collect();
        retain_rows(&mut self.kind, &keep);
        retain_rows(&mut self.channel, &keep);
        retain_rows(&mut self.customer, &keep);
        for column in &mut self.numbers {
            retain_sparse(column, None, &keep, &moved_to);
        }
        retain_sparse(
            &mut self.surveys,
            Some(&mut self.survey_questions),
            &keep,
            &moved_to,
        );
    }

    /// When each row occurred.
    pub(crate) fn at(&self) -> &[Timestamp] {
        &self.at
    }

    /// The zone map: the earliest and latest `at` of each block of [`BLOCK`] rows.
    pub(crate) fn blocks(&self) -> &[(Timestamp, Timestamp)] {
        &self.blocks
    }

    /// Each row's kind code.
    pub(crate) fn kinds(&self) -> &[u32] {
        &self.kind
    }

    /// Each row's channel code.
    pub(crate) fn channels(&self) -> &[u32] {
        &self.channel
    }

    /// Each row's customer number.
    pub(crate) fn customers(&self) -> &[Ordinal] {
        &self.customer
    }

    /// The numeric values of attribute `name`, if any row has one.
    pub(crate) fn numbers(&self, name: &str) -> Option<&Sparse> {
        self.numbers.get(self.number_names.find(name)? as usize)
    }

    /// The code of survey question `name`, if any answer has it.
    pub(crate) fn question(&self, name: &str) -> Option<u32> {
        self.questions.find(name)
    }

    /// How many questions have a code (codes run from 0).
    pub(crate) fn question_count(&self) -> usize {
        self.questions.len()
    }

    /// Survey answers of rows in `rows`: (row, question code, score), in row order.
    pub(crate) fn surveys(
        &self,
        rows: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (u32, u32, f64)> + '_ {
        let questions = self
            .survey_questions
            .get(self.surveys.entries_in(rows.clone()))
            .unwrap_or_default();
        self.surveys
            .in_rows(rows)
            .zip(questions.iter().copied())
            .map(|((row, score), q)| (row, q, score))
    }
}

/// Keeps the items of `column` whose row `keep` says to keep.
fn retain_rows<T>(column: &mut Vec<T>, keep: &[bool]) {
    let mut keep = keep.iter();
    column.retain(|_| keep.next().copied().unwrap_or(true));
}

/// Keeps the entries of `column` (and their `tags`) whose row is kept, renumbered.
fn retain_sparse(
    column: &mut Sparse,
    tags: Option<&mut Vec<u32>>,
    keep: &[bool],
    moved_to: &[u32],
) {
    let kept: Vec<bool> = column
        .rows
        .iter()
        .map(|&r| keep.get(r as usize).copied().unwrap_or(true))
        .collect();
    retain_rows(&mut column.rows, &kept);
    retain_rows(&mut column.values, &kept);
    if let Some(tags) = tags {
        retain_rows(tags, &kept);
    }
    for row in &mut column.rows {
        *row = moved_to.get(*row as usize).copied().unwrap_or(*row);
    }
}
