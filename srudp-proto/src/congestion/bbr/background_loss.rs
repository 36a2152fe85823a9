//! The path's background loss rate: how much is lost in round trips in
//! which no bottleneck queue stood, so that the loss is not ours to cure
//! (radio, bad cables, policers upstream of any queue).
//!
//! BBRv3 treats a loss rate above 2 % in a round trip as a sign that
//! inflight overran the bottleneck buffer. On a path that drops 5 % of
//! packets at random, that is every round trip, and BBRv3 keeps cutting
//! its inflight bounds at a link it never filled. [`Bbr`](super::Bbr)
//! compares a round's loss rate with this background instead: only the
//! loss *in excess* of it counts against the threshold.
//!
//! A round trip counts toward the background when its smallest RTT
//! sample is within [`QUEUE_DELAY_FRACTION`] (plus [`QUEUE_DELAY_FLOOR`])
//! of the path's minimum RTT: no standing queue, so a queue overflow cannot
//! explain its losses. The average is an exponentially weighted one
//! (weight 1/n for the first [`WARMUP_ROUNDS`], then 1/[`WARMUP_ROUNDS`]),
//! and never more than [`MAX_BACKGROUND_LOSS`], so a path that only ever
//! loses packets at a queue too shallow to show in the RTT still has a
//! bound on how much loss is dismissed.

use std::time::Duration;

/// A round's smallest RTT more than this fraction of the minimum RTT above it
/// (plus the floor) shows a standing queue.
pub(super) const QUEUE_DELAY_FRACTION: f64 = 0.125;
/// ...plus this, for timer and scheduling noise.
pub(super) const QUEUE_DELAY_FLOOR: Duration = Duration::from_millis(1);
/// Rounds averaged with equal weight before the average becomes exponential.
pub(super) const WARMUP_ROUNDS: u32 = 8;
/// The background is never taken to exceed this loss rate.
pub(super) const MAX_BACKGROUND_LOSS: f64 = 0.15;
/// Fewer bytes than this many full packets delivered and lost in a round
/// say too little about its loss rate to count.
pub(super) const MIN_ROUND_PACKETS: u64 = 20;

/// Whether a round whose smallest RTT sample was `round_min_rtt` had a
/// standing queue on a path whose minimum RTT is `min_rtt`.
pub(super) fn queue_stood(round_min_rtt: Duration, min_rtt: Duration) -> bool {
    round_min_rtt > min_rtt.mul_f64(1.0 + QUEUE_DELAY_FRACTION) + QUEUE_DELAY_FLOOR
}

/// The background loss-rate estimate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct BackgroundLoss {
    rate: f64,
    rounds: u32,
}

impl BackgroundLoss {
    /// The estimate (0 before any round counted).
    pub(super) fn rate(&self) -> f64 {
        self.rate
    }

    /// A round without a standing queue lost `rate` of its packets.
    pub(super) fn on_queueless_round(&mut self, rate: f64) {
        self.rounds = self.rounds.saturating_add(1);
        let weight = 1.0 / f64::from(self.rounds.min(WARMUP_ROUNDS));
        self.rate = (self.rate + weight * (rate - self.rate)).clamp(0.0, MAX_BACKGROUND_LOSS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_first_rounds_are_averaged_then_the_average_moves_an_eighth() {
        let mut b = BackgroundLoss::default();
        b.on_queueless_round(0.04);
        b.on_queueless_round(0.06);
        assert!((b.rate() - 0.05).abs() < 1e-12);
        for _ in 2..WARMUP_ROUNDS {
            b.on_queueless_round(0.05);
        }
        assert!((b.rate() - 0.05).abs() < 1e-12);
        b.on_queueless_round(0.13);
        assert!((b.rate() - 0.06).abs() < 1e-12, "{}", b.rate());
    }

    #[test]
    fn the_background_is_capped() {
        let mut b = BackgroundLoss::default();
        for _ in 0..20 {
            b.on_queueless_round(0.5);
        }
        assert_eq!(b.rate(), MAX_BACKGROUND_LOSS);
    }

    #[test]
    fn a_queue_shows_as_an_eighth_of_the_minimum_rtt_plus_a_millisecond() {
        // 50 ms path: 50 × 1.125 + 1 = 57.25 ms.
        assert!(!queue_stood(57 * MS, 50 * MS));
        assert!(queue_stood(58 * MS, 50 * MS));
        assert!(!queue_stood(50 * MS, 50 * MS));
    }
}
