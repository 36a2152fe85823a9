//! Packet protection after the handshake (spec §5): the connection's AEAD
//! with the explicit 64-bit packet number as nonce, sealed and opened **in
//! place**.
//!
//! The keys are Noise's `Split()` of the finished handshake, driven directly
//! rather than through snow's transport state, whose `write_message` and
//! `read_message` copy every packet's bytes from the input into the output
//! before sealing or opening them there. The bytes on the wire are exactly
//! those of snow's transport (tested below): the Noise nonce — four zero
//! bytes, then the counter little-endian for ChaChaPoly and big-endian for
//! AESGCM — and empty associated data.

use super::{Cipher, CryptoError};
use crate::wire::TAG_LEN;

/// A buffer without room for the sealed packet (as snow reported it).
const BUFFER_TOO_SMALL: CryptoError = CryptoError::Noise(snow::Error::Input);

/// One direction's key of an established connection (boxed: ring's key is
/// sized for AES, about 550 bytes, the others are smaller).
enum PacketKey {
    /// ring's implementation (assembly), with the `ring` feature.
    #[cfg(feature = "ring")]
    Ring {
        key: Box<ring::aead::LessSafeKey>,
        cipher: Cipher,
    },
    /// The portable RustCrypto implementations.
    ChaChaPoly(Box<chacha20poly1305::ChaCha20Poly1305>),
    AesGcm(Box<aes_gcm::Aes256Gcm>),
}

/// The Noise nonce of packet `packet_number` for `cipher`.
fn nonce(cipher: Cipher, packet_number: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    match cipher {
        Cipher::ChaChaPoly => n[4..].copy_from_slice(&packet_number.to_le_bytes()),
        Cipher::AesGcm => n[4..].copy_from_slice(&packet_number.to_be_bytes()),
    }
    n
}

impl PacketKey {
    /// The implementation this build uses: ring's with the `ring` feature.
    fn new(cipher: Cipher, key: &[u8; 32]) -> PacketKey {
        #[cfg(feature = "ring")]
        {
            PacketKey::ring(cipher, key)
        }
        #[cfg(not(feature = "ring"))]
        {
            PacketKey::portable(cipher, key)
        }
    }

    #[cfg(feature = "ring")]
    fn ring(cipher: Cipher, key: &[u8; 32]) -> PacketKey {
        let algorithm = match cipher {
            Cipher::ChaChaPoly => &ring::aead::CHACHA20_POLY1305,
            Cipher::AesGcm => &ring::aead::AES_256_GCM,
        };
        // Both algorithms take 32-byte keys, so this cannot fail.
        let unbound = ring::aead::UnboundKey::new(algorithm, key).expect("32-byte AEAD key");
        PacketKey::Ring {
            key: Box::new(ring::aead::LessSafeKey::new(unbound)),
            cipher,
        }
    }

    #[cfg_attr(feature = "ring", allow(dead_code))]
    fn portable(cipher: Cipher, key: &[u8; 32]) -> PacketKey {
        use aes_gcm::KeyInit as _;
        match cipher {
            Cipher::ChaChaPoly => PacketKey::ChaChaPoly(Box::new(
                chacha20poly1305::ChaCha20Poly1305::new(key.into()),
            )),
            Cipher::AesGcm => PacketKey::AesGcm(Box::new(aes_gcm::Aes256Gcm::new(key.into()))),
        }
    }

