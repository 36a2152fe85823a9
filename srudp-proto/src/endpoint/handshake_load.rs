//! The responder's handshake capacity and when it counts as under load
//! (spec §4.8).
//!
//! Capacity is `handshake_rate` initiations per second. Two token buckets of
//! that rate, each holding at most one second of tokens, measure it:
//!
//! * the **arrival meter** loses a token for every initiation that arrives
//!   (passing `mac1`, not a retransmission), processed or not; it runs low
//!   when initiations arrive faster than half the capacity for a while;
//! * the **work budget** loses a token for every initiation the responder
//!   runs through Noise (its Diffie-Hellman work); when it is empty further
//!   initiations are dropped.
//!
//! The responder is under load while the arrival meter holds less than half
//! of its tokens, or while half its pending-handshake slots are taken.
//! Deterministic: time is a parameter and tokens are integers.

use std::time::Instant;

use crate::token_bucket::{RateLimit, TokenBucket};

/// The arrival meter and the work budget of one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct HandshakeLoad {
    /// `handshake_rate` per second, one second's worth at most.
    limit: RateLimit,
    arrivals: TokenBucket,
    work: TokenBucket,
}

impl HandshakeLoad {
    pub(crate) fn new(rate_per_second: u32) -> Self {
        let rate = u64::from(rate_per_second.max(1));
        let limit = RateLimit::new(rate, rate);
        HandshakeLoad {
            limit,
            arrivals: TokenBucket::new(limit),
            work: TokenBucket::new(limit),
        }
    }

    /// Counts one arriving initiation and says whether the endpoint is now
    /// under load.
    pub(crate) fn on_arrival(&mut self, now: Instant, pending: usize, max_pending: usize) -> bool {
        self.arrivals.drain(self.limit, now, 1);
        self.arrivals.below_half(self.limit, now) || pending.saturating_mul(2) >= max_pending
    }

    /// Whether the budget allows one unit of handshake work now (spends none).
    pub(crate) fn can_work(&mut self, now: Instant) -> bool {
        self.work.holds(self.limit, now, 1)
    }

    /// Spends one unit of handshake work, if the budget allows.
    pub(crate) fn try_work(&mut self, now: Instant) -> bool {
        self.work.try_take(self.limit, now, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn load_starts_when_arrivals_exceed_half_the_capacity_and_ends_when_they_calm() {
        let t0 = Instant::now();
        let mut load = HandshakeLoad::new(100);
        let loaded: Vec<bool> = (0..60).map(|_| load.on_arrival(t0, 0, 100)).collect();
        assert!(
            !loaded[49],
            "50 arrivals at once: still half the meter left"
        );
        assert!(loaded[50], "51st arrival: under load");
        // Arrivals at 200/s keep it loaded.
        let mut t = t0;
        for _ in 0..400 {
            t += Duration::from_millis(5);
            assert!(load.on_arrival(t, 0, 100));
        }
        // A quiet second refills the meter.
        t += Duration::from_secs(1);
        assert!(!load.on_arrival(t, 0, 100));
        // Half the pending slots taken also counts as load.
        assert!(load.on_arrival(t, 50, 100));
    }
}
