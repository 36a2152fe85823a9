//! Every adapter reports a cause the same way: one test per cause, run on
//! each async executor (tokio, smol, async-std) and on the blocking
//! srudp-std, each asserting the `io::ErrorKind` and the srudp
//! [`CloseReason`] (`close_reason`) from one table of expectations
//! ([`expected`]). srudp-std's own condition, a timeout the application set
//! (`WouldBlock`), is srudp-std's (tests/misuse.rs there).

#[macro_use]
mod common;

use std::io::{self, ErrorKind, Read as _};
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use srudp_async::{close_reason, AcceptPolicy, CloseReason, Endpoint, Keypair};
use srudp_testkit::{ImpairingRelay, Impairment};

const WAIT: Duration = Duration::from_secs(10);

/// The causes, one per test.
#[derive(Debug, Clone, Copy)]
enum Cause {
    /// The peer aborted with code 42 and reason "go away".
    PeerAborted,
    /// This side aborted the stream (code 7), then used it.
    LocalAbortThenUse,
    /// This side closed its endpoint, then used a stream of it.
    EndpointClosedThenStreamUse,
    /// This side closed its endpoint, then called accept or connect.
    EndpointClosedThenAcceptOrConnect,
    /// The path went silent past the idle timeout.
    IdleTimeout,
    /// Nobody answered the handshake (an unknown peer at a silent address).
    HandshakeTimeout,
    /// The peer refuses every connection.
    HandshakeRefused,
    /// Connecting to our own key.
    ConnectToSelf,
    /// Connecting with no candidate address.
    ConnectWithoutCandidates,
    /// Writing after finishing our direction.
    WriteAfterFinish,
}

/// What every adapter reports for `cause`: the kind, and the srudp reason
/// `close_reason` reads out of the error (`None`: not a closed connection).
fn expected(cause: Cause) -> (ErrorKind, Option<CloseReason>) {
    use Cause::*;
    match cause {
        PeerAborted => (
            ErrorKind::ConnectionReset,
            Some(CloseReason::PeerClose {
                code: 42,
                reason: "go away".into(),
            }),
        ),
        LocalAbortThenUse => (
            ErrorKind::ConnectionAborted,
            Some(CloseReason::LocalClose { code: 7 }),
        ),
        EndpointClosedThenStreamUse => (
            ErrorKind::ConnectionAborted,
            Some(CloseReason::LocalClose { code: 0 }),
        ),
        EndpointClosedThenAcceptOrConnect => (ErrorKind::NotConnected, None),
        IdleTimeout => (ErrorKind::TimedOut, Some(CloseReason::IdleTimeout)),
        HandshakeTimeout => (ErrorKind::TimedOut, Some(CloseReason::HandshakeTimeout)),
        HandshakeRefused => (ErrorKind::ConnectionRefused, Some(CloseReason::Refused)),
        ConnectToSelf | ConnectWithoutCandidates => (ErrorKind::InvalidInput, None),
        WriteAfterFinish => (ErrorKind::BrokenPipe, None),
    }
}

/// Checks that `result` failed as the table says for `cause`.
#[track_caller]
fn assert_fails_as<T: std::fmt::Debug>(
    cause: Cause,
    adapter: &str,
    call: &str,
    result: io::Result<T>,
) {
    let err = result.expect_err(&format!("{adapter}, {cause:?}: {call} succeeded"));
    let seen = (err.kind(), close_reason(&err).cloned());
    assert_eq!(seen, expected(cause), "{adapter}, {cause:?}: {call}: {err}");
}

/// A connected pair of async streams: (ours, the peer's, our endpoint, the peer's).
async fn async_pair(seed: u64) -> (srudp_async::Stream, srudp_async::Stream, Endpoint, Endpoint) {
    let server = Endpoint::bind(v4(), config_with(seed, quick_transport())).unwrap();
    let client = Endpoint::bind(v4(), config_with(seed + 1, quick_transport())).unwrap();
    let connecting = client.connect(server.public_key(), &[server.local_addr()]);
    let (accepted, _, _) = within(WAIT, "accept", server.accept()).await.unwrap();
    let stream = within(WAIT, "connect", connecting).await.unwrap();
    (stream, accepted, client, server)
}

