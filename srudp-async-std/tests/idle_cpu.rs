//! An idle endpoint costs no CPU: the driver sleeps until a datagram, a
//! deadline or the application wakes it (no busy loop, no fixed tick).
//!
//! Alone in its own test binary, so no other test's work lands in the
//! process CPU time it measures; the two executors are measured one after
//! the other.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use srudp_async_std::Endpoint;
use srudp_testkit::process_cpu_time;

/// Two endpoints with 100 established connections between them and a
/// reader parked on every stream as a task of `ex`; their drivers run on
/// `ex` too, or on their own threads (`Endpoint::bind`).
struct IdlePair {
    endpoints: [Endpoint; 2],
    tasks: Vec<Task<()>>,
}

async fn idle_pair(ex: Exec, seed: u64, drivers_on_executor: bool) -> IdlePair {
    let (server, client, mut tasks) = if drivers_on_executor {
        let (server, server_driver) = Endpoint::bind_with_driver(v4(), config(seed)).unwrap();
        let (client, client_driver) = Endpoint::bind_with_driver(v4(), config(seed + 1)).unwrap();
        (
            server,
            client,
            vec![ex.spawn(server_driver), ex.spawn(client_driver)],
        )
    } else {
        let server = Endpoint::bind(v4(), config(seed)).unwrap();
        let client = Endpoint::bind(v4(), config(seed + 1)).unwrap();
        (server, client, Vec::new())
    };
    for _ in 0..100 {
        let connecting = client.connect(server.public_key(), &[server.local_addr()]);
        let (mut accepted, _, _) = server.accept().await.unwrap();
        let mut stream = connecting.await.unwrap();
        // Move a byte each way so both sides are fully established.
        stream.write_all(b"x").await.unwrap();
        accepted.read_exact(&mut [0u8; 1]).await.unwrap();
        accepted.write_all(b"y").await.unwrap();
        stream.read_exact(&mut [0u8; 1]).await.unwrap();
        for mut s in [stream, accepted] {
            tasks.push(ex.spawn(async move {
                let _ = s.read(&mut [0u8; 16]).await;
            }));
        }
    }
    IdlePair {
        endpoints: [server, client],
        tasks,
    }
}

#[test]
fn endpoints_with_a_hundred_idle_connections_use_almost_no_cpu_under_both_executors() {
    Exec::Smol.block_on(async {
        // Three configurations idle side by side: drivers as smol tasks, as
        // async-std tasks, and on their own threads.
        let pairs = [
            idle_pair(Exec::Smol, 300, true).await,
            idle_pair(Exec::AsyncStd, 310, true).await,
            idle_pair(Exec::Smol, 320, false).await,
        ];
        // Let delayed acknowledgments and the last handshake timers settle.
        sleep(Duration::from_millis(300)).await;

        let wall_start = Instant::now();
        let cpu_start = process_cpu_time();
        sleep(Duration::from_secs(3)).await;
        let cpu_end = process_cpu_time();
        let wall = wall_start.elapsed();
        match (cpu_start, cpu_end) {
            (Ok(start), Ok(end)) => {
                let cpu = end - start;
                println!(
                    "idle: {cpu:?} CPU over {wall:?} wall with 6 endpoints x 100 connections \
                     (drivers on smol, on async-std, on their own threads)"
                );
                assert!(
                    cpu < wall / 20,
                    "idle endpoints used {cpu:?} of CPU in {wall:?} (budget 5%)"
                );
            }
            (Err(e), _) | (_, Err(e)) => {
                println!("skipped: process CPU time is not measurable here: {e}");
            }
        }
        for pair in pairs {
            for ep in &pair.endpoints {
                ep.close();
            }
            for task in pair.tasks {
                task.cancel().await;
            }
        }
    });
}
