//! The negotiated cipher (spec §4.1, §5): the initiator proposes
//! ChaCha20-Poly1305 or AES-256-GCM in its HandshakeInit; a responder that
//! accepts it answers with the same suite, one that does not refuses
//! cleanly.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{addr, data, transfer, A_ADDR, B_ADDR};
use srudp_proto::sim::{LinkConfig, Network, NodeId, Simulation};
use srudp_proto::wire::Packet;
use srudp_proto::{
    Cipher, CloseReason, Endpoint, EndpointConfig, Event, Keypair, Rng, TransportConfig,
};

/// An endpoint proposing `cipher` and accepting `accepted`.
fn endpoint(seed: u64, cipher: Cipher, accepted: &[Cipher]) -> Endpoint {
    let mut config = EndpointConfig::new(Keypair::generate(&mut Rng::from_seed(seed)));
    config.rng_seed = Some(seed);
    config.transport = Arc::new(TransportConfig::default());
    config.cipher = cipher;
    config.accepted_ciphers = accepted.to_vec();
    Endpoint::new(config).unwrap()
}

fn simulation(a: Endpoint, b: Endpoint) -> (Simulation, NodeId, NodeId) {
    let link = LinkConfig::default()
        .with_latency(Duration::from_millis(10))
        .with_loss_rate(0.02);
    let mut net = Network::new(5);
    net.add_host(addr(A_ADDR).ip(), link.clone()).unwrap();
    net.add_host(addr(B_ADDR).ip(), link).unwrap();
    let mut sim = Simulation::new(net, Instant::now());
    sim.record_datagrams();
    let a = sim.add_endpoint(addr(A_ADDR), a);
    let b = sim.add_endpoint(addr(B_ADDR), b);
    (sim, a, b)
}

#[test]
fn both_ciphers_carry_a_lossy_transfer_intact_when_both_sides_agree() {
    for cipher in Cipher::ALL {
        let (mut sim, a, b) = simulation(
            endpoint(1, cipher, &[Cipher::ChaChaPoly]),
            endpoint(2, Cipher::ChaChaPoly, &Cipher::ALL),
        );
        let (a_data, b_data) = (data(1, 300_000), data(2, 100_000));
        let t = transfer(
            &mut sim,
            a,
            b,
            &[addr(B_ADDR)],
            &a_data,
            &b_data,
            Duration::from_secs(60),
        );
        assert_eq!(t.b.received, a_data, "{cipher}");
        assert_eq!(t.a.received, b_data, "{cipher}");
        assert_eq!(t.a.closed, Some(CloseReason::Finished), "{cipher}");
        // The initiation named the cipher: code 0 (NK, ChaChaPoly) or 2 (NK, AES-GCM).
        let init = sim
            .captured()
            .iter()
            .find_map(|c| match Packet::parse(&c.payload) {
                Ok(Packet::HandshakeInit(i)) => Some((i.pattern, i.cipher, c.payload[2])),
                _ => None,
            })
            .expect("an initiation was sent");
        let code = if cipher == Cipher::AesGcm { 2 } else { 0 };
        assert_eq!(init.1, cipher);
        assert_eq!(init.2, code);
    }
}

#[test]
fn a_responder_that_does_not_accept_the_cipher_refuses_cleanly() {
    let (mut sim, a, b) = simulation(
        endpoint(3, Cipher::AesGcm, &Cipher::ALL),
        endpoint(4, Cipher::ChaChaPoly, &[Cipher::ChaChaPoly]),
    );
    let kb = sim.endpoint(b).public_key();
    let now = sim.now();
    let h = sim.endpoint(a).connect(now, kb, &[addr(B_ADDR)]).unwrap();
    let e = common::wait_for(&mut sim, Duration::from_secs(5), |e| {
        e.node == a && e.handle == h && matches!(e.event, Event::Closed { .. })
    })
    .expect("the refusal arrives long before the handshake timeout");
    assert_eq!(
        e.event,
        Event::Closed {
            reason: CloseReason::Refused
        }
    );
    assert!(sim.now() - now < Duration::from_secs(1), "answered at once");
    assert_eq!(sim.endpoint(b).connection_count(), 0, "no state kept");
    assert_eq!(sim.endpoint(b).endpoint_stats().refused, 1);
}

#[test]
fn an_empty_list_of_accepted_ciphers_is_a_configuration_error() {
    let mut config = EndpointConfig::new(Keypair::generate(&mut Rng::from_seed(9)));
    config.accepted_ciphers.clear();
    assert!(Endpoint::new(config).is_err());
}