    /// Seals `buf[..plaintext_len]` in place and writes the tag after it.
    fn seal_in_place(
        &self,
        packet_number: u64,
        buf: &mut [u8],
        plaintext_len: usize,
    ) -> Result<usize, CryptoError> {
        let sealed_len = plaintext_len + TAG_LEN;
        let buf = buf.get_mut(..sealed_len).ok_or(BUFFER_TOO_SMALL)?;
        let (plaintext, tag_out) = buf.split_at_mut(plaintext_len);
        match self {
            #[cfg(feature = "ring")]
            PacketKey::Ring { key, cipher } => {
                let nonce = ring::aead::Nonce::assume_unique_for_key(nonce(*cipher, packet_number));
                let tag = key
                    .seal_in_place_separate_tag(nonce, ring::aead::Aad::empty(), plaintext)
                    .map_err(|_| BUFFER_TOO_SMALL)?;
                tag_out.copy_from_slice(tag.as_ref());
            }
            PacketKey::ChaChaPoly(key) => {
                use chacha20poly1305::AeadInPlace as _;
                let nonce = nonce(Cipher::ChaChaPoly, packet_number);
                let tag = key
                    .encrypt_in_place_detached(&nonce.into(), &[], plaintext)
                    .map_err(|_| BUFFER_TOO_SMALL)?;
                tag_out.copy_from_slice(&tag);
            }
            PacketKey::AesGcm(key) => {
                use aes_gcm::AeadInPlace as _;
                let nonce = nonce(Cipher::AesGcm, packet_number);
                let tag = key
                    .encrypt_in_place_detached(&nonce.into(), &[], plaintext)
                    .map_err(|_| BUFFER_TOO_SMALL)?;
                tag_out.copy_from_slice(&tag);
            }
        }
        Ok(sealed_len)
    }

    /// Opens `sealed` (ciphertext then tag) in place; the plaintext is its
    /// first returned-length bytes.
    fn open_in_place(&self, packet_number: u64, sealed: &mut [u8]) -> Result<usize, CryptoError> {
        let plaintext_len = sealed
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(CryptoError::PacketAuthentication)?;
        match self {
            #[cfg(feature = "ring")]
            PacketKey::Ring { key, cipher } => {
                let nonce = ring::aead::Nonce::assume_unique_for_key(nonce(*cipher, packet_number));
                key.open_in_place(nonce, ring::aead::Aad::empty(), sealed)
                    .map_err(|_| CryptoError::PacketAuthentication)?;
            }
            PacketKey::ChaChaPoly(key) => {
                use chacha20poly1305::AeadInPlace as _;
                let (ciphertext, tag) = sealed.split_at_mut(plaintext_len);
                let nonce = nonce(Cipher::ChaChaPoly, packet_number);
                key.decrypt_in_place_detached(&nonce.into(), &[], ciphertext, (&*tag).into())
                    .map_err(|_| CryptoError::PacketAuthentication)?;
            }
            PacketKey::AesGcm(key) => {
                use aes_gcm::AeadInPlace as _;
                let (ciphertext, tag) = sealed.split_at_mut(plaintext_len);
                let nonce = nonce(Cipher::AesGcm, packet_number);
                key.decrypt_in_place_detached(&nonce.into(), &[], ciphertext, (&*tag).into())
                    .map_err(|_| CryptoError::PacketAuthentication)?;
            }
        }
        Ok(plaintext_len)
    }
}