/// The same pair on srudp-std.
fn std_pair(
    seed: u64,
) -> (
    srudp_std::Stream,
    srudp_std::Stream,
    srudp_std::Endpoint,
    srudp_std::Endpoint,
) {
    let server = srudp_std::Endpoint::bind(v4(), config_with(seed, quick_transport())).unwrap();
    let client = srudp_std::Endpoint::bind(v4(), config_with(seed + 1, quick_transport())).unwrap();
    let accepting = std::thread::spawn({
        let server = server.clone();
        move || server.accept_timeout(WAIT).unwrap().0
    });
    let stream = client
        .connect(server.public_key(), &[server.local_addr().unwrap()])
        .unwrap();
    (stream, accepting.join().unwrap(), client, server)
}

/// A silent UDP socket: an address nobody answers at.
fn silent() -> (std::net::UdpSocket, SocketAddr) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

// The async executors.

async fn peer_aborted(ex: Exec) {
    let adapter = format!("{ex:?}");
    let (mut ours, theirs, _c, _s) = async_pair(600).await;
    theirs.abort(42, b"go away");
    let read = within(WAIT, "read", ours.read(&mut [0u8; 8])).await;
    assert_fails_as(Cause::PeerAborted, &adapter, "read", read);
    assert_fails_as(
        Cause::PeerAborted,
        &adapter,
        "write",
        ours.write(b"x").await,
    );
}

async fn local_abort_then_use(ex: Exec) {
    let adapter = format!("{ex:?}");
    let (mut ours, _theirs, _c, _s) = async_pair(610).await;
    ours.abort(7, b"done");
    ours.abort(7, b"again"); // harmless
    let cause = Cause::LocalAbortThenUse;
    assert_fails_as(cause, &adapter, "read", ours.read(&mut [0u8; 8]).await);
    assert_fails_as(cause, &adapter, "write", ours.write(b"x").await);
    assert_fails_as(cause, &adapter, "close", ours.close().await);
    assert_eq!(
        ours.close_reason(),
        Some(CloseReason::LocalClose { code: 7 })
    );
}

async fn endpoint_closed_then_stream_use(ex: Exec) {
    let adapter = format!("{ex:?}");
    let (mut ours, _theirs, client, _s) = async_pair(620).await;
    client.close();
    let cause = Cause::EndpointClosedThenStreamUse;
    assert_fails_as(cause, &adapter, "read", ours.read(&mut [0u8; 8]).await);
    assert_fails_as(cause, &adapter, "write", ours.write(b"x").await);
}

async fn endpoint_closed_then_accept_or_connect(ex: Exec) {
    let adapter = format!("{ex:?}");
    let (_ours, _theirs, client, server) = async_pair(630).await;
    client.close();
    let cause = Cause::EndpointClosedThenAcceptOrConnect;
    assert_fails_as(cause, &adapter, "accept", client.accept().await);
    let connect = client
        .connect(server.public_key(), &[server.local_addr()])
        .await;
    assert_fails_as(cause, &adapter, "connect", connect);
    // Even when the closed endpoint's policy refuses everyone.
    client.set_accept_policy(AcceptPolicy::RefuseAll);
    assert_fails_as(cause, &adapter, "accept", client.accept().await);
}

async fn idle_timeout(ex: Exec) {
    let adapter = format!("{ex:?}");
    let server = Endpoint::bind(v4(), config_with(640, quick_transport())).unwrap();
    let client = Endpoint::bind(v4(), config_with(641, quick_transport())).unwrap();
    let relay = ImpairingRelay::start(
        client.local_addr(),
        server.local_addr(),
        Impairment::default(),
    )
    .unwrap();
    let connecting = client.connect(server.public_key(), &[relay.addr()]);
    let (_theirs, _, _) = within(WAIT, "accept", server.accept()).await.unwrap();
    let mut ours = within(WAIT, "connect", connecting).await.unwrap();
    // The path goes silent.
    drop(relay);
    let read = within(WAIT, "read", ours.read(&mut [0u8; 8])).await;
    assert_fails_as(Cause::IdleTimeout, &adapter, "read", read);
    assert_fails_as(
        Cause::IdleTimeout,
        &adapter,
        "write",
        ours.write(b"x").await,
    );
}

