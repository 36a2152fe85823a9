//! Which AEAD protects a connection's handshake and packets (spec §4.1, §5).

use std::fmt;

use super::HandshakePattern;

/// The AEAD cipher of a connection, chosen by the initiator and carried,
/// with the Noise pattern, in the HandshakeInit's `pattern` byte; both sides
/// must agree (it is part of the Noise protocol name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Cipher {
    /// ChaCha20-Poly1305: fast everywhere in software, the portable default.
    #[default]
    ChaChaPoly,
    /// AES-256-GCM: faster where the CPU has AES and carry-less multiply
    /// instructions (x86-64 AES-NI with PCLMULQDQ, ARMv8 crypto extensions).
    AesGcm,
}

impl Cipher {
    /// Both ciphers, in wire-code order.
    pub const ALL: [Cipher; 2] = [Cipher::ChaChaPoly, Cipher::AesGcm];

    /// The cipher's part of the Noise protocol name.
    pub fn noise_name(self) -> &'static str {
        match self {
            Cipher::ChaChaPoly => "ChaChaPoly",
            Cipher::AesGcm => "AESGCM",
        }
    }

    /// AES-GCM if this CPU has instructions for it, else ChaCha20-Poly1305:
    /// the faster choice on this machine. (The peer must accept it.)
    pub fn fastest_here() -> Cipher {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
        {
            return Cipher::AesGcm;
        }
        #[cfg(target_arch = "aarch64")]
        if std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
        {
            return Cipher::AesGcm;
        }
        Cipher::ChaChaPoly
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noise_name())
    }
}

/// A Noise pattern and a cipher: what the HandshakeInit's `pattern` byte
/// names (spec §4.1, §9.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Suite {
    /// The handshake pattern.
    pub pattern: HandshakePattern,
    /// The AEAD cipher.
    pub cipher: Cipher,
}

impl Suite {
    /// The wire code: the pattern's code (0 NK, 1 IK) plus 2 for AES-GCM.
    /// ChaCha20-Poly1305 suites keep the codes of the first version.
    pub fn to_wire(self) -> u8 {
        let cipher = match self.cipher {
            Cipher::ChaChaPoly => 0,
            Cipher::AesGcm => 2,
        };
        self.pattern.to_wire() + cipher
    }

    /// The suite of a wire code, if it is one we know.
    pub fn from_wire(code: u8) -> Option<Suite> {
        let cipher = match code >> 1 {
            0 => Cipher::ChaChaPoly,
            1 => Cipher::AesGcm,
            _ => return None,
        };
        Some(Suite {
            pattern: HandshakePattern::from_wire(code & 1)?,
            cipher,
        })
    }

    /// The full Noise protocol name, e.g. `Noise_NK_25519_AESGCM_BLAKE2s`.
    pub fn noise_name(self) -> &'static str {
        match (self.pattern, self.cipher) {
            (HandshakePattern::NK, Cipher::ChaChaPoly) => "Noise_NK_25519_ChaChaPoly_BLAKE2s",
            (HandshakePattern::IK, Cipher::ChaChaPoly) => "Noise_IK_25519_ChaChaPoly_BLAKE2s",
            (HandshakePattern::NK, Cipher::AesGcm) => "Noise_NK_25519_AESGCM_BLAKE2s",
            (HandshakePattern::IK, Cipher::AesGcm) => "Noise_IK_25519_AESGCM_BLAKE2s",
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noise_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes_name_the_four_suites() {
        let names: Vec<(u8, &str)> = (0..=255u8)
            .filter_map(|c| Suite::from_wire(c).map(|s| (c, s.noise_name())))
            .collect();
        assert_eq!(
            names,
            [
                (0, "Noise_NK_25519_ChaChaPoly_BLAKE2s"),
                (1, "Noise_IK_25519_ChaChaPoly_BLAKE2s"),
                (2, "Noise_NK_25519_AESGCM_BLAKE2s"),
                (3, "Noise_IK_25519_AESGCM_BLAKE2s"),
            ]
        );
        for (code, _) in names {
            assert_eq!(Suite::from_wire(code).unwrap().to_wire(), code);
        }
    }
}
