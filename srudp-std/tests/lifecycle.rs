//! A connection's life over real loopback sockets: simultaneous open,
//! refusal, handshake and idle timeouts, graceful close, abort, and the
//! endpoint's own shutdown.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::UdpSocket;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use srudp_std::{
    close_reason, AcceptPolicy, CloseReason, ConnectOptions, Endpoint, HandshakePattern,
    TransportConfig,
};
use srudp_testkit::{ArmedLossRelay, ImpairingRelay, Impairment};

use common::{addr_of, assert_same_bytes, bind, config, config_with, payload, short_idle, V4};

/// Both sides call `connect` toward each other at the same moment, with IK
/// as a simultaneous open requires (spec §4.5: an anonymous NK initiation is
/// never matched to a connect). The relay
/// delays each datagram by 50 ms so that each side's first handshake meets
/// the other side already punching (as across two NATs), whatever the
/// scheduling of the two threads.
fn simultaneous_open(pattern: HandshakePattern, seed: u64) {
    let a = bind(V4, seed);
    let b = bind(V4, seed + 1);
    let relay = ImpairingRelay::start(
        addr_of(&a),
        addr_of(&b),
        Impairment {
            delay: Duration::from_millis(50),
            ..Impairment::default()
        },
    )
    .unwrap();
    // Each side reaches the other at the relay's address.
    let via = relay.addr();
    let barrier = Barrier::new(2);
    let open = |me: &Endpoint, peer: &Endpoint| {
        barrier.wait();
        me.connect_with(ConnectOptions {
            peer: peer.public_key(),
            candidates: vec![via],
            pattern: Some(pattern),
            ticket: None,
        })
    };
    let (sa, sb) = std::thread::scope(|s| {
        let ta = s.spawn(|| open(&a, &b));
        let tb = s.spawn(|| open(&b, &a));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    assert_eq!(sa.peer_public_key(), Some(b.public_key()));
    assert_eq!(sb.peer_public_key(), Some(a.public_key()));

    // The two streams are the two ends of one connection.
    sa.send_all(b"from a").unwrap();
    sa.shutdown().unwrap();
    sb.send_all(b"from b").unwrap();
    sb.shutdown().unwrap();
    let (mut at_a, mut at_b) = (Vec::new(), Vec::new());
    (&sa).read_to_end(&mut at_a).unwrap();
    (&sb).read_to_end(&mut at_b).unwrap();
    assert_eq!(at_a, b"from b");
    assert_eq!(at_b, b"from a");

    // Nobody was left with a second, accepted connection.
    for side in [&a, &b] {
        let err = side.accept_timeout(Duration::from_millis(200)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert_eq!(side.stats().accepted, 0);
    }
    sa.close().unwrap();
    sb.close().unwrap();
}

#[test]
fn both_sides_connecting_at_once_with_ik_yields_one_connection_each() {
    simultaneous_open(HandshakePattern::IK, 110);
}

#[test]
fn a_vanished_peer_is_reported_as_a_timeout_within_the_idle_timeout() {
    let idle = Duration::from_millis(800);
    let a = Endpoint::bind(V4, config_with(120, short_idle(idle))).unwrap();
    let b = Endpoint::bind(V4, config_with(121, short_idle(idle))).unwrap();
    let relay = ImpairingRelay::start(addr_of(&a), addr_of(&b), Impairment::default()).unwrap();
    let accepted = std::thread::spawn({
        let b = b.clone();
        move || b.accept().unwrap().0
    });
    let sa = a.connect(b.public_key(), &[relay.addr()]).unwrap();
    let sb = accepted.join().unwrap();
    sa.send_all(b"ping").unwrap();
    assert_eq!(sb.recv(16).unwrap(), b"ping");

    // The path goes silent: neither side hears from the other again.
    drop(relay);
    let vanished = Instant::now();
    for (side, stream) in [("a", &sa), ("b", &sb)] {
        let err = stream.recv(16).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{side}: {err}");
        assert_eq!(
            close_reason(&err),
            Some(&CloseReason::IdleTimeout),
            "{side}"
        );
        assert!(stream.is_closed());
        // Writing to the dead connection fails the same way.
        assert_eq!(stream.send(b"x").unwrap_err().kind(), ErrorKind::TimedOut);
    }
    // A generous bound: the idle timer plus scheduling slack on a busy machine.
    assert!(
        vanished.elapsed() < idle + Duration::from_secs(3),
        "reported after {:?}",
        vanished.elapsed()
    );
}

#[test]
fn connecting_to_an_address_that_never_answers_times_out() {
    let transport = TransportConfig {
        handshake_timeout: Duration::from_millis(600),
        ..TransportConfig::default()
    };
    let a = Endpoint::bind(V4, config_with(130, transport)).unwrap();
    let silent = UdpSocket::bind(V4).unwrap();
    let nobody = bind(V4, 131).public_key();
    let err = a
        .connect(nobody, &[silent.local_addr().unwrap()])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(close_reason(&err), Some(&CloseReason::HandshakeTimeout));
}

#[test]
fn a_refusing_peer_is_connection_refused() {
    let mut cfg = config(140);
    cfg.accept = AcceptPolicy::RefuseAll;
    let server = Endpoint::bind(V4, cfg).unwrap();
    let client = bind(V4, 141);
    let err = client
        .connect(server.public_key(), &[addr_of(&server)])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(close_reason(&err), Some(&CloseReason::Refused));
    assert_eq!(server.stats().refused, 1);
}

#[test]
fn ik_accept_list_admits_listed_keys_and_reports_their_identity() {
    let client = bind(V4, 151);
    let mut cfg = config(150);
    cfg.accept = AcceptPolicy::AcceptKeys(vec![client.public_key()]);
    let server = Endpoint::bind(V4, cfg).unwrap();
    let accepted = std::thread::spawn({
        let server = server.clone();
        move || server.accept().unwrap()
    });
    let stream = client
        .connect_with(ConnectOptions {
            peer: server.public_key(),
            candidates: vec![addr_of(&server)],
            pattern: Some(HandshakePattern::IK),
            ticket: None,
        })
        .unwrap();
    let (_, from, identity) = accepted.join().unwrap();
    assert_eq!(from, addr_of(&client));
    assert_eq!(identity, Some(client.public_key()));
    // An anonymous (NK) initiator is not on the list.
    let stranger = bind(V4, 152);
    let err = stranger
        .connect(server.public_key(), &[addr_of(&server)])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    stream.close().unwrap();
}

#[test]
fn graceful_close_delivers_everything_written_before_it() {
    let server = bind(V4, 160);
    let client = bind(V4, 161);
    let payload = payload(160, 3 << 20);
    let reader = std::thread::spawn({
        let server = server.clone();
        move || {
            let (stream, _, _) = server.accept().unwrap();
            let mut got = Vec::new();
            (&stream).read_to_end(&mut got).unwrap();
            stream.close().unwrap();
            got
        }
    });
    let stream = client
        .connect(server.public_key(), &[addr_of(&server)])
        .unwrap();
    stream.send_all(&payload).unwrap();
    // Returns once the peer acknowledged every byte.
    stream.close().unwrap();
    assert!(stream.is_closed());
    assert_same_bytes(&reader.join().unwrap(), &payload, "after close");
}

#[test]
fn a_dropped_stream_and_endpoint_still_deliver_their_data() {
    let server = bind(V4, 170);
    let payload = payload(170, 1 << 20);
    let reader = std::thread::spawn({
        let server = server.clone();
        move || {
            let (stream, _, _) = server.accept().unwrap();
            let mut got = Vec::new();
            (&stream).read_to_end(&mut got).unwrap();
            got
        }
    });
    {
        let client = bind(V4, 171);
        let mut stream = client
            .connect(server.public_key(), &[addr_of(&server)])
            .unwrap();
        stream.write_all(&payload).unwrap();
        // Neither drop blocks on the peer beyond the close timeout; the last
        // one waits for the data to be acknowledged, then joins the driver.
    }
    assert_same_bytes(&reader.join().unwrap(), &payload, "after drop");
}

#[test]
fn a_peer_abort_is_connection_reset_with_its_code_and_reason() {
    let server = bind(V4, 180);
    let client = bind(V4, 181);
    let aborter = std::thread::spawn({
        let server = server.clone();
        move || {
            let (stream, _, _) = server.accept().unwrap();
            assert_eq!(stream.recv(5).unwrap(), b"hello");
            stream.abort(7, b"going away");
            // This side ended it: ConnectionAborted, as in every adapter.
            let err = stream.recv(5).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionAborted);
            assert_eq!(
                close_reason(&err),
                Some(&CloseReason::LocalClose { code: 7 })
            );
        }
    });
    let stream = client
        .connect(server.public_key(), &[addr_of(&server)])
        .unwrap();
    stream.send_all(b"hello").unwrap();
    let err = stream.recv(16).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert_eq!(
        close_reason(&err),
        Some(&CloseReason::PeerClose {
            code: 7,
            reason: "going away".into()
        })
    );
    let err = stream.send(b"more").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    // Closing after the peer's abort reports it too.
    assert_eq!(
        stream.close().unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    aborter.join().unwrap();
}

#[test]
fn closing_the_endpoint_wakes_every_blocked_call() {
    let server = bind(V4, 190);
    let client = bind(V4, 191);
    let blocked_accept = std::thread::spawn({
        let client = client.clone();
        move || client.accept().unwrap_err().kind()
    });
    let accepted = std::thread::spawn({
        let server = server.clone();
        move || server.accept().unwrap().0
    });
    let stream = client
        .connect(server.public_key(), &[addr_of(&server)])
        .unwrap();
    let peer = accepted.join().unwrap();
    let blocked_read = std::thread::scope(|s| {
        let reading = s.spawn(|| stream.recv(16));
        std::thread::sleep(Duration::from_millis(100));
        client.close();
        reading.join().unwrap()
    });
    // A connection closed on this side is `ConnectionAborted`, as in every
    // adapter; the closed endpoint itself is `NotConnected`.
    assert_eq!(
        blocked_read.unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
    assert_eq!(blocked_accept.join().unwrap(), ErrorKind::NotConnected);
    assert_eq!(
        client
            .connect(server.public_key(), &[addr_of(&server)])
            .unwrap_err()
            .kind(),
        ErrorKind::NotConnected
    );
    // The peer hears of it: the endpoint's CLOSE reaches it.
    let err = peer.recv(16).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}

#[test]
fn a_dual_stack_endpoint_accepts_ipv4_and_ipv6_peers() {
    let Ok(server) = Endpoint::bind("[::]:0", config(200)) else {
        println!("skipped: [::] cannot be bound on this machine");
        return;
    };
    let port = addr_of(&server).port();
    let v4 = bind(V4, 201);
    let via_v4 = v4.connect(server.public_key(), &[([127, 0, 0, 1], port).into()]);
    let stream = match via_v4 {
        Ok(stream) => stream,
        Err(e) => {
            println!("skipped: the OS refuses dual-stack sockets ({e})");
            return;
        }
    };
    let (accepted, from, _) = server.accept().unwrap();
    assert_eq!(from, addr_of(&v4), "the peer is reported as plain IPv4");
    stream.send_all(b"four").unwrap();
    assert_eq!(accepted.recv(8).unwrap(), b"four");
    if common::ipv6_available("dual stack, IPv6 half") {
        let v6 = bind(common::V6, 202);
        let s6 = v6
            .connect(
                server.public_key(),
                &[(std::net::Ipv6Addr::LOCALHOST, port).into()],
            )
            .unwrap();
        let (a6, _, _) = server.accept().unwrap();
        s6.send_all(b"six").unwrap();
        assert_eq!(a6.recv(8).unwrap(), b"six");
    }
}

#[test]
fn a_late_connect_takes_the_connection_the_peer_already_opened() {
    // Right away (srudp-proto adopts the handshake it answered, or the
    // connection is already queued for accept, depending on timing), and
    // once the connection is surely established and queued (the adapter
    // hands it over from its accept queue). Only with IK: an anonymous NK
    // initiator is never taken for a key (spec §4.5).
    let pattern = HandshakePattern::IK;
    for after_ack in [false, true] {
        let a = bind(V4, 210);
        let b = bind(V4, 211);
        let open = |me: &Endpoint, peer: &Endpoint| {
            me.connect_with(ConnectOptions {
                peer: peer.public_key(),
                candidates: vec![addr_of(peer)],
                pattern: Some(pattern),
                ticket: None,
            })
            .unwrap()
        };
        // `a` connects while `b` is not connecting yet: `b` accepts it…
        let sa = open(&a, &b);
        sa.send_all(b"early").unwrap();
        // (`b` has the connection once `a`'s first data is acknowledged.)
        let waiting = Instant::now();
        while after_ack && sa.stats().unwrap().bytes_in_flight > 0 {
            assert!(
                waiting.elapsed() < Duration::from_secs(5),
                "never acknowledged"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // …and `b`'s own connect, later, returns that same connection.
        let sb = open(&b, &a);
        assert_eq!(sb.recv(5).unwrap(), b"early", "{pattern:?}");
        sb.send_all(b"reply").unwrap();
        assert_eq!(sa.recv(5).unwrap(), b"reply", "{pattern:?}");
        assert_eq!(sb.peer_public_key(), Some(a.public_key()), "{pattern:?}");
        for side in [&a, &b] {
            let err = side.accept_timeout(Duration::from_millis(100)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock, "{pattern:?}");
        }
    }
}

#[test]
fn a_late_connect_never_takes_an_anonymous_connection_from_the_peers_address() {
    let a = bind(V4, 212);
    let b = bind(V4, 213);
    // `a` connects anonymously (NK); `b` accepts the connection.
    let sa = a.connect(b.public_key(), &[addr_of(&b)]).unwrap();
    sa.send_all(b"anonymous").unwrap();
    let waiting = Instant::now();
    while sa.stats().unwrap().bytes_in_flight > 0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(5),
            "never acknowledged"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // `b` then connects to `a`'s key at that very address: it gets a
    // connection of its own (to the real `a`, who proves its key), and the
    // anonymous one stays in the accept queue, still anonymous.
    let sb = b
        .connect_with(ConnectOptions {
            pattern: Some(HandshakePattern::IK),
            ..ConnectOptions::new(a.public_key(), vec![addr_of(&a)])
        })
        .unwrap();
    assert_eq!(sb.peer_public_key(), Some(a.public_key()));
    let (queued, _, peer) = b.accept_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(peer, None, "an NK initiator stays anonymous");
    assert_eq!(queued.recv(9).unwrap(), b"anonymous");
}

#[test]
fn data_sent_to_a_closed_stream_aborts_the_connection_so_the_sender_learns() {
    let server = bind(V4, 220);
    let client = bind(V4, 221);
    let accepted = std::thread::spawn({
        let server = server.clone();
        move || server.accept().unwrap().0
    });
    let stream = client
        .connect(server.public_key(), &[addr_of(&server)])
        .unwrap();
    let peer = accepted.join().unwrap();
    stream.send_all(b"request").unwrap();
    stream.close().unwrap();
    let mut got = Vec::new();
    (&peer).read_to_end(&mut got).unwrap();
    assert_eq!(got, b"request");
    // The client closed without waiting for an answer: nobody reads what
    // the server sends now, and, as with TCP, the server learns it on a
    // later call (the first writes may already be acknowledged).
    let mut outcome = Ok(());
    for _ in 0..200 {
        outcome = peer.send_all(b"unwanted answer");
        if outcome.is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let err = outcome.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

#[test]
fn dropping_the_endpoint_does_not_wait_for_a_peer_that_keeps_its_direction_open() {
    let server = bind(V4, 230);
    let accepted = std::thread::spawn({
        let server = server.clone();
        move || server.accept().unwrap().0
    });
    let started = Instant::now();
    {
        let client = bind(V4, 231);
        let stream = client
            .connect(server.public_key(), &[addr_of(&server)])
            .unwrap();
        stream.set_close_timeout(Duration::from_secs(60)).unwrap();
        stream.send_all(b"bye").unwrap();
        stream.close().unwrap();
        // The server never finishes its direction; dropping `client` must
        // not wait for it once our data was delivered.
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "dropping took {:?}",
        started.elapsed()
    );
    let peer = accepted.join().unwrap();
    assert_eq!(peer.recv(3).unwrap(), b"bye");
}

#[test]
fn a_closed_and_dropped_endpoint_lingers_so_the_peer_learns_even_when_its_first_close_is_lost() {
    // Spec §6.6: the closing side answers for a while, so a peer whose
    // first CLOSE was lost learns why at its next packet instead of waiting
    // for its idle timeout. Closing and dropping the endpoint returns at
    // once; the driver thread does the lingering in the background.
    let server = bind(V4, 240);
    let relay = ArmedLossRelay::start(addr_of(&server));
    let accepted = std::thread::spawn({
        let server = server.clone();
        move || server.accept().unwrap().0
    });
    let client = bind(V4, 241);
    let stream = client
        .connect(server.public_key(), &[relay.addr()])
        .unwrap();
    let peer = accepted.join().unwrap();
    stream.send_all(b"ping").unwrap();
    assert_eq!(peer.recv(4).unwrap(), b"ping");
    // Let the client's acknowledgments settle (delayed ACKs wait 25 ms at
    // most; the next keepalive is seconds away): the next datagram the
    // client sends is its CLOSE, and the relay loses it.
    std::thread::sleep(Duration::from_millis(300));
    relay.drop_next(1);
    client.close();
    drop(stream);
    drop(client);
    // Far below the 30 s idle timeout: only a CLOSE ends this read.
    peer.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let _ = peer.send_all(b"are you there?");
    let err = peer.recv(16).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(
        matches!(
            close_reason(&err),
            Some(CloseReason::PeerClose { code: 0, .. })
        ),
        "{err}"
    );
    assert!(relay.dropped() >= 1, "the client's first CLOSE was lost");
}
