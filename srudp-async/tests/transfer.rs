//! Bulk transfers over real UDP sockets on loopback, under tokio, smol and
//! async-std: echo integrity over IPv4 and IPv6, many connections on one
//! endpoint, graceful close, a driver spawned on the executor itself, and
//! tokio's IO ecosystem (`Framed`) on a stream.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use srudp_async::Endpoint;

const MIB: usize = 1 << 20;

async fn echo_64_mib(ex: Exec, bind: std::net::SocketAddr, seed: u64) {
    let server = Endpoint::bind(bind, config(seed)).unwrap();
    let client = Endpoint::bind(bind, config(seed + 1)).unwrap();
    spawn_echo_server(ex, server.clone());
    let data = payload(seed, 64 * MIB);
    let stream = client
        .connect(server.public_key(), &[server.local_addr()])
        .await
        .unwrap();
    let back = within(
        Duration::from_secs(60),
        "64 MiB echo",
        echo_through(ex, stream, &data),
    )
    .await
    .unwrap();
    assert_eq!(back.len(), data.len(), "{ex:?} seed {seed}: echo length");
    assert!(back == data, "{ex:?} seed {seed}: echoed bytes differ");
}

async fn echo_of_64_mib_over_ipv4_loopback_is_byte_identical(ex: Exec) {
    echo_64_mib(ex, v4(), 10).await;
}

async fn echo_of_64_mib_over_ipv6_loopback_is_byte_identical(ex: Exec) {
    let Some(bind) = v6() else { return };
    echo_64_mib(ex, bind, 20).await;
}

async fn a_hundred_concurrent_connections_on_one_endpoint_each_echo_1_mib(ex: Exec) {
    let server = Endpoint::bind(v4(), config(30)).unwrap();
    let client = Endpoint::bind(v4(), config(31)).unwrap();
    spawn_echo_server(ex, server.clone());
    let (key, addr) = (server.public_key(), server.local_addr());
    let mut tasks = Vec::new();
    for i in 0..100u64 {
        let client = client.clone();
        tasks.push(ex.spawn(async move {
            let data = payload(1000 + i, MIB);
            let stream = client.connect(key, &[addr]).await?;
            let back = echo_through(ex, stream, &data).await?;
            Ok::<_, std::io::Error>((i, back == data))
        }));
    }
    within(Duration::from_secs(60), "100 echoes", async {
        for task in tasks {
            let (i, identical) = task.await.unwrap();
            assert!(identical, "{ex:?} connection {i}: echoed bytes differ");
        }
    })
    .await;
}

async fn a_graceful_close_delivers_everything_and_the_reverse_direction_stays_open(ex: Exec) {
    let server = Endpoint::bind(v4(), config(40)).unwrap();
    let client = Endpoint::bind(v4(), config(41)).unwrap();
    let data = payload(40, 3 * MIB + 123);
    let connecting = client.connect(server.public_key(), &[server.local_addr()]);
    let (mut accepted, from, peer) = server.accept().await.unwrap();
    let mut stream = connecting.await.unwrap();
    assert_eq!(from, client.local_addr());
    assert_eq!(peer, None, "NK does not reveal the initiator");
    assert_eq!(stream.peer_public_key(), Some(server.public_key()));

    // close() returns once the server acknowledged every byte; the server
    // reads concurrently, since 3 MiB exceed its initial receive window.
    let mut received = Vec::new();
    let (closed, read) = within(
        Duration::from_secs(20),
        "close while the server reads to end",
        futures_lite::future::zip(
            async {
                stream.write_all(&data).await?;
                stream.close().await
            },
            accepted.read_to_end(&mut received),
        ),
    )
    .await;
    closed.unwrap();
    read.unwrap();
    assert!(received == data, "{ex:?}: received bytes differ");
    // Half-close: the server can still answer after the client finished.
    accepted.write_all(b"thanks").await.unwrap();
    accepted.close().await.unwrap();
    drop(accepted);
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"thanks");
}

async fn a_dropped_stream_still_delivers_what_was_written(ex: Exec) {
    let server = Endpoint::bind(v4(), config(50)).unwrap();
    let client = Endpoint::bind(v4(), config(51)).unwrap();
    let data = payload(50, MIB);
    let connecting = client.connect(server.public_key(), &[server.local_addr()]);
    let (mut accepted, _, _) = server.accept().await.unwrap();
    let mut stream = connecting.await.unwrap();
    stream.write_all(&data).await.unwrap();
    drop(stream); // no close: the background finish delivers it
    let mut received = Vec::new();
    within(
        Duration::from_secs(20),
        "read to end",
        accepted.read_to_end(&mut received),
    )
    .await
    .unwrap();
    assert!(received == data, "{ex:?}: received bytes differ");
}

