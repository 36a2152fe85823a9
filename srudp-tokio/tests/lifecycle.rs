//! How connections begin and end on real sockets: simultaneous open, a peer
//! that vanishes, aborts and refusals, closing the endpoint, cancellation,
//! and the driver task ending once everything is dropped.

mod common;

use std::error::Error as _;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::*;
use srudp_tokio::{
    AcceptPolicy, CloseReason, ConnectOptions, Endpoint, HandshakePattern, Keypair, TransportConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_connecting_toward_each_other_at_once_get_exactly_one_connection() {
    for seed in [100u64, 102, 104] {
        let a = Endpoint::bind(v4(), config(seed)).unwrap();
        let b = Endpoint::bind(v4(), config(seed + 1)).unwrap();
        // Both attempts start before either endpoint sees a packet.
        // With IK, as a simultaneous open requires (spec §4.5).
        let ik = |peer, at| ConnectOptions {
            pattern: Some(HandshakePattern::IK),
            ..ConnectOptions::new(peer, vec![at])
        };
        let from_a = a.connect_with(ik(b.public_key(), b.local_addr()));
        let from_b = b.connect_with(ik(a.public_key(), a.local_addr()));
        let (sa, sb) = within(Duration::from_secs(10), "simultaneous open", async {
            tokio::try_join!(from_a, from_b)
        })
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let (mut sa, mut sb) = (sa, sb);
        assert_eq!(sa.peer_public_key(), Some(b.public_key()), "seed {seed}");
        assert_eq!(sb.peer_public_key(), Some(a.public_key()), "seed {seed}");

        // One connection: each side's connect stream reaches the other's.
        sa.write_all(b"from a").await.unwrap();
        sb.write_all(b"from b").await.unwrap();
        let (mut at_b, mut at_a) = ([0u8; 6], [0u8; 6]);
        within(Duration::from_secs(5), "exchange", async {
            sb.read_exact(&mut at_b).await.unwrap();
            sa.read_exact(&mut at_a).await.unwrap();
        })
        .await;
        assert_eq!((&at_b, &at_a), (b"from a", b"from b"), "seed {seed}");
        // And no second connection waits to be accepted on either side.
        for (name, ep) in [("a", &a), ("b", &b)] {
            let extra = tokio::time::timeout(Duration::from_millis(200), ep.accept()).await;
            assert!(
                extra.is_err(),
                "seed {seed}: {name} accepted a second connection"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_vanishes_is_reported_as_timed_out_within_the_idle_timeout() {
    let transport = quick_transport();
    let idle = transport.idle_timeout;
    let client = Endpoint::bind(v4(), config_with(110, transport.clone())).unwrap();

    // The peer lives on a runtime of its own, which we then shut down: its
    // driver stops without a word, like a crashed process.
    let peer_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (peer_key, peer_addr) = peer_runtime
        .spawn(async {
            let peer = Endpoint::bind(v4(), config_with(111, transport)).unwrap();
            let info = (peer.public_key(), peer.local_addr());
            tokio::spawn(async move {
                let (stream, _, _) = peer.accept().await.unwrap();
                std::future::pending::<()>().await;
                drop((peer, stream));
            });
            info
        })
        .await
        .unwrap();
    let mut stream = client.connect(peer_key, &[peer_addr]).await.unwrap();
    stream.write_all(b"are you there?").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    peer_runtime.shutdown_background();
    let vanished = Instant::now();
    let mut buf = [0u8; 16];
    let err = within(idle * 3, "timeout report", stream.read(&mut buf))
        .await
        .unwrap_err();
    let elapsed = vanished.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(
        elapsed <= idle + Duration::from_millis(500),
        "reported after {elapsed:?}, idle timeout {idle:?}"
    );
    let reason = err.source().and_then(|s| s.downcast_ref::<CloseReason>());
    assert_eq!(reason, Some(&CloseReason::IdleTimeout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_abort_is_connection_reset_with_its_code_and_reason_as_source() {
    let server = Endpoint::bind(v4(), config(120)).unwrap();
    let client = Endpoint::bind(v4(), config(121)).unwrap();
    let connecting = client.connect(server.public_key(), &[server.local_addr()]);
    let (accepted, _, _) = server.accept().await.unwrap();
    let mut stream = connecting.await.unwrap();
    accepted.abort(42, b"go away");

    let mut buf = [0u8; 8];
    let err = within(Duration::from_secs(5), "reset", stream.read(&mut buf))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    let reason = err.source().and_then(|s| s.downcast_ref::<CloseReason>());
    assert_eq!(
        reason,
        Some(&CloseReason::PeerClose {
            code: 42,
            reason: "go away".into()
        })
    );
    // Writes fail the same way; the closing side sees its own abort.
    assert_eq!(
        stream.write(b"x").await.unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    let mut accepted = accepted;
    assert_eq!(
        accepted.read(&mut buf).await.unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_the_peer_refuses_is_connection_refused() {
    let mut refusing = config(130);
    refusing.accept = AcceptPolicy::RefuseAll;
    let server = Endpoint::bind(v4(), refusing).unwrap();
    let client = Endpoint::bind(v4(), config(131)).unwrap();
    let err = within(
        Duration::from_secs(5),
        "refusal",
        client.connect(server.public_key(), &[server.local_addr()]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_nobody_answers_times_out() {
    let client = Endpoint::bind(v4(), config_with(140, quick_transport())).unwrap();
    // A socket that exists but never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let stranger = Keypair::generate_from_os().public();
    let started = Instant::now();
    let err = within(
        Duration::from_secs(10),
        "handshake timeout",
        client.connect(stranger, &[silent.local_addr().unwrap()]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(started.elapsed() >= quick_transport().handshake_timeout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_misuse_returns_errors_instead_of_panicking() {
    let server = Endpoint::bind(v4(), config(150)).unwrap();
    let client = Endpoint::bind(v4(), config(151)).unwrap();
    let key = server.public_key();

    let no_candidates = client.connect(key, &[]).await.unwrap_err();
    assert_eq!(no_candidates.kind(), ErrorKind::InvalidInput);
    let own_key = client
        .connect(client.public_key(), &[server.local_addr()])
        .await
        .unwrap_err();
    assert_eq!(own_key.kind(), ErrorKind::InvalidInput);
    let too_many: Vec<_> = (0..100)
        .map(|i| std::net::SocketAddr::from(([127, 0, 0, 1], 10_000 + i)))
        .collect();
    let err = client.connect(key, &too_many).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let wrong_family = client
        .connect(key, &["[::1]:9".parse().unwrap()])
        .await
        .unwrap_err();
    assert_eq!(
        wrong_family.kind(),
        ErrorKind::InvalidInput,
        "{wrong_family}"
    );

    let invalid = {
        let mut c = config(152);
        c.transport = std::sync::Arc::new(TransportConfig {
            idle_timeout: Duration::ZERO,
            ..TransportConfig::default()
        });
        c
    };
    let err = Endpoint::bind(v4(), invalid).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    // Writing after a graceful shutdown.
    let connecting = client.connect(key, &[server.local_addr()]);
    let (_accepted, _, _) = server.accept().await.unwrap();
    let mut stream = connecting.await.unwrap();
    stream.shutdown().await.unwrap();
    stream.shutdown().await.unwrap(); // idempotent
    let err = stream.write(b"late").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
}

#[test]
fn outside_a_tokio_runtime_the_driver_runs_on_its_own_thread_and_a_runtime_without_io_or_time_is_an_error(
) {
    // Outside any tokio runtime, with the `async-io` feature (on in this
    // workspace), the endpoint runs on async-io's reactor and works.
    let server = Endpoint::bind(v4(), config(160)).unwrap();
    let client = Endpoint::bind(v4(), config(162)).unwrap();
    async_io::block_on(async {
        let connecting = client.connect(server.public_key(), &[server.local_addr()]);
        let (mut accepted, _, _) = server.accept().await.unwrap();
        let mut opened = connecting.await.unwrap();
        opened.write_all(b"no tokio here").await.unwrap();
        opened.shutdown().await.unwrap();
        let mut received = Vec::new();
        accepted.read_to_end(&mut received).await.unwrap();
        assert_eq!(received, b"no tokio here");
    });
    for (what, runtime) in [
        (
            "no time",
            tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build(),
        ),
        (
            "no IO",
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build(),
        ),
    ] {
        let runtime = runtime.unwrap();
        let err = runtime.block_on(async { Endpoint::bind(v4(), config(161)).unwrap_err() });
        assert_eq!(err.kind(), ErrorKind::Other, "{what}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_endpoint_aborts_its_streams_and_refuses_further_use() {
    let server = Endpoint::bind(v4(), config_with(170, quick_transport())).unwrap();
    let client = Endpoint::bind(v4(), config_with(171, quick_transport())).unwrap();
    let connecting = client.connect(server.public_key(), &[server.local_addr()]);
    let (mut accepted, _, _) = server.accept().await.unwrap();
    let mut stream = connecting.await.unwrap();

    client.close();
    let mut buf = [0u8; 4];
    assert_eq!(
        stream.read(&mut buf).await.unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
    assert_eq!(
        stream.write(b"x").await.unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
    let err = client
        .connect(server.public_key(), &[server.local_addr()])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    assert_eq!(
        client.accept().await.unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    // The peer hears about it.
    let err = within(Duration::from_secs(5), "peer told", accepted.read(&mut buf))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    // Once the close has lingered, the driver is done; the stream keeps
    // reporting why it closed.
    within(Duration::from_secs(5), "client idle", client.wait_idle()).await;
    assert_eq!(
        stream.read(&mut buf).await.unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_accept_loses_no_connection() {
    let server = Endpoint::bind(v4(), config(180)).unwrap();
    let client = Endpoint::bind(v4(), config(181)).unwrap();
    let connecting = client.connect(server.public_key(), &[server.local_addr()]);
    let client_task = tokio::spawn(async move {
        let mut s = connecting.await.unwrap();
        s.write_all(b"hi").await.unwrap();
        s.shutdown().await.unwrap();
        s
    });
    // Poll accept in a select! loop whose other branch keeps winning.
    let mut accepted = None;
    for _ in 0..1000 {
        tokio::select! {
            biased;
            _ = tokio::time::sleep(Duration::from_millis(1)) => {}
            r = server.accept() => { accepted = Some(r.unwrap()); break; }
        }
    }
    let (mut accepted, _, _) = match accepted {
        Some(a) => a,
        None => within(Duration::from_secs(5), "accept", server.accept())
            .await
            .unwrap(),
    };
    let mut got = Vec::new();
    accepted.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hi");
    drop(client_task.await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_polled_by_reference_in_select_survives_other_branches() {
    let server = Endpoint::bind(v4(), config(190)).unwrap();
    let client = Endpoint::bind(v4(), config(191)).unwrap();
    spawn_echo_server(server.clone());
    let mut connecting = client.connect(server.public_key(), &[server.local_addr()]);
    let mut ticks = 0u32;
    let stream = loop {
        tokio::select! {
            s = &mut connecting => break s.unwrap(),
            _ = tokio::time::sleep(Duration::from_micros(100)) => ticks += 1,
        }
    };
    assert!(
        echo_through(stream, b"ping").await.unwrap() == b"ping",
        "after {ticks} ticks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_connect_leaves_nothing_behind() {
    let server = Endpoint::bind(v4(), config_with(200, quick_transport())).unwrap();
    let client = Endpoint::bind(v4(), config_with(201, quick_transport())).unwrap();
    // Dropped at once, or after the driver already connected it: either way
    // it is closed (lingering briefly if it had connected) and forgotten.
    drop(client.connect(server.public_key(), &[server.local_addr()]));
    // The attempt is gone at once; the endpoint idles.
    within(Duration::from_secs(5), "idle", client.wait_idle()).await;
}

/// Every task of `runtime` has ended and the socket's port is free again.
async fn wait_until_drivers_end(addrs: &[std::net::SocketAddr], limit: Duration) {
    let metrics = tokio::runtime::Handle::current().metrics();
    let started = Instant::now();
    loop {
        let ports_free = addrs.iter().all(|a| std::net::UdpSocket::bind(a).is_ok());
        if ports_free && metrics.num_alive_tasks() == 0 {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "after {limit:?}: {} tasks alive, ports free: {ports_free}",
            metrics.num_alive_tasks()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_tasks_end_once_endpoints_and_streams_are_dropped() {
    let server = Endpoint::bind(v4(), config_with(210, quick_transport())).unwrap();
    let client = Endpoint::bind(v4(), config_with(211, quick_transport())).unwrap();
    let addrs = [server.local_addr(), client.local_addr()];
    let connecting = client.connect(server.public_key(), &[server.local_addr()]);
    let (mut accepted, _, _) = server.accept().await.unwrap();
    let mut stream = connecting.await.unwrap();
    stream.write_all(&payload(1, 100_000)).await.unwrap();
    let mut first = [0u8; 10];
    accepted.read_exact(&mut first).await.unwrap();

    // Drop in an awkward order: endpoints first, streams mid-transfer.
    drop(server);
    drop(client);
    drop(stream);
    drop(accepted);
    within(
        Duration::from_secs(15),
        "drivers end",
        wait_until_drivers_end(&addrs, Duration::from_secs(10)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_dropped_with_a_peer_still_connected_ends_its_driver() {
    let server = Endpoint::bind(v4(), config_with(220, quick_transport())).unwrap();
    let client = Endpoint::bind(v4(), config_with(221, quick_transport())).unwrap();
    let connecting = client.connect(server.public_key(), &[server.local_addr()]);
    let (accepted, _, _) = server.accept().await.unwrap();
    let stream = connecting.await.unwrap();
    // The client goes away; the server keeps its stream open and never
    // finishes, so the client's background finish is cut at the idle timeout.
    let client_addr = client.local_addr();
    drop((client, stream));
    let metrics = tokio::runtime::Handle::current().metrics();
    let started = Instant::now();
    while std::net::UdpSocket::bind(client_addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "client driver still running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        metrics.num_alive_tasks(),
        1,
        "only the server's driver is left"
    );
    drop((server, accepted));
}
