//! The examples are recipes: these run them. examples/server.rs — the
//! `select!`-based echo server with a graceful shutdown — is included as a
//! module and its `serve` driven with a shutdown signal the test controls.

#[path = "../examples/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

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