/// The keys of an established connection: one per direction.
pub(crate) struct Session {
    send: PacketKey,
    recv: PacketKey,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl Session {
    /// The session of one side, from the keys of its two directions.
    pub(crate) fn new(cipher: Cipher, send_key: &[u8; 32], recv_key: &[u8; 32]) -> Self {
        Session {
            send: PacketKey::new(cipher, send_key),
            recv: PacketKey::new(cipher, recv_key),
        }
    }

    /// The same keys in the portable implementation whatever the features
    /// (to compare implementations in tests).
    #[cfg(test)]
    pub(crate) fn new_portable(cipher: Cipher, send_key: &[u8; 32], recv_key: &[u8; 32]) -> Self {
        Session {
            send: PacketKey::portable(cipher, send_key),
            recv: PacketKey::portable(cipher, recv_key),
        }
    }

    /// Encrypts `buf[..plaintext_len]` as packet `packet_number` in place and
    /// appends the 16-byte tag (`buf` needs room for it). Returns the sealed
    /// length, `plaintext_len + TAG_LEN`.
    pub(crate) fn seal_in_place(
        &self,
        packet_number: u64,
        buf: &mut [u8],
        plaintext_len: usize,
    ) -> Result<usize, CryptoError> {
        self.send.seal_in_place(packet_number, buf, plaintext_len)
    }

    /// Encrypts `plaintext` as packet `packet_number` into `out` (which needs
    /// room for the plaintext and the 16-byte tag). Returns the bytes written.
    /// (Tests and fuzzing forge packets with it; the connection seals in place.)
    #[cfg(any(test, fuzzing, feature = "test-hooks"))]
    pub(crate) fn seal(
        &self,
        packet_number: u64,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        out.get_mut(..plaintext.len())
            .ok_or(BUFFER_TOO_SMALL)?
            .copy_from_slice(plaintext);
        self.seal_in_place(packet_number, out, plaintext.len())
    }

    /// Decrypts and authenticates packet `packet_number` in place: `sealed`
    /// is the ciphertext and tag; on success its first returned-length bytes
    /// are the plaintext. On failure `sealed` holds nothing the caller may use.
    pub(crate) fn open_in_place(
        &self,
        packet_number: u64,
        sealed: &mut [u8],
    ) -> Result<usize, CryptoError> {
        self.recv.open_in_place(packet_number, sealed)
    }

    /// Decrypts and authenticates packet `packet_number` into `out` (one copy
    /// of the ciphertext, then opened in place there). On failure nothing is
    /// written that the caller may use. (Tests and fuzzing; connections
    /// open in place.)
    #[cfg(any(test, fuzzing, feature = "test-hooks"))]
    pub(crate) fn open(
        &self,
        packet_number: u64,
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        let buf = out
            .get_mut(..ciphertext.len())
            .ok_or(CryptoError::PacketAuthentication)?;
        buf.copy_from_slice(ciphertext);
        self.open_in_place(packet_number, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Handshake, HandshakePattern};
    use crate::keys::Keypair;
    use crate::random::Rng;
    use crate::wire::ConnectionId;
    use snow::StatelessTransportState;

    /// Both sides of one finished handshake: (initiator's session in this
    /// build's implementation, in the portable one, snow's transport), then
    /// the same for the responder.
    #[allow(clippy::type_complexity)]
    fn handshake(
        cipher: Cipher,
    ) -> (
        (Session, Session, StatelessTransportState),
        (Session, Session, StatelessTransportState),
    ) {
        let mut rng = Rng::from_seed(11);
        let server = Keypair::generate(&mut rng);
        let client = Keypair::generate(&mut rng);
        let cid = ConnectionId(7);
        let pattern = HandshakePattern::NK;
        let mut i = Handshake::initiator(
            pattern,
            cipher,
            &client,
            &server.public(),
            cid,
            rng.seed32(),
        )
        .unwrap();
        let mut r = Handshake::responder(pattern, cipher, &server, cid, rng.seed32()).unwrap();
        let (mut m, mut p) = ([0u8; 512], [0u8; 512]);
        let n = i.write(b"", &mut m).unwrap();
        r.read(&m[..n], &mut p).unwrap();
        let n = r.write(b"", &mut m).unwrap();
        i.read(&m[..n], &mut p).unwrap();
        (i.into_sessions_and_snow(), r.into_sessions_and_snow())
    }

    fn plaintext(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + 7) as u8).collect()
    }

