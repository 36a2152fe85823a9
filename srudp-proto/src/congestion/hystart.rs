//! HyStart++ (RFC 9406): leave slow start when the round-trip time starts to
//! grow, before the bottleneck queue overflows.
//!
//! Plain slow start doubles the window every round trip until a packet is
//! lost, by which time up to a whole window beyond the path's capacity is in
//! flight and lost together. HyStart++ watches the minimum RTT of each round
//! (a round ends when a packet sent after it began is acknowledged); when it
//! rises by a clamped eighth of the previous round's, the queue is filling:
//! the window then grows by a quarter of the acknowledged bytes only
//! (Conservative Slow Start, CSS) for a few rounds, and congestion avoidance
//! follows. A CSS round whose minimum RTT falls back below the baseline was a
//! false alarm and resumes slow start.
//!
//! Used only for the first slow start of a connection (RFC 9406 §4.3): after
//! a loss the controller's ssthresh bounds slow start.

use std::time::{Duration, Instant};

/// Minimum RTT samples in a round before deciding (N_RTT_SAMPLE).
const N_RTT_SAMPLE: u32 = 8;
/// Clamp of the RTT increase threshold (MIN_RTT_THRESH, MAX_RTT_THRESH).
const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
/// The threshold is the previous round's minimum RTT divided by this.
const MIN_RTT_DIVISOR: u32 = 8;
/// In CSS the window grows by the acknowledged bytes divided by this.
const CSS_GROWTH_DIVISOR: u64 = 4;
/// Rounds of CSS before congestion avoidance.
const CSS_ROUNDS: u32 = 5;

/// How far a round's minimum RTT must rise above `base` (the previous
/// round's) to count as the queue filling: an eighth of it, clamped to
/// 4–16 ms (RFC 9406 §4.2).
pub(crate) fn rtt_increase_threshold(base: Duration) -> Duration {
    (base / MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH)
}

/// Where a connection is in its first slow start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowStartPhase {
    /// Standard slow start: the window grows by every acknowledged byte.
    SlowStart,
    /// Conservative slow start: the RTT grew; the window grows by a quarter.
    Conservative,
    /// Slow start is over: congestion avoidance (or a loss ended it).
    Done,
}

/// The HyStart++ state of one connection.
#[derive(Debug, Clone)]
pub struct HyStart {
    enabled: bool,
    phase: SlowStartPhase,
    /// Packets sent at or after this instant end the current round when acknowledged.
    round_start: Option<Instant>,
    last_round_min: Option<Duration>,
    current_round_min: Option<Duration>,
    samples: u32,
    css_baseline: Option<Duration>,
    css_rounds: u32,
}

