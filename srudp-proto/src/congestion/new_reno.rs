//! NewReno as in RFC 9002 §7: slow start (with HyStart++), congestion
//! avoidance, one window reduction per recovery period, persistent
//! congestion, and undo of a reduction caused by spurious losses.

use std::time::Instant;

use super::{
    Controller, ControllerFactory, HyStart, SlowStartPhase, PACING_GAIN, SLOW_START_PACING_GAIN,
};
use crate::connection::RttEstimator;

/// Parameters of [`NewReno`].
#[derive(Debug, Clone)]
pub struct NewRenoFactory {
    /// Initial window in datagrams (RFC 9002: 10).
    pub initial_window_packets: u64,
    /// Minimum window in datagrams (RFC 9002: 2).
    pub minimum_window_packets: u64,
    /// Multiplicative decrease on loss (RFC 9002: 0.5).
    pub loss_reduction_factor: f64,
    /// Leave the first slow start early when the RTT grows (RFC 9406).
    pub hystart: bool,
}

impl Default for NewRenoFactory {
    fn default() -> Self {
        NewRenoFactory {
            initial_window_packets: 10,
            minimum_window_packets: 2,
            loss_reduction_factor: 0.5,
            hystart: true,
        }
    }
}

impl ControllerFactory for NewRenoFactory {
    fn build(&self, _now: Instant, max_datagram_size: u64) -> Box<dyn Controller> {
        Box::new(NewReno::new(self.clone(), max_datagram_size))
    }
}

/// What a window reduction changed, kept to undo it.
#[derive(Debug, Clone)]
struct Saved {
    window: u64,
    ssthresh: u64,
    recovery_start: Option<Instant>,
    bytes_acked: u64,
    hystart: HyStart,
}

/// The NewReno controller.
#[derive(Debug, Clone)]
pub struct NewReno {
    config: NewRenoFactory,
    mss: u64,
    window: u64,
    ssthresh: u64,
    /// Packets sent before this instant do not cause another reduction, and
    /// their acknowledgments do not grow the window.
    recovery_start: Option<Instant>,
    /// Bytes acknowledged since the last window increase in congestion avoidance.
    bytes_acked: u64,
    hystart: HyStart,
    saved: Option<Saved>,
}

impl NewReno {
    /// A controller for datagrams of at most `mss` bytes.
    pub fn new(config: NewRenoFactory, mss: u64) -> Self {
        NewReno {
            window: config.initial_window_packets * mss,
            ssthresh: u64::MAX,
            recovery_start: None,
            bytes_acked: 0,
            hystart: HyStart::new(config.hystart),
            saved: None,
            mss,
            config,
        }
    }

    fn minimum_window(&self) -> u64 {
        self.config.minimum_window_packets * self.mss
    }
}

