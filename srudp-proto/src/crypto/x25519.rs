//! X25519 (RFC 7748) for snow's handshakes: the same results as snow's own
//! implementation, computed more cheaply.
//!
//! Curve work is most of what a handshake costs a responder (issue 8: about
//! three quarters of its CPU). Two things are cheaper here than in snow's
//! default, which wraps curve25519-dalek's Montgomery ladder:
//!
//! * **The static key's public half.** snow derives it (a fixed-base
//!   multiplication) every time a handshake is built with our static key;
//!   the endpoint's [`Keypair`] already holds it, so `set` with that secret
//!   takes the known public key instead.
//! * **Diffie-Hellman.** dalek's Montgomery ladder runs on its serial field
//!   arithmetic; its Edwards variable-base multiplication uses its AVX2
//!   backend where the CPU has one (detected at run time). X25519 only sees
//!   u-coordinates, and u([k]P) = u([k](−P)), so the peer's u maps to either
//!   Edwards point with that u, the clamped scalar multiplies it there, and
//!   the result maps back. A u-coordinate on the quadratic twist has no
//!   Edwards point: it takes the ladder, so every input, valid or hostile,
//!   gives exactly the RFC 7748 result (the tests check both paths against
//!   the ladder). Both multiplications are constant time in the secret;
//!   the only branch is on whether the peer's public value lies on the
//!   curve, which the peer chose and knows.
//! * **The peer's keys mapped once.** Mapping a u-coordinate to Edwards
//!   costs an inversion and a square root. A responder multiplies the
//!   initiator's ephemeral key twice (`es` and `ee`; with IK its static key
//!   twice too), so the key pairs of one handshake share the mapped points
//!   ([`EdwardsCache`]).
//! * **AWS-LC, with the `aws-lc` feature.** Its X25519 (s2n-bignum's
//!   assembly) is faster still, for key agreement and key generation
//!   alike. It refuses some inputs (a result of all zeros, from a point of
//!   small order); those take the path above, so the result is RFC 7748's
//!   whichever computes it, and peers with and without the feature agree.

use std::sync::{Arc, Mutex};

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use snow::types::{Dh, Random};
use zeroize::Zeroize;

use crate::keys::{Keypair, KEY_LEN};

/// `X25519(scalar, u)` of RFC 7748: `scalar` clamped, `u` read modulo p
/// with its top bit ignored. `mapped`: the peer keys this handshake already
/// mapped to Edwards.
fn x25519(scalar: [u8; KEY_LEN], u: [u8; KEY_LEN], mapped: &EdwardsCache) -> [u8; KEY_LEN] {
    #[cfg(feature = "aws-lc")]
    if let Some(shared) = aws_lc::x25519(scalar, u) {
        return shared;
    }
    x25519_mapped(scalar, u, mapped.map(u))
}

/// `X25519(scalar, u)`, given `edwards`: `u` mapped to Edwards (`None` on
/// the twist).
fn x25519_mapped(
    scalar: [u8; KEY_LEN],
    u: [u8; KEY_LEN],
    edwards: Option<EdwardsPoint>,
) -> [u8; KEY_LEN] {
    match edwards {
        Some(edwards) => edwards.mul_clamped(scalar).to_montgomery().to_bytes(),
        // On the twist: only the ladder computes it.
        None => MontgomeryPoint(u).mul_clamped(scalar).to_bytes(),
    }
}

/// How many mapped peer keys one handshake keeps: the initiator's
/// ephemeral and static keys.
const MAPPED_KEYS: usize = 2;

/// The peer keys one handshake mapped to Edwards (public values only),
/// shared by its key pairs. A handshake's key pairs are used by one thread
/// at a time; the mutex is never contended.
#[derive(Clone, Default)]
pub(crate) struct EdwardsCache(Arc<Mutex<MappedKeys>>);

type MappedKey = ([u8; KEY_LEN], Option<EdwardsPoint>);

#[derive(Default)]
struct MappedKeys {
    keys: [Option<MappedKey>; MAPPED_KEYS],
    next: usize,
}

impl EdwardsCache {
    /// `u` mapped to Edwards (`None`: on the twist), computed at most once
    /// per key while it stays among the last `MAPPED_KEYS`.
    fn map(&self, u: [u8; KEY_LEN]) -> Option<EdwardsPoint> {
        let mut mapped = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, point)) = mapped.keys.iter().flatten().find(|(k, _)| *k == u) {
            return *point;
        }
        let point = MontgomeryPoint(u).to_edwards(0);
        let slot = mapped.next;
        mapped.keys[slot] = Some((u, point));
        mapped.next = (slot + 1) % MAPPED_KEYS;
        point
    }
}

