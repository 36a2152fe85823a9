//! The examples are recipes: these run them. Each example is included as a
//! module: examples/server.rs — the `select!`-based echo server with a
//! graceful shutdown — has its `serve` driven with a shutdown signal the
//! test controls; examples/chat.rs has two peers meet by name through a
//! rendezvous server and chat over in-memory input and output.

#[macro_use]
mod common;

#[path = "../examples/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

#[path = "../examples/chat.rs"]
#[allow(dead_code, unreachable_pub)]
mod chat;

use std::error::Error as _;
use std::io::ErrorKind;
use std::time::Duration;

use server::{serve, Served, GRACE, SHUTDOWN_CODE, SHUTDOWN_REASON};
use srudp_async::{CloseReason, Endpoint, Stream};
use srudp_testkit::fixtures::{config, payload, v4};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// A server running `serve`, and the sender of its shutdown signal.
struct RunningServer {
    key: srudp_async::PublicKey,
    addr: std::net::SocketAddr,
    stop: oneshot::Sender<()>,
    served: tokio::task::JoinHandle<std::io::Result<Served>>,
}

fn start_server(seed: u64) -> RunningServer {
    let endpoint = Endpoint::bind(v4(), config(seed)).unwrap();
    let (key, addr) = (endpoint.public_key(), endpoint.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(serve(endpoint, async {
        let _ = stopped.await;
    }));
    RunningServer {
        key,
        addr,
        stop,
        served,
    }
}

async fn client(seed: u64, server: &RunningServer) -> (Endpoint, Stream) {
    let endpoint = Endpoint::bind(v4(), config(seed)).unwrap();
    let stream = timeout(WAIT, endpoint.connect(server.key, &[server.addr]))
        .await
        .unwrap()
        .unwrap();
    (endpoint, stream)
}

#[tokio::test]
async fn the_server_echoes_and_on_shutdown_lets_connections_in_progress_finish_and_refuses_new_ones(
) {
    let server = start_server(1);
    // One client done before the shutdown.
    let (_a, mut first) = client(2, &server).await;
    let data = payload(3, 200_000);
    first.write_all(&data).await.unwrap();
    first.shutdown().await.unwrap();
    let mut echoed = Vec::new();
    timeout(WAIT, first.read_to_end(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert!(echoed == data, "the first client's echo");

    // One in progress when the signal comes: it still finishes.
    let (_b, mut second) = client(4, &server).await;
    second.write_all(&data[..1000]).await.unwrap();
    let mut head = vec![0u8; 1000];
    timeout(WAIT, second.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    server.stop.send(()).unwrap();
    second.write_all(&data[1000..]).await.unwrap();
    second.shutdown().await.unwrap();
    // Shutting down, the server lets nobody new in.
    let late = Endpoint::bind(v4(), config(5)).unwrap();
    let err = timeout(WAIT, late.connect(server.key, &[server.addr]))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    let mut rest = Vec::new();
    timeout(WAIT, second.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!([head, rest].concat() == data, "the second client's echo");

    let served = timeout(WAIT, server.served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        served,
        Served {
            finished: 2,
            failed: 0,
            cut: 0
        }
    );
}

#[tokio::test]
async fn connections_that_outlast_the_grace_period_are_closed_with_the_servers_reason_and_errors_are_counted(
) {
    let server = start_server(10);
    // A client that aborts: the server counts a failed connection and goes on.
    let (_a, aborting) = client(11, &server).await;
    aborting.abort(42, b"changed my mind");
    // A client that never finishes.
    let (_b, mut lingering) = client(12, &server).await;
    lingering.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    timeout(WAIT, lingering.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    server.stop.send(()).unwrap();

    let err = timeout(GRACE + WAIT, lingering.read(&mut buf))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    let reason = err.source().and_then(|s| s.downcast_ref::<CloseReason>());
    assert_eq!(
        reason,
        Some(&CloseReason::PeerClose {
            code: SHUTDOWN_CODE,
            reason: String::from_utf8_lossy(SHUTDOWN_REASON).into_owned(),
        })
    );
    let served = timeout(WAIT, server.served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        served,
        Served {
            finished: 0,
            failed: 1,
            cut: 1
        }
    );
}

/// A rendezvous server (key seed `seed`), alice registered by name and
/// waiting, and bob calling her: each side's endpoint and stream.
async fn alice_meets_bob(
    seed: u64,
) -> (
    common::LoopbackRendezvous,
    (Endpoint, Stream),
    (Endpoint, Stream),
) {
    let rendezvous = common::LoopbackRendezvous::start(seed);
    let alice = chat::meet(
        config(seed + 1),
        rendezvous.client(None),
        chat::Role::Wait("alice".parse().unwrap()),
    );
    let bob = chat::meet(
        config(seed + 2),
        rendezvous.client(None),
        chat::Role::Call("alice".into()),
    );
    let (alice, bob) = timeout(WAIT, async { tokio::join!(alice, bob) })
        .await
        .unwrap();
    (rendezvous, alice.unwrap(), bob.unwrap())
}

#[tokio::test]
async fn two_peers_meet_by_name_and_chat_line_by_line_until_both_finish() {
    let (_rendezvous, (alice_endpoint, alice), (bob_endpoint, bob)) = alice_meets_bob(20).await;

    let (mut alice_saw, mut bob_saw) = (Vec::new(), Vec::new());
    let (a, b) = timeout(WAIT, async {
        tokio::join!(
            chat::chat(alice, &b"hi bob\nhow are you?\n"[..], &mut alice_saw),
            chat::chat(bob, &b"hi alice\n"[..], &mut bob_saw),
        )
    })
    .await
    .unwrap();
    a.unwrap();
    b.unwrap();
    assert_eq!(
        String::from_utf8(bob_saw).unwrap(),
        "hi bob\nhow are you?\n"
    );
    assert_eq!(String::from_utf8(alice_saw).unwrap(), "hi alice\n");
    // The exit recipe: both sides finished, so both are idle promptly.
    timeout(WAIT, alice_endpoint.wait_idle()).await.unwrap();
    timeout(WAIT, bob_endpoint.wait_idle()).await.unwrap();
}

#[tokio::test]
async fn a_chat_peer_sending_a_line_longer_than_the_limit_is_an_error_not_unbounded_memory() {
    let (_rendezvous, (_a, alice), (_b, mut bob)) = alice_meets_bob(30).await;
    // Bob bypasses the codec: one line of 10 × MAX_LINE bytes.
    bob.write_all(&vec![b'x'; 10 * chat::MAX_LINE])
        .await
        .unwrap();
    let mut alice_saw = Vec::new();
    let err = timeout(WAIT, chat::chat(alice, &b""[..], &mut alice_saw))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("max line length"), "{err}");
    assert!(alice_saw.is_empty());
}