impl HyStart {
    /// A fresh state; with `enabled` false it never leaves standard slow start
    /// by itself.
    pub fn new(enabled: bool) -> Self {
        HyStart {
            enabled,
            phase: SlowStartPhase::SlowStart,
            round_start: None,
            last_round_min: None,
            current_round_min: None,
            samples: 0,
            css_baseline: None,
            css_rounds: 0,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> SlowStartPhase {
        self.phase
    }

    /// A packet sent at `sent` of `bytes` was acknowledged at `now` with RTT
    /// `rtt_sample`, during slow start. Returns how many bytes the window grows
    /// by; afterwards [`phase`](Self::phase) is `Done` if congestion avoidance
    /// must begin.
    pub fn on_ack(&mut self, now: Instant, sent: Instant, bytes: u64, rtt_sample: Duration) -> u64 {
        if !self.enabled {
            return bytes;
        }
        if self.phase == SlowStartPhase::Done {
            return 0;
        }
        if self.round_start.is_none_or(|start| sent >= start) {
            self.start_round(now);
            if self.phase == SlowStartPhase::Done {
                return 0;
            }
        }
        self.samples += 1;
        self.current_round_min = Some(
            self.current_round_min
                .map_or(rtt_sample, |m| m.min(rtt_sample)),
        );
        let enough = self.samples >= N_RTT_SAMPLE;
        match self.phase {
            SlowStartPhase::SlowStart => {
                if let (true, Some(current), Some(last)) =
                    (enough, self.current_round_min, self.last_round_min)
                {
                    let threshold = rtt_increase_threshold(last);
                    if current >= last + threshold {
                        self.phase = SlowStartPhase::Conservative;
                        self.css_baseline = Some(current);
                        self.css_rounds = 0;
                    }
                }
            }
            SlowStartPhase::Conservative => {
                if let (true, Some(current), Some(baseline)) =
                    (enough, self.current_round_min, self.css_baseline)
                {
                    if current < baseline {
                        // The RTT increase was not a standing queue after all.
                        self.phase = SlowStartPhase::SlowStart;
                        self.css_baseline = None;
                    }
                }
            }
            SlowStartPhase::Done => {}
        }
        match self.phase {
            SlowStartPhase::SlowStart => bytes,
            SlowStartPhase::Conservative => bytes / CSS_GROWTH_DIVISOR,
            SlowStartPhase::Done => 0,
        }
    }

    fn start_round(&mut self, now: Instant) {
        if self.round_start.is_some() {
            self.last_round_min = self.current_round_min;
            if self.phase == SlowStartPhase::Conservative {
                self.css_rounds += 1;
                if self.css_rounds >= CSS_ROUNDS {
                    self.phase = SlowStartPhase::Done;
                }
            }
        }
        self.round_start = Some(now);
        self.current_round_min = None;
        self.samples = 0;
    }

    /// A loss ended slow start.
    pub fn on_congestion(&mut self) {
        self.phase = SlowStartPhase::Done;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Runs one round of `n` acks whose packets were sent at `sent` (at or
    /// after the previous round's start), acknowledged at `at`, all with
    /// RTT `rtt`; returns the growth.
    fn round(h: &mut HyStart, sent: Instant, at: Instant, n: u32, rtt: Duration) -> u64 {
        (0..n).map(|_| h.on_ack(at, sent, 1000, rtt)).sum()
    }

    #[test]
    fn a_stable_rtt_keeps_standard_slow_start() {
        let t0 = Instant::now();
        let mut h = HyStart::new(true);
        for r in 0..10u32 {
            let sent = t0 + 100 * MS * r;
            assert_eq!(round(&mut h, sent, sent + 100 * MS, 10, 100 * MS), 10_000);
        }
        assert_eq!(h.phase(), SlowStartPhase::SlowStart);
    }

    #[test]
    fn an_rtt_increase_of_an_eighth_enters_css_then_congestion_avoidance() {
        let t0 = Instant::now();
        let mut h = HyStart::new(true);
        // Round 1: min RTT 100 ms. Threshold for round 2: clamp(12.5 ms, 4, 16) = 12.5 ms.
        round(&mut h, t0, t0 + 100 * MS, 10, 100 * MS);
        // Round 2: 112 ms is below 100 + 12.5: still slow start.
        let t1 = t0 + 100 * MS;
        assert_eq!(round(&mut h, t1, t1 + 112 * MS, 10, 112 * MS), 10_000);
        assert_eq!(h.phase(), SlowStartPhase::SlowStart);
        // Round 3: threshold from 112 ms is 14 ms; 126 ms ≥ 126 ms: CSS after the
        // 8th sample, so samples 1–7 grow fully and 8–10 by a quarter.
        let t2 = t1 + 112 * MS;
        let growth = round(&mut h, t2, t2 + 126 * MS, 10, 126 * MS);
        assert_eq!(growth, 7 * 1000 + 3 * 250);
        assert_eq!(h.phase(), SlowStartPhase::Conservative);
        // Five more rounds at the same RTT: CSS, then done.
        let mut t = t2 + 126 * MS;
        for r in 0..5 {
            let g = round(&mut h, t, t + 126 * MS, 10, 126 * MS);
            t += 126 * MS;
            if r < 4 {
                assert_eq!(g, 2_500, "CSS round {r} grows by a quarter");
                assert_eq!(h.phase(), SlowStartPhase::Conservative);
            } else {
                assert_eq!(g, 0);
                assert_eq!(h.phase(), SlowStartPhase::Done);
            }
        }
    }

    #[test]
    fn an_rtt_that_falls_back_below_the_baseline_resumes_slow_start() {
        let t0 = Instant::now();
        let mut h = HyStart::new(true);
        round(&mut h, t0, t0 + 50 * MS, 10, 50 * MS);
        let t1 = t0 + 50 * MS;
        // Threshold clamp(6.25 ms) → 56.25 ms; 60 ms enters CSS with baseline 60 ms.
        round(&mut h, t1, t1 + 60 * MS, 10, 60 * MS);
        assert_eq!(h.phase(), SlowStartPhase::Conservative);
        let t2 = t1 + 60 * MS;
        round(&mut h, t2, t2 + 55 * MS, 10, 55 * MS);
        assert_eq!(h.phase(), SlowStartPhase::SlowStart);
    }

    #[test]
    fn the_threshold_is_clamped_to_4_and_16_ms() {
        let t0 = Instant::now();
        // 10 ms RTT: an eighth is 1.25 ms, clamped up to 4 ms: 13 ms is not enough.
        let mut h = HyStart::new(true);
        round(&mut h, t0, t0 + 10 * MS, 10, 10 * MS);
        round(&mut h, t0 + 10 * MS, t0 + 23 * MS, 10, 13 * MS);
        assert_eq!(h.phase(), SlowStartPhase::SlowStart);
        round(&mut h, t0 + 23 * MS, t0 + 40 * MS, 10, 17 * MS);
        assert_eq!(h.phase(), SlowStartPhase::Conservative);
        // 400 ms RTT: an eighth is 50 ms, clamped down to 16 ms.
        let mut h = HyStart::new(true);
        round(&mut h, t0, t0 + 400 * MS, 10, 400 * MS);
        round(&mut h, t0 + 400 * MS, t0 + 816 * MS, 10, 416 * MS);
        assert_eq!(h.phase(), SlowStartPhase::Conservative);
    }

    #[test]
    fn disabled_means_standard_slow_start_forever() {
        let t0 = Instant::now();
        let mut h = HyStart::new(false);
        round(&mut h, t0, t0 + 50 * MS, 10, 50 * MS);
        assert_eq!(
            round(&mut h, t0 + 50 * MS, t0 + 200 * MS, 10, 150 * MS),
            10_000
        );
        assert_eq!(h.phase(), SlowStartPhase::SlowStart);
    }
}
