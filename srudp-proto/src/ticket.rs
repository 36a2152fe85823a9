//! Tickets (spec §4.9): a one-time secret shared out of band — inside the
//! ticket `srudp listen` prints — that turns knowing a peer's public key into
//! a capability. Each side of a ticket connection proves in its encrypted
//! handshake message that it holds the secret; a responder refuses an
//! initiator that cannot, and an initiator closes a connection whose
//! responder cannot.
//!
//! The proof travels in the transport parameters (spec §4.3), which Noise
//! encrypts to the peer's static key: only the peer the handshake
//! authenticates can read it, and a copy is no use elsewhere because it is
//! bound to the side that wrote it and to the initiator's connection id,
//! which the prologue binds to the handshake.

use std::fmt;

use blake2::digest::Mac;
use blake2::Blake2sMac256;
use zeroize::Zeroize;

use crate::random::Rng;
use crate::wire::ConnectionId;

/// Length of a ticket secret and of a proof, in bytes.
pub const TICKET_SECRET_LEN: usize = 32;
/// Length of a ticket proof in the transport parameters, in bytes.
pub(crate) const TICKET_PROOF_LEN: usize = 32;

/// Domain separation of the proof MAC.
const PROOF_LABEL: &[u8] = b"srudp/1 ticket proof";

/// The secret of a ticket: 32 random bytes. Whoever holds it may connect
/// (with [`ConnectOptions::ticket`](crate::ConnectOptions::ticket)) to an
/// endpoint that requires it ([`AcceptPolicy::Ticket`](crate::AcceptPolicy::Ticket)).
/// `Debug` does not show it, and it is wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct TicketSecret([u8; TICKET_SECRET_LEN]);

/// Which side of the handshake wrote a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProofRole {
    /// In message 1 (HandshakeInit).
    Initiator = 1,
    /// In message 2 (HandshakeResponse).
    Responder = 2,
}

impl TicketSecret {
    /// A fresh secret from `rng` (use [`Rng::from_os`] outside tests).
    pub fn generate(rng: &mut Rng) -> TicketSecret {
        let mut bytes = [0u8; TICKET_SECRET_LEN];
        rng.fill(&mut bytes);
        TicketSecret(bytes)
    }

    /// A fresh secret from the operating system's generator.
    pub fn generate_from_os() -> TicketSecret {
        TicketSecret::generate(&mut Rng::from_os())
    }

    /// A secret received in a ticket.
    pub fn from_bytes(bytes: [u8; TICKET_SECRET_LEN]) -> TicketSecret {
        TicketSecret(bytes)
    }

    /// The secret's bytes, to put in a ticket.
    pub fn to_bytes(&self) -> [u8; TICKET_SECRET_LEN] {
        self.0
    }

    /// The proof that the side `role` of the handshake opened by
    /// `initiator_cid` holds this secret: BLAKE2s-MAC-256 keyed with the
    /// secret over the label, the role and the cid (spec §4.9).
    pub(crate) fn proof(
        &self,
        role: ProofRole,
        initiator_cid: ConnectionId,
    ) -> [u8; TICKET_PROOF_LEN] {
        self.mac(role, initiator_cid).finalize().into_bytes().into()
    }

    /// Whether `proof` is this secret's proof for `role` and `initiator_cid`
    /// (compared in constant time).
    pub(crate) fn verify(
        &self,
        role: ProofRole,
        initiator_cid: ConnectionId,
        proof: Option<&[u8; TICKET_PROOF_LEN]>,
    ) -> bool {
        proof.is_some_and(|p| self.mac(role, initiator_cid).verify_slice(p).is_ok())
    }

    fn mac(&self, role: ProofRole, initiator_cid: ConnectionId) -> Blake2sMac256 {
        let mut mac =
            <Blake2sMac256 as Mac>::new_from_slice(&self.0).expect("BLAKE2s takes a 32-byte key");
        mac.update(PROOF_LABEL);
        mac.update(&[role as u8]);
        mac.update(&initiator_cid.0.to_be_bytes());
        mac
    }
}

impl fmt::Debug for TicketSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketSecret(..)")
    }
}

impl Drop for TicketSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_verifies_only_for_its_secret_role_and_handshake() {
        let secret = TicketSecret::generate(&mut Rng::from_seed(1));
        let other = TicketSecret::generate(&mut Rng::from_seed(2));
        let cid = ConnectionId(7);
        let proof = secret.proof(ProofRole::Initiator, cid);
        assert!(secret.verify(ProofRole::Initiator, cid, Some(&proof)));
        assert!(
            !other.verify(ProofRole::Initiator, cid, Some(&proof)),
            "another secret"
        );
        assert!(
            !secret.verify(ProofRole::Responder, cid, Some(&proof)),
            "a proof reflected back to its writer"
        );
        assert!(
            !secret.verify(ProofRole::Initiator, ConnectionId(8), Some(&proof)),
            "a proof copied into another handshake"
        );
        assert!(!secret.verify(ProofRole::Initiator, cid, None), "no proof");
        let mut flipped = proof;
        flipped[31] ^= 1;
        assert!(!secret.verify(ProofRole::Initiator, cid, Some(&flipped)));
    }

    #[test]
    fn the_proof_is_the_spec_mac() {
        // Spec §4.9: BLAKE2s-MAC-256(key = secret, "srudp/1 ticket proof" ‖ role ‖ cid).
        let secret = TicketSecret::from_bytes([0x11; 32]);
        let mut mac = <Blake2sMac256 as Mac>::new_from_slice(&[0x11; 32]).unwrap();
        mac.update(b"srudp/1 ticket proof\x02\x00\x00\x00\x00\x00\x00\x01\x02");
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(
            secret.proof(ProofRole::Responder, ConnectionId(0x0102)),
            expected
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        assert_eq!(
            format!("{:?}", TicketSecret::from_bytes([0xab; 32])),
            "TicketSecret(..)"
        );
    }
}