impl Controller for NewReno {
    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        _rtt: &RttEstimator,
    ) {
        if self.recovery_start.is_some_and(|start| sent <= start) {
            return;
        }
        if self.window < self.ssthresh {
            let growth = match self.hystart.phase() {
                // After a loss, standard slow start up to ssthresh (RFC 9406 §4.3).
                SlowStartPhase::Done => bytes,
                // HyStart++ takes every RTT sample, application limited or not.
                _ => self
                    .hystart
                    .on_ack(now, sent, bytes, now.saturating_duration_since(sent)),
            };
            if !app_limited {
                self.window = self.window.saturating_add(growth);
            }
            if self.hystart.phase() == SlowStartPhase::Done && self.ssthresh == u64::MAX {
                self.ssthresh = self.window;
            }
        } else if !app_limited {
            // One datagram per window acknowledged.
            self.bytes_acked = self.bytes_acked.saturating_add(bytes);
            if self.bytes_acked >= self.window {
                self.bytes_acked -= self.window;
                self.window = self.window.saturating_add(self.mss);
            }
        }
    }

    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        persistent: bool,
        _lost_bytes: u64,
    ) {
        let in_recovery = self.recovery_start.is_some_and(|start| sent <= start);
        if in_recovery && !persistent {
            return;
        }
        if !in_recovery {
            self.saved = Some(Saved {
                window: self.window,
                ssthresh: self.ssthresh,
                recovery_start: self.recovery_start,
                bytes_acked: self.bytes_acked,
                hystart: self.hystart.clone(),
            });
            let reduced = (self.window as f64 * self.config.loss_reduction_factor) as u64;
            self.ssthresh = reduced.max(self.minimum_window());
            self.window = self.ssthresh;
        }
        self.recovery_start = Some(now);
        self.bytes_acked = 0;
        self.hystart.on_congestion();
        if persistent {
            self.window = self.minimum_window();
        }
    }

    fn on_max_datagram_size(&mut self, max_datagram_size: u64) {
        self.mss = max_datagram_size;
        self.window = self.window.max(self.minimum_window());
    }

    fn on_spurious_congestion_event(&mut self) {
        if let Some(saved) = self.saved.take() {
            self.window = self.window.max(saved.window);
            self.ssthresh = saved.ssthresh;
            self.recovery_start = saved.recovery_start;
            self.bytes_acked = saved.bytes_acked;
            self.hystart = saved.hystart;
        }
    }

    fn window(&self) -> u64 {
        self.window
    }

    fn ssthresh(&self) -> u64 {
        self.ssthresh
    }

    fn pacing_gain(&self) -> f64 {
        if self.window < self.ssthresh && self.hystart.phase() == SlowStartPhase::SlowStart {
            SLOW_START_PACING_GAIN
        } else {
            PACING_GAIN
        }
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MS: Duration = Duration::from_millis(1);

    fn setup() -> (NewReno, Instant, RttEstimator) {
        (
            NewReno::new(NewRenoFactory::default(), 1200),
            Instant::now(),
            RttEstimator::new(100 * MS),
        )
    }

    #[test]
    fn slow_start_grows_by_bytes_acked() {
        let (mut cc, t0, rtt) = setup();
        assert_eq!(cc.window(), 12_000);
        cc.on_ack(t0 + 100 * MS, t0, 1200, false, &rtt);
        assert_eq!(cc.window(), 13_200);
        assert_eq!(cc.pacing_gain(), SLOW_START_PACING_GAIN);
    }

    #[test]
    fn loss_halves_the_window_once_per_recovery_period() {
        let (mut cc, t0, rtt) = setup();
        let t1 = t0 + 10 * MS;
        cc.on_congestion_event(t1, t0, false, 1200);
        assert_eq!(cc.window(), 6_000);
        assert_eq!(cc.ssthresh(), 6_000);
        assert_eq!(cc.pacing_gain(), PACING_GAIN);
        // A second loss of a packet sent before recovery started: no further cut.
        cc.on_congestion_event(t1 + MS, t0, false, 1200);
        assert_eq!(cc.window(), 6_000);
        // Acks of packets sent before recovery don't grow the window.
        cc.on_ack(t1, t0, 1200, false, &rtt);
        assert_eq!(cc.window(), 6_000);
        // A loss of a packet sent after recovery started is a new event.
        cc.on_congestion_event(t1 + 50 * MS, t1 + MS, false, 1200);
        assert_eq!(cc.window(), 3_000);
    }

    #[test]
    fn congestion_avoidance_adds_one_datagram_per_window() {
        let (mut cc, t0, rtt) = setup();
        let t1 = t0 + MS;
        cc.on_congestion_event(t1, t0, false, 1200); // window 6000, ssthresh 6000
        let t2 = t1 + MS;
        for _ in 0..4 {
            cc.on_ack(t2, t2, 1200, false, &rtt);
        }
        assert_eq!(cc.window(), 6_000, "4800 < 6000 acked: no growth yet");
        cc.on_ack(t2, t2, 1200, false, &rtt);
        assert_eq!(cc.window(), 7_200);
    }

    #[test]
    fn app_limited_acks_do_not_grow_the_window() {
        let (mut cc, t0, rtt) = setup();
        cc.on_ack(t0, t0, 1200, true, &rtt);
        assert_eq!(cc.window(), 12_000);
    }

    #[test]
    fn persistent_congestion_collapses_to_the_minimum_window() {
        let (mut cc, t0, _) = setup();
        cc.on_congestion_event(t0 + Duration::from_secs(1), t0, true, 12_000);
        assert_eq!(cc.window(), 2_400);
        assert_eq!(cc.ssthresh(), 6_000);
    }

    #[test]
    fn the_minimum_window_is_two_of_the_datagrams_sent_now() {
        let (mut cc, t0, _) = setup();
        cc.on_max_datagram_size(1472);
        cc.on_congestion_event(t0 + Duration::from_secs(1), t0, true, 12_000);
        assert_eq!(cc.window(), 2 * 1472);
        // Back to the base size (a black hole): the window stays.
        cc.on_max_datagram_size(1200);
        assert_eq!(cc.window(), 2 * 1472);
    }

    #[test]
    fn a_pto_alone_leaves_the_window_unchanged() {
        // RFC 9002 §6.2: a probe timeout declares nothing lost; the window only
        // changes once losses are declared (or persistent congestion found).
        let (cc, _, _) = setup();
        assert_eq!(cc.window(), 12_000);
    }

    #[test]
    fn a_spurious_reduction_is_undone() {
        let (mut cc, t0, rtt) = setup();
        for _ in 0..10 {
            cc.on_ack(t0 + 100 * MS, t0, 1200, false, &rtt);
        }
        assert_eq!(cc.window(), 24_000);
        cc.on_congestion_event(t0 + 150 * MS, t0 + 100 * MS, false, 1200);
        assert_eq!(cc.window(), 12_000);
        cc.on_spurious_congestion_event();
        assert_eq!(cc.window(), 24_000);
        assert_eq!(cc.ssthresh(), u64::MAX, "back in slow start");
        // Only once: a second undo without a new reduction changes nothing.
        cc.on_congestion_event(t0 + 200 * MS, t0 + 160 * MS, false, 1200);
        assert_eq!(cc.window(), 12_000);
        cc.on_spurious_congestion_event();
        cc.on_spurious_congestion_event();
        assert_eq!(cc.window(), 24_000);
    }
}
