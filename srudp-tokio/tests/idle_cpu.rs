//! An idle endpoint costs no CPU: the driver sleeps until a datagram, a
//! deadline or the application wakes it (no busy loop, no fixed tick).
//!
//! Alone in its own test binary, so no other test's work lands in the
//! process CPU time it measures.

mod common;

use std::time::{Duration, Instant};

use common::*;
use srudp_testkit::process_cpu_time;
use srudp_tokio::Endpoint;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_with_a_hundred_idle_connections_uses_almost_no_cpu() {
    let server = Endpoint::bind(v4(), config(300)).unwrap();
    let client = Endpoint::bind(v4(), config(301)).unwrap();
    let mut streams = Vec::new();
    for _ in 0..100 {
        let connecting = client.connect(server.public_key(), &[server.local_addr()]);
        let (mut accepted, _, _) = server.accept().await.unwrap();
        let mut stream = connecting.await.unwrap();
        // Move a byte each way so both sides are fully established.
        stream.write_all(b"x").await.unwrap();
        accepted.read_exact(&mut [0u8; 1]).await.unwrap();
        accepted.write_all(b"y").await.unwrap();
        stream.read_exact(&mut [0u8; 1]).await.unwrap();
        streams.push((stream, accepted));
    }
    // Let delayed acknowledgments and the last handshake timers settle.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Each side also has a reader parked on every stream, as a server would.
    let mut readers = Vec::new();
    for (stream, accepted) in streams {
        for mut s in [stream, accepted] {
            readers.push(tokio::spawn(async move {
                let mut buf = [0u8; 16];
                let _ = s.read(&mut buf).await;
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let Ok(cpu_start) = process_cpu_time() else {
        println!("skipped: process CPU time is not measurable on this OS");
        return;
    };
    let wall_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = process_cpu_time().unwrap() - cpu_start;
    let wall = wall_start.elapsed();
    println!("idle: {cpu:?} CPU over {wall:?} wall with 2 endpoints x 100 connections");
    assert!(
        cpu < wall / 20,
        "an idle endpoint used {cpu:?} of CPU in {wall:?} (budget 5%)"
    );
    for r in readers {
        r.abort();
    }
}
