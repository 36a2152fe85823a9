//! Endpoint scenarios that need internals: an authenticated but hostile
//! peer (its packets forged with the real keys), and the endpoint's own
//! invariants checked after every step.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::config::TransportConfig;
use crate::connection::FRAGMENT_OVERHEAD;
use crate::keys::Keypair;
use crate::wire::{Frame, StreamFrame, Writer};
use crate::{CloseReason, Event};

const A: &str = "192.0.2.1:1000";
const B: &str = "198.51.100.2:2000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn endpoint(seed: u64, transport: TransportConfig) -> Endpoint {
    let mut rng = Rng::from_seed(seed);
    let mut config = EndpointConfig::new(Keypair::generate(&mut rng));
    config.rng_seed = Some(seed + 1000);
    config.transport = Arc::new(transport);
    Endpoint::new(config).unwrap()
}

/// Two endpoints joined by a lossless wire, driven by hand.
struct DirectPair {
    a: Endpoint,
    b: Endpoint,
    now: Instant,
    /// Hand datagrams over with `handle_datagram_in_place`.
    in_place: bool,
}

impl DirectPair {
    /// Carries every datagram across until both are quiet; checks invariants.
    fn settle(&mut self) {
        let mut buf = [0u8; MAX_DATAGRAM_SIZE];
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit(self.now, &mut buf) {
                if self.in_place {
                    self.b
                        .handle_datagram_in_place(self.now, addr(A), &mut buf[..t.size]);
                } else {
                    self.b.handle_datagram(self.now, addr(A), &buf[..t.size]);
                }
                moved = true;
            }
            while let Some(t) = self.b.poll_transmit(self.now, &mut buf) {
                if self.in_place {
                    self.a
                        .handle_datagram_in_place(self.now, addr(B), &mut buf[..t.size]);
                } else {
                    self.a.handle_datagram(self.now, addr(B), &buf[..t.size]);
                }
                moved = true;
            }
            self.a.assert_invariants();
            self.b.assert_invariants();
            if !moved {
                return;
            }
        }
        panic!("the pair never went quiet");
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.settle();
    }

    /// `a` connects to `b`; returns both handles once connected.
    fn connect(transport_b: TransportConfig) -> (DirectPair, ConnectionHandle, ConnectionHandle) {
        Self::connect_with(transport_b, false)
    }

    /// As `connect`, every datagram (the handshake's too) handed over with
    /// `handle_datagram_in_place` if `in_place`.
    fn connect_with(
        transport_b: TransportConfig,
        in_place: bool,
    ) -> (DirectPair, ConnectionHandle, ConnectionHandle) {
        let mut p = DirectPair {
            a: endpoint(1, TransportConfig::default()),
            b: endpoint(2, transport_b),
            now: Instant::now(),
            in_place,
        };
        let ha = p.a.connect(p.now, p.b.public_key(), &[addr(B)]).unwrap();
        p.settle();
        let mut hb = None;
        while let Some((h, e)) = p.b.poll_event() {
            if matches!(e, Event::Connected { .. }) {
                hb = Some(h);
            }
        }
        (p, ha, hb.expect("b accepted"))
    }

    /// `a` sends `frames` to `b` in one authenticated packet.
    fn forge(&mut self, ha: ConnectionHandle, frames: &[Frame<'_>]) {
        let mut plain = [0u8; 1166];
        let mut w = Writer::new(&mut plain);
        for f in frames {
            f.emit(&mut w).unwrap();
        }
        let len = w.len();
        let mut dg = [0u8; MAX_DATAGRAM_SIZE];
        let n = self
            .a
            .seal_for_peer(self.now, ha, &plain[..len], &mut dg)
            .unwrap();
        self.b.handle_datagram(self.now, addr(A), &dg[..n]);
        self.b.assert_invariants();
    }
}

#[test]
fn one_byte_fragments_from_an_authenticated_peer_stay_within_the_buffer_limit() {
    let window = 64 * 1024;
    let transport = TransportConfig {
        receive_window: window,
        max_receive_window: window,
        max_buffered_bytes: window,
        ..TransportConfig::default()
    };
    let (mut p, ha, hb) = DirectPair::connect(transport);
    let byte = [0x55u8];
    for i in 0..window / 2 {
        let frame = Frame::Stream(StreamFrame {
            offset: 1 + 2 * i,
            fin: false,
            data: &byte,
        });
        p.forge(ha, &[frame]);
    }
    let stats = p.b.stats(hb).unwrap();
    let admitted = window / (1 + FRAGMENT_OVERHEAD);
    assert_eq!(stats.dropped_over_limit, window / 2 - admitted, "{stats:?}");
    assert!(!p.b.is_closed(hb), "a drop, not a close");
    p.settle();
    assert!(!p.a.is_closed(ha));
}

