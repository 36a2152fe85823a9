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

/// Tokens are counted in millionths, so a rate in tokens per second refills
/// `rate` millionths per microsecond.
const MICRO: u64 = 1_000_000;

/// A token bucket refilled at `rate` tokens per second, holding at most
/// `rate` tokens (one second's worth). Starts full.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: u64,
    micro_tokens: u64,
    last: Option<Instant>,
}

impl TokenBucket {
    pub(crate) fn new(rate_per_second: u32) -> Self {
        let rate = u64::from(rate_per_second.max(1));
        TokenBucket {
            rate,
            micro_tokens: rate * MICRO,
            last: None,
        }
    }

    fn capacity(&self) -> u64 {
        self.rate * MICRO
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let elapsed =
                u64::try_from(now.saturating_duration_since(last).as_micros()).unwrap_or(u64::MAX);
            self.micro_tokens = self
                .micro_tokens
                .saturating_add(elapsed.saturating_mul(self.rate))
                .min(self.capacity());
        }
        if self.last.is_none_or(|l| now > l) {
            self.last = Some(now);
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.micro_tokens >= MICRO {
            self.micro_tokens -= MICRO;
            true
        } else {
            false
        }
    }

    /// Whether a token is there to take (takes none).
    pub(crate) fn has_token(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.micro_tokens >= MICRO
    }

    /// Takes one token, or empties the bucket if it holds less.
    pub(crate) fn drain_one(&mut self, now: Instant) {
        self.refill(now);
        self.micro_tokens = self.micro_tokens.saturating_sub(MICRO);
    }

    /// Whether fewer than half the tokens are left.
    pub(crate) fn below_half(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.micro_tokens < self.capacity() / 2
    }
}

/// The arrival meter and the work budget of one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct HandshakeLoad {
    arrivals: TokenBucket,
    work: TokenBucket,
}

impl HandshakeLoad {
    pub(crate) fn new(rate_per_second: u32) -> Self {
        HandshakeLoad {
            arrivals: TokenBucket::new(rate_per_second),
            work: TokenBucket::new(rate_per_second),
        }
    }

    /// Counts one arriving initiation and says whether the endpoint is now
    /// under load.
    pub(crate) fn on_arrival(&mut self, now: Instant, pending: usize, max_pending: usize) -> bool {
        self.arrivals.drain_one(now);
        self.arrivals.below_half(now) || pending.saturating_mul(2) >= max_pending
    }

    /// Whether the budget allows one unit of handshake work now (spends none).
    pub(crate) fn can_work(&mut self, now: Instant) -> bool {
        self.work.has_token(now)
    }

    /// Spends one unit of handshake work, if the budget allows.
    pub(crate) fn try_work(&mut self, now: Instant) -> bool {
        self.work.try_take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_rate_per_second_after_a_burst_of_one_second() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100);
        assert_eq!((0..150).filter(|_| b.try_take(t0)).count(), 100);
        // 10 ms refill 1 token.
        let t1 = t0 + Duration::from_millis(10);
        assert!(b.try_take(t1));
        assert!(!b.try_take(t1));
        // Over a long run: exactly the rate.
        let taken = (1..=10_000)
            .filter(|i| b.try_take(t1 + Duration::from_micros(i * 1000)))
            .count();
        assert_eq!(taken, 1000, "10 s at 100/s");
        // Never more than one second's worth, however long it rests.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..500).filter(|_| b.try_take(t2)).count(), 100);
    }

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

    #[test]
    fn time_going_backwards_refills_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(1);
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0 - Duration::from_secs(5)));
        assert!(!b.try_take(t0));
        assert!(b.try_take(t0 + Duration::from_secs(1)));
    }
}
