//! Noise handshakes, packet protection, replay protection and handshake
//! cookies (spec §4–§5).
mod cipher;
pub(crate) mod cookie;
mod handshake;
mod pattern;
pub(crate) mod replay_window;
mod resolver;
mod session;
mod x25519;

pub use cipher::{Cipher, Suite};
pub(crate) use handshake::Handshake;
pub use pattern::HandshakePattern;
pub(crate) use replay_window::ReplayWindow;
pub(crate) use session::Session;

/// A cryptographic failure.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// snow refused an operation (bad parameters or buffer sizes).
    #[error("noise: {0}")]
    Noise(snow::Error),
    /// A handshake message did not authenticate (wrong key, tampering, garbage).
    #[error("handshake message failed to authenticate")]
    HandshakeAuthentication,
    /// A packet did not authenticate.
    #[error("packet failed to authenticate")]
    PacketAuthentication,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keypair;
    use crate::random::Rng;
    use crate::wire::ConnectionId;

    /// A fresh ChaCha20-Poly1305 initiator and responder (keys and
    /// ephemerals from `seed`), and the responder's public key.
    fn start_pair(
        pattern: HandshakePattern,
        seed: u64,
        cid: ConnectionId,
    ) -> (Handshake, Handshake, crate::keys::PublicKey) {
        let mut rng = Rng::from_seed(seed);
        let server = Keypair::generate(&mut rng);
        let client = Keypair::generate(&mut rng);
        let i = Handshake::initiator(
            pattern,
            Cipher::ChaChaPoly,
            &client,
            &server.public(),
            cid,
            rng.seed32(),
        )
        .unwrap();
        let r =
            Handshake::responder(pattern, Cipher::ChaChaPoly, &server, cid, rng.seed32()).unwrap();
        (i, r, server.public())
    }

    fn run_handshake(
        pattern: HandshakePattern,
    ) -> (Session, Session, Option<crate::keys::PublicKey>) {
        let (mut i, mut r, server) = start_pair(pattern, 1, ConnectionId(42));
        let mut m1 = [0u8; 512];
        let n1 = i.write(b"hello", &mut m1).unwrap();
        let mut p = [0u8; 512];
        let np = r.read(&m1[..n1], &mut p).unwrap();
        assert_eq!(&p[..np], b"hello");
        let seen = r.remote_static();
        let mut m2 = [0u8; 512];
        let n2 = r.write(b"world", &mut m2).unwrap();
        let np = i.read(&m2[..n2], &mut p).unwrap();
        assert_eq!(&p[..np], b"world");
        assert_eq!(i.remote_static(), Some(server));
        (i.into_session().unwrap(), r.into_session().unwrap(), seen)
    }

    #[test]
    fn nk_handshake_authenticates_only_the_responder() {
        let (i, r, seen) = run_handshake(HandshakePattern::NK);
        assert_eq!(seen, None);
        let mut c = [0u8; 64];
        let n = i.seal(7, b"data", &mut c).unwrap();
        let mut out = [0u8; 64];
        assert_eq!(r.open(7, &c[..n], &mut out).unwrap(), 4);
        assert!(
            r.open(8, &c[..n], &mut out).is_err(),
            "wrong packet number must fail"
        );
    }

    #[test]
    fn ik_handshake_reveals_the_initiator() {
        let (_, _, seen) = run_handshake(HandshakePattern::IK);
        assert!(seen.is_some());
    }

    #[test]
    fn handshake_to_the_wrong_key_fails_at_the_responder() {
        let mut rng = Rng::from_seed(2);
        let server = Keypair::generate(&mut rng);
        let other = Keypair::generate(&mut rng);
        let cid = ConnectionId(1);
        let mut i = Handshake::initiator(
            HandshakePattern::NK,
            Cipher::ChaChaPoly,
            &other,
            &other.public(),
            cid,
            rng.seed32(),
        )
        .unwrap();
        let mut r = Handshake::responder(
            HandshakePattern::NK,
            Cipher::ChaChaPoly,
            &server,
            cid,
            rng.seed32(),
        )
        .unwrap();
        let mut m1 = [0u8; 512];
        let n1 = i.write(b"", &mut m1).unwrap();
        let mut p = [0u8; 512];
        assert!(matches!(
            r.read(&m1[..n1], &mut p),
            Err(CryptoError::HandshakeAuthentication)
        ));
    }

    #[test]
    fn changed_prologue_fails_the_handshake() {
        let mut rng = Rng::from_seed(3);
        let server = Keypair::generate(&mut rng);
        let mut i = Handshake::initiator(
            HandshakePattern::NK,
            Cipher::ChaChaPoly,
            &server,
            &server.public(),
            ConnectionId(1),
            rng.seed32(),
        )
        .unwrap();
        let mut r = Handshake::responder(
            HandshakePattern::NK,
            Cipher::ChaChaPoly,
            &server,
            ConnectionId(2),
            rng.seed32(),
        )
        .unwrap();
        let mut m1 = [0u8; 512];
        let n1 = i.write(b"x", &mut m1).unwrap();
        let mut p = [0u8; 512];
        assert!(r.read(&m1[..n1], &mut p).is_err());
    }

    #[test]
    fn an_initiator_rewound_after_message_2_reads_it_again_to_the_same_keys() {
        for pattern in [HandshakePattern::NK, HandshakePattern::IK] {
            let (mut i, mut r, server) = start_pair(pattern, 4, ConnectionId(7));
            let (mut m1, mut m2, mut p) = ([0u8; 512], [0u8; 512], [0u8; 512]);
            let n1 = i.write(b"params", &mut m1).unwrap();
            r.read(&m1[..n1], &mut p).unwrap();
            let n2 = r.write(b"answer", &mut m2).unwrap();
            // Read once, rejected by the caller: rewind and read again.
            assert_eq!(i.read(&m2[..n2], &mut p).unwrap(), 6);
            i.rewind_to_message2().unwrap();
            assert!(
                i.read(&m2[..n2 - 1], &mut p).is_err(),
                "a damaged message 2 still fails after the rewind"
            );
            let np = i.read(&m2[..n2], &mut p).unwrap();
            assert_eq!(&p[..np], b"answer");
            assert_eq!(i.remote_static(), Some(server));
            let (i, r) = (i.into_session().unwrap(), r.into_session().unwrap());
            let mut c = [0u8; 64];
            let n = r.seal(3, b"keys agree", &mut c).unwrap();
            let mut out = [0u8; 64];
            assert_eq!(i.open(3, &c[..n], &mut out).unwrap(), 10);
            assert_eq!(&out[..10], b"keys agree");
        }
    }

    #[test]
    fn only_an_initiator_that_wrote_message_1_can_rewind() {
        let (mut i, mut r, _) = start_pair(HandshakePattern::NK, 5, ConnectionId(8));
        assert!(r.rewind_to_message2().is_err());
        assert!(i.rewind_to_message2().is_err());
    }

    #[test]
    fn same_seed_same_handshake_bytes() {
        let make = || {
            let mut rng = Rng::from_seed(9);
            let server = Keypair::generate(&mut rng);
            let mut i = Handshake::initiator(
                HandshakePattern::NK,
                Cipher::ChaChaPoly,
                &server,
                &server.public(),
                ConnectionId(5),
                rng.seed32(),
            )
            .unwrap();
            let mut m1 = [0u8; 512];
            let n = i.write(b"p", &mut m1).unwrap();
            m1[..n].to_vec()
        };
        assert_eq!(make(), make());
    }
}