#[test]
fn the_pending_handshake_count_follows_confirmation_and_timeout() {
    let mut p = DirectPair {
        a: endpoint(1, TransportConfig::default()),
        b: endpoint(2, TransportConfig::default()),
        now: Instant::now(),
        in_place: false,
    };
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    // Three initiations from three strangers who never confirm.
    for seed in 10..13 {
        let mut stranger = endpoint(seed, TransportConfig::default());
        stranger
            .connect(p.now, p.b.public_key(), &[addr(B)])
            .unwrap();
        let t = stranger.poll_transmit(p.now, &mut buf).unwrap();
        let from: SocketAddr = format!("203.0.113.{seed}:9").parse().unwrap();
        p.b.handle_datagram(p.now, from, &buf[..t.size]);
        p.b.assert_invariants();
    }
    assert_eq!(p.b.pending_handshake_count(), 3);
    // One genuine initiator confirms: it no longer counts.
    p.a.connect(p.now, p.b.public_key(), &[addr(B)]).unwrap();
    p.settle();
    assert_eq!(p.b.pending_handshake_count(), 3);
    assert_eq!(p.b.connection_count(), 4);
    // The strangers' handshakes expire.
    p.advance(TransportConfig::default().handshake_timeout);
    assert_eq!(p.b.pending_handshake_count(), 0);
    assert_eq!(p.b.connection_count(), 1);
}

/// A endpoint punching toward `n` peers that never answer, each connection
/// starting at a scrambled time, so handle order and deadline order differ.
fn punching_toward_silent_peers(
    n: u64,
    t0: Instant,
) -> (Endpoint, Vec<(Instant, ConnectionHandle)>) {
    let mut ep = endpoint(1, TransportConfig::default());
    let timeout = TransportConfig::default().handshake_timeout;
    let mut expected = Vec::new();
    for i in 0..n {
        let peer = Keypair::generate(&mut Rng::from_seed(100 + i)).public();
        let punch_at = t0 + Duration::from_millis((i * 7919) % 1000);
        let options = ConnectOptions {
            peer,
            candidates: vec![addr(B)],
            pattern: None,
            ticket: None,
        };
        let handle = ep.connect_at(t0, options, punch_at).unwrap();
        expected.push((punch_at + timeout, handle));
    }
    expected.sort();
    (ep, expected)
}

#[test]
fn timers_of_many_connections_fire_in_deadline_order_exactly_once() {
    let t0 = Instant::now();
    let (mut ep, expected) = punching_toward_silent_peers(300, t0);
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    let mut timed_out = Vec::new();
    let mut now = t0;
    for _ in 0..100_000 {
        while ep.poll_transmit(now, &mut buf).is_some() {}
        while let Some((handle, event)) = ep.poll_event() {
            if let Event::Closed { reason } = event {
                assert_eq!(reason, CloseReason::HandshakeTimeout);
                timed_out.push((now, handle));
            }
        }
        ep.assert_invariants();
        let Some(next) = ep.poll_timeout() else { break };
        assert!(next >= now, "deadlines never lie in the past");
        now = next;
        ep.handle_timeout(now);
    }
    assert_eq!(
        timed_out, expected,
        "at its deadline, ties by handle, once each"
    );
    // Over but not released: still held, with no timer left.
    assert_eq!(ep.connection_count(), 300);
    assert_eq!(ep.timers.len(), 0);
    for (_, handle) in expected {
        ep.release(now, handle);
    }
    ep.assert_invariants();
    assert_eq!(ep.connection_count(), 0);
    assert_eq!(ep.poll_timeout(), None);
}

#[test]
fn a_deadline_moved_earlier_wakes_the_endpoint_earlier_and_only_then() {
    let t0 = Instant::now();
    let (mut ep, _) = punching_toward_silent_peers(3, t0);
    let first_punch = t0 + Duration::from_millis((2 * 7919) % 1000);
    assert_eq!(ep.poll_timeout(), Some(first_punch.min(t0)));
    // A late candidate makes a connection whose punch was hours away punch
    // now; its old deadline must not wake the endpoint again.
    let options = ConnectOptions {
        peer: Keypair::generate(&mut Rng::from_seed(7)).public(),
        candidates: vec![addr(B)],
        pattern: None,
        ticket: None,
    };
    let later = ep
        .connect_at(t0, options, t0 + Duration::from_secs(3600))
        .unwrap();
    let now = t0 + Duration::from_millis(1);
    ep.handle_timeout(now);
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    while ep.poll_transmit(now, &mut buf).is_some() {}
    ep.assert_invariants();
    assert!(ep.add_candidate(now, later, addr(A)));
    ep.assert_invariants();
    assert_eq!(ep.poll_timeout(), Some(now), "moved earlier");
    ep.handle_timeout(now);
    let mut sent = Vec::new();
    while let Some(t) = ep.poll_transmit(now, &mut buf) {
        sent.push(t.destination);
    }
    // Only `later` was due: its first probe goes to its first candidate.
    assert_eq!(sent, vec![addr(B)]);
    ep.assert_invariants();
    // Releasing it removes its deadlines from the queue.
    ep.release(now, later);
    ep.assert_invariants();
    assert_eq!(ep.timers.len(), 3);
}