    /// Sealed by snow's stateless transport, which the wire format was
    /// defined with.
    fn snow_seal(t: &StatelessTransportState, pn: u64, plain: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; plain.len() + TAG_LEN];
        let n = t.write_message(pn, plain, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn seal_in_place(s: &Session, pn: u64, plain: &[u8]) -> Vec<u8> {
        let mut buf = plain.to_vec();
        buf.resize(plain.len() + TAG_LEN + 5, 0xee);
        let n = s.seal_in_place(pn, &mut buf, plain.len()).unwrap();
        buf.truncate(n);
        buf
    }

    fn same_bytes_as_snow_both_ways(cipher: Cipher) {
        let ((i_fast, i_port, i_snow), (r_fast, r_port, r_snow)) = handshake(cipher);
        for (pn, len) in [(0u64, 0usize), (1, 1), (2, 1166), (0x0102_0304_0506, 1024)] {
            let plain = plaintext(len);
            // Initiator → responder, then responder → initiator.
            for (fast, port, snow, peer_fast, peer_port, peer_snow) in [
                (&i_fast, &i_port, &i_snow, &r_fast, &r_port, &r_snow),
                (&r_fast, &r_port, &r_snow, &i_fast, &i_port, &i_snow),
            ] {
                let by_snow = snow_seal(snow, pn, &plain);
                assert_eq!(seal_in_place(fast, pn, &plain), by_snow, "{cipher} pn {pn}");
                assert_eq!(seal_in_place(port, pn, &plain), by_snow, "{cipher} pn {pn}");
                let mut out = vec![0u8; len + TAG_LEN];
                assert_eq!(fast.seal(pn, &plain, &mut out).unwrap(), len + TAG_LEN);
                assert_eq!(out, by_snow);
                // Each opens what the others sealed.
                for opener in [peer_fast, peer_port] {
                    let mut buf = by_snow.clone();
                    assert_eq!(opener.open_in_place(pn, &mut buf).unwrap(), len);
                    assert_eq!(buf[..len], plain[..]);
                    let mut out = vec![0u8; by_snow.len()];
                    assert_eq!(opener.open(pn, &by_snow, &mut out).unwrap(), len);
                    assert_eq!(out[..len], plain[..]);
                }
                let mut out = vec![0u8; len];
                let sealed = seal_in_place(port, pn, &plain);
                assert_eq!(peer_snow.read_message(pn, &sealed, &mut out).unwrap(), len);
                assert_eq!(out, plain);
            }
        }
    }

    #[test]
    fn chachapoly_packets_are_the_bytes_snow_seals() {
        same_bytes_as_snow_both_ways(Cipher::ChaChaPoly);
    }

    #[test]
    fn aesgcm_packets_are_the_bytes_snow_seals() {
        same_bytes_as_snow_both_ways(Cipher::AesGcm);
    }

    #[test]
    fn tampered_short_or_misnumbered_packets_do_not_open() {
        for cipher in Cipher::ALL {
            let ((i_fast, i_port, _), (r_fast, r_port, _)) = handshake(cipher);
            for (sender, receiver) in [(&i_fast, &r_fast), (&i_port, &r_port)] {
                let sealed = seal_in_place(sender, 9, &plaintext(100));
                let mut flipped = sealed.clone();
                flipped[3] ^= 0x40;
                assert!(receiver.open_in_place(9, &mut flipped).is_err());
                let mut tag_flipped = sealed.clone();
                *tag_flipped.last_mut().unwrap() ^= 1;
                assert!(receiver.open_in_place(9, &mut tag_flipped).is_err());
                assert!(receiver.open_in_place(10, &mut sealed.clone()).is_err());
                assert!(receiver
                    .open_in_place(9, &mut sealed[..TAG_LEN - 1].to_vec())
                    .is_err());
                // Our own direction's key does not open our packets.
                assert!(sender.open_in_place(9, &mut sealed.clone()).is_err());
            }
        }
    }

    #[test]
    fn a_too_small_buffer_is_an_error_not_a_panic() {
        let ((i, _, _), _) = handshake(Cipher::ChaChaPoly);
        let mut buf = [0u8; 20];
        assert!(matches!(
            i.seal_in_place(0, &mut buf, 5),
            Err(CryptoError::Noise(snow::Error::Input))
        ));
        assert!(i.seal(0, &[1u8; 5], &mut [0u8; 20]).is_err());
    }
}
