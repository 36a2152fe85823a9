//! Static X25519 identities and their printable form.
//!
//! A key prints as 52 characters of lowercase RFC 4648 base32 without padding
//! (`a`–`z`, `2`–`7`): no spaces, no shell-special characters, no leading `-`,
//! so it survives copy-paste into a terminal. Parsing accepts either case
//! (a key read aloud or retyped in capitals is the same key) but only the
//! canonical trailing bits, so each key has exactly one lowercase text
//! (spec §3.1).

use std::fmt;
use std::str::FromStr;

use snow::params::DHChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};

use crate::random::Rng;

/// Length of an X25519 key in bytes.
pub const KEY_LEN: usize = 32;

/// The public half of a static identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; KEY_LEN]);

/// A static secret key. Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_LEN]);

/// A static identity: secret key and its public key.
#[derive(Clone)]
pub struct Keypair {
    secret: SecretKey,
    public: PublicKey,
}

/// Why a key could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    /// The text is not 52 characters long.
    #[error("a key is 52 base32 characters, got {0}")]
    BadLength(usize),
    /// A character outside `a`–`z`, `A`–`Z`, `2`–`7`.
    #[error("invalid character {0:?} in key (expected a-z, 2-7; either case)")]
    BadCharacter(char),
    /// The trailing bits of the last character are not zero.
    #[error("key has non-canonical trailing bits")]
    NonCanonical,
}

