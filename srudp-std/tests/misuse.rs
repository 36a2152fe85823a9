//! API misuse and edge cases get clear errors, never a panic or a hang.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use srudp_std::{Endpoint, Stream, StreamError, TransportConfig};

use common::{addr_of, bind, config, config_with, V4};

/// A connected pair: (client stream, accepted stream, client, server).
fn pair(seed: u64) -> (Stream, Stream, Endpoint, Endpoint) {
    let server = bind(V4, seed);
    let client = bind(V4, seed + 1);
    let accepted = std::thread::spawn({
        let server = server.clone();
        move || server.accept().unwrap().0
    });
    let stream = client
        .connect(server.public_key(), &[addr_of(&server)])
        .unwrap();
    (stream, accepted.join().unwrap(), client, server)
}

#[test]
fn writing_after_shutdown_is_a_broken_pipe_and_reading_goes_on() {
    let (a, b, _ca, _sb) = pair(300);
    a.send_all(b"last words").unwrap();
    a.shutdown().unwrap();
    a.shutdown().unwrap(); // idempotent
    let err = a.send(b"more").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    assert!(matches!(
        err.get_ref().and_then(|e| e.downcast_ref::<StreamError>()),
        Some(StreamError::Finished)
    ));
    // The peer reads everything, then end of stream, again and again.
    let mut got = Vec::new();
    (&b).read_to_end(&mut got).unwrap();
    assert_eq!(got, b"last words");
    assert_eq!(b.recv(10).unwrap(), b"");
    assert_eq!((&b).read(&mut [0u8; 4]).unwrap(), 0);
    // Our reading direction is still open.
    b.send_all(b"reply").unwrap();
    assert_eq!(a.recv(10).unwrap(), b"reply");
}

#[test]
/// One rule in every adapter: a stream this side ended (closed, aborted,
/// or its endpoint closed) fails every later call with `ConnectionAborted`.
fn using_a_stream_after_close_or_abort_is_connection_aborted() {
    let (a, b, _ca, _sb) = pair(310);
    a.close().unwrap();
    a.close().unwrap(); // idempotent
    assert!(a.is_closed());
    assert_eq!(a.recv(4).unwrap_err().kind(), ErrorKind::ConnectionAborted);
    assert_eq!(
        (&a).write(b"x").unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
    assert_eq!(
        a.shutdown().unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
    assert_eq!(
        a.peer_addr().unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
    assert_eq!(
        a.set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap_err()
            .kind(),
        ErrorKind::ConnectionAborted
    );

    let clone = b.try_clone().unwrap();
    b.abort(1, b"done");
    b.abort(1, b"again"); // harmless
    assert!(clone.is_closed());
    let err = clone.send(b"x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionAborted);
    assert_eq!(
        srudp_std::close_reason(&err),
        Some(&srudp_std::CloseReason::LocalClose { code: 1 })
    );
    // `a` had finished before the abort: b's reading direction stays at its
    // end of stream, as on the async stream.
    assert_eq!(clone.recv(4).unwrap(), b"");
}

#[test]
fn a_read_timeout_returns_would_block_and_leaves_the_stream_usable() {
    let (a, b, _ca, _sb) = pair(320);
    b.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert_eq!(b.read_timeout().unwrap(), Some(Duration::from_millis(100)));
    let err = b.recv(4).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert!(!b.is_closed());
    a.send_all(b"late").unwrap();
    assert_eq!(b.recv(4).unwrap(), b"late");
    assert_eq!(
        b.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn a_write_timeout_returns_would_block_when_the_peer_does_not_read() {
    let transport = TransportConfig {
        send_buffer: 64 * 1024,
        receive_window: 64 * 1024,
        ..TransportConfig::default()
    };
    let server = Endpoint::bind(V4, config_with(330, transport.clone())).unwrap();
    let client = Endpoint::bind(V4, config_with(331, transport)).unwrap();
    let accepted = std::thread::spawn({
        let server = server.clone();
        move || server.accept().unwrap().0
    });
    let stream = client
        .connect(server.public_key(), &[addr_of(&server)])
        .unwrap();
    let _peer_not_reading = accepted.join().unwrap();
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // Flow control and the send buffer hold 128 KiB at most: a 1 MiB write
    // must stall.
    let err = stream.send_all(&vec![7u8; 1 << 20]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert!(!stream.is_closed());
}

#[test]
fn accept_errors_instead_of_blocking_forever() {
    let server = bind(V4, 340);
    let err = server
        .accept_timeout(Duration::from_millis(50))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    server.set_accept_policy(srudp_std::AcceptPolicy::RefuseAll);
    assert_eq!(server.accept().unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[test]
fn bad_connect_arguments_are_invalid_input() {
    let a = bind(V4, 350);
    let b = bind(V4, 351);
    let key = b.public_key();
    let kind = |r: std::io::Result<Stream>| r.unwrap_err().kind();
    assert_eq!(kind(a.connect(key, &[])), ErrorKind::InvalidInput);
    assert_eq!(
        kind(a.connect(key, &["[::1]:9".parse().unwrap()])),
        ErrorKind::InvalidInput,
        "an IPv6 candidate on an IPv4 socket"
    );
    assert_eq!(
        kind(a.connect(a.public_key(), &[addr_of(&b)])),
        ErrorKind::InvalidInput,
        "our own key"
    );
}

#[test]
fn an_invalid_configuration_fails_bind() {
    let mut cfg = config(360);
    cfg.max_connections = 0;
    let err = Endpoint::bind(V4, cfg).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("max_connections"), "{err}");
}

#[test]
fn dropping_everything_in_any_order_neither_panics_nor_hangs() {
    let (a, b, ca, sb) = pair(370);
    a.send_all(b"unread").unwrap();
    drop(ca);
    drop(sb);
    drop(b);
    drop(a);
    let (a, b, ca, sb) = pair(372);
    drop(a);
    drop(ca);
    b.recv(1).ok();
    drop(sb);
    drop(b);
}
