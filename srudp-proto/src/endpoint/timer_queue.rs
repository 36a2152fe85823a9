//! The endpoint's timer queue: the next deadline of each connection, in a
//! binary heap ordered by (deadline, connection handle).
//!
//! An endpoint may hold tens of thousands of connections; asking each for its
//! deadline on every `poll_timeout` or `handle_timeout` would make every
//! driver round cost O(connections). Instead the endpoint tells the queue a
//! connection's deadline whenever it may have changed ([`TimerQueue::set`]),
//! and the queue answers the earliest deadline in O(1) and hands out the due
//! connections in O(log n) each.
//!
//! Moving a deadline does not search the heap: the queue records which entry
//! is current for each key (its sequence number) and pushes a new one; stale
//! entries are dropped when they reach the top, and the whole heap is
//! compacted when they outnumber the live ones. The top of the heap is
//! always live, so [`TimerQueue::next`] is exact.
//!
//! Deterministic: ties between equal deadlines go to the smaller key, and
//! the hash map is only ever looked up by key, never iterated.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::Hash;
use std::time::Instant;

use crate::local_key_hash::LocalKeyMap;

/// Stale entries tolerated beyond this many plus the number of live ones
/// before the heap is compacted.
const COMPACT_SLACK: usize = 32;

/// Deadlines of keys (connection handles), earliest first.
#[derive(Debug)]
pub(crate) struct TimerQueue<K> {
    /// (deadline, key, sequence number); possibly stale.
    heap: BinaryHeap<Reverse<(Instant, K, u64)>>,
    /// The current deadline of each armed key and the sequence number of
    /// its live heap entry. Set on every packet: keys are connection handles,
    /// which the endpoint numbers itself, so a fast unkeyed hash is safe.
    armed: LocalKeyMap<K, (Instant, u64)>,
    next_seq: u64,
}

impl<K> Default for TimerQueue<K> {
    fn default() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
            armed: LocalKeyMap::default(),
            next_seq: 0,
        }
    }
}

impl<K: Copy + Ord + Hash> TimerQueue<K> {
    /// Sets `key`'s deadline: arms it, moves it (earlier or later), or with
    /// `None` disarms it. Setting the deadline it already has costs one
    /// lookup and changes nothing.
    pub(crate) fn set(&mut self, key: K, deadline: Option<Instant>) {
        match deadline {
            None => {
                if self.armed.remove(&key).is_some() {
                    self.settle();
                }
            }
            Some(at) => {
                if self.armed.get(&key).is_some_and(|&(d, _)| d == at) {
                    return;
                }
                let seq = self.next_seq;
                self.next_seq += 1;
                self.armed.insert(key, (at, seq));
                self.heap.push(Reverse((at, key, seq)));
                self.settle();
            }
        }
    }

    /// Forgets `key` (its connection is gone).
    pub(crate) fn remove(&mut self, key: K) {
        self.set(key, None);
    }

    /// The earliest deadline, if any key is armed.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The deadline of `key`, if armed.
    #[cfg(any(test, fuzzing, feature = "test-hooks"))]
    pub(crate) fn deadline(&self, key: K) -> Option<Instant> {
        self.armed.get(&key).map(|&(at, _)| at)
    }

