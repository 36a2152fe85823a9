//! An idle endpoint costs no CPU: the driver sleeps until a datagram, a
//! deadline or the application wakes it (no busy loop, no fixed tick).
//!
//! Alone in its own test binary, so no other test's work lands in the
//! process CPU time it measures; the executors are measured one after the
//! other, in one test.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use srudp_async::Endpoint;
use srudp_testkit::process_cpu_time;

/// Two endpoints with 100 established connections between them and a
/// reader parked on every stream as a task of `ex`; their drivers are tasks
/// of `ex` too, or run on their own threads (`Endpoint::bind` outside tokio).
struct IdlePair {
    endpoints: [Endpoint; 2],
    tasks: Vec<Task<()>>,
}

async fn idle_pair(ex: Exec, seed: u64, drivers_on_executor: bool) -> IdlePair {
    let (server, client, mut tasks) = if drivers_on_executor {
        let (server, server_driver) = ex.bind_with_driver_task(v4(), config(seed)).unwrap();
        let (client, client_driver) = ex.bind_with_driver_task(v4(), config(seed + 1)).unwrap();
        (server, client, vec![server_driver, client_driver])
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

/// Idles `pairs` for 3 s and checks they used under 5% of one core.
async fn assert_idle(ex: Exec, what: &str, pairs: Vec<IdlePair>) {
    // Let delayed acknowledgments and the last handshake timers settle.
    ex.sleep(Duration::from_millis(300)).await;
    let wall_start = Instant::now();
    let cpu_start = process_cpu_time();
    ex.sleep(Duration::from_secs(3)).await;
    let cpu_end = process_cpu_time();
    let wall = wall_start.elapsed();
    match (cpu_start, cpu_end) {
        (Ok(start), Ok(end)) => {
            let cpu = end - start;
            println!("idle: {cpu:?} CPU over {wall:?} wall with {what}");
            assert!(
                cpu < wall / 20,
                "{what}: idle endpoints used {cpu:?} of CPU in {wall:?} (budget 5%)"
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
}

#[test]
fn endpoints_with_a_hundred_idle_connections_use_almost_no_cpu_on_every_executor() {
    // Under tokio: drivers as tasks of the runtime (`Endpoint::bind` inside it).
    Exec::Tokio.block_on(async {
        let pairs = vec![idle_pair(Exec::Tokio, 300, true).await];
        assert_idle(
            Exec::Tokio,
            "2 endpoints x 100 connections, drivers on tokio",
            pairs,
        )
        .await;
    });
    // Under smol and async-std, three configurations idle side by side:
    // drivers as smol tasks, as async-std tasks, and on their own threads.
    Exec::Smol.block_on(async {
        let pairs = vec![
            idle_pair(Exec::Smol, 310, true).await,
            idle_pair(Exec::AsyncStd, 320, true).await,
            idle_pair(Exec::Smol, 330, false).await,
        ];
        assert_idle(
            Exec::Smol,
            "6 endpoints x 100 connections (drivers on smol, on async-std, on their own threads)",
            pairs,
        )
        .await;
    });
}