#[test]
fn a_quiet_endpoint_asks_no_connection_to_transmit() {
    let (mut p, ha, _) = DirectPair::connect(TransportConfig::default());
    p.advance(Duration::from_millis(100));
    assert!(
        p.a.ready.is_empty() && p.b.ready.is_empty(),
        "no connection left to ask"
    );
    // A write makes exactly that connection ready again.
    p.a.write(ha, b"x").unwrap();
    assert_eq!(p.a.ready.iter().copied().collect::<Vec<_>>(), vec![ha]);
    p.settle();
    assert!(p.a.ready.is_empty());
}

#[test]
fn a_quiet_connection_frees_its_buffers_and_allocates_again_for_new_data() {
    let (mut p, ha, hb) = DirectPair::connect(TransportConfig::default());
    let holds = |ep: &Endpoint, h: ConnectionHandle| ep.connections[&h].conn.holds_idle_buffers();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let round = |p: &mut DirectPair| {
        assert!(
            transfer(p, ha, hb, &data) == data,
            "every byte arrives, in order"
        );
    };
    round(&mut p);
    p.advance(Duration::from_millis(50));
    assert!(
        holds(&p.a, ha) && holds(&p.b, hb),
        "buffers kept right after the transfer"
    );
    p.advance(crate::connection::IDLE_RELEASE_DELAY);
    assert!(
        !holds(&p.a, ha),
        "the sender's buffers are freed once quiet"
    );
    assert!(
        !holds(&p.b, hb),
        "the receiver's buffers are freed once quiet"
    );
    // The connection still works, and allocates again for new data.
    round(&mut p);
}

/// Sends `data` from `a` to `b` in 1 ms steps; returns what `b` read.
fn transfer(
    p: &mut DirectPair,
    ha: ConnectionHandle,
    hb: ConnectionHandle,
    data: &[u8],
) -> Vec<u8> {
    let mut written = 0;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    for _ in 0..10_000 {
        if written < data.len() {
            written += p.a.write(ha, &data[written..]).unwrap_or(0);
        }
        p.advance(Duration::from_millis(1));
        while let Ok(n) = p.b.read(hb, &mut chunk) {
            if n == 0 {
                break;
            }
            received.extend_from_slice(&chunk[..n]);
        }
        if received.len() >= data.len() {
            break;
        }
    }
    received
}

#[test]
fn datagrams_opened_in_place_carry_the_same_stream_and_counters_as_copied_ones() {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let run = |in_place: bool| {
        let (mut p, ha, hb) = DirectPair::connect_with(TransportConfig::default(), in_place);
        let received = transfer(&mut p, ha, hb, &data);
        assert!(
            received == data,
            "every byte arrives, in order (in_place: {in_place})"
        );
        (p.a.stats(ha).unwrap(), p.b.stats(hb).unwrap())
    };
    let copied = run(false);
    let opened_in_place = run(true);
    assert!(copied.1.packets_received > 200, "{copied:?}");
    assert_eq!(
        copied, opened_in_place,
        "the same seeds and times give the same connection on both paths"
    );
}

