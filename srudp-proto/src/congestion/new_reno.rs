//! NewReno as in RFC 9002 §7: slow start, congestion avoidance, one window
//! reduction per round trip of losses.

use std::time::Instant;

use super::{Controller, ControllerFactory};
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
}

impl Default for NewRenoFactory {
    fn default() -> Self {
        NewRenoFactory {
            initial_window_packets: 10,
            minimum_window_packets: 2,
            loss_reduction_factor: 0.5,
        }
    }
}

impl ControllerFactory for NewRenoFactory {
    fn build(&self, _now: Instant, max_datagram_size: u64) -> Box<dyn Controller> {
        Box::new(NewReno::new(self.clone(), max_datagram_size))
    }
}

/// The NewReno controller.
#[derive(Debug, Clone)]
pub struct NewReno {
    config: NewRenoFactory,
    mss: u64,
    window: u64,
    ssthresh: u64,
    /// Packets sent before this instant do not cause another reduction.
    recovery_start: Option<Instant>,
    /// Bytes acknowledged since the last window increase in congestion avoidance.
    bytes_acked: u64,
}

impl NewReno {
    /// A controller for datagrams of at most `mss` bytes.
    pub fn new(config: NewRenoFactory, mss: u64) -> Self {
        NewReno {
            window: config.initial_window_packets * mss,
            ssthresh: u64::MAX,
            recovery_start: None,
            bytes_acked: 0,
            mss,
            config,
        }
    }

    fn minimum_window(&self) -> u64 {
        self.config.minimum_window_packets * self.mss
    }

    /// The slow-start threshold (`u64::MAX` before the first loss).
    pub fn ssthresh(&self) -> u64 {
        self.ssthresh
    }
}

impl Controller for NewReno {
    fn on_ack(
        &mut self,
        _now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        _rtt: &RttEstimator,
    ) {
        if app_limited {
            return;
        }
        if self.recovery_start.is_some_and(|start| sent <= start) {
            return;
        }
        if self.window < self.ssthresh {
            self.window = self.window.saturating_add(bytes);
        } else {
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
        if persistent {
            self.window = self.minimum_window();
            self.recovery_start = Some(now);
            self.bytes_acked = 0;
            return;
        }
        if self.recovery_start.is_some_and(|start| sent <= start) {
            return;
        }
        self.recovery_start = Some(now);
        let reduced = (self.window as f64 * self.config.loss_reduction_factor) as u64;
        self.window = reduced.max(self.minimum_window());
        self.ssthresh = self.window;
        self.bytes_acked = 0;
    }

    fn window(&self) -> u64 {
        self.window
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn setup() -> (NewReno, Instant, RttEstimator) {
        (
            NewReno::new(NewRenoFactory::default(), 1200),
            Instant::now(),
            RttEstimator::new(Duration::from_millis(100)),
        )
    }

    #[test]
    fn slow_start_grows_by_bytes_acked() {
        let (mut cc, t0, rtt) = setup();
        assert_eq!(cc.window(), 12_000);
        cc.on_ack(t0, t0, 1200, false, &rtt);
        assert_eq!(cc.window(), 13_200);
    }

    #[test]
    fn loss_halves_the_window_once_per_recovery_period() {
        let (mut cc, t0, rtt) = setup();
        let t1 = t0 + Duration::from_millis(10);
        cc.on_congestion_event(t1, t0, false, 1200);
        assert_eq!(cc.window(), 6_000);
        assert_eq!(cc.ssthresh(), 6_000);
        // A second loss of a packet sent before recovery started: no further cut.
        cc.on_congestion_event(t1 + Duration::from_millis(1), t0, false, 1200);
        assert_eq!(cc.window(), 6_000);
        // Acks of packets sent before recovery don't grow the window.
        cc.on_ack(t1, t0, 1200, false, &rtt);
        assert_eq!(cc.window(), 6_000);
    }

    #[test]
    fn congestion_avoidance_adds_one_datagram_per_window() {
        let (mut cc, t0, rtt) = setup();
        let t1 = t0 + Duration::from_millis(1);
        cc.on_congestion_event(t1, t0, false, 1200); // window 6000, ssthresh 6000
        let t2 = t1 + Duration::from_millis(1);
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
    }
}
