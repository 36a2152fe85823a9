//! Anti-replay protection for Data packets (a sliding bitmap window in the
//! style of WireGuard and RFC 6479).
//!
//! A receiver calls [`ReplayWindow::check`] before decrypting a packet (a
//! cheap early drop) and [`ReplayWindow::mark`] only after the packet has
//! authenticated, so forged packet numbers can never move the window.

/// The number of packet numbers the window remembers below the highest one
/// seen: a packet is accepted only if `pn > highest - REPLAY_WINDOW`.
pub(crate) const REPLAY_WINDOW: u64 = 2048;

const WORD_BITS: u64 = u64::BITS as u64;
const WORDS: usize = (REPLAY_WINDOW / WORD_BITS) as usize;

/// Which packet numbers within the last [`REPLAY_WINDOW`] have been seen.
///
/// Packet number `pn` lives at bit `pn % REPLAY_WINDOW` of a fixed bitmap;
/// bits are cleared as the window slides past them. No allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplayWindow {
    highest: Option<u64>,
    bitmap: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

/// The bitmap word index and bit mask of `pn`.
fn slot(pn: u64) -> (usize, u64) {
    let bit = pn % REPLAY_WINDOW;
    // `bit / WORD_BITS < WORDS`, so the conversion cannot fail.
    let word = usize::try_from(bit / WORD_BITS).unwrap_or(0);
    (word, 1 << (bit % WORD_BITS))
}

impl ReplayWindow {
    /// A window that has seen nothing.
    pub(crate) fn new() -> Self {
        ReplayWindow {
            highest: None,
            bitmap: [0; WORDS],
        }
    }

    /// The highest packet number marked so far.
    #[cfg(test)]
    pub(crate) fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Whether `pn` may be accepted: not seen before and not older than
    /// `highest - REPLAY_WINDOW + 1`. Call before decryption; does not
    /// change the window.
    pub(crate) fn check(&self, pn: u64) -> bool {
        let Some(highest) = self.highest else {
            return true;
        };
        if pn > highest {
            return true;
        }
        if highest - pn >= REPLAY_WINDOW {
            return false;
        }
        !self.get(pn)
    }

    /// Records `pn` as seen. Call only after the packet authenticated.
    ///
    /// A higher `pn` slides the window forward, forgetting the numbers that
    /// leave it (a jump of a whole window or more clears it). Marking a
    /// number that is already too old does nothing.
    pub(crate) fn mark(&mut self, pn: u64) {
        match self.highest {
            Some(highest) if pn <= highest => {
                if highest - pn < REPLAY_WINDOW {
                    self.set(pn);
                }
                return;
            }
            Some(highest) if pn - highest < REPLAY_WINDOW => {
                // Bits of highest+1 ..= pn held numbers now out of the window.
                for old in highest + 1..=pn {
                    self.clear(old);
                }
            }
            _ => self.bitmap = [0; WORDS],
        }
        self.highest = Some(pn);
        self.set(pn);
    }

    fn get(&self, pn: u64) -> bool {
        let (word, mask) = slot(pn);
        self.bitmap.get(word).is_some_and(|w| w & mask != 0)
    }

    fn set(&mut self, pn: u64) {
        let (word, mask) = slot(pn);
        if let Some(w) = self.bitmap.get_mut(word) {
            *w |= mask;
        }
    }

    fn clear(&mut self, pn: u64) {
        let (word, mask) = slot(pn);
        if let Some(w) = self.bitmap.get_mut(word) {
            *w &= !mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn accepts_each_number_once() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.highest(), None);
        assert!(w.check(0));
        w.mark(0);
        assert!(!w.check(0));
        assert!(w.check(1));
        w.mark(5);
        assert_eq!(w.highest(), Some(5));
        assert!(w.check(1), "reordered but within the window");
        w.mark(1);
        assert!(!w.check(1));
        assert!(!w.check(5));
        assert!(w.check(4));
    }

