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

/// 100 idle connections between two endpoints, with a reader parked on
/// every stream as a task of `ex`; the drivers run on `ex` too, or on their
/// own threads (`Endpoint::bind`). Returns the process CPU time used over 3
/// idle seconds, and the wall time.
async fn idle_cpu(ex: Exec, seed: u64, drivers_on_executor: bool) -> (Duration, Duration) {
    let (server, client, drivers) = if drivers_on_executor {
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
    let mut readers = Vec::new();
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
            readers.push(ex.spawn(async move {
                let _ = s.read(&mut [0u8; 16]).await;
            }));
        }
    }
    // Let delayed acknowledgments and the last handshake timers settle.
    sleep(Duration::from_millis(300)).await;

    let wall_start = Instant::now();
    let cpu_start = process_cpu_time();
    sleep(Duration::from_secs(3)).await;
    let cpu = process_cpu_time() - cpu_start;
    let wall = wall_start.elapsed();

    for r in readers {
        r.cancel().await;
    }
    server.close();
    client.close();
    for d in drivers {
        d.cancel().await;
    }
    (cpu, wall)
}

#[test]
fn an_endpoint_with_a_hundred_idle_connections_uses_almost_no_cpu_under_both_executors() {
    for (ex, seed, on_executor) in [
        (Exec::Smol, 300, true),
        (Exec::AsyncStd, 310, true),
        (Exec::Smol, 320, false),
    ] {
        let (cpu, wall) = ex.block_on(idle_cpu(ex, seed, on_executor));
        let drivers = if on_executor {
            "on the executor"
        } else {
            "on their own threads"
        };
        println!(
            "{ex:?}, drivers {drivers}: {cpu:?} CPU over {wall:?} wall \
             with 2 endpoints x 100 idle connections"
        );
        assert!(
            cpu < wall / 20,
            "{ex:?}, drivers {drivers}: an idle endpoint used {cpu:?} of CPU in {wall:?} (budget 5%)"
        );
    }
}
