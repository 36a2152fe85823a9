//! A connection through a lossy, duplicating, reordering and delaying path:
//! two endpoints on loopback talk through srudp-testkit's seeded
//! `ImpairingRelay`, and an echo comes back byte-identical.

mod common;

use std::time::{Duration, Instant};

use common::*;
use srudp_testkit::{ImpairingRelay, Impairment};
use srudp_tokio::Endpoint;

const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_through_a_path_that_drops_duplicates_reorders_and_delays_is_byte_identical() {
    let seed = 80;
    let server = Endpoint::bind(v4(), config(seed)).unwrap();
    let client = Endpoint::bind(v4(), config(seed + 1)).unwrap();
    let relay = ImpairingRelay::start(
        client.local_addr(),
        server.local_addr(),
        Impairment {
            seed,
            drop: 0.02,
            duplicate: 0.02,
            reorder: 0.03,
            delay: Duration::from_millis(2),
            jitter: Duration::from_micros(500),
        },
    )
    .unwrap();
    let data = payload(seed, 2 * MIB);

    // The client reaches the server only through the relay.
    let connecting = client.connect(server.public_key(), &[relay.addr()]);
    let (accepted, from, _) = within(Duration::from_secs(10), "accept", server.accept())
        .await
        .unwrap();
    assert_eq!(from, relay.addr(), "the server sees the relay as its peer");
    tokio::spawn(async move {
        let (mut reader, mut writer) = tokio::io::split(accepted);
        if tokio::io::copy(&mut reader, &mut writer).await.is_ok() {
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut writer).await;
        }
    });
    let stream = within(Duration::from_secs(10), "connect", connecting)
        .await
        .unwrap();

    let start = Instant::now();
    let back = within(
        Duration::from_secs(60),
        &format!("impaired echo, relay seed {seed}"),
        echo_through(stream, &data),
    )
    .await
    .unwrap();
    let stats = relay.stats();
    println!(
        "2 MiB echo through the relay in {:?}; relay: {stats:?}",
        start.elapsed()
    );
    assert_eq!(back.len(), data.len(), "relay seed {seed}: echo length");
    assert!(back == data, "relay seed {seed}: echoed bytes differ");
    assert!(
        stats.dropped > 0 && stats.duplicated > 0 && stats.reordered > 0,
        "relay seed {seed}: every impairment happened: {stats:?}"
    );
}
