//! Opening knocks (spec §4.4, conntrack clashes): a connection opened from
//! an introduction sends one round of knocks at once, each with the small
//! opening hop limit, and nothing else until its hold ends — at the peer's
//! PeerOpened (`Endpoint::punch_now`) or at the latest moment it was given.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{addr, endpoint};
use srudp_proto::{ConnectOptions, Endpoint, HandshakePattern, TransportConfig, MAX_DATAGRAM_SIZE};

/// Knock: version 1, type 7.
const KNOCK: [u8; 2] = [1, 7];

/// Everything `e` sends at `now`: (destination, first two bytes, hop limit).
fn drain(e: &mut Endpoint, now: Instant) -> Vec<(SocketAddr, [u8; 2], Option<u8>)> {
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    let mut out = Vec::new();
    for _ in 0..1000 {
        let Some(t) = e.poll_transmit(now, &mut buf) else {
            break;
        };
        out.push((t.destination, [buf[0], buf[1]], t.hop_limit));
    }
    out
}

/// Steps `e` through its timers up to `until` (exclusive), collecting what
/// it sends.
fn run(e: &mut Endpoint, from: Instant, until: Instant) -> Vec<(SocketAddr, [u8; 2], Option<u8>)> {
    let mut out = drain(e, from);
    for _ in 0..10_000 {
        match e.poll_timeout() {
            Some(t) if t < until => {
                e.handle_timeout(t);
                out.extend(drain(e, t));
            }
            _ => break,
        }
    }
    out
}

#[test]
fn an_introduced_connection_opens_its_nat_with_short_lived_knocks_and_waits_for_the_peer() {
    let mut e = endpoint(1, TransportConfig::default());
    let peer = endpoint(2, TransportConfig::default()).public_key();
    let candidates = vec![addr("203.0.113.2:6000"), addr("192.168.2.20:6000")];
    let now = Instant::now();
    let hold = now + Duration::from_secs(1);
    let options = ConnectOptions {
        pattern: Some(HandshakePattern::IK),
        ..ConnectOptions::new(peer, candidates.clone())
    };
    let h = e.connect_introduced(now, options, hold).unwrap();
    // One opening knock per candidate, hop limit 2, then silence while held.
    let opening = run(&mut e, now, now + Duration::from_millis(500));
    assert_eq!(opening.len(), 2, "{opening:?}");
    for (i, (to, head, hops)) in opening.iter().enumerate() {
        assert_eq!((*to, *head, *hops), (candidates[i], KNOCK, Some(2)));
    }
    // The peer's PeerOpened ends the hold: full knocks, the socket's own
    // hop limit.
    let released = now + Duration::from_millis(500);
    e.punch_now(released, h);
    let full = run(&mut e, released, released + Duration::from_millis(10));
    assert_eq!(full.len(), 2, "{full:?}");
    for (to, head, hops) in &full {
        assert!(candidates.contains(to));
        assert_eq!((*head, *hops), (KNOCK, None));
    }
}

#[test]
fn without_the_peers_word_the_hold_ends_at_the_latest_moment() {
    let mut e = endpoint(3, TransportConfig::default());
    let peer = endpoint(4, TransportConfig::default()).public_key();
    let now = Instant::now();
    let hold = now + Duration::from_secs(1);
    let options = ConnectOptions {
        pattern: Some(HandshakePattern::IK),
        ..ConnectOptions::new(peer, vec![addr("203.0.113.2:6000")])
    };
    e.connect_introduced(now, options, hold).unwrap();
    let sent = run(&mut e, now, hold + Duration::from_millis(1));
    let hops: Vec<Option<u8>> = sent.iter().map(|s| s.2).collect();
    assert_eq!(hops, [Some(2), None], "{sent:?}");
}

#[test]
fn an_opening_hop_limit_of_none_sends_opening_knocks_as_usual() {
    let transport = TransportConfig {
        punch_opening_hop_limit: None,
        ..TransportConfig::default()
    };
    let mut e = endpoint(5, transport);
    let peer = endpoint(6, TransportConfig::default()).public_key();
    let now = Instant::now();
    let options = ConnectOptions {
        pattern: Some(HandshakePattern::IK),
        ..ConnectOptions::new(peer, vec![addr("203.0.113.2:6000")])
    };
    e.connect_introduced(now, options, now + Duration::from_secs(1))
        .unwrap();
    let sent = drain(&mut e, now);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].2, None);
}
