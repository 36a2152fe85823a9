//! Handshake datagrams damaged or forged in flight are dropped and never end
//! a handshake; the genuine datagram still completes it (spec §4.2, §4.3,
//! §4.7, §10.2).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{addr, endpoint, Pair, A_ADDR, B_ADDR};
use srudp_proto::sim::{LinkConfig, SimEvent};
use srudp_proto::{ConnectionHandle, Endpoint, Event, TransportConfig};

/// Offsets of the HandshakeResponse's cleartext header fields (spec §9.3.3).
const RESPONSE_HEADER: [(&str, std::ops::Range<usize>); 4] = [
    ("version", 0..1),
    ("type", 1..2),
    ("initiator_cid", 2..10),
    ("responder_cid", 10..18),
];

/// The next datagram `ep` sends.
fn next_datagram(ep: &mut Endpoint, now: Instant) -> (SocketAddr, Vec<u8>) {
    let mut buf = [0u8; 1500];
    let t = ep.poll_transmit(now, &mut buf).expect("a datagram to send");
    (t.destination, buf[..t.size].to_vec())
}

fn events(ep: &mut Endpoint) -> Vec<(ConnectionHandle, Event)> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

/// Initiator `a` (seed 1) sent its HandshakeInit to responder `b` (seed 2),
/// which answered: returns both endpoints, the init and the response.
fn answered_initiation(now: Instant) -> (Endpoint, Endpoint, ConnectionHandle, Vec<u8>, Vec<u8>) {
    let mut a = endpoint(1, TransportConfig::default());
    let mut b = endpoint(2, TransportConfig::default());
    let ha = a.connect(now, b.public_key(), &[addr(B_ADDR)]).unwrap();
    let (to, init) = next_datagram(&mut a, now);
    assert_eq!(to, addr(B_ADDR));
    b.handle_datagram(now, addr(A_ADDR), &init);
    let (to, response) = next_datagram(&mut b, now);
    assert_eq!(to, addr(A_ADDR));
    (a, b, ha, init, response)
}

#[test]
fn a_response_with_any_bit_flipped_is_dropped_and_the_genuine_one_completes_the_handshake() {
    let now = Instant::now();
    let (mut a, mut b, ha, _init, response) = answered_initiation(now);
    assert!(response.len() > 18, "a header and a Noise message");
    let mut flipped = 0u64;
    for byte in 0..response.len() {
        for bit in 0..8 {
            let mut bad = response.clone();
            bad[byte] ^= 1 << bit;
            a.handle_datagram(now, addr(B_ADDR), &bad);
            let field = RESPONSE_HEADER
                .iter()
                .find(|(_, r)| r.contains(&byte))
                .map_or("noise", |(name, _)| name);
            assert_eq!(
                events(&mut a),
                vec![],
                "a response with bit {bit} of byte {byte} ({field}) flipped was acted on"
            );
            assert!(
                !a.is_closed(ha),
                "{field} byte {byte} bit {bit} closed the connection"
            );
            flipped += 1;
        }
    }
    // Every damaged copy was counted as dropped: by the endpoint (not a
    // response, or no connection for its initiator_cid) or by the connection
    // (failed to authenticate, or responder_cid altered).
    let dropped_by_connection = a.stats(ha).unwrap().dropped_unauthenticated;
    let ep = a.endpoint_stats();
    let dropped_by_endpoint = ep.dropped_malformed + ep.dropped_unknown_connection;
    assert_eq!(
        dropped_by_connection + dropped_by_endpoint,
        flipped,
        "connection {dropped_by_connection}, endpoint {:?}",
        a.endpoint_stats()
    );
    // At least the 8 × 8 responder_cid flips and the Noise flips reached
    // the connection and were dropped there.
    assert!(dropped_by_connection >= 64 + 8 * (response.len() as u64 - 18));

    // The genuine response still completes the handshake, and the
    // initiator's confirmation completes it at the responder.
    a.handle_datagram(now, addr(B_ADDR), &response);
    assert!(
        matches!(events(&mut a).as_slice(), [(h, Event::Connected { incoming: false, .. })] if *h == ha),
        "the genuine response connects the initiator"
    );
    let (to, confirm) = next_datagram(&mut a, now);
    assert_eq!(to, addr(B_ADDR));
    b.handle_datagram(now, addr(A_ADDR), &confirm);
    let hb = match events(&mut b).as_slice() {
        [(h, Event::Connected { incoming: true, .. })] => *h,
        other => panic!("the responder did not connect: {other:?}"),
    };
    // And the connection carries data both ways.
    a.write(ha, b"over the repaired handshake").unwrap();
    let (_, packet) = next_datagram(&mut a, now);
    b.handle_datagram(now, addr(A_ADDR), &packet);
    let mut buf = [0u8; 64];
    let n = b.read(hb, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"over the repaired handshake");
}

