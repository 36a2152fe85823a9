//! How connections begin and end on real sockets, under tokio, smol and
//! async-std: simultaneous open, a peer that vanishes, aborts and refusals,
//! closing the endpoint, cancellation, and the driver ending once
//! everything is dropped.

#[macro_use]
mod common;

use std::error::Error as _;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::*;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use srudp_async::{
    AcceptPolicy, CloseReason, ConnectOptions, Endpoint, HandshakePattern, Keypair, TransportConfig,
};
use srudp_testkit::ArmedLossRelay;

async fn both_sides_connecting_toward_each_other_at_once_get_exactly_one_connection(ex: Exec) {
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
        let (mut sa, mut sb) = within(
            Duration::from_secs(10),
            "simultaneous open",
            futures_lite::future::try_zip(from_a, from_b),
        )
        .await
        .unwrap_or_else(|e| panic!("{ex:?} seed {seed}: {e}"));
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
            let extra = timeout(Duration::from_millis(200), ep.accept()).await;
            assert!(
                extra.is_none(),
                "{ex:?} seed {seed}: {name} accepted a second connection"
            );
        }
    }
}

async fn a_peer_that_vanishes_is_reported_as_timed_out_within_the_idle_timeout(ex: Exec) {
    let transport = quick_transport();
    let idle = transport.idle_timeout;
    let client = Endpoint::bind(v4(), config_with(110, transport.clone())).unwrap();
    // The peer's driver runs as a task we then cancel, and the path loses
    // everything the peer sends from then on (its best-effort CLOSE too):
    // it stops without a word, like a crashed host.
    let (peer, peer_driver) = ex
        .bind_with_driver_task(v4(), config_with(111, transport))
        .unwrap();
    let path = ArmedLossRelay::start(client.local_addr());
    let connecting = peer.connect(client.public_key(), &[path.addr()]);
    let (mut stream, _, _) = client.accept().await.unwrap();
    let mut held = connecting.await.unwrap();
    stream.write_all(b"are you there?").await.unwrap();
    ex.sleep(Duration::from_millis(200)).await;

    path.drop_next(u32::MAX);
    peer_driver.cancel().await;
    let vanished = Instant::now();
    let mut buf = [0u8; 16];
    let err = within(idle * 3, "timeout report", stream.read(&mut buf))
        .await
        .unwrap_err();
    let elapsed = vanished.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(
        elapsed <= idle + Duration::from_millis(500),
        "{ex:?}: reported after {elapsed:?}, idle timeout {idle:?}"
    );
    let reason = err.source().and_then(|s| s.downcast_ref::<CloseReason>());
    assert_eq!(reason, Some(&CloseReason::IdleTimeout));
    // The peer whose driver is gone still hands out what had arrived, then
    // says the driver is gone instead of hanging.
    assert_eq!(held.read(&mut buf).await.unwrap(), 14);
    let err = held.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
}

