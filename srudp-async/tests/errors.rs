//! Every adapter reports a cause the same way: one test per cause, run on
//! each async executor (tokio, smol, async-std) and on the blocking
//! srudp-std, each asserting the `io::ErrorKind` and the srudp cause (the
//! [`CloseReason`] `close_reason` reads, the [`RendezvousError`]
//! `rendezvous_error` reads, or a closed endpoint), which must also be the
//! error's `source()`, from one table of expectations ([`expected`]).
//! srudp-std's own condition, a timeout the application set (`WouldBlock`),
//! is srudp-std's (tests/misuse.rs there).

#[macro_use]
mod common;

use std::error::Error as _;
use std::io::{self, ErrorKind, Read as _};
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use srudp_async::rendezvous::{ErrorCode, RendezvousError};
use srudp_async::srudp_proto::ConnectError;
use srudp_async::{
    close_reason, connect_error, driver_stopped, rendezvous_error, AcceptPolicy, CloseReason,
    DriverStopped, Endpoint, Keypair, StreamError,
};
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
    /// Connecting by a name (or a key) nobody registered.
    RendezvousUnknownPeer,
    /// Connecting to the name we registered under (or our own key).
    RendezvousOwnName,
    /// Registering under a name another key holds.
    RendezvousNameTaken,
    /// The runtime that drove the endpoint shut down (tokio only: on the
    /// others the driver runs on a thread of its own).
    RuntimeShutDown,
}

/// The srudp cause an adapter's `io::Error` carries.
#[derive(Debug, Clone, PartialEq)]
enum Srudp {
    /// A closed connection: `close_reason` and `source()` give the reason.
    Closed(CloseReason),
    /// A failed connect by key or name, or a refused registration:
    /// `rendezvous_error` and `source()` give the error.
    Rendezvous(RendezvousError),
    /// The application closed the endpoint ([`StreamError::EndpointClosed`]).
    EndpointClosed,
    /// A connection that could not be started: `connect_error` and
    /// `source()` give the `ConnectError` (its `Debug` form here).
    Connect(String),
    /// The endpoint's driver was dropped: `driver_stopped` and `source()`
    /// give the [`DriverStopped`].
    DriverDropped,
    /// Nothing beyond the kind.
    Nothing,
}

/// What every adapter reports for `cause`: the kind, and the srudp cause.
fn expected(cause: Cause) -> (ErrorKind, Srudp) {
    use Cause::*;
    match cause {
        PeerAborted => (
            ErrorKind::ConnectionReset,
            Srudp::Closed(CloseReason::PeerClose {
                code: 42,
                reason: "go away".into(),
            }),
        ),
        LocalAbortThenUse => (
            ErrorKind::ConnectionAborted,
            Srudp::Closed(CloseReason::LocalClose { code: 7 }),
        ),
        EndpointClosedThenStreamUse => (
            ErrorKind::ConnectionAborted,
            Srudp::Closed(CloseReason::LocalClose { code: 0 }),
        ),
        EndpointClosedThenAcceptOrConnect => (ErrorKind::NotConnected, Srudp::EndpointClosed),
        IdleTimeout => (ErrorKind::TimedOut, Srudp::Closed(CloseReason::IdleTimeout)),
        HandshakeTimeout => (
            ErrorKind::TimedOut,
            Srudp::Closed(CloseReason::HandshakeTimeout),
        ),
        HandshakeRefused => (
            ErrorKind::ConnectionRefused,
            Srudp::Closed(CloseReason::Refused),
        ),
        ConnectToSelf => (
            ErrorKind::InvalidInput,
            Srudp::Connect("SelfConnect".into()),
        ),
        ConnectWithoutCandidates => (
            ErrorKind::InvalidInput,
            Srudp::Connect("NoCandidates".into()),
        ),
        WriteAfterFinish => (ErrorKind::BrokenPipe, Srudp::Nothing),
        RendezvousUnknownPeer => (
            ErrorKind::NotFound,
            Srudp::Rendezvous(RendezvousError::PeerNotRegistered),
        ),
        RendezvousOwnName => (
            ErrorKind::InvalidInput,
            Srudp::Rendezvous(RendezvousError::SelfConnect),
        ),
        RendezvousNameTaken => (
            ErrorKind::PermissionDenied,
            Srudp::Rendezvous(RendezvousError::Refused(ErrorCode::NameTaken)),
        ),
        RuntimeShutDown => (ErrorKind::NotConnected, Srudp::DriverDropped),
    }
}

