//! A connection through a lossy, duplicating, reordering and delaying path,
//! under tokio, smol and async-std: two endpoints on loopback talk through
//! srudp-testkit's seeded `ImpairingRelay`, and an echo comes back
//! byte-identical.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::*;
use srudp_async::Endpoint;
use srudp_testkit::ImpairingRelay;

const MIB: usize = 1 << 20;

async fn an_echo_through_a_path_that_drops_duplicates_reorders_and_delays_is_byte_identical(
    ex: Exec,
) {
    let seed = match ex {
        Exec::Tokio | Exec::Smol => 80,
        Exec::AsyncStd => 90,
    };
    let server = Endpoint::bind(v4(), config(seed)).unwrap();
    let client = Endpoint::bind(v4(), config(seed + 1)).unwrap();
    let relay =
        ImpairingRelay::start(client.local_addr(), server.local_addr(), bad_path(seed)).unwrap();
    spawn_echo_server(ex, server.clone());
    let data = payload(seed, 2 * MIB);

    // The client reaches the server only through the relay.
    let stream = within(
        Duration::from_secs(10),
        "connect",
        client.connect(server.public_key(), &[relay.addr()]),
    )
    .await
    .unwrap();
    let start = Instant::now();
    let back = within(
        Duration::from_secs(60),
        &format!("{ex:?}: impaired echo, relay seed {seed}"),
        echo_through(ex, stream, &data),
    )
    .await
    .unwrap();
    let stats = relay.stats();
    println!(
        "{ex:?}: 2 MiB echo through the relay in {:?}; relay: {stats:?}",
        start.elapsed()
    );
    assert_eq!(
        back.len(),
        data.len(),
        "{ex:?} relay seed {seed}: echo length"
    );
    assert!(
        back == data,
        "{ex:?} relay seed {seed}: echoed bytes differ"
    );
    assert!(
        stats.dropped > 0 && stats.duplicated > 0 && stats.reordered > 0,
        "{ex:?} relay seed {seed}: every impairment happened: {stats:?}"
    );
    server.close();
    client.close();
}

on_every_executor!(
    an_echo_through_a_path_that_drops_duplicates_reorders_and_delays_is_byte_identical,
);