#[test]
fn a_tampered_or_replayed_datagram_opened_in_place_is_dropped_and_the_stream_goes_on() {
    let (mut p, ha, hb) = DirectPair::connect_with(TransportConfig::default(), true);
    p.a.write(ha, b"hello").unwrap();
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    let t = p.a.poll_transmit(p.now, &mut buf).expect("a data packet");
    let genuine = buf[..t.size].to_vec();
    let unauthenticated = |p: &DirectPair| p.b.stats(hb).unwrap().dropped_unauthenticated;
    let replayed = |p: &DirectPair| p.b.stats(hb).unwrap().dropped_replayed;

    let mut tampered = genuine.clone();
    *tampered.last_mut().unwrap() ^= 1;
    p.b.handle_datagram_in_place(p.now, addr(A), &mut tampered);
    assert_eq!(unauthenticated(&p), 1, "a bad tag does not open");
    assert_eq!(p.b.read(hb, &mut [0u8; 16]), Err(ReadError::Blocked));

    let mut copy = genuine.clone();
    p.b.handle_datagram_in_place(p.now, addr(A), &mut copy);
    let mut out = [0u8; 16];
    assert_eq!(p.b.read(hb, &mut out), Ok(5));
    assert_eq!(&out[..5], b"hello", "the genuine datagram still opens");

    let mut again = genuine.clone();
    p.b.handle_datagram_in_place(p.now, addr(A), &mut again);
    assert_eq!(replayed(&p), 1, "a replay is dropped before it is opened");
    assert_eq!(unauthenticated(&p), 1);
    p.b.assert_invariants();
    p.settle();
    assert!(
        !p.b.is_closed(hb) && !p.a.is_closed(ha),
        "the connection goes on"
    );
}

#[test]
fn packets_that_arrive_before_the_application_looks_queue_one_readable() {
    let (mut p, ha, hb) = DirectPair::connect(TransportConfig::default());
    while p.b.poll_event().is_some() {}
    let readables = |p: &mut DirectPair| {
        std::iter::from_fn(|| p.b.poll_event())
            .filter(|(h, e)| *h == hb && *e == Event::Readable)
            .count()
    };
    let data = vec![7u8; 20_000];
    assert_eq!(p.a.write(ha, &data), Ok(data.len()));
    p.settle();
    let received = p.b.stats(hb).unwrap().packets_received;
    assert!(received >= 15, "many packets arrived: {received}");
    assert_eq!(readables(&mut p), 1, "one Readable for the lot");
    let mut buf = vec![0u8; 32_768];
    assert_eq!(
        p.b.read(hb, &mut buf),
        Ok(data.len()),
        "all of it is readable"
    );
    // New data after the application looked: a new Readable.
    assert_eq!(p.a.write(ha, b"more"), Ok(4));
    p.settle();
    assert_eq!(readables(&mut p), 1);
    assert_eq!(p.b.read(hb, &mut buf), Ok(4));
}

#[test]
fn every_frame_of_a_packet_is_acted_on_however_many_it_holds() {
    // Few frames are kept from the validation pass; more are parsed again.
    for count in [1u64, 3, 6, 7, 12, 40] {
        let (mut p, ha, hb) = DirectPair::connect(TransportConfig::default());
        let data: Vec<u8> = (0..count * 10).map(|i| (i % 251) as u8).collect();
        let frames: Vec<Frame<'_>> = data
            .chunks(10)
            .enumerate()
            .map(|(i, chunk)| {
                Frame::Stream(StreamFrame {
                    offset: i as u64 * 10,
                    fin: i as u64 == count - 1,
                    data: chunk,
                })
            })
            .collect();
        p.forge(ha, &frames);
        let mut buf = vec![0u8; 1024];
        assert_eq!(p.b.read(hb, &mut buf), Ok(data.len()), "{count} frames");
        assert_eq!(&buf[..data.len()], &data[..]);
        assert_eq!(
            p.b.read(hb, &mut buf),
            Ok(0),
            "{count} frames: the end of stream"
        );
    }
}

#[test]
fn readable_keeps_its_place_among_the_other_events() {
    // Data sent with the initiator's first packet: the responder learns of
    // the connection first, then of the data, then of the stream's end.
    let mut p = DirectPair {
        a: endpoint(1, TransportConfig::default()),
        b: endpoint(2, TransportConfig::default()),
        now: Instant::now(),
        in_place: false,
    };
    let ha = p.a.connect(p.now, p.b.public_key(), &[addr(B)]).unwrap();
    assert_eq!(p.a.write(ha, b"early"), Ok(5));
    p.a.finish(ha).unwrap();
    p.settle();
    let events: Vec<Event> = std::iter::from_fn(|| p.b.poll_event())
        .map(|(_, e)| e)
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            Event::Connected { .. } => "connected",
            Event::Readable => "readable",
            Event::PeerFinished => "peer finished",
            _ => "other",
        })
        .filter(|k| *k != "other")
        .collect();
    assert_eq!(
        kinds,
        ["connected", "readable", "peer finished"],
        "{events:?}"
    );
}