    #[test]
    fn rejects_numbers_older_than_the_window() {
        let mut w = ReplayWindow::new();
        w.mark(10_000);
        assert!(w.check(10_000 - REPLAY_WINDOW + 1), "oldest in the window");
        assert!(!w.check(10_000 - REPLAY_WINDOW), "just outside");
        assert!(!w.check(0));
        w.mark(10_000 - REPLAY_WINDOW);
        assert!(
            !w.check(10_000 - REPLAY_WINDOW),
            "still rejected as too old"
        );
        assert!(w.check(10_000 - 1));
    }

    #[test]
    fn sliding_forgets_bits_that_leave_the_window() {
        let mut w = ReplayWindow::new();
        w.mark(100);
        // 100 + REPLAY_WINDOW maps to the same bit as 100: it must be fresh.
        assert!(w.check(100 + REPLAY_WINDOW));
        w.mark(100 + REPLAY_WINDOW - 1);
        assert!(!w.check(100), "100 is now exactly out of the window");
        assert!(w.check(100 + REPLAY_WINDOW));
        w.mark(100 + REPLAY_WINDOW);
        assert!(!w.check(100 + REPLAY_WINDOW));
        assert!(w.check(101 + REPLAY_WINDOW));
    }

    #[test]
    fn a_large_jump_resets_the_window() {
        let mut w = ReplayWindow::new();
        for pn in 0..REPLAY_WINDOW {
            w.mark(pn);
        }
        w.mark(1_000_000);
        for pn in 1_000_000 - REPLAY_WINDOW + 1..1_000_000 {
            assert!(w.check(pn), "{pn} is unseen");
        }
        assert!(!w.check(1_000_000));
    }

    #[test]
    fn extreme_packet_numbers_do_not_overflow() {
        let mut w = ReplayWindow::new();
        w.mark(u64::MAX);
        assert!(!w.check(u64::MAX));
        assert!(w.check(u64::MAX - 1));
        assert!(!w.check(0));
        w.mark(u64::MAX - 1);
        assert!(!w.check(u64::MAX - 1));
        w.mark(0);
        assert_eq!(w.highest(), Some(u64::MAX));

        let mut w = ReplayWindow::new();
        w.mark(0);
        w.mark(u64::MAX - 3);
        assert!(w.check(u64::MAX));
        assert!(!w.check(u64::MAX - 3));
    }

    /// Packet numbers that cluster around a drifting base, with occasional
    /// big jumps, so the window both slides and resets.
    fn arb_pns() -> impl Strategy<Value = Vec<(bool, u64)>> {
        let step = prop_oneof![
            8 => (-40i64..60).prop_map(|d| d as u64),
            2 => (-3000i64..3000).prop_map(|d| d as u64),
            1 => any::<u64>(),
        ];
        proptest::collection::vec((any::<bool>(), step), 0..300).prop_map(|steps| {
            let mut base = 0u64;
            steps
                .into_iter()
                .map(|(check_first, d)| {
                    base = base.wrapping_add(d);
                    (check_first, base)
                })
                .collect()
        })
    }

    proptest! {
        /// Matches a model that remembers every number: accept iff unseen and
        /// within REPLAY_WINDOW of the highest seen.
        #[test]
        fn agrees_with_a_hashset_model(pns in arb_pns()) {
            let mut w = ReplayWindow::new();
            let mut seen = HashSet::new();
            let mut highest: Option<u64> = None;
            for (check_first, pn) in pns {
                let fresh = highest.is_none_or(|h| pn > h || h - pn < REPLAY_WINDOW);
                let accept = fresh && !seen.contains(&pn);
                prop_assert_eq!(w.check(pn), accept, "pn {}", pn);
                // Sometimes mark without checking (must be harmless).
                if accept || !check_first {
                    w.mark(pn);
                    seen.insert(pn);
                    highest = Some(highest.map_or(pn, |h| h.max(pn)));
                }
                prop_assert_eq!(w.highest(), highest);
            }
        }
    }
}