async fn handshake_timeout(ex: Exec) {
    let adapter = format!("{ex:?}");
    let client = Endpoint::bind(v4(), config_with(650, quick_transport())).unwrap();
    let (_socket, addr) = silent();
    let stranger = Keypair::generate_from_os().public();
    let connect = within(WAIT, "connect", client.connect(stranger, &[addr])).await;
    assert_fails_as(Cause::HandshakeTimeout, &adapter, "connect", connect);
}

async fn handshake_refused(ex: Exec) {
    let adapter = format!("{ex:?}");
    let mut refusing = config(660);
    refusing.accept = AcceptPolicy::RefuseAll;
    let server = Endpoint::bind(v4(), refusing).unwrap();
    let client = Endpoint::bind(v4(), config(661)).unwrap();
    let connect = within(
        WAIT,
        "connect",
        client.connect(server.public_key(), &[server.local_addr()]),
    )
    .await;
    assert_fails_as(Cause::HandshakeRefused, &adapter, "connect", connect);
}

async fn connect_to_self_or_without_candidates(ex: Exec) {
    let adapter = format!("{ex:?}");
    let a = Endpoint::bind(v4(), config(670)).unwrap();
    let b = Endpoint::bind(v4(), config(671)).unwrap();
    let to_self = a.connect(a.public_key(), &[b.local_addr()]).await;
    assert_fails_as(Cause::ConnectToSelf, &adapter, "connect", to_self);
    let nowhere = a.connect(b.public_key(), &[]).await;
    assert_fails_as(
        Cause::ConnectWithoutCandidates,
        &adapter,
        "connect",
        nowhere,
    );
}

async fn write_after_finish(ex: Exec) {
    let adapter = format!("{ex:?}");
    let (mut ours, _theirs, _c, _s) = async_pair(680).await;
    within(WAIT, "close", ours.close()).await.unwrap();
    assert_fails_as(
        Cause::WriteAfterFinish,
        &adapter,
        "write",
        ours.write(b"late").await,
    );
}

on_every_executor!(
    peer_aborted,
    local_abort_then_use,
    endpoint_closed_then_stream_use,
    endpoint_closed_then_accept_or_connect,
    idle_timeout,
    handshake_timeout,
    handshake_refused,
    connect_to_self_or_without_candidates,
    write_after_finish,
);

/// The same causes on the blocking srudp-std.
mod std_adapter {
    use super::*;

    const ADAPTER: &str = "srudp-std";

    #[test]
    fn peer_aborted() {
        let (ours, theirs, _c, _s) = std_pair(700);
        ours.set_read_timeout(Some(WAIT)).unwrap();
        theirs.abort(42, b"go away");
        assert_fails_as(Cause::PeerAborted, ADAPTER, "read", ours.recv(8));
        assert_fails_as(Cause::PeerAborted, ADAPTER, "write", ours.send(b"x"));
    }

    #[test]
    fn local_abort_then_use() {
        let (ours, _theirs, _c, _s) = std_pair(710);
        let clone = ours.try_clone().unwrap();
        ours.abort(7, b"done");
        ours.abort(7, b"again"); // harmless
        let cause = Cause::LocalAbortThenUse;
        assert_fails_as(cause, ADAPTER, "read", ours.recv(8));
        assert_fails_as(cause, ADAPTER, "write", ours.send(b"x"));
        assert_fails_as(
            cause,
            ADAPTER,
            "read on a clone",
            (&clone).read(&mut [0u8; 8]),
        );
        assert!(clone.is_closed());
        assert_eq!(
            ours.close_reason(),
            Some(CloseReason::LocalClose { code: 7 })
        );
        assert_fails_as(cause, ADAPTER, "close", ours.close());
    }

