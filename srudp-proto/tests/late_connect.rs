//! Simultaneous open where one side is a little late (spec §4.5): its
//! endpoint has already answered the peer's initiation when its application
//! calls connect. The connect takes over that connection instead of opening
//! a second one.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use srudp_proto::{
    ConnectOptions, ConnectionHandle, Endpoint, EndpointConfig, Event, HandshakePattern, Keypair,
    Rng,
};

fn endpoint(seed: u64) -> Endpoint {
    let mut config = EndpointConfig::new(Keypair::generate(&mut Rng::from_seed(seed)));
    config.rng_seed = Some(seed + 7);
    Endpoint::new(config).unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Moves every pending datagram of `from` (at `from_addr`) into `to`.
fn carry(now: Instant, from: &mut Endpoint, from_addr: SocketAddr, to: &mut Endpoint) -> usize {
    let mut buf = [0u8; 1200];
    let mut n = 0;
    while let Some(t) = from.poll_transmit(now, &mut buf) {
        to.handle_datagram(now, from_addr, &buf[..t.size]);
        n += 1;
    }
    n
}

fn connected(ep: &mut Endpoint) -> Vec<(ConnectionHandle, bool)> {
    let mut out = Vec::new();
    while let Some((h, e)) = ep.poll_event() {
        if let Event::Connected { incoming, .. } = e {
            out.push((h, incoming));
        }
    }
    out
}

/// A connects to B with `pattern`; B answers before its own application
/// connects to A; then B's application connects, and everything is delivered.
fn late_connect(pattern: HandshakePattern, seed: u64) {
    let (mut a, mut b) = (endpoint(seed), endpoint(seed + 1));
    let (a_addr, b_addr) = (addr("192.0.2.1:1000"), addr("192.0.2.2:2000"));
    let now = Instant::now();
    let options = |peer, candidates: Vec<SocketAddr>| ConnectOptions {
        peer,
        candidates,
        pattern: Some(pattern),
        ticket: None,
    };
    let ha = a
        .connect_with(now, options(b.public_key(), vec![b_addr]))
        .unwrap();
    assert!(carry(now, &mut a, a_addr, &mut b) > 0);
    // B has answered A's initiation; its response has not left yet.
    let hb = b
        .connect_with(now, options(a.public_key(), vec![a_addr]))
        .unwrap();
    assert_eq!(
        b.connection_count(),
        1,
        "{pattern:?}: no second connection at B"
    );

    let mut now = now;
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        carry(now, &mut b, b_addr, &mut a);
        carry(now, &mut a, a_addr, &mut b);
        a_seen.extend(connected(&mut a));
        b_seen.extend(connected(&mut b));
        now += Duration::from_millis(30);
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    assert_eq!(
        a_seen,
        vec![(ha, false)],
        "{pattern:?}: A connects once, as initiator"
    );
    assert_eq!(
        b_seen,
        vec![(hb, true)],
        "{pattern:?}: B's connect handle connects (as responder)"
    );
    assert_eq!(b.peer_identity(hb), Some(a.public_key()));
    assert_eq!((a.connection_count(), b.connection_count()), (1, 1));

    // It is one connection: bytes written on B's handle reach A's.
    b.write(hb, b"late but here").unwrap();
    carry(now, &mut b, b_addr, &mut a);
    let mut buf = [0u8; 32];
    let n = a.read(ha, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"late but here");
}

#[test]
fn a_late_ik_connect_takes_over_the_connection_being_answered() {
    late_connect(HandshakePattern::IK, 3);
}

#[test]
fn an_anonymous_initiation_is_not_joined_even_from_a_candidate_address() {
    let (mut a, mut b) = (endpoint(5), endpoint(6));
    let (a_addr, b_addr) = (addr("192.0.2.1:1000"), addr("192.0.2.2:2000"));
    let now = Instant::now();
    a.connect(now, b.public_key(), &[b_addr]).unwrap();
    carry(now, &mut a, a_addr, &mut b);
    // NK: A is anonymous. Its initiation came from the very address B's
    // connect lists, but an address proves nothing about a key.
    let hb = b.connect(now, a.public_key(), &[a_addr]).unwrap();
    assert_eq!(
        b.connection_count(),
        2,
        "B's connect is a connection of its own"
    );
    assert_eq!(b.peer_identity(hb), None, "nothing authenticated yet");
}

#[test]
fn an_ik_initiator_is_joined_only_by_a_connect_to_its_own_key() {
    let (mut a, mut b) = (endpoint(7), endpoint(8));
    let (a_addr, b_addr) = (addr("192.0.2.1:1000"), addr("192.0.2.2:2000"));
    let now = Instant::now();
    let ik = |peer, candidates| ConnectOptions {
        peer,
        candidates,
        pattern: Some(HandshakePattern::IK),
        ticket: None,
    };
    a.connect_with(now, ik(b.public_key(), vec![b_addr]))
        .unwrap();
    carry(now, &mut a, a_addr, &mut b);
    let stranger = Keypair::generate(&mut Rng::from_seed(99)).public();
    b.connect(now, stranger, &[a_addr]).unwrap();
    assert_eq!(
        b.connection_count(),
        2,
        "A proved its key: a stranger's is not it"
    );
}
