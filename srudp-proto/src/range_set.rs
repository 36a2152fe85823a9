//! A set of `u64` values kept as disjoint half-open ranges.
//!
//! Used for received packet numbers (to build ACK frames), acknowledged
//! packet numbers, and received stream byte ranges.

use std::collections::BTreeMap;
use std::ops::Range;

/// A set of `u64` values, stored as sorted, disjoint, non-adjacent,
/// non-empty half-open ranges (merged on insert).
///
/// `u64::MAX` itself can never be a member (a half-open range cannot end
/// past it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    /// start → end (exclusive).
    map: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every value of `range`; returns whether any was new. Empty
    /// ranges are no-ops.
    pub fn insert(&mut self, range: Range<u64>) -> bool {
        if range.is_empty() {
            return false;
        }
        let (mut start, mut end) = (range.start, range.end);
        // Fast path: a range at or above the highest one — packet numbers
        // and in-order stream data arrive like this, once per packet.
        if let Some(mut last) = self.map.last_entry() {
            if *last.key() <= start {
                let e = *last.get();
                if e >= end {
                    return false;
                }
                if e >= start {
                    *last.get_mut() = end;
                    return true;
                }
                self.map.insert(start, end);
                return true;
            }
        }
        if let Some((&s, &e)) = self.map.range(..=start).next_back() {
            if e >= end {
                return false;
            }
            if e >= start {
                // Overlapping or adjacent: absorb the predecessor.
                start = s;
            }
        }
        // Absorb every range that starts inside (or right after) the new one.
        while let Some((&s, &e)) = self.map.range(start..=end).next() {
            self.map.remove(&s);
            end = end.max(e);
        }
        self.map.insert(start, end);
        true
    }

    /// Adds `value`; returns whether it was new. `u64::MAX` cannot be stored
    /// and returns `false`.
    pub fn insert_one(&mut self, value: u64) -> bool {
        match value.checked_add(1) {
            Some(end) => self.insert(value..end),
            None => false,
        }
    }

    /// Whether `value` is in the set.
    pub fn contains(&self, value: u64) -> bool {
        self.map
            .range(..=value)
            .next_back()
            .is_some_and(|(_, &end)| value < end)
    }

    /// Removes every value of `range`. Empty ranges are no-ops.
    pub fn remove(&mut self, range: Range<u64>) {
        if range.is_empty() {
            return;
        }
        let (start, end) = (range.start, range.end);
        if let Some((&s, &e)) = self.map.range(..start).next_back() {
            if e > start {
                // The predecessor overlaps: keep its parts outside `range`.
                self.map.insert(s, start);
                if e > end {
                    self.map.insert(end, e);
                    return;
                }
            }
        }
        while let Some((&s, &e)) = self.map.range(start..end).next() {
            self.map.remove(&s);
            if e > end {
                self.map.insert(end, e);
            }
        }
    }

    /// The ranges in ascending order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Range<u64>> + ExactSizeIterator + '_ {
        self.map.iter().map(|(&start, &end)| start..end)
    }

    /// The number of ranges (not values).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The smallest value.
    pub fn min(&self) -> Option<u64> {
        self.map.first_key_value().map(|(&start, _)| start)
    }

    /// The largest value.
    pub fn max(&self) -> Option<u64> {
        self.map
            .last_key_value()
            .and_then(|(_, &end)| end.checked_sub(1))
    }

    /// Removes and returns the lowest range.
    pub fn pop_min(&mut self) -> Option<Range<u64>> {
        self.map.pop_first().map(|(start, end)| start..end)
    }

    /// The number of values in the set.
    pub fn covered_len(&self) -> u64 {
        self.iter().fold(0u64, |sum, r| {
            sum.saturating_add(r.end.saturating_sub(r.start))
        })
    }

    /// The end of the range containing `start`, or `start` if it is not in
    /// the set (e.g. how far a stream is contiguous from `start`).
    pub fn contiguous_prefix_end(&self, start: u64) -> u64 {
        match self.map.range(..=start).next_back() {
            Some((_, &end)) if end > start => end,
            _ => start,
        }
    }

    /// Keeps only the `n` highest ranges, dropping the lowest ones.
    pub fn retain_highest(&mut self, n: usize) {
        while self.map.len() > n {
            self.map.pop_first();
        }
    }
}

