//! Registration over IK, names, expiry, re-registration (spec §11.3).

use std::time::Duration;

use srudp_proto::rendezvous::{
    ClientEvent, ErrorCode, Message, Name, RendezvousError, ServerConfig,
};
use srudp_proto::sim::NatConfig;
use srudp_proto::{
    ConnectOptions, Endpoint, EndpointConfig, HandshakePattern, Keypair, PublicKey, Rng,
};

use crate::world::{addr, World, SERVER};

const S: Duration = Duration::from_secs(1);

/// Two clients behind two port-restricted NATs.
fn two_behind_nats(seed: u64) -> World {
    let mut w = World::new(seed);
    w.start_server(ServerConfig::default());
    let na = w.add_nat("198.51.100.1", NatConfig::port_restricted_cone());
    let nb = w.add_nat("198.51.100.2", NatConfig::port_restricted_cone());
    w.add_host_behind(na, "192.168.1.10");
    w.add_host_behind(nb, "192.168.2.20");
    let mut ca = w.client_config();
    ca.name = Some(Name::new("alice").unwrap());
    ca.detect_nat = false;
    let mut cb = w.client_config();
    cb.detect_nat = false;
    w.add_client("192.168.1.10:5000", seed * 10 + 1, ca);
    w.add_client("192.168.2.20:6000", seed * 10 + 2, cb);
    w
}

#[test]
fn clients_register_over_ik_and_learn_the_address_the_server_observes() {
    for seed in 0..3 {
        let mut w = two_behind_nats(seed);
        w.wait_registered(&[0, 1], 5 * S);
        let observed = w.client(0).observed_address().unwrap();
        assert_eq!(observed.ip(), addr("198.51.100.1:0").ip(), "seed {seed}");
        assert_eq!(
            w.events(0)
                .iter()
                .filter(|e| matches!(e, ClientEvent::Registered { .. }))
                .count(),
            1
        );
        let key = w.key(0);
        assert_eq!(w.server().registered_address(&key), Some(observed));
        assert_eq!(w.server().registration_count(), 2);
        // The addresses a stream carrier checks its paths against (§12.4).
        let mut clients: Vec<_> = w.server().client_addresses().collect();
        clients.sort();
        let mut expected = vec![observed, w.client(1).observed_address().unwrap()];
        expected.sort();
        assert_eq!(clients, expected);
        // Refreshes keep the registration alive well past its 45 s expiry.
        w.run_for(120 * S);
        assert_eq!(w.server().registration_count(), 2, "seed {seed}");
        assert!(
            w.server().stats().registrations >= 2 * 8,
            "refreshed every 15 s"
        );
    }
}

#[test]
fn a_name_belongs_to_the_first_key_and_another_key_cannot_take_it() {
    let mut w = two_behind_nats(4);
    w.wait_registered(&[0, 1], 5 * S);
    // A third client, with its own key, tries to register as "alice".
    let mut mallory = w.client_config();
    mallory.name = Some(Name::new("alice").unwrap());
    mallory.detect_nat = false;
    w.add_public_host("192.0.2.66");
    let m = w.add_client("192.0.2.66:7000", 666, mallory);
    let refused = w.wait_for(m, 5 * S, |e| {
        matches!(e, ClientEvent::RegistrationRefused { .. })
    });
    assert_eq!(
        refused,
        Some(ClientEvent::RegistrationRefused {
            code: ErrorCode::NameTaken
        })
    );
    // Whoever asks for "alice" still reaches Alice's key.
    let now = w.now();
    let request = w.client(1).connect_by_name(now, "alice").unwrap();
    let connected = w.wait_for(
        1,
        15 * S,
        |e| matches!(e, ClientEvent::PeerConnected { request: Some(r), .. } if *r == request),
    );
    let Some(ClientEvent::PeerConnected { peer, .. }) = connected else {
        panic!("no connection to alice: {:?}", w.events(1));
    };
    assert_eq!(peer, w.key(0));
}