/// `X25519(scalar, 9)`: the public key of `scalar` (fixed-base: AWS-LC's
/// with the `aws-lc` feature, else dalek's precomputed tables).
fn public_key_of(scalar: [u8; KEY_LEN]) -> [u8; KEY_LEN] {
    #[cfg(feature = "aws-lc")]
    if let Some(public) = aws_lc::public_key_of(scalar) {
        return public;
    }
    MontgomeryPoint::mul_base_clamped(scalar).to_bytes()
}

/// X25519 from AWS-LC. `None` where it refuses (then the caller computes
/// the result itself).
#[cfg(feature = "aws-lc")]
mod aws_lc {
    use aws_lc_rs::agreement::{agree, PrivateKey, UnparsedPublicKey, X25519};

    use crate::keys::KEY_LEN;

    pub(super) fn x25519(scalar: [u8; KEY_LEN], u: [u8; KEY_LEN]) -> Option<[u8; KEY_LEN]> {
        let key = PrivateKey::from_private_key(&X25519, &scalar).ok()?;
        agree(&key, UnparsedPublicKey::new(&X25519, &u), (), |shared| {
            <[u8; KEY_LEN]>::try_from(shared).map_err(|_| ())
        })
        .ok()
    }

    pub(super) fn public_key_of(scalar: [u8; KEY_LEN]) -> Option<[u8; KEY_LEN]> {
        let key = PrivateKey::from_private_key(&X25519, &scalar).ok()?;
        let public = key.compute_public_key().ok()?;
        <[u8; KEY_LEN]>::try_from(public.as_ref()).ok()
    }
}

/// snow's `Dh` for "25519": a key pair and X25519 with it.
#[derive(Default)]
pub(crate) struct Dh25519 {
    secret: [u8; KEY_LEN],
    public: [u8; KEY_LEN],
    /// A key pair whose public half is already known (the endpoint's static
    /// key): `set` with its secret skips the derivation.
    known: Option<Keypair>,
    /// Peer keys already mapped by this handshake.
    mapped: EdwardsCache,
}

impl Dh25519 {
    pub(crate) fn new(known: Option<Keypair>, mapped: EdwardsCache) -> Self {
        Dh25519 {
            known,
            mapped,
            ..Dh25519::default()
        }
    }
}

