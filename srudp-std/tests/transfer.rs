//! Bulk transfers over real loopback sockets: large echoes over IPv4 and
//! IPv6, many concurrent connections on one endpoint, and an impaired path.

mod common;

use std::time::Instant;

use srudp_testkit::ImpairingRelay;

use common::{
    addr_of, assert_same_bytes, bad_path, bind, echo_server, ipv6_available, payload, round_trip,
};

const BIG: usize = 64 << 20;

fn echo_big(bind_addr: &str, seed: u64) {
    let server = bind(bind_addr, seed);
    let client = bind(bind_addr, seed + 1);
    let (key, addr) = (server.public_key(), addr_of(&server));
    let echoed = echo_server(server, 1);
    let payload = payload(seed, BIG);
    let start = Instant::now();
    let stream = client.connect(key, &[addr]).unwrap();
    let back = round_trip(&stream, &payload).unwrap();
    let elapsed = start.elapsed();
    println!("client stats: {:?}", stream.stats());
    stream.close().unwrap();
    assert_same_bytes(&back, &payload, "64 MiB echo");
    assert_eq!(echoed.join().unwrap().unwrap(), vec![BIG as u64]);
    println!(
        "64 MiB echoed over {bind_addr} in {elapsed:.2?} ({:.1} MiB/s each way)",
        64.0 / elapsed.as_secs_f64()
    );
}

#[test]
fn echo_of_64_mib_over_ipv4_loopback_comes_back_byte_identical() {
    echo_big(common::V4, 10);
}

#[test]
fn echo_of_64_mib_over_ipv6_loopback_comes_back_byte_identical() {
    if ipv6_available("ipv6 echo") {
        echo_big(common::V6, 20);
    }
}

#[test]
fn hundred_concurrent_connections_on_one_endpoint_each_echo_1_mib_byte_identical() {
    const CONNECTIONS: usize = 100;
    const EACH: usize = 1 << 20;
    let server = bind(common::V4, 30);
    let client = bind(common::V4, 31);
    let (key, addr) = (server.public_key(), addr_of(&server));
    let echoed = echo_server(server, CONNECTIONS);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..CONNECTIONS)
            .map(|i| {
                let client = &client;
                s.spawn(move || {
                    let payload = payload(1000 + i as u64, EACH);
                    let stream = client.connect(key, &[addr]).unwrap();
                    let back = round_trip(&stream, &payload).unwrap();
                    stream.close().unwrap();
                    assert_same_bytes(&back, &payload, &format!("connection {i}"));
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    });
    let per_connection = echoed.join().unwrap().unwrap();
    assert_eq!(per_connection, vec![EACH as u64; CONNECTIONS]);
}

#[test]
fn impaired_path_with_drop_duplicate_reorder_and_delay_delivers_every_byte() {
    let seed = 40;
    let server = bind(common::V4, seed);
    let client = bind(common::V4, seed + 1);
    let relay = ImpairingRelay::start(addr_of(&client), addr_of(&server), bad_path(seed)).unwrap();
    let echoed = echo_server(server.clone(), 1);
    let payload = payload(seed, 1 << 20);
    let stream = client
        .connect(server.public_key(), &[relay.addr()])
        .unwrap();
    let start = Instant::now();
    let back = round_trip(&stream, &payload).unwrap();
    println!("{:?} {:?}", start.elapsed(), stream.stats());
    stream.close().unwrap();
    assert_same_bytes(
        &back,
        &payload,
        &format!("impaired echo, relay seed {seed}"),
    );
    assert_eq!(echoed.join().unwrap().unwrap(), vec![payload.len() as u64]);
    let stats = relay.stats();
    println!("relay: {stats:?}");
    assert!(
        stats.dropped > 0 && stats.duplicated > 0 && stats.reordered > 0,
        "seed {seed}: every impairment happened: {stats:?}"
    );
}
