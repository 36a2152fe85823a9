//! Token buckets in virtual time: how the rendezvous server bounds what one
//! client (or one relayed pair) may ask of it.

use std::time::Instant;

/// A rate: `per_second` tokens flow in continuously, up to `burst` held at
/// once. One token is one request, or one byte for relay limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained rate.
    pub per_second: u64,
    /// Bucket size: what may be spent at once after a quiet period.
    pub burst: u64,
}

impl RateLimit {
    /// A limit of `per_second` with room for a burst of `burst`.
    pub const fn new(per_second: u64, burst: u64) -> RateLimit {
        RateLimit { per_second, burst }
    }
}

/// A bucket that starts full.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(limit: RateLimit, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: limit.burst as f64,
            last: now,
        }
    }

    /// Takes `amount` tokens if the bucket holds them.
    pub(crate) fn try_take(&mut self, limit: RateLimit, now: Instant, amount: u64) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.per_second as f64).min(limit.burst as f64);
        self.last = self.last.max(now);
        if self.tokens >= amount as f64 {
            self.tokens -= amount as f64;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let limit = RateLimit::new(2, 5);
        let t0 = Instant::now();
        let mut b = TokenBucket::new(limit, t0);
        let taken = (0..10).filter(|_| b.try_take(limit, t0, 1)).count();
        assert_eq!(taken, 5, "the burst");
        assert!(!b.try_take(limit, t0 + Duration::from_millis(400), 1));
        assert!(
            b.try_take(limit, t0 + Duration::from_millis(500), 1),
            "2 per second"
        );
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        let taken = (0..10).filter(|_| b.try_take(limit, later, 1)).count();
        assert_eq!(taken, 5);
    }

    #[test]
    fn amounts_larger_than_the_burst_never_pass() {
        let limit = RateLimit::new(1000, 1500);
        let t0 = Instant::now();
        let mut b = TokenBucket::new(limit, t0);
        assert!(!b.try_take(limit, t0, 1501));
        assert!(b.try_take(limit, t0, 1200));
        assert!(!b.try_take(limit, t0, 1200));
        assert!(b.try_take(limit, t0 + Duration::from_secs(1), 1200));
    }
}
