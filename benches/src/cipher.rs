//! The packet cipher srudp uses, outside the protocol: a pair of snow
//! stateless transports (ChaCha20-Poly1305) keyed by an NN handshake, with
//! the implementation srudp-proto picks in this build (ring's, as the
//! benches enable srudp-proto's `ring` feature; the portable one otherwise).

use snow::resolvers::{DefaultResolver, FallbackResolver, RingResolver};
use snow::StatelessTransportState;

/// The name of the cipher implementation in use, for reports.
pub const IMPLEMENTATION: &str = "ring ChaCha20-Poly1305 (snow RingResolver)";

/// Two transports sharing keys: the initiator's seals what the responder's opens.
pub fn transport_pair() -> (StatelessTransportState, StatelessTransportState) {
    let params: snow::params::NoiseParams = "Noise_NN_25519_ChaChaPoly_BLAKE2s".parse().unwrap();
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