/// A HandshakeInit toward `to` from `from`'s key whose transport
/// parameters are `params` (what an initiator writes, with any bits).
fn init_with_params(
    from: &Endpoint,
    to: &PublicKey,
    cid: ConnectionId,
    params: &TransportParams,
) -> Vec<u8> {
    let mut handshake = Handshake::initiator(
        HandshakePattern::NK,
        from.config.cipher,
        &from.config.keypair,
        to,
        cid,
        [cid.0 as u8; 32],
    )
    .unwrap();
    let mut payload = [0u8; MAX_PARAMS_LEN];
    let n = params.encode(&mut payload).unwrap();
    let mut noise = [0u8; HANDSHAKE_INIT_SIZE];
    let noise_len = handshake.write(&payload[..n], &mut noise).unwrap();
    let mut init = vec![0u8; HANDSHAKE_INIT_SIZE];
    HandshakeInit {
        pattern: HandshakePattern::NK,
        cipher: from.config.cipher,
        sender_cid: cid,
        noise: &noise[..noise_len],
        mac1: [0; MAC_LEN],
        mac2: [0; MAC_LEN],
    }
    .emit(&mut init)
    .unwrap();
    MacKeys::for_responder(to).stamp_mac1(&mut init);
    init
}

#[test]
fn an_init_whose_parameters_say_refused_is_dropped_and_an_honest_one_still_connects() {
    // Spec §4.3: `refused` belongs to a response; in an init it makes the
    // parameters invalid, so the responder drops the init: no answer, no
    // state.
    let a = endpoint(1, TransportConfig::default());
    let mut b = endpoint(2, TransportConfig::default());
    let now = Instant::now();
    let cid = ConnectionId(0x1234);
    let mut params = a.local_params(cid);
    params.refused = true;
    let init = init_with_params(&a, &b.public_key(), cid, &params);
    let before = b.endpoint_stats().dropped_bad_handshake;
    b.handle_datagram(now, addr(A), &init);
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    assert!(b.poll_transmit(now, &mut buf).is_none(), "no answer");
    assert_eq!(b.connection_count(), 0, "no state");
    assert_eq!(b.endpoint_stats().dropped_bad_handshake, before + 1);
    assert!(b.poll_event().is_none());
    // The same init without the bit is answered, and makes a connection.
    let cid = ConnectionId(0x5678);
    params.refused = false;
    params.cid = cid;
    let init = init_with_params(&a, &b.public_key(), cid, &params);
    b.handle_datagram(now, addr(A), &init);
    assert!(b.poll_transmit(now, &mut buf).is_some(), "answered");
    assert_eq!(b.connection_count(), 1);
}

#[test]
fn an_authenticated_data_packet_with_an_empty_plaintext_is_ignored_not_an_error() {
    // Spec §9.4.1: senders never send one; a receiver treats it like a
    // packet of padding: not ack-eliciting, no error, the stream goes on.
    let (mut p, ha, hb) = DirectPair::connect(TransportConfig::default());
    p.forge(ha, &[]);
    assert!(!p.b.is_closed(hb), "not a protocol violation");
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    assert!(
        p.b.poll_transmit(p.now, &mut buf).is_none(),
        "not ack-eliciting: nothing is sent at once"
    );
    p.a.write(ha, b"after the empty packet").unwrap();
    p.settle();
    let mut got = [0u8; 64];
    let n = p.b.read(hb, &mut got).unwrap();
    assert_eq!(&got[..n], b"after the empty packet");
    assert!(!p.a.is_closed(ha) && !p.b.is_closed(hb));
}

#[test]
fn a_rendezvous_application_close_code_travels_as_256_plus_the_code() {
    // Spec §11.1 and §6.6: the rendezvous's "malformed message" is
    // application code 1, wire code 257 (not the transport's wire code 1,
    // PROTOCOL_VIOLATION); the peer reports the application code.
    let (mut p, ha, hb) = DirectPair::connect(TransportConfig::default());
    let code = crate::rendezvous::close_code::MALFORMED_MESSAGE;
    p.b.close(p.now, hb, code, b"malformed");
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    let t = p.b.poll_transmit(p.now, &mut buf).expect("the CLOSE");
    let plain = p.a.open_from_peer(ha, &buf[..t.size]).expect("authentic");
    let close = crate::wire::FrameIter::new(&plain)
        .flatten()
        .find_map(|f| match f {
            Frame::Close(c) => Some(c.code),
            _ => None,
        });
    assert_eq!(close, Some(257));
    p.a.handle_datagram(p.now, addr(B), &buf[..t.size]);
    let mut reason = None;
    while let Some((h, e)) = p.a.poll_event() {
        if let (true, Event::Closed { reason: r }) = (h == ha, e) {
            reason = Some(r);
        }
    }
    assert_eq!(
        reason,
        Some(CloseReason::PeerClose {
            code: 1,
            reason: "malformed".into()
        })
    );
}