#[test]
fn an_initiation_with_any_bit_flipped_is_dropped_and_the_genuine_one_is_answered() {
    let now = Instant::now();
    let mut a = endpoint(3, TransportConfig::default());
    let mut b = endpoint(4, TransportConfig::default());
    let ha = a.connect(now, b.public_key(), &[addr(B_ADDR)]).unwrap();
    let (_, init) = next_datagram(&mut a, now);
    assert_eq!(init.len(), 1200);
    // Every byte up to mac2 is covered by mac1 (spec §4.8): one bit flipped
    // anywhere there makes the responder drop the init and keep nothing.
    for byte in 0..1184 {
        let mut bad = init.clone();
        bad[byte] ^= 1 << (byte % 8);
        b.handle_datagram(now, addr(A_ADDR), &bad);
        assert!(
            b.poll_transmit(now, &mut [0u8; 1500]).is_none(),
            "an init with byte {byte} flipped was answered"
        );
        assert_eq!(b.pending_handshake_count(), 0, "byte {byte}: state kept");
        assert_eq!(b.connection_count(), 0, "byte {byte}: connection made");
    }
    // The genuine init is answered and the handshake completes.
    b.handle_datagram(now, addr(A_ADDR), &init);
    let (_, response) = next_datagram(&mut b, now);
    a.handle_datagram(now, addr(B_ADDR), &response);
    assert!(
        matches!(events(&mut a).as_slice(), [(h, Event::Connected { .. })] if *h == ha),
        "the initiator connects"
    );
    let (_, confirm) = next_datagram(&mut a, now);
    b.handle_datagram(now, addr(A_ADDR), &confirm);
    assert!(
        matches!(
            events(&mut b).as_slice(),
            [(_, Event::Connected { incoming: true, .. })]
        ),
        "the responder connects"
    );
}

#[test]
fn a_response_altered_in_every_copy_until_the_timeout_ends_in_handshake_timeout_not_an_error() {
    // An on-path attacker that alters every response's responder_cid can
    // delay the handshake (it can always drop), but the initiator ends it
    // with HandshakeTimeout, as if the responses were lost.
    let t0 = Instant::now();
    let (mut a, mut b, ha, _init, _) = answered_initiation(t0);
    let mut now = t0;
    let mut answered = 0;
    while let Some(next) = a.poll_timeout() {
        if next > t0 + Duration::from_secs(30) {
            break;
        }
        now = now.max(next);
        a.handle_timeout(now);
        let mut buf = [0u8; 1500];
        while let Some(t) = a.poll_transmit(now, &mut buf) {
            b.handle_datagram(now, addr(A_ADDR), &buf[..t.size]);
            let mut rbuf = [0u8; 1500];
            while let Some(r) = b.poll_transmit(now, &mut rbuf) {
                let mut altered = rbuf[..r.size].to_vec();
                altered[17] ^= 0x01; // last byte of responder_cid
                a.handle_datagram(now, addr(B_ADDR), &altered);
                answered += 1;
            }
        }
        if a.is_closed(ha) {
            break;
        }
    }
    assert!(answered >= 5, "only {answered} responses");
    let evs = events(&mut a);
    assert!(
        matches!(
            evs.as_slice(),
            [(
                _,
                Event::Closed {
                    reason: srudp_proto::CloseReason::HandshakeTimeout
                }
            )]
        ),
        "{evs:?}"
    );
    assert_eq!(
        a.stats(ha).map(|s| s.dropped_unauthenticated),
        Some(answered)
    );
}

#[test]
fn heavy_corruption_during_the_handshake_still_connects_both_sides() {
    // Half of all datagrams in both directions get one bit flipped (on a's
    // access link, which the path crosses once each way): many responses
    // are damaged, some in their cleartext header, and both sides still
    // connect. A round trip gets through a quarter of the time, so the
    // handshake gets 30 s instead of 10 s: enough retries that no seed
    // fails for want of one.
    let mut dropped = 0;
    let transport = TransportConfig {
        handshake_timeout: Duration::from_secs(30),
        ..TransportConfig::default()
    };
    for seed in 0..24 {
        let link = LinkConfig::default()
            .with_latency(Duration::from_millis(10))
            .with_corrupt(0.5);
        let mut p = Pair::public_with(
            300 + seed,
            link,
            LinkConfig::default().with_latency(Duration::from_millis(10)),
            transport.clone(),
        );
        let ha = p.connect_a_to_b();
        let (a, b) = (p.a, p.b);
        let mut connected = [false; 2];
        let mut closed = Vec::new();
        p.sim.run_until(Duration::from_secs(30), |_, evs| {
            for SimEvent { node, event, .. } in evs {
                match event {
                    Event::Connected { .. } => connected[usize::from(*node == b)] = true,
                    Event::Closed { reason } => closed.push((*node == a, reason.clone())),
                    _ => {}
                }
            }
            connected == [true, true]
        });
        assert_eq!(closed, vec![], "seed {seed}: a connection closed");
        assert_eq!(connected, [true, true], "seed {seed}: both sides connect");
        dropped += p.sim.endpoint(a).stats(ha).unwrap().dropped_unauthenticated;
    }
    assert!(dropped > 0, "no damaged response reached a connection");
}