async fn a_peer_whose_driver_is_dropped_tells_us_at_once_with_a_reason(ex: Exec) {
    // Our idle timeout is the default 30 s: only the peer's CLOSE can end
    // the connection within the few seconds this waits.
    let client = Endpoint::bind(v4(), config(112)).unwrap();
    let (peer, peer_driver) = ex.bind_with_driver_task(v4(), config(113)).unwrap();
    let connecting = peer.connect(client.public_key(), &[client.local_addr()]);
    let (mut stream, _, _) = client.accept().await.unwrap();
    let mut held = connecting.await.unwrap();
    held.write_all(b"last words").await.unwrap();
    let mut buf = [0u8; 10];
    stream.read_exact(&mut buf).await.unwrap();

    // The driver goes away (its task cancelled, as when a runtime is
    // dropped) with the endpoint and the stream still held.
    peer_driver.cancel().await;
    let err = within(
        Duration::from_secs(5),
        "the peer's CLOSE",
        stream.read(&mut buf),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{ex:?}: {err}");
    let reason = err.source().and_then(|s| s.downcast_ref::<CloseReason>());
    assert_eq!(
        reason,
        Some(&CloseReason::PeerClose {
            code: 0,
            reason: "endpoint closed".into()
        })
    );
    // The side whose driver is gone says so.
    let err = held.write(b"more").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
    drop(peer);
}

async fn a_peer_abort_is_connection_reset_with_its_code_and_reason_as_source(_ex: Exec) {
    let server = Endpoint::bind(v4(), config(120)).unwrap();
    let client = Endpoint::bind(v4(), config(121)).unwrap();
    let connecting = client.connect(server.public_key(), &[server.local_addr()]);
    let (mut accepted, _, _) = server.accept().await.unwrap();
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
    assert_eq!(
        accepted.read(&mut buf).await.unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
}

async fn a_connect_the_peer_refuses_is_connection_refused(_ex: Exec) {
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

async fn a_connect_nobody_answers_times_out(_ex: Exec) {
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

async fn api_misuse_returns_errors_instead_of_panicking(_ex: Exec) {
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

    let mut invalid = config(152);
    invalid.transport = std::sync::Arc::new(TransportConfig {
        idle_timeout: Duration::ZERO,
        ..TransportConfig::default()
    });
    let err = Endpoint::bind(v4(), invalid).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    // Writing after a graceful close (futures-io's `close`, tokio's
    // `shutdown`; both finish the stream).
    let connecting = client.connect(key, &[server.local_addr()]);
    let (_accepted, _, _) = server.accept().await.unwrap();
    let mut stream = connecting.await.unwrap();
    stream.close().await.unwrap();
    stream.close().await.unwrap(); // idempotent
    tokio::io::AsyncWriteExt::shutdown(&mut stream)
        .await
        .unwrap(); // the same, by tokio's name
    let err = stream.write(b"late").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
}

async fn closing_the_endpoint_aborts_its_streams_and_refuses_further_use(_ex: Exec) {
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

async fn a_cancelled_accept_loses_no_connection(ex: Exec) {
    let server = Endpoint::bind(v4(), config(180)).unwrap();
    let client = Endpoint::bind(v4(), config(181)).unwrap();
    let connecting = client.connect(server.public_key(), &[server.local_addr()]);
    let client_task = ex.spawn(async move {
        let mut s = connecting.await.unwrap();
        s.write_all(b"hi").await.unwrap();
        s.close().await.unwrap();
        s
    });
    // Race accept against the executor's timer, which keeps winning: accept
    // is dropped each time, as by a `select!` branch that loses.
    let mut accepted = None;
    for _ in 0..1000 {
        let raced = futures_lite::future::or(async { Some(server.accept().await) }, async {
            ex.sleep(Duration::from_millis(1)).await;
            None
        })
        .await;
        if let Some(r) = raced {
            accepted = Some(r.unwrap());
            break;
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
    drop(client_task.await);
}

async fn a_connect_polled_by_reference_survives_losing_races(ex: Exec) {
    let server = Endpoint::bind(v4(), config(190)).unwrap();
    let client = Endpoint::bind(v4(), config(191)).unwrap();
    spawn_echo_server(ex, server.clone());
    // Polled by reference, as in a `select!` loop: one attempt survives
    // every lost race.
    let mut connecting = client.connect(server.public_key(), &[server.local_addr()]);
    let mut lost = 0u32;
    let stream = loop {
        let raced = futures_lite::future::or(async { Some((&mut connecting).await) }, async {
            ex.sleep(Duration::from_micros(100)).await;
            None
        })
        .await;
        match raced {
            Some(s) => break s.unwrap(),
            None => lost += 1,
        }
    };
    assert!(
        echo_through(ex, stream, b"ping").await.unwrap() == b"ping",
        "after {lost} lost races"
    );
}

async fn an_abandoned_connect_leaves_nothing_behind(_ex: Exec) {
    let server = Endpoint::bind(v4(), config_with(200, quick_transport())).unwrap();
    let client = Endpoint::bind(v4(), config_with(201, quick_transport())).unwrap();
    // Dropped at once, or after the driver already connected it: either way
    // it is closed (lingering briefly if it had connected) and forgotten.
    drop(client.connect(server.public_key(), &[server.local_addr()]));
    // The attempt is gone at once; the endpoint idles.
    within(Duration::from_secs(5), "idle", client.wait_idle()).await;
}

async fn the_drivers_end_once_endpoints_and_streams_are_dropped(ex: Exec) {
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
    wait_until_ports_are_free(&addrs, Duration::from_secs(10)).await;
    // Under tokio the drivers were tasks of this runtime: none is left.
    let started = Instant::now();
    while let Some(alive @ 1..) = ex.alive_tasks() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{alive} driver tasks still alive"
        );
        ex.sleep(Duration::from_millis(20)).await;
    }
}

async fn an_endpoint_dropped_with_a_peer_still_connected_ends_its_driver(ex: Exec) {
    let server = Endpoint::bind(v4(), config_with(220, quick_transport())).unwrap();
    let (client, client_driver) = ex
        .bind_with_driver_task(v4(), config_with(221, quick_transport()))
        .unwrap();
    let connecting = client.connect(server.public_key(), &[server.local_addr()]);
    let (accepted, _, _) = server.accept().await.unwrap();
    let stream = connecting.await.unwrap();
    // The client goes away; the server keeps its stream open and never
    // finishes, so the client's background finish is cut at the idle timeout.
    let client_addr = client.local_addr();
    drop((client, stream));
    within(Duration::from_secs(10), "client driver ends", client_driver).await;
    wait_until_ports_are_free(&[client_addr], Duration::from_secs(1)).await;
    // Under tokio, only the server's driver is left (a finished task is
    // counted until the runtime has released it: give it a moment).
    let started = Instant::now();
    while let Some(alive @ 2..) = ex.alive_tasks() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{alive} tasks alive, only the server's driver should be"
        );
        ex.sleep(Duration::from_millis(20)).await;
    }
    drop((server, accepted));
}

#[test]
fn outside_a_tokio_runtime_the_driver_runs_on_its_own_thread_and_a_runtime_without_io_or_time_is_an_error(
) {
    use tokio::io::AsyncWriteExt as _;
    // Outside any tokio runtime, with the `async-io` feature (on in these
    // tests), the endpoint runs on async-io's reactor and works, with
    // tokio's IO traits too.
    let server = Endpoint::bind(v4(), config(160)).unwrap();
    let client = Endpoint::bind(v4(), config(162)).unwrap();
    async_io::block_on(async {
        let connecting = client.connect(server.public_key(), &[server.local_addr()]);
        let (mut accepted, _, _) = server.accept().await.unwrap();
        let mut opened = connecting.await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut opened, b"no tokio here")
            .await
            .unwrap();
        opened.shutdown().await.unwrap();
        let mut received = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut accepted, &mut received)
            .await
            .unwrap();
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

#[test]
fn returning_from_a_tokio_main_without_shutting_down_ends_the_peers_stream_at_once() {
    let listener = Endpoint::bind(v4(), config(114)).unwrap();
    let (key, addr) = (listener.public_key(), listener.local_addr());
    // A program's `#[tokio::main]`: it connects, writes, and returns without
    // finishing its stream or waiting for anything; its runtime drops the
    // driver, which sends what the dropped stream still had and its end,
    // then a CLOSE. The peer's idle timeout is the default 30 s.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let endpoint = Endpoint::bind(v4(), config(115)).unwrap();
            let mut stream = endpoint.connect(key, &[addr]).await.unwrap();
            stream.write_all(b"bye").await.unwrap();
        });
    })
    .join()
    .unwrap();
    async_io::block_on(async {
        let (mut stream, _, _) = within(Duration::from_secs(5), "accept", listener.accept())
            .await
            .unwrap();
        let mut got = Vec::new();
        within(
            Duration::from_secs(5),
            "end-of-stream",
            stream.read_to_end(&mut got),
        )
        .await
        .unwrap();
        assert_eq!(got, b"bye");
        // And the connection is over: the peer cannot answer.
        let err = within(Duration::from_secs(5), "write", stream.write_all(b"?"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    });
}

on_every_executor!(
    both_sides_connecting_toward_each_other_at_once_get_exactly_one_connection,
    a_peer_that_vanishes_is_reported_as_timed_out_within_the_idle_timeout,
    a_peer_whose_driver_is_dropped_tells_us_at_once_with_a_reason,
    a_peer_abort_is_connection_reset_with_its_code_and_reason_as_source,
    a_connect_the_peer_refuses_is_connection_refused,
    a_connect_nobody_answers_times_out,
    api_misuse_returns_errors_instead_of_panicking,
    closing_the_endpoint_aborts_its_streams_and_refuses_further_use,
    a_cancelled_accept_loses_no_connection,
    a_connect_polled_by_reference_survives_losing_races,
    an_abandoned_connect_leaves_nothing_behind,
    the_drivers_end_once_endpoints_and_streams_are_dropped,
    an_endpoint_dropped_with_a_peer_still_connected_ends_its_driver,
);
