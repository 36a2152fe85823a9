//! The crate's only source of randomness: a seedable generator.
//!
//! Every random choice srudp-proto makes (connection ids, ephemeral keys,
//! path challenges, jitter) is drawn from an [`Rng`] owned by the endpoint and
//! seeded from its configuration, so one seed gives one trace.

use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};

/// A seedable cryptographically strong generator (ChaCha12).
#[derive(Debug, Clone)]
pub struct Rng(ChaCha12Rng);

impl Rng {
    /// A generator whose whole output is fixed by `seed`. Use in tests and simulations.
    pub fn from_seed(seed: u64) -> Rng {
        Rng(ChaCha12Rng::seed_from_u64(seed))
    }

    /// A generator seeded from the operating system.
    ///
    /// # Panics
    /// Panics if the operating system has no randomness to give, which no
    /// supported platform does after boot.
    pub fn from_os() -> Rng {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the operating system's random source failed");
        Rng(ChaCha12Rng::from_seed(seed))
    }

    /// Fills `dest` with random bytes.
    pub fn fill(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }

    /// A random `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// 32 random bytes, for seeding a child generator.
    pub fn seed32(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        self.fill(&mut s);
        s
    }

    /// A uniformly random value in `0..n` (`n > 0`), without modulo bias that matters here.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}