impl Drop for Dh25519 {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

/// Constant-time equality of two secrets.
fn same_secret(a: &[u8; KEY_LEN], b: &[u8; KEY_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Dh for Dh25519 {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        KEY_LEN
    }

    fn priv_len(&self) -> usize {
        KEY_LEN
    }

    fn set(&mut self, privkey: &[u8]) {
        // snow passes exactly `priv_len` bytes; anything shorter is zero-padded
        // as snow's own implementation does.
        let mut secret = [0u8; KEY_LEN];
        let n = privkey.len().min(KEY_LEN);
        secret[..n].copy_from_slice(&privkey[..n]);
        self.public = match &self.known {
            Some(known) if same_secret(known.secret().as_bytes(), &secret) => known.public().0,
            _ => public_key_of(secret),
        };
        self.secret = secret;
        secret.zeroize();
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut secret = [0u8; KEY_LEN];
        rng.try_fill_bytes(&mut secret)?;
        self.public = public_key_of(secret);
        self.secret = secret;
        secret.zeroize();
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        &self.secret
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let u = pubkey
            .get(..KEY_LEN)
            .and_then(|u| <[u8; KEY_LEN]>::try_from(u).ok())
            .ok_or(snow::Error::Dh)?;
        let shared = x25519(self.secret, u, &self.mapped);
        out.get_mut(..KEY_LEN)
            .ok_or(snow::Error::Dh)?
            .copy_from_slice(&shared);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;
    use proptest::prelude::*;
    use snow::params::DHChoice;
    use snow::resolvers::{CryptoResolver, DefaultResolver};

    /// What a handshake computes (with AWS-LC when the feature is on).
    fn x25519(scalar: [u8; KEY_LEN], u: [u8; KEY_LEN]) -> [u8; KEY_LEN] {
        super::x25519(scalar, u, &EdwardsCache::default())
    }

    /// The built-in path alone (the Edwards route, the ladder on the twist),
    /// which the `aws-lc` feature leaves for the inputs AWS-LC refuses.
    fn built_in(scalar: [u8; KEY_LEN], u: [u8; KEY_LEN]) -> [u8; KEY_LEN] {
        x25519_mapped(scalar, u, MontgomeryPoint(u).to_edwards(0))
    }

    /// The reference: dalek's Montgomery ladder alone (what snow computes).
    fn ladder(scalar: [u8; KEY_LEN], u: [u8; KEY_LEN]) -> [u8; KEY_LEN] {
        MontgomeryPoint(u).mul_clamped(scalar).to_bytes()
    }

    fn on_curve(u: [u8; KEY_LEN]) -> bool {
        MontgomeryPoint(u).to_edwards(0).is_some()
    }

    fn le(hex: &str) -> [u8; KEY_LEN] {
        let mut out = [0u8; KEY_LEN];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    /// u-coordinates a hostile peer might send: zero, one, −1 (on the twist),
    /// p, p + 1 and 2^255 − 1 (not reduced), the points of small order on the
    /// curve and the twist, and values with the top bit set.
    fn edge_inputs() -> Vec<[u8; KEY_LEN]> {
        let mut p = [0xffu8; KEY_LEN];
        p[0] = 0xed;
        p[31] = 0x7f;
        let mut p_minus_1 = p;
        p_minus_1[0] = 0xec;
        let mut p_plus_1 = p;
        p_plus_1[0] = 0xee;
        let mut one = [0u8; KEY_LEN];
        one[0] = 1;
        let mut nine = [0u8; KEY_LEN];
        nine[0] = 9;
        let mut inputs = vec![
            [0u8; KEY_LEN],
            one,
            nine,
            p_minus_1,
            p,
            p_plus_1,
            [0xffu8; KEY_LEN],
            // Points of order 8 (the classic list of small-order inputs).
            le("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
            le("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        ];
        // The same with the top bit set: X25519 ignores it.
        let with_top_bit: Vec<_> = inputs
            .iter()
            .map(|u| {
                let mut u = *u;
                u[31] |= 0x80;
                u
            })
            .collect();
        inputs.extend(with_top_bit);
        inputs
    }

    #[test]
    fn rfc7748_test_vector() {
        // RFC 7748 §5.2, the first test vector.
        let scalar = le("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
        let u = le("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
        let expected = le("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
        assert_eq!(x25519(scalar, u), expected);
    }

    #[test]
    fn edge_inputs_give_the_ladders_result() {
        let scalars = [[0u8; KEY_LEN], [0xffu8; KEY_LEN], [0x42u8; KEY_LEN]];
        for u in edge_inputs() {
            for scalar in scalars {
                assert_eq!(x25519(scalar, u), ladder(scalar, u), "u = {u:02x?}");
                assert_eq!(built_in(scalar, u), ladder(scalar, u), "u = {u:02x?}");
            }
        }
    }

    #[test]
    fn edge_inputs_cover_both_paths() {
        let inputs = edge_inputs();
        assert!(inputs.iter().any(|u| on_curve(*u)));
        assert!(inputs.iter().any(|u| !on_curve(*u)));
    }

    #[test]
    fn a_small_order_point_gives_zero() {
        let u = le("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
        assert!(on_curve(u), "the Edwards path is the one under test");
        assert_eq!(x25519([0x42u8; KEY_LEN], u), [0u8; KEY_LEN]);
    }

    proptest! {
        #[test]
        fn any_input_gives_the_ladders_result(
            scalar in any::<[u8; KEY_LEN]>(),
            u in any::<[u8; KEY_LEN]>(),
        ) {
            prop_assert_eq!(x25519(scalar, u), ladder(scalar, u));
            prop_assert_eq!(built_in(scalar, u), ladder(scalar, u));
        }

        #[test]
        fn public_key_of_is_the_ladder_from_nine(scalar in any::<[u8; KEY_LEN]>()) {
            let mut nine = [0u8; KEY_LEN];
            nine[0] = 9;
            prop_assert_eq!(public_key_of(scalar), ladder(scalar, nine));
        }

        #[test]
        fn public_keys_give_the_ladders_result(
            scalar in any::<[u8; KEY_LEN]>(),
            peer in any::<[u8; KEY_LEN]>(),
        ) {
            // Genuine public keys (on the curve, in the prime-order subgroup):
            // the Edwards path every honest handshake takes.
            let u = public_key_of(peer);
            prop_assert!(on_curve(u));
            prop_assert_eq!(x25519(scalar, u), ladder(scalar, u));
            prop_assert_eq!(built_in(scalar, u), ladder(scalar, u));
        }

        #[test]
        fn same_as_snows_own_dh(secret in any::<[u8; KEY_LEN]>(), u in any::<[u8; KEY_LEN]>()) {
            let mut snows = DefaultResolver.resolve_dh(&DHChoice::Curve25519).unwrap();
            snows.set(&secret);
            let mut ours = Dh25519::default();
            ours.set(&secret);
            prop_assert_eq!(ours.pubkey(), snows.pubkey());
            let (mut a, mut b) = ([0u8; KEY_LEN], [0u8; KEY_LEN]);
            ours.dh(&u, &mut a).unwrap();
            snows.dh(&u, &mut b).unwrap();
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn about_half_of_all_u_coordinates_take_each_path() {
        // Random inputs reach both branches (so the property above tests both).
        let mut rng = crate::random::Rng::from_seed(7);
        let on = (0..200)
            .filter(|_| {
                let mut u = [0u8; KEY_LEN];
                rng.fill(&mut u);
                on_curve(u)
            })
            .count();
        assert!((50..150).contains(&on), "{on} of 200 on the curve");
    }

    #[test]
    fn the_known_key_pair_gives_its_public_key_other_secrets_their_own() {
        let known = Keypair::from_secret(SecretKey::from_bytes([5u8; KEY_LEN]));
        let mut dh = Dh25519::new(Some(known.clone()), EdwardsCache::default());
        dh.set(known.secret().as_bytes());
        assert_eq!(dh.pubkey(), known.public().0);
        let other = [6u8; KEY_LEN];
        dh.set(&other);
        assert_eq!(dh.pubkey(), public_key_of(other));
        assert_eq!(dh.privkey(), other);
    }

    #[test]
    fn key_pairs_sharing_mapped_keys_still_compute_each_result() {
        // One handshake's two key pairs, several peer keys (more than the
        // cache holds, on the curve and on the twist), each used repeatedly.
        let mapped = EdwardsCache::default();
        let (mut a, mut b) = (
            Dh25519::new(None, mapped.clone()),
            Dh25519::new(None, mapped),
        );
        a.set(&[3u8; KEY_LEN]);
        b.set(&[4u8; KEY_LEN]);
        let mut rng = crate::random::Rng::from_seed(11);
        let peers: Vec<[u8; KEY_LEN]> = (0..5)
            .map(|_| {
                let mut u = [0u8; KEY_LEN];
                rng.fill(&mut u);
                u
            })
            .chain(edge_inputs())
            .collect();
        for round in 0..3 {
            for u in &peers {
                for dh in [&a, &b] {
                    let mut out = [0u8; KEY_LEN];
                    dh.dh(u, &mut out).unwrap();
                    let secret: [u8; KEY_LEN] = dh.privkey().try_into().unwrap();
                    assert_eq!(out, ladder(secret, *u), "round {round}, u = {u:02x?}");
                }
            }
        }
    }

    #[cfg(feature = "aws-lc")]
    #[test]
    fn aws_lc_computes_genuine_keys_and_refuses_only_what_the_built_in_path_covers() {
        let scalar = [0x42u8; KEY_LEN];
        let genuine = public_key_of([7u8; KEY_LEN]);
        assert_eq!(
            aws_lc::x25519(scalar, genuine),
            Some(ladder(scalar, genuine)),
            "genuine keys take AWS-LC"
        );
        assert!(aws_lc::public_key_of(scalar).is_some());
        for u in edge_inputs() {
            if let Some(shared) = aws_lc::x25519(scalar, u) {
                assert_eq!(shared, ladder(scalar, u), "u = {u:02x?}");
            }
        }
    }

    #[test]
    fn a_short_public_key_is_an_error_not_a_panic() {
        let dh = Dh25519::default();
        let mut out = [0u8; KEY_LEN];
        assert!(dh.dh(&[9u8; 31], &mut out).is_err());
        assert!(dh.dh(&[9u8; 32], &mut [0u8; 31]).is_err());
    }
}