    /// Disarms and returns the key with the earliest deadline at or before
    /// `now` (the smaller key on a tie).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<K> {
        let &Reverse((at, key, _)) = self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        self.armed.remove(&key);
        self.settle();
        Some(key)
    }

    /// Armed keys.
    #[cfg(any(test, fuzzing, feature = "test-hooks"))]
    pub(crate) fn len(&self) -> usize {
        self.armed.len()
    }

    fn is_live(armed: &LocalKeyMap<K, (Instant, u64)>, entry: &Reverse<(Instant, K, u64)>) -> bool {
        let Reverse((_, key, seq)) = entry;
        armed.get(key).is_some_and(|&(_, s)| s == *seq)
    }

    /// Drops stale entries from the top, so the top is live; compacts the
    /// heap when stale entries dominate it (amortized O(1) per entry).
    fn settle(&mut self) {
        if self.heap.len() > 2 * self.armed.len() + COMPACT_SLACK {
            let armed = &self.armed;
            self.heap.retain(|e| Self::is_live(armed, e));
        }
        while let Some(top) = self.heap.peek() {
            if Self::is_live(&self.armed, top) {
                break;
            }
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// Pops everything due at `now`.
    fn drain(q: &mut TimerQueue<u64>, now: Instant) -> Vec<u64> {
        std::iter::from_fn(|| q.pop_due(now)).collect()
    }

    #[test]
    fn many_keys_with_varied_deadlines_fire_in_deadline_order_exactly_once() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        // 1000 keys, deadlines scattered over 0..=499 ms (so many ties).
        for key in 0..1000u64 {
            q.set(key, Some(at(t0, (key * 7919) % 500)));
        }
        let mut fired = Vec::new();
        let mut now_ms = 0;
        while let Some(next) = q.next() {
            assert!(next >= at(t0, now_ms), "deadlines never go back");
            now_ms = u64::try_from((next - t0).as_millis()).unwrap();
            fired.extend(drain(&mut q, next).into_iter().map(|k| (now_ms, k)));
        }
        assert_eq!(fired.len(), 1000, "every key fires");
        let mut expected: Vec<(u64, u64)> = (0..1000).map(|k| ((k * 7919) % 500, k)).collect();
        expected.sort();
        assert_eq!(fired, expected, "in deadline order, ties by key, each once");
        assert_eq!(q.len(), 0);
        assert_eq!(q.next(), None);
    }

    #[test]
    fn a_deadline_moved_earlier_or_later_fires_only_at_its_new_time() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        q.set(1, Some(at(t0, 100)));
        q.set(2, Some(at(t0, 200)));
        q.set(1, Some(at(t0, 300))); // later
        assert_eq!(
            q.next(),
            Some(at(t0, 200)),
            "the stale 100 ms entry is not reported"
        );
        assert_eq!(drain(&mut q, at(t0, 150)), Vec::<u64>::new());
        q.set(2, Some(at(t0, 50))); // earlier
        assert_eq!(q.next(), Some(at(t0, 50)));
        assert_eq!(
            drain(&mut q, at(t0, 250)),
            vec![2],
            "2 once, at its new time"
        );
        assert_eq!(q.next(), Some(at(t0, 300)));
        // Moving back to a time it had before does not make it fire twice.
        q.set(1, Some(at(t0, 100)));
        q.set(1, Some(at(t0, 300)));
        q.set(1, Some(at(t0, 100)));
        assert_eq!(drain(&mut q, at(t0, 1000)), vec![1]);
        assert_eq!(q.next(), None);
    }

    #[test]
    fn removed_or_disarmed_keys_leave_the_queue() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        for key in 0..10u64 {
            q.set(key, Some(at(t0, key)));
        }
        q.remove(0);
        q.set(5, None);
        q.remove(42); // unknown: nothing happens
        assert_eq!(q.len(), 8);
        assert_eq!(q.next(), Some(at(t0, 1)));
        assert_eq!(drain(&mut q, at(t0, 100)), vec![1, 2, 3, 4, 6, 7, 8, 9]);
    }

    #[test]
    fn stale_entries_do_not_pile_up() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        // One deadline pushed later a million times (an idle timer reset by
        // every packet): the heap stays small.
        for i in 0..1_000_000u64 {
            q.set(7, Some(at(t0, 1000 + i)));
            assert!(q.heap.len() <= 2 + COMPACT_SLACK + 1);
        }
        assert_eq!(q.deadline(7), Some(at(t0, 1_000_999)));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(u8, Option<u16>),
        Advance(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..32, proptest::option::weighted(0.8, 0u16..2000)).prop_map(|(k, d)| Op::Set(k, d)),
            1 => (0u16..300).prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// The queue behaves exactly like asking every key for its deadline
        /// (the naive walk it replaces): same next deadline, same keys due,
        /// in (deadline, key) order.
        #[test]
        fn the_queue_agrees_with_a_naive_walk(ops in proptest::collection::vec(op(), 1..300)) {
            let t0 = Instant::now();
            let mut q = TimerQueue::default();
            let mut naive: BTreeMap<u64, Instant> = BTreeMap::new();
            let mut now = t0;
            for op in ops {
                match op {
                    Op::Set(k, d) => {
                        let d = d.map(|ms| now + Duration::from_millis(u64::from(ms)));
                        q.set(u64::from(k), d);
                        match d {
                            Some(d) => naive.insert(u64::from(k), d),
                            None => naive.remove(&u64::from(k)),
                        };
                    }
                    Op::Advance(ms) => {
                        now += Duration::from_millis(u64::from(ms));
                        let mut due: Vec<(Instant, u64)> = naive
                            .iter()
                            .filter(|(_, d)| **d <= now)
                            .map(|(k, d)| (*d, *k))
                            .collect();
                        due.sort();
                        for (_, k) in &due {
                            naive.remove(k);
                        }
                        let keys: Vec<u64> = due.into_iter().map(|(_, k)| k).collect();
                        prop_assert_eq!(drain(&mut q, now), keys);
                    }
                }
                prop_assert_eq!(q.next(), naive.values().min().copied());
                prop_assert_eq!(q.len(), naive.len());
                prop_assert!(q.heap.len() <= 2 * naive.len() + COMPACT_SLACK + 1);
            }
        }
    }
}
