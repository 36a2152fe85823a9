//! Groups (spec §11.3): peers that share a secret are told when one another
//! registers or leaves. Only holders of the secret can join a group or
//! learn its members, and the server, which brokers the notices, never
//! learns the secret.
//!
//! From the 32-byte [`GroupSecret`] the members derive, with keyed BLAKE2s
//! (labels `srudp/1 group id`, `srudp/1 group proof key`):
//!
//! * the [`GroupId`], the group's name on the wire: the server matches
//!   members by it. Without the secret nobody can compute it, so a
//!   non-member can neither join nor ask about the group; the server, which
//!   sees it, cannot invert it.
//! * a proof key, which never leaves the members. Each member's
//!   [`MemberProof`] is a MAC under it over the group id and the member's
//!   static key; the server passes it on with every notice about that
//!   member, and members accept a notice only if its proof is right. The
//!   server cannot forge one for a key of its choosing, and a proof bound
//!   to one key is worthless for any other.

use std::fmt;
use std::str::FromStr;

use blake2::digest::consts::U32;
use blake2::digest::{KeyInit, Mac};
use blake2::Blake2sMac;

use crate::keys::{decode, encode, KeyParseError, PublicKey, KEY_LEN};
use crate::Rng;

/// Bytes of a group secret, a group id and a member proof.
pub const GROUP_SECRET_LEN: usize = 32;

const LABEL_ID: &[u8] = b"srudp/1 group id";
const LABEL_PROOF_KEY: &[u8] = b"srudp/1 group proof key";
const LABEL_MEMBER: &[u8] = b"srudp/1 group member";

type Mac32 = Blake2sMac<U32>;

/// `MAC(key, parts…)`: keyed BLAKE2s-256 (RFC 7693).
fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <Mac32 as KeyInit>::new_from_slice(key).expect("a 32-byte key");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// A group's shared secret: 32 random bytes the members got out of band.
/// Printed and parsed like a key (52 base32 characters, spec §3.1).
#[derive(Clone, PartialEq, Eq)]
pub struct GroupSecret([u8; GROUP_SECRET_LEN]);

/// Why a group secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupSecretError {
    /// The text is not a 52-character base32 secret.
    #[error("a group secret is 52 base32 characters, as `GroupSecret` prints it: {0}")]
    Malformed(KeyParseError),
}

impl GroupSecret {
    /// A secret from its 32 bytes.
    pub fn from_bytes(bytes: [u8; GROUP_SECRET_LEN]) -> GroupSecret {
        GroupSecret(bytes)
    }

    /// A new random secret.
    pub fn generate(rng: &mut Rng) -> GroupSecret {
        let mut bytes = [0u8; GROUP_SECRET_LEN];
        rng.fill(&mut bytes);
        GroupSecret(bytes)
    }

    /// The group's name on the wire.
    pub fn id(&self) -> GroupId {
        GroupId(mac(&self.0, &[LABEL_ID]))
    }

    fn proof_key(&self) -> [u8; 32] {
        mac(&self.0, &[LABEL_PROOF_KEY])
    }

    /// The proof that `member` holds this secret.
    pub fn prove(&self, member: &PublicKey) -> MemberProof {
        MemberProof(mac(
            &self.proof_key(),
            &[LABEL_MEMBER, &self.id().0, &member.0],
        ))
    }

    /// Whether `proof` shows that `member` holds this secret (constant time).
    pub fn verify(&self, member: &PublicKey, proof: &MemberProof) -> bool {
        let expected = self.prove(member);
        let diff = expected
            .0
            .iter()
            .zip(proof.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0
    }

    /// The membership a Register carries for `member`.
    pub fn membership(&self, member: &PublicKey) -> GroupMembership {
        GroupMembership {
            group: self.id(),
            proof: self.prove(member),
        }
    }
}

impl fmt::Debug for GroupSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret by accident; its id is harmless.
        write!(f, "GroupSecret(id {:?})", self.id())
    }
}

impl fmt::Display for GroupSecret {
    /// The printable form, to hand to the other members. Handle with care.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode(&self.0))
    }
}

impl FromStr for GroupSecret {
    type Err = GroupSecretError;
    fn from_str(s: &str) -> Result<GroupSecret, GroupSecretError> {
        decode(s.trim())
            .map(GroupSecret)
            .map_err(GroupSecretError::Malformed)
    }
}

/// A group's name on the wire: a MAC of its secret (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub [u8; KEY_LEN]);

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupId({}…)", &self.to_string()[..8])
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode(&self.0))
    }
}

/// A member's proof that it holds the group's secret, bound to its key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemberProof(pub [u8; 32]);

impl fmt::Debug for MemberProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemberProof(…)")
    }
}

/// One group a Register joins: its id and the registering key's proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupMembership {
    /// The group.
    pub group: GroupId,
    /// The registering key's proof of the secret.
    pub proof: MemberProof,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_derive_the_same_id_and_check_each_others_proofs() {
        let mut rng = Rng::from_seed(3);
        let secret = GroupSecret::generate(&mut rng);
        let copy: GroupSecret = secret.to_string().parse().unwrap();
        assert_eq!(copy, secret);
        assert_eq!(copy.id(), secret.id());
        let (alice, mallory) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let proof = secret.prove(&alice);
        assert!(copy.verify(&alice, &proof));
        // A proof is bound to its key, and to its secret.
        assert!(!secret.verify(&mallory, &proof));
        let other = GroupSecret::generate(&mut rng);
        assert_ne!(other.id(), secret.id());
        assert!(!other.verify(&alice, &proof));
        assert!(!secret.verify(&alice, &other.prove(&alice)));
        // Neither the id nor a proof reveals the secret or the proof key.
        let s = secret.0;
        assert_ne!(secret.id().0, s);
        assert_ne!(proof.0, s);
        assert_ne!(secret.id().0, secret.proof_key());
        assert!(!format!("{secret:?}").contains(&secret.to_string()));
    }

    #[test]
    fn a_malformed_secret_is_a_typed_error() {
        assert!(matches!(
            "too short".parse::<GroupSecret>(),
            Err(GroupSecretError::Malformed(KeyParseError::BadLength(9)))
        ));
        assert!(matches!(
            "1".repeat(52).parse::<GroupSecret>(),
            Err(GroupSecretError::Malformed(KeyParseError::BadCharacter(
                '1'
            )))
        ));
    }

    #[test]
    fn literal_derivation() {
        // The vectors of spec §11.8, so an independent implementation can
        // check its own derivation.
        let secret = GroupSecret::from_bytes([0x42; 32]);
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(&secret.id().0),
            "22e0dec9c0a00e695d81f8323559c357e7b2fb54a0342d13f7216183bbb680cd"
        );
        assert_eq!(
            hex(&secret.prove(&PublicKey([0x11; 32])).0),
            "1515b52018eaeb7bbb3f5bae2e864f10f47b16b951d90f14db5211051aae3564"
        );
    }
}