#[cfg(test)]
// Expected range lists are written as `[a..b]` on purpose.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn ranges(set: &RangeSet) -> Vec<Range<u64>> {
        set.iter().collect()
    }

    #[test]
    fn inserting_merges_overlapping_and_adjacent_ranges() {
        let mut set = RangeSet::new();
        assert!(set.insert(10..20));
        assert!(set.insert(30..40));
        assert_eq!(ranges(&set), [10..20, 30..40]);
        assert!(set.insert(20..25), "adjacent on the right");
        assert!(set.insert(5..10), "adjacent on the left");
        assert_eq!(ranges(&set), [5..25, 30..40]);
        assert!(set.insert(24..31), "bridges the gap");
        assert_eq!(ranges(&set), [5..40]);
        assert!(set.insert(0..100), "swallows everything");
        assert_eq!(ranges(&set), [0..100]);
    }

    #[test]
    fn inserting_reports_whether_anything_was_new() {
        let mut set = RangeSet::new();
        assert!(set.insert(10..20));
        assert!(!set.insert(10..20));
        assert!(!set.insert(12..15));
        assert!(!set.insert(19..19), "empty ranges are no-ops");
        assert!(set.insert(19..21));
        assert!(set.insert_one(0));
        assert!(!set.insert_one(0));
        assert!(!set.insert_one(u64::MAX), "u64::MAX cannot be stored");
        assert_eq!(ranges(&set), [0..1, 10..21]);
    }

    #[test]
    fn contains_checks_half_open_bounds() {
        let mut set = RangeSet::new();
        set.insert(10..20);
        assert!(!set.contains(9));
        assert!(set.contains(10));
        assert!(set.contains(19));
        assert!(!set.contains(20));
        assert!(!RangeSet::new().contains(0));
    }

    #[test]
    fn removing_splits_and_trims_ranges() {
        let mut set = RangeSet::new();
        set.insert(0..100);
        set.remove(40..60);
        assert_eq!(ranges(&set), [0..40, 60..100]);
        set.remove(30..70);
        assert_eq!(ranges(&set), [0..30, 70..100]);
        set.remove(0..1);
        set.remove(99..200);
        assert_eq!(ranges(&set), [1..30, 70..99]);
        set.remove(50..50);
        assert_eq!(ranges(&set), [1..30, 70..99]);
        set.remove(0..u64::MAX);
        assert!(set.is_empty());
    }

    #[test]
    fn summaries() {
        let mut set = RangeSet::new();
        assert_eq!((set.min(), set.max(), set.covered_len()), (None, None, 0));
        set.insert(5..8);
        set.insert(10..12);
        set.insert(u64::MAX - 1..u64::MAX);
        assert_eq!(set.len(), 3);
        assert_eq!(set.min(), Some(5));
        assert_eq!(set.max(), Some(u64::MAX - 1));
        assert_eq!(set.covered_len(), 6);
        assert_eq!(set.contiguous_prefix_end(5), 8);
        assert_eq!(set.contiguous_prefix_end(6), 8);
        assert_eq!(set.contiguous_prefix_end(8), 8);
        assert_eq!(set.contiguous_prefix_end(0), 0);
        assert_eq!(set.iter().next_back(), Some(u64::MAX - 1..u64::MAX));
        assert_eq!(set.pop_min(), Some(5..8));
        assert_eq!(set.min(), Some(10));
    }

    #[test]
    fn retain_highest_drops_the_lowest_ranges() {
        let mut set = RangeSet::new();
        for i in 0..10 {
            set.insert(i * 10..i * 10 + 5);
        }
        set.retain_highest(3);
        assert_eq!(ranges(&set), [70..75, 80..85, 90..95]);
        set.retain_highest(5);
        assert_eq!(set.len(), 3);
        set.retain_highest(0);
        assert!(set.is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(Range<u64>),
        Remove(Range<u64>),
        RetainHighest(usize),
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        let range = (0u64..200, 0u64..20).prop_map(|(s, n)| s..s + n);
        prop_oneof![
            6 => range.clone().prop_map(Op::Insert),
            3 => range.prop_map(Op::Remove),
            1 => (0usize..8).prop_map(Op::RetainHighest),
        ]
    }

    /// The ranges of a model set: maximal runs of consecutive values.
    fn model_ranges(model: &BTreeSet<u64>) -> Vec<Range<u64>> {
        let mut out: Vec<Range<u64>> = Vec::new();
        for &v in model {
            match out.last_mut() {
                Some(last) if last.end == v => last.end = v + 1,
                _ => out.push(v..v + 1),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreeset(ops in proptest::collection::vec(arb_op(), 0..60)) {
            let mut set = RangeSet::new();
            let mut model = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Insert(r) => {
                        let new = r.clone().any(|v| !model.contains(&v));
                        model.extend(r.clone());
                        prop_assert_eq!(set.insert(r), new);
                    }
                    Op::Remove(r) => {
                        for v in r.clone() {
                            model.remove(&v);
                        }
                        set.remove(r);
                    }
                    Op::RetainHighest(n) => {
                        let expected = model_ranges(&model);
                        let drop = expected.len().saturating_sub(n);
                        for r in &expected[..drop] {
                            for v in r.clone() {
                                model.remove(&v);
                            }
                        }
                        set.retain_highest(n);
                    }
                }
                prop_assert_eq!(ranges(&set), model_ranges(&model));
                prop_assert_eq!(set.covered_len(), model.len() as u64);
                prop_assert_eq!(set.min(), model.first().copied());
                prop_assert_eq!(set.max(), model.last().copied());
                for v in 0..230 {
                    prop_assert_eq!(set.contains(v), model.contains(&v));
                }
            }
            let start = 37;
            let mut end = start;
            while model.contains(&end) {
                end += 1;
            }
            prop_assert_eq!(set.contiguous_prefix_end(start), end);
        }
    }
}
