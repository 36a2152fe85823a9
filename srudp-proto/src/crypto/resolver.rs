//! A snow crypto resolver whose randomness comes from our seeded generator,
//! whose X25519 is ours (`x25519.rs`: same results, cheaper), and whose
//! cipher comes from ring with the `ring` feature.

use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

use super::x25519::{Dh25519, EdwardsCache};
use crate::keys::Keypair;

/// snow's default primitives, with the RNG (used only for ephemeral keys)
/// replaced by a ChaCha generator seeded by the endpoint.
pub(crate) struct SeededResolver {
    seed: [u8; 32],
    /// The static key pair the handshake is built with, if any: its public
    /// half need not be derived again.
    local: Option<Keypair>,
    /// Peer keys mapped to Edwards, shared by the handshake's key pairs.
    mapped: EdwardsCache,
}

impl SeededResolver {
    pub(crate) fn new(seed: [u8; 32]) -> Self {
        SeededResolver {
            seed,
            local: None,
            mapped: EdwardsCache::default(),
        }
    }

    /// The same, for a handshake built with the static key pair `local`.
    pub(crate) fn with_static(seed: [u8; 32], local: &Keypair) -> Self {
        SeededResolver {
            seed,
            local: Some(local.clone()),
            mapped: EdwardsCache::default(),
        }
    }
}

struct SeededRandom(ChaCha12Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRandom(ChaCha12Rng::from_seed(self.seed))))
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(Dh25519::new(
                self.local.clone(),
                self.mapped.clone(),
            ))),
            _ => DefaultResolver.resolve_dh(choice),
        }
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        // The same cipher either way (spec §5): only the implementation
        // differs, so this choice is local and needs no negotiation. (Which
        // cipher — ChaChaPoly or AESGCM — is in the protocol name.)
        #[cfg(feature = "ring")]
        if let Some(cipher) = snow::resolvers::RingResolver.resolve_cipher(choice) {
            return Some(cipher);
        }
        DefaultResolver.resolve_cipher(choice)
    }
}

#[cfg(all(test, feature = "ring"))]
mod tests {
    use super::*;

    #[test]
    fn ring_and_portable_chachapoly_are_the_same_cipher() {
        same_cipher(CipherChoice::ChaChaPoly);
    }

    #[test]
    fn ring_and_portable_aesgcm_are_the_same_cipher() {
        same_cipher(CipherChoice::AESGCM);
    }

    fn same_cipher(choice: CipherChoice) {
        let mut ring = snow::resolvers::RingResolver
            .resolve_cipher(&choice)
            .unwrap();
        let mut portable = DefaultResolver.resolve_cipher(&choice).unwrap();
        let key = [7u8; 32];
        ring.set(&key);
        portable.set(&key);
        let plain: Vec<u8> = (0..1024u32).map(|i| (i * 13) as u8).collect();
        let (mut a, mut b) = (vec![0u8; 1040], vec![0u8; 1040]);
        let n = ring.encrypt(42, b"header", &plain, &mut a);
        let m = portable.encrypt(42, b"header", &plain, &mut b);
        assert_eq!(a[..n], b[..m], "identical ciphertext and tag");
        let mut out = vec![0u8; 1024];
        assert_eq!(
            portable.decrypt(42, b"header", &a[..n], &mut out).unwrap(),
            1024
        );
        assert_eq!(out, plain);
        a[5] ^= 1;
        assert!(ring.decrypt(42, b"header", &a[..n], &mut out).is_err());
    }
}
