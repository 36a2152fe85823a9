//! Which Noise handshake pattern a connection uses (spec §4.1).

use std::fmt;

/// The Noise handshake pattern of a connection.
///
/// Both patterns use X25519 and BLAKE2s, with ChaCha20-Poly1305 or AES-GCM
/// ([`Cipher`](super::Cipher)), and run through the same code; only what
/// they authenticate differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HandshakePattern {
    /// `Noise_NK`: the initiator knows the responder's static key and
    /// authenticates it; the initiator stays anonymous.
    #[default]
    NK,
    /// `Noise_IK`: as NK, and the initiator also sends its own static key
    /// (encrypted), so both sides are authenticated.
    IK,
}

impl HandshakePattern {
    /// The code of this pattern on the wire.
    pub fn to_wire(self) -> u8 {
        match self {
            HandshakePattern::NK => 0,
            HandshakePattern::IK => 1,
        }
    }

    /// The pattern for a wire code, if it is one we know.
    pub fn from_wire(code: u8) -> Option<Self> {
        match code {
            0 => Some(HandshakePattern::NK),
            1 => Some(HandshakePattern::IK),
            _ => None,
        }
    }

    /// The full Noise protocol name with ChaCha20-Poly1305 (see
    /// [`Suite::noise_name`](super::Suite::noise_name) for the others).
    pub fn noise_name(self) -> &'static str {
        super::Suite {
            pattern: self,
            cipher: super::Cipher::ChaChaPoly,
        }
        .noise_name()
    }
}

impl fmt::Display for HandshakePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noise_name())
    }
}