/// The srudp cause in `err`, checking that `source()` agrees with the
/// helpers that read it.
fn srudp_cause(err: &io::Error) -> Srudp {
    if let Some(reason) = close_reason(err) {
        let source = err.source().and_then(|s| s.downcast_ref::<CloseReason>());
        assert_eq!(
            source,
            Some(reason),
            "the close reason is the source: {err}"
        );
        return Srudp::Closed(reason.clone());
    }
    if let Some(e) = rendezvous_error(err) {
        let source = err
            .source()
            .and_then(|s| s.downcast_ref::<RendezvousError>());
        assert_eq!(source, Some(e), "the rendezvous error is the source: {err}");
        return Srudp::Rendezvous(e.clone());
    }
    if let Some(e) = connect_error(err) {
        let source = err.source().and_then(|s| s.downcast_ref::<ConnectError>());
        assert!(
            source.is_some_and(|s| std::ptr::eq(s, e)),
            "the connect error is the source: {err}"
        );
        return Srudp::Connect(format!("{e:?}"));
    }
    if let Some(e) = driver_stopped(err) {
        let source = err.source().and_then(|s| s.downcast_ref::<DriverStopped>());
        assert_eq!(source, Some(e), "the driver's end is the source: {err}");
        assert!(matches!(e, DriverStopped::Dropped(_)), "{err}");
        return Srudp::DriverDropped;
    }
    match err.get_ref().and_then(|e| e.downcast_ref::<StreamError>()) {
        Some(StreamError::EndpointClosed) => Srudp::EndpointClosed,
        _ => Srudp::Nothing,
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
    let seen = (err.kind(), srudp_cause(&err));
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

async fn rendezvous_unknown_peer_own_name_and_taken_name(ex: Exec) {
    let adapter = format!("{ex:?}");
    let rdv = LoopbackRendezvous::start(690);
    let alice =
        Endpoint::bind_with_rendezvous(v4(), config(691), rdv.client(Some("alice"))).unwrap();
    within(WAIT, "alice registers", alice.wait_registered())
        .await
        .unwrap();

    let cause = Cause::RendezvousUnknownPeer;
    let by_name = within(WAIT, "connect_by_name", alice.connect_by_name("nobody")).await;
    assert_fails_as(cause, &adapter, "connect_by_name", by_name);
    let stranger = Keypair::generate_from_os().public();
    let by_key = within(WAIT, "connect_by_key", alice.connect_by_key(stranger)).await;
    assert_fails_as(cause, &adapter, "connect_by_key", by_key);

    let cause = Cause::RendezvousOwnName;
    let own_name = within(WAIT, "connect_by_name", alice.connect_by_name("alice")).await;
    assert_fails_as(cause, &adapter, "connect_by_name", own_name);
    let own_key = within(
        WAIT,
        "connect_by_key",
        alice.connect_by_key(alice.public_key()),
    )
    .await;
    assert_fails_as(cause, &adapter, "connect_by_key", own_key);

    let impostor =
        Endpoint::bind_with_rendezvous(v4(), config(692), rdv.client(Some("alice"))).unwrap();
    let taken = within(WAIT, "impostor registers", impostor.wait_registered()).await;
    assert_fails_as(
        Cause::RendezvousNameTaken,
        &adapter,
        "wait_registered",
        taken,
    );

    alice.close();
    let cause = Cause::EndpointClosedThenAcceptOrConnect;
    let closed = within(WAIT, "connect_by_name", alice.connect_by_name("bob")).await;
    assert_fails_as(cause, &adapter, "connect_by_name", closed);
    let closed = within(WAIT, "wait_registered", alice.wait_registered()).await;
    assert_fails_as(cause, &adapter, "wait_registered", closed);
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
    rendezvous_unknown_peer_own_name_and_taken_name,
);

/// A tokio runtime that shuts down under a connected endpoint: its streams,
/// used from another runtime, and the endpoint's accept and connect fail
/// at once with the driver's end, not a hang or a bare message.
#[test]
fn tokio_runtime_shut_down_then_use() {
    let adapter = "tokio (runtime shut down)";
    let cause = Cause::RuntimeShutDown;
    let first = tokio::runtime::Runtime::new().unwrap();
    let (mut ours, _theirs, client, server) = first.block_on(async_pair(640));
    drop(first);
    let second = tokio::runtime::Runtime::new().unwrap();
    second.block_on(async {
        let read = within(WAIT, "read", ours.read(&mut [0u8; 8])).await;
        assert_fails_as(cause, adapter, "read", read);
        assert_fails_as(cause, adapter, "write", ours.write(b"x").await);
        let accept = within(WAIT, "accept", client.accept()).await;
        assert_fails_as(cause, adapter, "accept", accept);
        let connect = client.connect(server.public_key(), &[server.local_addr()]);
        let connect = within(WAIT, "connect", connect).await;
        assert_fails_as(cause, adapter, "connect", connect);
    });
}

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
    fn rendezvous_unknown_peer_own_name_and_taken_name() {
        let rdv = LoopbackRendezvous::start(790);
        let bind = |seed, name| {
            srudp_std::Endpoint::bind_with_rendezvous(v4(), config(seed), rdv.client(name)).unwrap()
        };
        let alice = bind(791, Some("alice"));
        alice.wait_registered(Some(WAIT)).unwrap();

        let cause = Cause::RendezvousUnknownPeer;
        let by_name = alice.connect_by_name("nobody");
        assert_fails_as(cause, ADAPTER, "connect_by_name", by_name);
        let stranger = Keypair::generate_from_os().public();
        let by_key = alice.connect_by_key(stranger);
        assert_fails_as(cause, ADAPTER, "connect_by_key", by_key);

        let cause = Cause::RendezvousOwnName;
        let own_name = alice.connect_by_name("alice");
        assert_fails_as(cause, ADAPTER, "connect_by_name", own_name);
        let own_key = alice.connect_by_key(alice.public_key());
        assert_fails_as(cause, ADAPTER, "connect_by_key", own_key);

        let impostor = bind(792, Some("alice"));
        let taken = impostor.wait_registered(Some(WAIT));
        assert_fails_as(
            Cause::RendezvousNameTaken,
            ADAPTER,
            "wait_registered",
            taken,
        );

        alice.close();
        let cause = Cause::EndpointClosedThenAcceptOrConnect;
        assert_fails_as(
            cause,
            ADAPTER,
            "connect_by_name",
            alice.connect_by_name("bob"),
        );
        let closed = alice.wait_registered(Some(WAIT));
        assert_fails_as(cause, ADAPTER, "wait_registered", closed);
    }

    #[test]
    fn the_helpers_are_srudp_std_s_too() {
        let err = io::Error::from(StreamError::Rendezvous(RendezvousError::Timeout));
        assert_eq!(
            srudp_std::rendezvous_error(&err),
            Some(&RendezvousError::Timeout)
        );
        assert_eq!(srudp_std::close_reason(&err), None);
        assert_eq!(srudp_std::driver_stopped(&err), None);
        let failed = srudp_std::DriverStopped::SocketFailed {
            kind: ErrorKind::PermissionDenied,
            message: "revoked".into(),
        };
        let err = io::Error::from(StreamError::DriverStopped(failed.clone()));
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert_eq!(srudp_std::driver_stopped(&err), Some(&failed));
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
