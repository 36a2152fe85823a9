//! The simulator's source of randomness.
//!
//! Every random decision in the simulator (loss, jitter, NAT port choice, …)
//! is drawn from a [`SimRng`]. The [`Network`](super::Network) owns one master
//! generator seeded from the user's seed and *forks* a child generator for
//! every link direction and NAT box when it is created, in creation order.
//! Each component therefore has its own stream: traffic on one link does not
//! shift the random decisions taken on another, and the same seed plus the
//! same sequence of calls gives the same results.

use std::fmt;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// A seeded, deterministic random number generator (ChaCha8).
#[derive(Clone)]
pub(crate) struct SimRng(ChaCha8Rng);

impl fmt::Debug for SimRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimRng").finish_non_exhaustive()
    }
}

impl SimRng {
    /// A generator seeded from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        SimRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A new, independent generator whose seed is drawn from this one.
    pub(crate) fn fork(&mut self) -> Self {
        SimRng::new(self.0.next_u64())
    }

    /// A uniformly random `u64`.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A uniformly random float in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        // 53 random bits: exactly representable, uniform in [0, 1).
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `p` (clamped to `[0, 1]`, NaN counts as 0).
    ///
    /// Certain outcomes (`p <= 0` or `p >= 1`) draw nothing from the stream,
    /// so enabling an impairment elsewhere never shifts these decisions.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        let p = clamp_probability(p);
        if p <= 0.0 {
            false
        } else if p >= 1.0 {
            true
        } else {
            self.unit() < p
        }
    }

    /// A uniformly random integer in `[0, n)`; `0` when `n == 0`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        // Lemire's multiply-and-reject: unbiased, usually one draw.
        let threshold = n.wrapping_neg() % n;
        loop {
            let wide = u128::from(self.next_u64()) * u128::from(n);
            if (wide as u64) >= threshold {
                return (wide >> 64) as u64;
            }
        }
    }

    /// A uniformly random duration in `[0, max)`, with nanosecond resolution
    /// (durations beyond `u64::MAX` nanoseconds are treated as that).
    pub(crate) fn duration_below(&mut self, max: Duration) -> Duration {
        let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.below(nanos))
    }
}

/// Clamps a probability into `[0, 1]`; NaN becomes `0`.
pub(crate) fn clamp_probability(p: f64) -> f64 {
    if p.is_nan() {
        0.0
    } else {
        p.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_forks_differ() {
        let mut a = SimRng::new(1);
        let mut b = SimRng::new(1);
        assert_eq!(a.next_u64(), b.next_u64());
        let mut fa = a.fork();
        let mut fb = b.fork();
        assert_eq!(fa.next_u64(), fb.next_u64());
        assert_ne!(fa.next_u64(), a.next_u64());
    }

    #[test]
    fn below_stays_in_range_and_handles_degenerate_bounds() {
        let mut r = SimRng::new(9);
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
        for _ in 0..1000 {
            assert!(r.below(7) < 7);
        }
        assert!(r.below(u64::MAX) < u64::MAX);
    }

    #[test]
    fn chance_handles_extremes_and_nan() {
        let mut r = SimRng::new(3);
        assert!(!r.chance(0.0));
        assert!(!r.chance(-1.0));
        assert!(!r.chance(f64::NAN));
        assert!(r.chance(1.0));
        assert!(r.chance(7.5));
        assert!(r.chance(f64::INFINITY));
    }

    #[test]
    fn duration_below_is_bounded() {
        let mut r = SimRng::new(5);
        assert_eq!(r.duration_below(Duration::ZERO), Duration::ZERO);
        for _ in 0..100 {
            assert!(r.duration_below(Duration::from_millis(3)) < Duration::from_millis(3));
        }
        // Absurdly large bound: no panic.
        let _ = r.duration_below(Duration::MAX);
    }
}
