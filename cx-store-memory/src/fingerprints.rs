//! A set of 32-bit fingerprints, for the idempotency check of ingest.
//!
//! Open addressing with linear probing in one flat array: a probe usually touches one cache
//! line, where a general-purpose hash set touches its control bytes and then its bucket, two
//! places in memory. Ingest does one probe per touchpoint, and on a large store each place it
//! touches is a cache (and TLB) miss, so this halves that part of the cost.
//!
//! Fingerprints come from a good hash, so their low bits pick the slot directly. They are 32
//! bits: a set holds one shard's touchpoints (tens of thousands to millions), where two ids of
//! one customer share a fingerprint about once in billions of inserts, and a shared
//! fingerprint only costs a search of the customer's timeline, never a lost touchpoint. Half
//! the width of a 64-bit fingerprint is half the memory to miss in.

/// Marks an empty slot; a fingerprint of 0 is stored as 1.
const EMPTY: u32 = 0;
/// Smallest table.
const MIN_SLOTS: usize = 16;

/// A set of fingerprints.
#[derive(Debug, Default)]
pub(crate) struct Fingerprints {
    /// A power of two long (or empty); `EMPTY` or a fingerprint.
    slots: Vec<u32>,
    len: usize,
}

impl Fingerprints {
    /// Adds `fp`; returns whether it was new.
    pub(crate) fn insert(&mut self, fp: u32) -> bool {
        // Keep the load at most 5/8, where a miss probes about 4 slots.
        if (self.len + 1) * 8 > self.slots.len() * 5 {
            self.grow();
        }
        let fp = stored(fp);
        let mask = self.slots.len() - 1;
        let mut i = home(fp, mask);
        // The load bound guarantees an empty slot, so this ends within `slots.len()` steps.
        for _ in 0..self.slots.len() {
            match self.slots.get_mut(i) {
                Some(slot) if *slot == EMPTY => {
                    *slot = fp;
                    self.len += 1;
                    return true;
                }
                Some(slot) if *slot == fp => return false,
                _ => i = (i + 1) & mask,
            }
        }
        false
    }

    /// Whether `fp` is in the set.
    #[cfg(test)]
    pub(crate) fn contains(&self, fp: u32) -> bool {
        self.find(stored(fp)).is_some()
    }

    /// Removes `fp`, if present.
    pub(crate) fn remove(&mut self, fp: u32) {
        let Some(mut hole) = self.find(stored(fp)) else {
            return;
        };
        let mask = self.slots.len() - 1;
        self.set(hole, EMPTY);
        self.len -= 1;
        // Backward-shift deletion: move later entries of the run into the hole when their
        // home slot allows it, so every entry stays reachable from its home without tombstones.
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let entry = self.slots.get(j).copied().unwrap_or(EMPTY);
            if entry == EMPTY {
                return;
            }
            // `entry` may fill the hole unless its home lies cyclically in (hole, j].
            let from_home = j.wrapping_sub(home(entry, mask)) & mask;
            let from_hole = j.wrapping_sub(hole) & mask;
            if from_home >= from_hole {
                self.set(hole, entry);
                self.set(j, EMPTY);
                hole = j;
            }
        }
    }

    /// The slot holding `fp` (already in stored form).
    fn find(&self, fp: u32) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = home(fp, mask);
        for _ in 0..self.slots.len() {
            match self.slots.get(i).copied() {
                Some(EMPTY) | None => return None,
                Some(x) if x == fp => return Some(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
        None
    }

    fn set(&mut self, i: usize, value: u32) {
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = value;
        }
    }

    /// Doubles the table and reinserts every fingerprint.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
        self.len = 0;
        for fp in old.into_iter().filter(|&fp| fp != EMPTY) {
            self.insert(fp);
        }
    }
}

/// The form a fingerprint is stored in (never `EMPTY`).
fn stored(fp: u32) -> u32 {
    if fp == EMPTY { 1 } else { fp }
}

/// The slot a probe for `fp` starts at.
fn home(fp: u32, mask: usize) -> usize {
    fp as usize & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fingerprints that all start at slot 3 of a 32-slot table, to exercise runs.
    fn clustered(n: u32) -> Vec<u32> {
        (0..n).map(|k| 3 + (k << 16)).collect()
    }

    #[test]
    fn inserts_report_new_and_known() {
        let mut set = Fingerprints::default();
        assert!(set.insert(42));
        assert!(!set.insert(42));
        assert!(set.insert(0), "0 is a fingerprint like any other");
        assert!(set.contains(0) && set.contains(42) && !set.contains(7));
        for fp in 1000..3000u32 {
            assert!(set.insert(fp.wrapping_mul(0x9e37_79b9)));
        }
        assert_eq!(set.len, 2002);
        assert!((1000..3000u32).all(|fp| set.contains(fp.wrapping_mul(0x9e37_79b9))));
    }

    #[test]
    fn removal_keeps_every_other_entry_reachable() {
        let mut set = Fingerprints::default();
        let fps = clustered(8);
        for &fp in &fps {
            assert!(set.insert(fp));
        }
        // Also a run that wraps around the end of the table.
        let wrap: Vec<u32> = (0..3u32).map(|k| 31 + (k << 20)).collect();
        for &fp in &wrap {
            assert!(set.insert(fp));
        }
        for (i, &gone) in fps.iter().enumerate().step_by(2) {
            set.remove(gone);
            assert!(!set.contains(gone));
            for &kept in fps.iter().skip(i + 1) {
                assert!(
                    set.contains(kept),
                    "lost {kept:#x} after removing {gone:#x}"
                );
            }
        }
        set.remove(*wrap.first().unwrap_or(&0));
        assert!(wrap.iter().skip(1).all(|&fp| set.contains(fp)));
        set.remove(12345);
        assert_eq!(set.len, 4 + 2);
    }
}
