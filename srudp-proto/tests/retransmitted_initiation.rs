//! Retransmitted initiations (spec §4.2, §4.8): an initiation the responder
//! already answered costs it no second key agreement — it resends the
//! response it stored, byte for byte, and spends none of its handshake
//! capacity — while a new initiation beyond the capacity is dropped before
//! any Noise work.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use srudp_proto::{CookieMode, Endpoint};

const CLIENT: &str = "192.0.2.10:5000";
const OTHER_CLIENT: &str = "192.0.2.11:5000";
const SERVER: &str = "198.51.100.20:4433";

mod common;
use common::{addr, endpoint_configured as endpoint};

/// The first datagram `client` sends toward `server`: its HandshakeInit.
fn initiation(client: &mut Endpoint, server: &Endpoint, now: Instant) -> Vec<u8> {
    client
        .connect(now, server.public_key(), &[addr(SERVER)])
        .unwrap();
    let mut buf = [0u8; 1200];
    let t = client.poll_transmit(now, &mut buf).unwrap();
    buf[..t.size].to_vec()
}

/// Delivers `datagram` to `server` from `from`; returns what it sends back there.
fn deliver(server: &mut Endpoint, now: Instant, from: SocketAddr, datagram: &[u8]) -> Vec<Vec<u8>> {
    server.handle_datagram(now, from, datagram);
    let mut buf = [0u8; 1200];
    let mut replies = Vec::new();
    while let Some(t) = server.poll_transmit(now, &mut buf) {
        if t.destination == from {
            replies.push(buf[..t.size].to_vec());
        }
    }
    replies
}

#[test]
fn a_retransmitted_initiation_gets_the_stored_response_without_a_second_key_agreement() {
    // Capacity for one handshake; cookies off, so the capacity is what
    // decides whether an initiation is worked on.
    let mut server = endpoint(2, |c| {
        c.handshake_rate = 1;
        c.cookie_mode = CookieMode::Never;
    });
    let mut client = endpoint(1, |_| {});
    let now = Instant::now();
    let init = initiation(&mut client, &server, now);

    let first = deliver(&mut server, now, addr(CLIENT), &init);
    assert_eq!(first.len(), 1, "one HandshakeResponse");
    assert_eq!(first[0][1], 2, "a HandshakeResponse");
    // The client retransmits, several times, before the response reaches it.
    for i in 0..4 {
        let later = now + Duration::from_millis(250 * i);
        let again = deliver(&mut server, later, addr(CLIENT), &init);
        // A new key agreement would draw a new ephemeral key: different bytes.
        assert_eq!(again, first, "retransmission {i}: the stored response");
    }
    let stats = server.endpoint_stats();
    assert_eq!(stats.accepted, 1, "one handshake worked on");
    assert_eq!(
        stats.dropped_over_capacity, 0,
        "duplicates spend no capacity"
    );
    assert_eq!(server.connection_count(), 1);

    // The capacity is spent: a different initiation within the same second
    // is dropped before any Noise work, unanswered.
    let mut other = endpoint(3, |_| {});
    let other_init = initiation(&mut other, &server, now);
    let at = now + Duration::from_millis(900);
    assert!(deliver(&mut server, at, addr(OTHER_CLIENT), &other_init).is_empty());
    let stats = server.endpoint_stats();
    assert_eq!(stats.dropped_over_capacity, 1);
    assert_eq!(stats.accepted, 1);
    assert_eq!(server.connection_count(), 1);

    // The first client still completes with the response it got.
    for d in &first {
        client.handle_datagram(now, addr(SERVER), d);
    }
    let mut connected = false;
    while let Some((_, e)) = client.poll_event() {
        connected |= matches!(e, srudp_proto::Event::Connected { .. });
    }
    assert!(connected, "the stored response completes the handshake");
}

/// The first datagram `client` sends after a CookieReply from `server`:
/// its HandshakeInit again, now with `mac2`.
fn initiation_with_cookie(
    client: &mut Endpoint,
    server: &mut Endpoint,
    now: Instant,
    from: SocketAddr,
) -> Vec<u8> {
    let init = initiation(client, server, now);
    let replies = deliver(server, now, from, &init);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0][1], 4, "a CookieReply");
    client.handle_datagram(now, addr(SERVER), &replies[0]);
    let mut buf = [0u8; 1200];
    let t = client.poll_transmit(now, &mut buf).unwrap();
    assert_ne!(buf[1184..t.size], [0u8; 16], "mac2 set");
    buf[..t.size].to_vec()
}

#[test]
fn with_no_capacity_left_an_initiation_carrying_mac2_is_dropped_and_one_without_gets_a_cookie() {
    let mut server = endpoint(2, |c| {
        c.handshake_rate = 1;
        c.cookie_mode = CookieMode::Always;
    });
    let now = Instant::now();
    // The first cookie holder takes the one handshake of this second.
    let mut first = endpoint(1, |_| {});
    let init = initiation_with_cookie(&mut first, &mut server, now, addr(CLIENT));
    let replies = deliver(&mut server, now, addr(CLIENT), &init);
    assert_eq!(replies[0][1], 2, "a HandshakeResponse");

    // A second cookie holder finds the capacity spent: dropped, unanswered.
    let mut second = endpoint(3, |_| {});
    let init = initiation_with_cookie(&mut second, &mut server, now, addr(OTHER_CLIENT));
    assert!(deliver(&mut server, now, addr(OTHER_CLIENT), &init).is_empty());
    assert_eq!(server.endpoint_stats().dropped_over_capacity, 1);
    // So is one whose mac2 is not even valid (it would get a CookieReply
    // once there is capacity again): nothing is worth checking it for now.
    let mut forged = init.clone();
    forged[1190] ^= 0xff;
    assert!(deliver(&mut server, now, addr(OTHER_CLIENT), &forged).is_empty());
    assert_eq!(server.endpoint_stats().dropped_over_capacity, 2);
    // Without mac2, an initiator still gets its cookie at once.
    let mut third = endpoint(4, |_| {});
    let cookies_before = server.endpoint_stats().cookie_replies_sent;
    let _ = initiation_with_cookie(&mut third, &mut server, now, addr("192.0.2.12:5000"));
    assert_eq!(
        server.endpoint_stats().cookie_replies_sent,
        cookies_before + 1
    );

    // A second later the capacity is back: the forged mac2 gets a
    // CookieReply, the genuine one a HandshakeResponse.
    let later = now + Duration::from_secs(1);
    let replies = deliver(&mut server, later, addr(OTHER_CLIENT), &forged);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0][1], 4, "a CookieReply");
    let replies = deliver(&mut server, later, addr(OTHER_CLIENT), &init);
    assert_eq!(replies[0][1], 2, "a HandshakeResponse");
    assert_eq!(server.endpoint_stats().accepted, 2);
}