#[test]
fn a_connection_without_a_key_cannot_register() {
    let mut w = World::new(5);
    w.start_server(ServerConfig::default());
    w.add_public_host("192.0.2.50");
    let r = w.add_raw("192.0.2.50:5000", 50);
    let now = w.now();
    let server_key = w.server_key();
    let h = w.raws[r]
        .endpoint
        .connect_with(
            now,
            ConnectOptions {
                peer: server_key,
                candidates: vec![addr(SERVER)],
                pattern: Some(HandshakePattern::NK),
                ticket: None,
            },
        )
        .unwrap();
    let mut frame = [0u8; 1026];
    let n = Message::Register {
        request: 1,
        name: Some(Name::new("anonymous").unwrap()),
        groups: vec![],
        candidates: vec![],
        stream_only: false,
    }
    .emit(&mut frame)
    .unwrap();
    w.raws[r].endpoint.write(h, &frame[..n]).unwrap();
    let mut got = Vec::new();
    w.run_until(5 * S, |w| {
        let mut buf = [0u8; 64];
        while let Ok(n) = w.raws[r].endpoint.read(h, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got.len() >= 8
    });
    assert_eq!(
        Message::parse(&got[2..]).unwrap(),
        Message::Error {
            request: 1,
            code: ErrorCode::NotAuthenticated
        }
    );
    assert_eq!(w.server().registration_count(), 0);
}

#[test]
fn asking_for_an_unknown_peer_fails_at_once_with_peer_not_registered() {
    let mut w = two_behind_nats(6);
    w.wait_registered(&[0, 1], 5 * S);
    let start = w.now();
    let stranger = PublicKey([0x42; 32]);
    let request = w.client(0).connect_by_key(start, stranger).unwrap();
    let failed = w.wait_for(0, 10 * S, |e| {
        matches!(e, ClientEvent::ConnectFailed { .. })
    });
    assert_eq!(
        failed,
        Some(ClientEvent::ConnectFailed {
            request: Some(request),
            peer: Some(stranger),
            error: RendezvousError::PeerNotRegistered
        })
    );
    // One round trip to the server (about 42 ms here), not a timeout.
    assert!(
        w.now() - start < Duration::from_millis(500),
        "{:?}",
        w.now() - start
    );
    let now = w.now();
    let by_name = w.client(0).connect_by_name(now, "nobody").unwrap();
    let failed = w.wait_for(0, 10 * S, |e| {
        matches!(e, ClientEvent::ConnectFailed { .. })
    });
    assert!(matches!(
        failed,
        Some(ClientEvent::ConnectFailed { request: Some(r), error: RendezvousError::PeerNotRegistered, .. }) if r == by_name
    ));
    assert_eq!(w.server().stats().peer_unknown, 2);
}

#[test]
fn clients_re_register_by_themselves_after_a_server_restart() {
    for seed in 0..3 {
        let mut w = two_behind_nats(10 + seed);
        w.wait_registered(&[0, 1], 5 * S);
        w.stop_server();
        w.run_for(3 * S);
        w.start_server(ServerConfig::default());
        // The new server knows nothing; each client notices at its next
        // refresh (at most 15 s + 5 s without an answer) and comes back.
        let ok = w.run_until(60 * S, |w| {
            w.server().registration_count() == 2
                && w.client(0).is_registered()
                && w.client(1).is_registered()
        });
        assert!(ok, "seed {seed}: {:?}", w.events(0));
        for i in 0..2 {
            assert!(
                w.events(i)
                    .iter()
                    .any(|e| matches!(e, ClientEvent::Disconnected { .. })),
                "seed {seed}: client {i} noticed the loss"
            );
            assert_eq!(
                w.events(i)
                    .iter()
                    .filter(|e| matches!(e, ClientEvent::Registered { .. }))
                    .count(),
                2,
                "seed {seed}: client {i} registered again"
            );
        }
        // And introductions work again.
        let now = w.now();
        let key = w.key(1);
        w.client(0).connect_by_key(now, key).unwrap();
        let up = w.wait_for(0, 15 * S, |e| {
            matches!(e, ClientEvent::PeerConnected { .. })
        });
        assert!(up.is_some(), "seed {seed}: {:?}", w.events(0));
    }
}

#[test]
fn a_registration_moves_to_the_newest_connection_of_its_key() {
    // The same key registers from a second endpoint (a restarted client):
    // the server keeps the newest connection and closes the old one.
    let mut w = two_behind_nats(20);
    w.wait_registered(&[0, 1], 5 * S);
    let first = w.client(0).observed_address().unwrap();
    w.add_public_host("192.0.2.77");
    let mut config = w.client_config();
    config.detect_nat = false;
    // Same key, fresh randomness (a real restart draws new ephemeral keys).
    let keypair = Keypair::generate(&mut Rng::from_seed(20 * 10 + 1));
    let mut ep_config = EndpointConfig::new(keypair);
    ep_config.rng_seed = Some(777);
    let again = w.add_client_with("192.0.2.77:5000", Endpoint::new(ep_config).unwrap(), config);
    assert_eq!(w.key(again), w.key(0));
    w.wait_registered(&[again], 5 * S);
    let key = w.key(0);
    assert_eq!(
        w.server().registered_address(&key),
        Some(addr("192.0.2.77:5000"))
    );
    assert_ne!(first, addr("192.0.2.77:5000"));
    let lost = w.wait_for(0, 5 * S, |e| matches!(e, ClientEvent::Disconnected { .. }));
    assert!(lost.is_some(), "the old connection was closed");
}

#[test]
fn without_a_server_a_connect_request_fails_as_unreachable() {
    let mut w = World::new(30);
    // No server was ever started.
    w.add_public_host("192.0.2.10");
    let mut c = w.client_config();
    c.detect_nat = false;
    let i = w.add_client("192.0.2.10:4000", 301, c);
    let start = w.now();
    let request = w
        .client(i)
        .connect_by_key(start, PublicKey([5; 32]))
        .unwrap();
    let failed = w.wait_for(i, 30 * S, |e| {
        matches!(e, ClientEvent::ConnectFailed { .. })
    });
    assert_eq!(
        failed,
        Some(ClientEvent::ConnectFailed {
            request: Some(request),
            peer: Some(PublicKey([5; 32])),
            error: RendezvousError::ServerUnreachable
        })
    );
    // At the configured request timeout.
    assert_eq!(w.now() - start, w.client(i).config().request_timeout);
    assert!(!w.client(i).is_registered());
}