async fn a_driver_spawned_on_the_executor_serves_an_echo_and_then_ends(ex: Exec) {
    let (server, server_driver) = ex
        .bind_with_driver_task(v4(), config_with(60, quick_transport()))
        .unwrap();
    let (client, client_driver) = ex
        .bind_with_driver_task(v4(), config_with(61, quick_transport()))
        .unwrap();
    spawn_echo_server(ex, server.clone());
    let stream = client
        .connect(server.public_key(), &[server.local_addr()])
        .await
        .unwrap();
    let data = payload(60, 200_000);
    assert!(echo_through(ex, stream, &data).await.unwrap() == data);
    // The echo server task holds the server endpoint; closing it ends the
    // accept loop and, once drained, the server's driver.
    server.close();
    drop((server, client));
    within(Duration::from_secs(10), "drivers end", async {
        client_driver.await;
        server_driver.await;
    })
    .await;
}

async fn a_dual_stack_endpoint_serves_ipv4_and_ipv6_peers(ex: Exec) {
    let Some(_) = v6() else { return };
    let server = match Endpoint::bind("[::]:0".parse().unwrap(), config(70)) {
        Ok(s) => s,
        Err(e) => {
            println!("skipped: cannot bind [::]: {e}");
            return;
        }
    };
    spawn_echo_server(ex, server.clone());
    let port = server.local_addr().port();
    for (i, (bind, target)) in [("127.0.0.1:0", "127.0.0.1"), ("[::1]:0", "::1")]
        .into_iter()
        .enumerate()
    {
        let client = Endpoint::bind(bind.parse().unwrap(), config(71 + i as u64)).unwrap();
        let target = std::net::SocketAddr::new(target.parse().unwrap(), port);
        let stream = client
            .connect(server.public_key(), &[target])
            .await
            .unwrap();
        assert_eq!(
            stream.peer_addr(),
            target,
            "the peer is seen in its own family"
        );
        let data = payload(i as u64, 100_000);
        assert!(echo_through(ex, stream, &data).await.unwrap() == data);
    }
}

on_every_executor!(
    echo_of_64_mib_over_ipv4_loopback_is_byte_identical,
    echo_of_64_mib_over_ipv6_loopback_is_byte_identical,
    a_hundred_concurrent_connections_on_one_endpoint_each_echo_1_mib,
    a_graceful_close_delivers_everything_and_the_reverse_direction_stays_open,
    a_dropped_stream_still_delivers_what_was_written,
    a_driver_spawned_on_the_executor_serves_an_echo_and_then_ends,
    a_dual_stack_endpoint_serves_ipv4_and_ipv6_peers,
);

/// tokio's codec ecosystem on a stream: `Framed` with length-delimited
/// frames, echoed back reversed.
#[test]
fn length_delimited_frames_round_trip_through_framed() {
    use bytes::Bytes;
    use futures_util::{SinkExt, StreamExt};
    use tokio_util::codec::{Framed, LengthDelimitedCodec};

    Exec::Tokio.block_on(async {
        let server = Endpoint::bind(v4(), config(60)).unwrap();
        let client = Endpoint::bind(v4(), config(61)).unwrap();
        let connecting = client.connect(server.public_key(), &[server.local_addr()]);
        let (accepted, _, _) = server.accept().await.unwrap();
        let stream = connecting.await.unwrap();

        tokio::spawn(async move {
            // Echo each frame back, reversed.
            let mut frames = Framed::new(accepted, LengthDelimitedCodec::new());
            while let Some(Ok(frame)) = frames.next().await {
                let mut reply = frame.to_vec();
                reply.reverse();
                if frames.send(Bytes::from(reply)).await.is_err() {
                    break;
                }
            }
        });
        let mut frames = Framed::new(stream, LengthDelimitedCodec::new());
        for i in 0..50u64 {
            let message = payload(i, (i as usize * 997) % 20_000 + 1);
            within(
                Duration::from_secs(10),
                "send frame",
                frames.send(Bytes::from(message.clone())),
            )
            .await
            .unwrap();
            let reply = within(Duration::from_secs(10), "receive frame", frames.next())
                .await
                .unwrap()
                .unwrap();
            let mut expected = message;
            expected.reverse();
            assert_eq!(reply.to_vec(), expected, "frame {i}");
        }
    });
}
