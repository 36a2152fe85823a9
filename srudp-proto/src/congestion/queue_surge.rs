//! Queue-surge detection: has the bottleneck queue just grown faster than
//! congestion avoidance can grow it?
//!
//! CUBIC's fast convergence (RFC 9438 §4.7) lowers `W_max` to
//! `window × (1 + β) / 2` when a loss comes before the window got back to
//! the previous `W_max`, so that an incumbent flow makes room for a new one.
//! With two flows on a fast, long path that is slow: each loss both flows
//! take moves only about 7.5 % of the larger window to the smaller, losses
//! come every 10 s or so, and a late starter needs 30–50 s to get within
//! 20 % of its share (BENCHMARKS.md, `fairness`; Linux's CUBIC behaves
//! alike). The loss an incumbent takes when a newcomer's slow start fills
//! the queue is recognisable, though: the minimum RTT of a round has climbed
//! within three rounds by more than HyStart++'s threshold
//! (`clamp(min RTT / 8, 4 ms, 16 ms)`, RFC 9406), which a window growing by
//! the cubic function (a few segments per round at most near `W_max`)
//! cannot do, but a doubling window can. [`Cubic`](super::Cubic) then lowers
//! `W_max` further (to [`SURGE_W_MAX_FACTOR`](super::SURGE_W_MAX_FACTOR) of
//! the window, instead of 0.85, or of
//! [`STEADY_W_MAX_FACTOR`](super::STEADY_W_MAX_FACTOR) with steady
//! convergence).
//!
//! Rounds are counted as HyStart++ counts them: a round ends when a packet
//! sent after it began is acknowledged. Minimum RTTs filter out ack delay
//! and jitter, as there.

use std::time::{Duration, Instant};

use super::hystart::rtt_increase_threshold;

/// Completed rounds remembered: the surge compares the newest round with
/// the oldest two.
const ROUNDS: usize = 4;

/// The minimum RTT of the current round and of the last few.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueSurge {
    /// Packets sent at or after this instant end the current round when acknowledged.
    round_start: Option<Instant>,
    current_min: Option<Duration>,
    /// Minimum RTT of each of the last completed rounds, oldest first.
    completed: [Option<Duration>; ROUNDS],
}

impl QueueSurge {
    /// A detector that has seen no acknowledgment.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A packet sent at `sent` was acknowledged at `now`.
    pub(crate) fn on_ack(&mut self, now: Instant, sent: Instant) {
        if self.round_start.is_none_or(|start| sent >= start) {
            self.completed.rotate_left(1);
            self.completed[ROUNDS - 1] = self.current_min.take();
            self.round_start = Some(now);
        }
        let rtt = now.saturating_duration_since(sent);
        self.current_min = Some(self.current_min.map_or(rtt, |m| m.min(rtt)));
    }

    /// Whether the minimum RTT of the newest rounds (the current one and the
    /// last completed) exceeds that of the two oldest remembered rounds by
    /// more than HyStart++'s threshold. False until enough rounds were seen.
    pub(crate) fn surging(&self) -> bool {
        let newest = [self.current_min, self.completed[ROUNDS - 1]]
            .into_iter()
            .flatten()
            .min();
        match (newest, self.completed[0], self.completed[1]) {
            (Some(newest), Some(a), Some(b)) => {
                let before = a.min(b);
                newest > before + rtt_increase_threshold(before)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `rounds` rounds, one packet acknowledged per round, with these
    /// RTTs; each packet is sent when the previous one is acknowledged.
    fn after_rounds(rtts_ms: &[u64]) -> QueueSurge {
        let mut surge = QueueSurge::new();
        let mut now = Instant::now();
        for &rtt in rtts_ms {
            let sent = now;
            now += Duration::from_millis(rtt);
            surge.on_ack(now, sent);
        }
        surge
    }

    #[test]
    fn a_queue_filling_by_a_doubling_window_is_a_surge() {
        // 50 ms path; the queue adds 1, 2, 4, 8 ms a round: the newest
        // rounds' minimum (66 ms) is 14 ms above the oldest two's (52 ms),
        // beyond the threshold of 52 ms / 8 = 6.5 ms.
        assert!(after_rounds(&[50, 51, 52, 54, 58, 66, 74]).surging());
    }

    #[test]
    fn cubic_probing_a_few_segments_per_round_is_not_a_surge() {
        // Half a millisecond more each round: 2.5 ms over five rounds.
        assert!(!after_rounds(&[90, 90, 91, 91, 92, 92, 93]).surging());
    }

    #[test]
    fn the_threshold_is_hystarts_clamped_eighth() {
        // 200 ms path: the eighth is 25 ms, clamped to 16 ms.
        assert!(!after_rounds(&[200, 200, 205, 210, 215, 215]).surging());
        assert!(after_rounds(&[200, 200, 210, 217, 217, 217]).surging());
        // 10 ms path: the eighth is 1.25 ms, raised to 4 ms.
        assert!(!after_rounds(&[10, 10, 12, 13, 13, 13]).surging());
        assert!(after_rounds(&[10, 10, 13, 15, 15, 15]).surging());
    }

    #[test]
    fn nothing_is_a_surge_before_three_rounds() {
        assert!(!after_rounds(&[]).surging());
        assert!(!after_rounds(&[10]).surging());
        assert!(!after_rounds(&[10, 100]).surging());
    }

    #[test]
    fn one_slow_round_followed_by_a_normal_one_is_not_a_surge() {
        // A round whose every sample was late (a burst of delayed acks, a
        // stalled receiver), then the queue as before.
        assert!(!after_rounds(&[50, 50, 50, 50, 90, 50]).surging());
    }
}
