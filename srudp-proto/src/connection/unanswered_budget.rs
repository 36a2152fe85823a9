//! The endpoint's budget for bytes sent to candidate addresses that have
//! never answered it (spec §4.4): knocks are drawn from it, so however many
//! introductions arrive (from peers or from a lying rendezvous server), an
//! endpoint sends at most [`UNANSWERED_BYTES_PER_MINUTE`] bytes a minute
//! toward addresses that did not ask for them.

use std::time::{Duration, Instant};

/// Bytes an endpoint sends, at most, to addresses that have not answered
/// it, per minute, across all its connections.
pub const UNANSWERED_BYTES_PER_MINUTE: u64 = 8192;

const MINUTE: Duration = Duration::from_secs(60);

/// A token bucket of bytes: [`UNANSWERED_BYTES_PER_MINUTE`] deep, refilled
/// at that rate.
#[derive(Debug, Clone)]
pub(crate) struct UnansweredBudget {
    capacity: u64,
    /// Bytes that may be spent now.
    available: u64,
    /// When `available` was last brought up to date; `None` before the first use.
    updated: Option<Instant>,
}

impl Default for UnansweredBudget {
    fn default() -> Self {
        UnansweredBudget::per_minute(UNANSWERED_BYTES_PER_MINUTE)
    }
}

impl UnansweredBudget {
    pub(crate) fn per_minute(capacity: u64) -> Self {
        UnansweredBudget {
            capacity,
            available: capacity,
            updated: None,
        }
    }

    /// Spends `bytes` if the budget holds them at `now`; otherwise spends
    /// nothing and returns `false`.
    pub(crate) fn try_spend(&mut self, now: Instant, bytes: u64) -> bool {
        self.refill(now);
        if self.available < bytes {
            return false;
        }
        self.available -= bytes;
        true
    }

    fn refill(&mut self, now: Instant) {
        let Some(updated) = self.updated else {
            self.updated = Some(now);
            return;
        };
        let elapsed = now.saturating_duration_since(updated);
        let earned = elapsed.as_nanos() * u128::from(self.capacity) / MINUTE.as_nanos();
        if earned == 0 {
            return; // keep the remainder accruing from `updated`
        }
        let earned = u64::try_from(earned).unwrap_or(u64::MAX);
        self.available = self.available.saturating_add(earned).min(self.capacity);
        self.updated = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_holds_the_capacity_and_no_more() {
        let t0 = Instant::now();
        let mut b = UnansweredBudget::per_minute(100);
        assert!(b.try_spend(t0, 60));
        assert!(b.try_spend(t0, 40));
        assert!(!b.try_spend(t0, 1), "spent");
        // Half a minute earns half the capacity.
        let t1 = t0 + Duration::from_secs(30);
        assert!(!b.try_spend(t1, 51));
        assert!(b.try_spend(t1, 50));
        // An idle hour fills the bucket but not beyond its depth.
        let t2 = t1 + Duration::from_secs(3600);
        assert!(!b.try_spend(t2, 101));
        assert!(b.try_spend(t2, 100));
    }

    #[test]
    fn frequent_small_refills_lose_nothing() {
        // Asked every millisecond, the bucket still earns at its rate: a
        // refill worth less than a byte leaves the clock where it was.
        let t0 = Instant::now();
        let mut b = UnansweredBudget::per_minute(600);
        assert!(b.try_spend(t0, 600));
        let mut spent = 0;
        for ms in 1..=10_000u64 {
            if b.try_spend(t0 + Duration::from_millis(ms), 1) {
                spent += 1;
            }
        }
        assert_eq!(spent, 100, "10 s at 600 bytes a minute");
    }
}