    #[test]
    fn endpoint_closed_then_stream_use() {
        let (ours, _theirs, client, _s) = std_pair(720);
        client.close();
        let cause = Cause::EndpointClosedThenStreamUse;
        assert_fails_as(cause, ADAPTER, "read", ours.recv(8));
        assert_fails_as(cause, ADAPTER, "write", ours.send(b"x"));
    }

    #[test]
    fn endpoint_closed_then_accept_or_connect() {
        let (_ours, _theirs, client, server) = std_pair(730);
        client.close();
        let cause = Cause::EndpointClosedThenAcceptOrConnect;
        assert_fails_as(cause, ADAPTER, "accept", client.accept());
        let connect = client.connect(server.public_key(), &[server.local_addr().unwrap()]);
        assert_fails_as(cause, ADAPTER, "connect", connect);
        client.set_accept_policy(AcceptPolicy::RefuseAll);
        assert_fails_as(cause, ADAPTER, "accept", client.accept());
    }

    #[test]
    fn idle_timeout() {
        let server = srudp_std::Endpoint::bind(v4(), config_with(740, quick_transport())).unwrap();
        let client = srudp_std::Endpoint::bind(v4(), config_with(741, quick_transport())).unwrap();
        let relay = ImpairingRelay::start(
            client.local_addr().unwrap(),
            server.local_addr().unwrap(),
            Impairment::default(),
        )
        .unwrap();
        let accepting = std::thread::spawn({
            let server = server.clone();
            move || server.accept_timeout(WAIT).unwrap().0
        });
        let ours = client
            .connect(server.public_key(), &[relay.addr()])
            .unwrap();
        let _theirs = accepting.join().unwrap();
        drop(relay);
        ours.set_read_timeout(Some(WAIT)).unwrap();
        assert_fails_as(Cause::IdleTimeout, ADAPTER, "read", ours.recv(8));
        assert_fails_as(Cause::IdleTimeout, ADAPTER, "write", ours.send(b"x"));
    }

    #[test]
    fn handshake_timeout() {
        let client = srudp_std::Endpoint::bind(v4(), config_with(750, quick_transport())).unwrap();
        let (_socket, addr) = silent();
        let stranger = Keypair::generate_from_os().public();
        let connect = client.connect(stranger, &[addr]);
        assert_fails_as(Cause::HandshakeTimeout, ADAPTER, "connect", connect);
    }

    #[test]
    fn handshake_refused() {
        let mut refusing = config(760);
        refusing.accept = AcceptPolicy::RefuseAll;
        let server = srudp_std::Endpoint::bind(v4(), refusing).unwrap();
        let client = srudp_std::Endpoint::bind(v4(), config(761)).unwrap();
        let connect = client.connect(server.public_key(), &[server.local_addr().unwrap()]);
        assert_fails_as(Cause::HandshakeRefused, ADAPTER, "connect", connect);
    }

    #[test]
    fn connect_to_self_or_without_candidates() {
        let a = srudp_std::Endpoint::bind(v4(), config(770)).unwrap();
        let b = srudp_std::Endpoint::bind(v4(), config(771)).unwrap();
        let to_self = a.connect(a.public_key(), &[b.local_addr().unwrap()]);
        assert_fails_as(Cause::ConnectToSelf, ADAPTER, "connect", to_self);
        let nowhere = a.connect(b.public_key(), &[]);
        assert_fails_as(Cause::ConnectWithoutCandidates, ADAPTER, "connect", nowhere);
    }

    #[test]
    fn write_after_finish() {
        let (ours, _theirs, _c, _s) = std_pair(780);
        ours.shutdown().unwrap();
        assert_fails_as(
            Cause::WriteAfterFinish,
            ADAPTER,
            "write",
            ours.send(b"late"),
        );
    }
}
