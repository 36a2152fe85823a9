//! Peer-reflexive candidates (spec §4.4, conntrack clashes): an initiation
//! that authenticates as the peer we punch toward, from an address we do
//! not send to, earns that address one HandshakeInit at once — and nothing
//! else does: not an initiation of another key, not an anonymous one, and
//! not a replay beyond one datagram per datagram received.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{addr, endpoint};
use srudp_proto::{
    ConnectOptions, Endpoint, HandshakePattern, PublicKey, TransportConfig, MAX_DATAGRAM_SIZE,
};

/// Where the lower key punches: the peer's address as a rendezvous saw it,
/// before the peer's NAT gave it another port toward us.
const SEEN: &str = "203.0.113.2:6000";
/// Where the peer's initiation really comes from.
const REMAPPED: &str = "203.0.113.2:41234";
/// Where the lower key's own address is, for the peer.
const LOWER_AT: &str = "203.0.113.1:5000";
/// HandshakeInit: version 1, type 1.
const INIT: [u8; 2] = [1, 1];

fn ik(peer: PublicKey, to: &str) -> ConnectOptions {
    ConnectOptions {
        pattern: Some(HandshakePattern::IK),
        ..ConnectOptions::new(peer, vec![addr(to)])
    }
}

/// Two endpoints, `(lower, higher)` by public key.
fn ordered(seed: u64) -> (Endpoint, Endpoint) {
    let a = endpoint(seed, TransportConfig::default());
    let b = endpoint(seed + 1, TransportConfig::default());
    if a.public_key() < b.public_key() {
        (a, b)
    } else {
        (b, a)
    }
}

/// Everything `e` sends at `now`: (destination, first two bytes, size).
fn drain(e: &mut Endpoint, now: Instant) -> Vec<(SocketAddr, [u8; 2], usize)> {
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    let mut out = Vec::new();
    for _ in 0..1000 {
        let Some(t) = e.poll_transmit(now, &mut buf) else {
            break;
        };
        out.push((t.destination, [buf[0], buf[1]], t.size));
    }
    out
}

/// The first HandshakeInit `e` sends (it connects toward someone).
fn first_init(e: &mut Endpoint, now: Instant) -> Vec<u8> {
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    let t = e.poll_transmit(now, &mut buf).expect("an initiation");
    assert_eq!(buf[..2], INIT);
    buf[..t.size].to_vec()
}

/// HandshakeInits `e` sends to any of `to` from `from` on, following its
/// timers for `span`.
fn inits_to(e: &mut Endpoint, from: Instant, span: Duration, to: &[SocketAddr]) -> usize {
    let mut now = from;
    let mut count = 0;
    for _ in 0..10_000 {
        count += drain(e, now)
            .iter()
            .filter(|(d, head, _)| to.contains(d) && *head == INIT)
            .count();
        match e.poll_timeout() {
            Some(t) if t <= from + span => {
                now = t.max(now);
                e.handle_timeout(now);
            }
            _ => break,
        }
    }
    count
}

#[test]
fn the_peers_initiation_from_a_new_port_is_answered_there_at_once_and_connects() {
    let (mut lower, mut higher) = ordered(1);
    let now = Instant::now();
    let hl = lower
        .connect_with(now, ik(higher.public_key(), SEEN))
        .unwrap();
    let hh = higher
        .connect_with(now, ik(lower.public_key(), LOWER_AT))
        .unwrap();
    // What the lower key sends to SEEN is lost: after the clash, the peer's
    // NAT takes it for a packet to itself.
    let _ = drain(&mut lower, now);
    let init = first_init(&mut higher, now);
    // The higher key's init arrives from the port its NAT picked instead:
    // the lower key keeps its own initiation (spec §4.5) and sends it there
    // at once.
    lower.handle_datagram(now, addr(REMAPPED), &init);
    let mut connected = [false, false];
    for _ in 0..20 {
        let mut moved = false;
        for (to, d) in drain_with_bodies(&mut lower, now) {
            if to == addr(REMAPPED) {
                higher.handle_datagram(now, addr(LOWER_AT), &d);
                moved = true;
            }
        }
        for (to, d) in drain_with_bodies(&mut higher, now) {
            if to == addr(LOWER_AT) {
                lower.handle_datagram(now, addr(REMAPPED), &d);
                moved = true;
            }
        }
        while let Some((h, e)) = lower.poll_event() {
            connected[0] |= h == hl && matches!(e, srudp_proto::Event::Connected { .. });
        }
        while let Some((h, e)) = higher.poll_event() {
            connected[1] |= h == hh && matches!(e, srudp_proto::Event::Connected { .. });
        }
        if !moved {
            break;
        }
    }
    assert_eq!(connected, [true, true]);
    assert_eq!(lower.remote_address(hl), Some(addr(REMAPPED)));
}

/// The attacker's test: a captured initiation of the peer replayed from a
/// spoofed source gets that source one HandshakeInit per replayed datagram
/// (no larger than it), never a stream of them in later rounds; an
/// initiation of another key or an anonymous one gets it none.
#[test]
fn only_the_peers_authenticated_initiation_makes_a_candidate_and_only_one_answer_each() {
    let (mut lower, mut higher) = ordered(3);
    let mut stranger = endpoint(99, TransportConfig::default());
    let now = Instant::now();
    lower
        .connect_with(now, ik(higher.public_key(), SEEN))
        .unwrap();
    higher
        .connect_with(now, ik(lower.public_key(), LOWER_AT))
        .unwrap();
    let _ = drain(&mut lower, now);
    let init = first_init(&mut higher, now);
    let victim = addr("192.0.2.77:53");
    // Another key (IK) and no key (NK) from other spoofed sources.
    stranger
        .connect_with(now, ik(lower.public_key(), LOWER_AT))
        .unwrap();
    let strangers_ik = first_init(&mut stranger, now);
    stranger
        .connect_with(
            now,
            ConnectOptions {
                pattern: Some(HandshakePattern::NK),
                ..ConnectOptions::new(lower.public_key(), vec![addr(LOWER_AT)])
            },
        )
        .unwrap();
    let strangers_nk = first_init(&mut stranger, now);
    let (v_ik, v_nk) = (addr("192.0.2.78:53"), addr("192.0.2.79:53"));
    lower.handle_datagram(now, v_ik, &strangers_ik);
    lower.handle_datagram(now, v_nk, &strangers_nk);
    // The replay: three copies of the peer's own initiation.
    for _ in 0..3 {
        lower.handle_datagram(now, victim, &init);
        let sent = drain(&mut lower, now);
        let to_victim: Vec<_> = sent.iter().filter(|(d, ..)| *d == victim).collect();
        assert_eq!(to_victim.len(), 1, "{sent:?}");
        assert!(to_victim[0].2 <= init.len());
        for (d, head, _) in &sent {
            assert!(
                !(*head == INIT && (*d == v_ik || *d == v_nk)),
                "a HandshakeInit to {d}, which did not authenticate as the peer"
            );
        }
    }
    // The whole handshake timeout later: not one more init to any of them.
    let span = Duration::from_secs(11);
    assert_eq!(inits_to(&mut lower, now, span, &[victim, v_ik, v_nk]), 0);
}
/// Like `drain`, with the datagrams' bytes.
fn drain_with_bodies(e: &mut Endpoint, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    let mut out = Vec::new();
    for _ in 0..1000 {
        let Some(t) = e.poll_transmit(now, &mut buf) else {
            break;
        };
        out.push((t.destination, buf[..t.size].to_vec()));
    }
    out
}
