//! Handshake outcomes: authentication of the responder, IK identities, the
//! accept policy, refusal and timeouts (spec §4).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{addr, endpoint, Pair, B_ADDR};
use srudp_proto::sim::LinkConfig;
use srudp_proto::{
    AcceptPolicy, CloseReason, ConnectError, ConnectOptions, Endpoint, EndpointConfig, Event,
    HandshakePattern, Keypair, Rng, TransportConfig,
};

fn pair() -> Pair {
    Pair::public(
        8,
        LinkConfig::default().with_latency(Duration::from_millis(10)),
        TransportConfig::default(),
    )
}

#[test]
fn nk_connects_and_only_the_initiator_learns_the_peer_key() {
    let mut p = pair();
    let (ka, kb) = (p.key(p.a), p.key(p.b));
    let now = p.sim.now();
    p.sim
        .endpoint(p.a)
        .connect(now, kb, &[addr(B_ADDR)])
        .unwrap();
    let events = common::run_for(&mut p.sim, Duration::from_secs(2));
    let connected: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.event, Event::Connected { .. }))
        .collect();
    assert_eq!(connected.len(), 2);
    for e in connected {
        let Event::Connected { incoming, peer, .. } = &e.event else {
            unreachable!()
        };
        if e.node == p.a {
            assert!(!incoming);
            assert_eq!(*peer, Some(kb));
        } else {
            assert!(incoming);
            assert_eq!(*peer, None, "NK does not reveal the initiator ({ka:?})");
        }
    }
}

#[test]
fn ik_reveals_the_initiator_and_an_allow_list_admits_it() {
    let mut p = pair();
    let (ka, kb) = (p.key(p.a), p.key(p.b));
    p.sim
        .endpoint(p.b)
        .set_accept_policy(AcceptPolicy::AcceptKeys(vec![ka]));
    let now = p.sim.now();
    p.sim
        .endpoint(p.a)
        .connect_with(
            now,
            ConnectOptions {
                peer: kb,
                candidates: vec![addr(B_ADDR)],
                pattern: Some(HandshakePattern::IK),
                ticket: None,
            },
        )
        .unwrap();
    let e = common::wait_for(&mut p.sim, Duration::from_secs(2), |e| {
        e.node == p.b && matches!(e.event, Event::Connected { .. })
    })
    .expect("b accepts a listed key");
    assert_eq!(p.sim.endpoint(p.b).peer_identity(e.handle), Some(ka));
}

#[test]
fn an_unlisted_or_anonymous_initiator_is_refused_with_a_clear_error() {
    for pattern in [HandshakePattern::NK, HandshakePattern::IK] {
        let mut p = pair();
        let kb = p.key(p.b);
        let stranger = Keypair::generate(&mut Rng::from_seed(1234)).public();
        p.sim
            .endpoint(p.b)
            .set_accept_policy(AcceptPolicy::AcceptKeys(vec![stranger]));
        let now = p.sim.now();
        let h = p
            .sim
            .endpoint(p.a)
            .connect_with(
                now,
                ConnectOptions {
                    peer: kb,
                    candidates: vec![addr(B_ADDR)],
                    pattern: Some(pattern),
                    ticket: None,
                },
            )
            .unwrap();
        let e = common::wait_for(&mut p.sim, Duration::from_secs(2), |e| {
            e.handle == h && e.node == p.a && matches!(e.event, Event::Closed { .. })
        })
        .expect("refusal arrives");
        assert_eq!(
            e.event,
            Event::Closed {
                reason: CloseReason::Refused
            },
            "{pattern}"
        );
        assert!(
            p.sim.elapsed() < Duration::from_millis(100),
            "refused within a round trip, not a timeout"
        );
        assert_eq!(
            p.sim.endpoint(p.b).connection_count(),
            0,
            "a refusal keeps no state"
        );
    }
}

#[test]
fn connecting_to_the_wrong_key_times_out_and_the_responder_keeps_nothing() {
    let mut p = pair();
    let wrong = Keypair::generate(&mut Rng::from_seed(4321)).public();
    let now = p.sim.now();
    let h = p
        .sim
        .endpoint(p.a)
        .connect(now, wrong, &[addr(B_ADDR)])
        .unwrap();
    let e = common::wait_for(&mut p.sim, Duration::from_secs(30), |e| {
        e.handle == h && matches!(e.event, Event::Closed { .. })
    })
    .expect("the handshake gives up");
    assert_eq!(
        e.event,
        Event::Closed {
            reason: CloseReason::HandshakeTimeout
        }
    );
    assert_eq!(p.sim.endpoint(p.b).connection_count(), 0);
    assert!(p.sim.endpoint(p.b).endpoint_stats().dropped_bad_handshake > 0);
}

#[test]
fn the_first_candidate_that_answers_wins() {
    let mut p = pair();
    let kb = p.key(p.b);
    let now = p.sim.now();
    let dead = [addr("203.0.113.9:1"), addr("192.0.2.77:2")];
    let h = p
        .sim
        .endpoint(p.a)
        .connect(now, kb, &[dead[0], addr(B_ADDR), dead[1]])
        .unwrap();
    common::wait_for(&mut p.sim, Duration::from_secs(3), |e| {
        e.handle == h && e.node == p.a && matches!(e.event, Event::Connected { .. })
    })
    .expect("connects through the live candidate");
    assert_eq!(p.sim.endpoint(p.a).remote_address(h), Some(addr(B_ADDR)));
}

#[test]
fn bad_connect_requests_are_errors() {
    let mut ep = endpoint(1, TransportConfig::default());
    let me = ep.public_key();
    let other = endpoint(2, TransportConfig::default()).public_key();
    let now = std::time::Instant::now();
    assert!(matches!(
        ep.connect(now, other, &[]),
        Err(ConnectError::NoCandidates)
    ));
    assert!(matches!(
        ep.connect(now, me, &[addr(B_ADDR)]),
        Err(ConnectError::SelfConnect)
    ));
    let many: Vec<_> = (0..17).map(|i| addr(&format!("192.0.2.{i}:1"))).collect();
    assert!(matches!(
        ep.connect(now, other, &many),
        Err(ConnectError::TooManyCandidates)
    ));
}

#[test]
fn invalid_configuration_is_rejected() {
    let mut config = EndpointConfig::new(Keypair::generate(&mut Rng::from_seed(1)));
    config.transport = Arc::new(TransportConfig {
        keepalive_interval: Some(Duration::ZERO),
        ..TransportConfig::default()
    });
    assert!(Endpoint::new(config.clone()).is_err());
    config.transport = Arc::new(TransportConfig {
        receive_window: 10,
        ..TransportConfig::default()
    });
    assert!(Endpoint::new(config).is_err());
}
