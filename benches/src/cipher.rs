//! The packet cipher srudp uses, outside the protocol: a pair of snow
//! stateless transports keyed by an NN handshake, with the cipher a run
//! chose (ChaCha20-Poly1305 or AES-256-GCM, spec §4.1) and the
//! implementation srudp-proto picks in this build (ring's, as the benches
//! enable srudp-proto's `ring` feature; the portable one otherwise).

use snow::resolvers::{DefaultResolver, FallbackResolver, RingResolver};
use snow::StatelessTransportState;
use srudp_proto::Cipher;

/// The name of the cipher implementation in use, for reports.
pub fn implementation(cipher: Cipher) -> &'static str {
    match cipher {
        Cipher::ChaChaPoly => "ring ChaCha20-Poly1305 (snow RingResolver)",
        Cipher::AesGcm => "ring AES-256-GCM (snow RingResolver)",
    }
}

/// The cipher named on a command line: `chacha` or `aes`.
pub fn parse(name: &str) -> Option<Cipher> {
    match name {
        "chacha" | "chachapoly" => Some(Cipher::ChaChaPoly),
        "aes" | "aesgcm" => Some(Cipher::AesGcm),
        _ => None,
    }
}

/// Two transports sharing keys: the initiator's seals what the responder's opens.
pub fn transport_pair(cipher: Cipher) -> (StatelessTransportState, StatelessTransportState) {
    let name = format!("Noise_NN_25519_{}_BLAKE2s", cipher.noise_name());
    let params: snow::params::NoiseParams = name.parse().expect("a valid Noise name");
    let resolver = || {
        Box::new(FallbackResolver::new(
            Box::new(RingResolver),
            Box::new(DefaultResolver),
        ))
    };
    let mut i = snow::Builder::with_resolver(params.clone(), resolver())
        .build_initiator()
        .unwrap();
    let mut r = snow::Builder::with_resolver(params, resolver())
        .build_responder()
        .unwrap();
    let (mut m, mut p) = ([0u8; 256], [0u8; 256]);
    let n = i.write_message(&[], &mut m).unwrap();
    r.read_message(&m[..n], &mut p).unwrap();
    let n = r.write_message(&[], &mut m).unwrap();
    i.read_message(&m[..n], &mut p).unwrap();
    (
        i.into_stateless_transport_mode().unwrap(),
        r.into_stateless_transport_mode().unwrap(),
    )
}
