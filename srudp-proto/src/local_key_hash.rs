//! A fast hash for maps whose keys **we** choose: connection handles (a
//! counter) and our own connection ids (64 random bits from the endpoint's
//! generator). Both maps are looked up on every packet, where the standard
//! library's SipHash-1-3 cost more than the lookup itself.
//!
//! SipHash is keyed so that a peer who chooses the keys of a map cannot make
//! them collide and turn every lookup into a walk of one long chain. Here no
//! peer chooses a key that is *stored*: a peer only names keys to look up,
//! and a lookup of an absent key is as cheap as any other whatever the hash.
//! Maps whose stored keys come from the network (addresses, handshake keys,
//! relay sessions) keep SipHash.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by values we chose ourselves (see the module documentation
/// for why an unkeyed hash is safe there).
pub(crate) type LocalKeyMap<K, V> = HashMap<K, V, BuildHasherDefault<LocalKeyHasher>>;

/// Fibonacci hashing of 64-bit words: one multiplication per word. The
/// product's high bits (which hashbrown uses for its control bytes) mix every
/// input bit; its low bits (the bucket index) are distinct for consecutive
/// handles.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LocalKeyHasher(u64);

/// 2^64 divided by the golden ratio, odd.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for LocalKeyHasher {
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(GOLDEN);
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn consecutive_handles_spread_over_buckets_and_control_bytes() {
        let build = BuildHasherDefault::<LocalKeyHasher>::default();
        let hashes: Vec<u64> = (0..1024u64).map(|h| build.hash_one(h)).collect();
        // Bucket index: the low 10 bits are all distinct for 1024 handles.
        let mut low: Vec<u64> = hashes.iter().map(|h| h & 1023).collect();
        low.sort_unstable();
        low.dedup();
        assert_eq!(low.len(), 1024);
        // Control byte: the top 7 bits take every value.
        let mut top: Vec<u64> = hashes.iter().map(|h| h >> 57).collect();
        top.sort_unstable();
        top.dedup();
        assert_eq!(top.len(), 128);
    }

    #[test]
    fn a_map_of_local_keys_behaves_like_a_map() {
        let mut map: LocalKeyMap<u64, u64> = LocalKeyMap::default();
        for k in 0..10_000u64 {
            map.insert(k.wrapping_mul(0x1234_5678_9abc_def1), k);
        }
        for k in 0..10_000u64 {
            assert_eq!(map.get(&k.wrapping_mul(0x1234_5678_9abc_def1)), Some(&k));
        }
        assert_eq!(map.get(&3), None);
    }
}