impl SecretKey {
    /// Wraps raw secret key bytes (any 32 bytes are a valid X25519 secret).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SecretKey(bytes)
    }

    /// The raw bytes, for storing the key.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0
    }

    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        // Best effort: the optimiser may keep copies, but we don't leave one here.
        self.0 = [0; KEY_LEN];
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl Keypair {
    /// Generates a new identity from `rng`.
    pub fn generate(rng: &mut Rng) -> Keypair {
        let mut secret = [0u8; KEY_LEN];
        rng.fill(&mut secret);
        Keypair::from_secret(SecretKey(secret))
    }

    /// Generates a new identity from the operating system's randomness.
    pub fn generate_from_os() -> Keypair {
        Keypair::generate(&mut Rng::from_os())
    }

    /// The identity whose secret key is `secret`.
    pub fn from_secret(secret: SecretKey) -> Keypair {
        let mut dh = DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            .expect("snow's default resolver always has Curve25519");
        dh.set(secret.as_bytes());
        let mut public = [0u8; KEY_LEN];
        public.copy_from_slice(dh.pubkey());
        Keypair {
            secret,
            public: PublicKey(public),
        }
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The secret key.
    pub fn secret(&self) -> &SecretKey {
        &self.secret
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Printed length of a key: ceil(256 / 5).
pub const KEY_TEXT_LEN: usize = 52;

pub(crate) fn encode(bytes: &[u8; KEY_LEN]) -> String {
    let mut out = String::with_capacity(KEY_TEXT_LEN);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

pub(crate) fn decode(text: &str) -> Result<[u8; KEY_LEN], KeyParseError> {
    let len = text.chars().count();
    if len != KEY_TEXT_LEN {
        return Err(KeyParseError::BadLength(len));
    }
    let mut out = [0u8; KEY_LEN];
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut i = 0;
    for c in text.chars() {
        let v = match c {
            'a'..='z' => c as u32 - 'a' as u32,
            'A'..='Z' => c as u32 - 'A' as u32,
            '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return Err(KeyParseError::BadCharacter(c)),
        };
        acc = ((acc << 5) | v) & 0xffff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            if i < KEY_LEN {
                out[i] = (acc >> bits) as u8;
            }
            i += 1;
        }
    }
    // 52 * 5 = 260 bits: the last 4 bits must be zero.
    if acc & ((1 << bits) - 1) != 0 {
        return Err(KeyParseError::NonCanonical);
    }
    Ok(out)
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode(&self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = encode(&self.0);
        write!(f, "PublicKey({}…)", &s[..8])
    }
}

impl FromStr for PublicKey {
    type Err = KeyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode(s).map(PublicKey)
    }
}

impl fmt::Display for SecretKey {
    /// The printable form, for key files. Handle with care.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode(&self.0))
    }
}

impl FromStr for SecretKey {
    type Err = KeyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode(s).map(SecretKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_key_parses_back() {
        let mut rng = Rng::from_seed(7);
        for _ in 0..50 {
            let kp = Keypair::generate(&mut rng);
            let text = kp.public().to_string();
            assert_eq!(text.len(), KEY_TEXT_LEN);
            assert!(text.bytes().all(|b| ALPHABET.contains(&b)));
            assert_eq!(text.parse::<PublicKey>().unwrap(), kp.public());
            let secret_text = kp.secret().to_string();
            let secret: SecretKey = secret_text.parse().unwrap();
            assert_eq!(Keypair::from_secret(secret).public(), kp.public());
        }
    }

    #[test]
    fn all_zero_key_prints_as_all_a() {
        assert_eq!(PublicKey([0; 32]).to_string(), "a".repeat(52));
        assert_eq!(
            PublicKey([0xff; 32]).to_string(),
            format!("{}q", "7".repeat(51))
        );
    }

    #[test]
    fn bad_key_text_is_an_error() {
        assert_eq!("abc".parse::<PublicKey>(), Err(KeyParseError::BadLength(3)));
        for bad in ['1', '8', '0', '=', ' ', '-'] {
            let text = format!("{}{bad}", "a".repeat(51));
            assert_eq!(
                text.parse::<PublicKey>(),
                Err(KeyParseError::BadCharacter(bad))
            );
        }
        // Padding is not part of the format.
        let padded = format!("{}====", "a".repeat(52));
        assert_eq!(
            padded.parse::<PublicKey>(),
            Err(KeyParseError::BadLength(56))
        );
        let non_canonical = format!("{}b", "a".repeat(51));
        assert_eq!(
            non_canonical.parse::<PublicKey>(),
            Err(KeyParseError::NonCanonical)
        );
        assert!("é".repeat(52).parse::<PublicKey>().is_err());
    }

    #[test]
    fn a_key_in_capitals_or_mixed_case_is_the_same_key_and_prints_lowercase() {
        let mut rng = Rng::from_seed(8);
        for _ in 0..20 {
            let key = Keypair::generate(&mut rng).public();
            let text = key.to_string();
            assert_eq!(text.to_uppercase().parse::<PublicKey>(), Ok(key));
            let mixed: String = text
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            assert_eq!(mixed.parse::<PublicKey>(), Ok(key));
            assert_eq!(mixed.parse::<PublicKey>().unwrap().to_string(), text);
        }
        // Case does not relax the canonical trailing bits.
        let non_canonical = format!("{}B", "A".repeat(51));
        assert_eq!(
            non_canonical.parse::<PublicKey>(),
            Err(KeyParseError::NonCanonical)
        );
    }

    #[test]
    fn the_spec_example_key_text() {
        // Spec §3.1: RFC 7748 §6.1's Alice public key in its text form.
        let public = hex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let text = "quqpacmjgctvi5elpxolipxxlig36oqney4bv5hlusuy5ku3jzva";
        assert_eq!(PublicKey(public).to_string(), text);
        assert_eq!(text.parse::<PublicKey>(), Ok(PublicKey(public)));
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_text_never_panics_and_what_parses_prints_back(text in ".{0,80}") {
            if let Ok(key) = text.parse::<PublicKey>() {
                proptest::prop_assert_eq!(key.to_string(), text.to_lowercase());
            }
        }
    }

    #[test]
    fn public_key_matches_rfc7748_test_vector() {
        // RFC 7748 §6.1, Alice's key pair.
        let secret = hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let public = hex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let kp = Keypair::from_secret(SecretKey::from_bytes(secret));
        assert_eq!(kp.public(), PublicKey(public));
    }

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
