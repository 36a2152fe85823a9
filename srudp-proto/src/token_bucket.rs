//! Token buckets in virtual time: how the endpoint measures its handshake
//! load (spec §4.8) and how the rendezvous server bounds what one client,
//! one source or one relayed pair may ask of it (spec §11.8).
//!
//! Deterministic: time is a parameter and tokens are integers (counted in
//! millionths, so a rate in tokens per second refills `rate` millionths per
//! microsecond).

use std::time::Instant;

/// Millionths of a token per token.
const MICRO: u64 = 1_000_000;

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

    fn capacity(self) -> u64 {
        self.burst.saturating_mul(MICRO)
    }
}

/// A bucket that starts full. Its [`RateLimit`] is kept by the owner (many
/// buckets share one) and passed to every call.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    micro_tokens: u64,
    /// The latest time seen; `None` until the first call.
    last: Option<Instant>,
}

impl TokenBucket {
    pub(crate) fn new(limit: RateLimit) -> TokenBucket {
        TokenBucket {
            micro_tokens: limit.capacity(),
            last: None,
        }
    }

    /// Adds what flowed in since the last call. Time going backwards adds
    /// nothing and does not move the clock back.
    fn refill(&mut self, limit: RateLimit, now: Instant) {
        if let Some(last) = self.last {
            let elapsed =
                u64::try_from(now.saturating_duration_since(last).as_micros()).unwrap_or(u64::MAX);
            self.micro_tokens = self
                .micro_tokens
                .saturating_add(elapsed.saturating_mul(limit.per_second))
                .min(limit.capacity());
        }
        if self.last.is_none_or(|l| now > l) {
            self.last = Some(now);
        }
    }

    /// Takes `amount` tokens if the bucket holds them.
    pub(crate) fn try_take(&mut self, limit: RateLimit, now: Instant, amount: u64) -> bool {
        self.refill(limit, now);
        let wanted = amount.saturating_mul(MICRO);
        if self.micro_tokens >= wanted {
            self.micro_tokens -= wanted;
            true
        } else {
            false
        }
    }

    /// Whether `amount` tokens are there to take (takes none).
    pub(crate) fn holds(&mut self, limit: RateLimit, now: Instant, amount: u64) -> bool {
        self.refill(limit, now);
        self.micro_tokens >= amount.saturating_mul(MICRO)
    }

    /// Takes `amount` tokens, or empties the bucket if it holds less.
    pub(crate) fn drain(&mut self, limit: RateLimit, now: Instant, amount: u64) {
        self.refill(limit, now);
        self.micro_tokens = self
            .micro_tokens
            .saturating_sub(amount.saturating_mul(MICRO));
    }

    /// Whether fewer than half the bucket's tokens are left.
    pub(crate) fn below_half(&mut self, limit: RateLimit, now: Instant) -> bool {
        self.refill(limit, now);
        self.micro_tokens < limit.capacity() / 2
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
        let mut b = TokenBucket::new(limit);
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
        let mut b = TokenBucket::new(limit);
        assert!(!b.try_take(limit, t0, 1501));
        assert!(b.try_take(limit, t0, 1200));
        assert!(!b.try_take(limit, t0, 1200));
        assert!(b.try_take(limit, t0 + Duration::from_secs(1), 1200));
    }

    #[test]
    fn a_bucket_of_one_seconds_worth_allows_exactly_its_rate_over_a_long_run() {
        let limit = RateLimit::new(100, 100);
        let t0 = Instant::now();
        let mut b = TokenBucket::new(limit);
        assert_eq!((0..150).filter(|_| b.try_take(limit, t0, 1)).count(), 100);
        // 10 ms refill 1 token.
        let t1 = t0 + Duration::from_millis(10);
        assert!(b.try_take(limit, t1, 1));
        assert!(!b.try_take(limit, t1, 1));
        let taken = (1..=10_000)
            .filter(|i| b.try_take(limit, t1 + Duration::from_micros(i * 1000), 1))
            .count();
        assert_eq!(taken, 1000, "10 s at 100/s");
        // Never more than the burst, however long it rests.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..500).filter(|_| b.try_take(limit, t2, 1)).count(), 100);
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let limit = RateLimit::new(1, 1);
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(limit);
        assert!(b.try_take(limit, t0, 1));
        assert!(!b.try_take(limit, t0 - Duration::from_secs(5), 1));
        assert!(!b.try_take(limit, t0, 1));
        assert!(b.try_take(limit, t0 + Duration::from_secs(1), 1));
    }

    #[test]
    fn draining_and_looking_take_no_more_than_there_is() {
        let limit = RateLimit::new(10, 10);
        let t0 = Instant::now();
        let mut b = TokenBucket::new(limit);
        assert!(b.holds(limit, t0, 10));
        assert!(!b.below_half(limit, t0));
        b.drain(limit, t0, 6);
        assert!(b.below_half(limit, t0));
        assert!(b.holds(limit, t0, 4) && !b.holds(limit, t0, 5));
        b.drain(limit, t0, 100);
        assert!(!b.holds(limit, t0, 1));
    }
}
