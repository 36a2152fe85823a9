//! Two in-process endpoints behind two simulated NATs punch through to each
//! other, handshake, and move data both ways over a 50 ms, 100 Mbit/s path —
//! all in virtual time, so it takes seconds of wall-clock time at most.
//!
//! ```text
//! cargo run --release -p srudp-proto --features sim --example sim_transfer -- [MEBIBYTES] [LOSS_PERCENT]
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use srudp_proto::sim::{LinkConfig, LossModel, NatConfig, Network, Simulation};
use srudp_proto::{Endpoint, EndpointConfig, Event, Keypair, Rng};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mib: usize = match args.next().map(|a| a.parse()) {
        None => 16,
        Some(Ok(n)) if n > 0 && n <= 4096 => n,
        Some(_) => {
            eprintln!("usage: sim_transfer [MEBIBYTES 1..=4096] [LOSS_PERCENT 0..=50]");
            return ExitCode::from(2);
        }
    };
    let loss: f64 = match args.next().map(|a| a.parse::<f64>()) {
        None => 0.0,
        Some(Ok(p)) if (0.0..=50.0).contains(&p) => p,
        Some(_) => {
            eprintln!("usage: sim_transfer [MEBIBYTES 1..=4096] [LOSS_PERCENT 0..=50]");
            return ExitCode::from(2);
        }
    };
    let bytes = mib << 20;

    // Topology: each peer sits behind a port-preserving, port-restricted cone
    // NAT; the NATs' uplinks carry the 100 Mbit/s, 25 ms one-way path.
    let uplink = LinkConfig::default()
        .with_latency(Duration::from_micros(12_500))
        .with_bandwidth_bps(100_000_000)
        .with_queue_bytes(625_000)
        .with_loss(LossModel::Bernoulli(loss / 200.0));
    let nat = NatConfig::port_restricted_cone().with_port_preservation(true);
    let mut net = Network::new(7);
    let nat_a = net
        .add_nat("203.0.113.1".parse().unwrap(), nat.clone(), uplink.clone())
        .unwrap();
    let nat_b = net
        .add_nat("203.0.113.2".parse().unwrap(), nat, uplink)
        .unwrap();
    net.add_host_behind(nat_a, "192.0.2.10".parse().unwrap(), LinkConfig::default())
        .unwrap();
    net.add_host_behind(
        nat_b,
        "198.51.100.10".parse().unwrap(),
        LinkConfig::default(),
    )
    .unwrap();

    let mut rng = Rng::from_seed(1);
    let mut endpoint = |seed| {
        let mut config = EndpointConfig::new(Keypair::generate(&mut rng));
        config.rng_seed = Some(seed);
        Endpoint::new(config).expect("default configuration is valid")
    };
    let start = Instant::now();
    let mut sim = Simulation::new(net, start);
    let alice = sim.add_endpoint("192.0.2.10:5000".parse().unwrap(), endpoint(10));
    let bob = sim.add_endpoint("198.51.100.10:6000".parse().unwrap(), endpoint(20));
    let alice_public: SocketAddr = "203.0.113.1:5000".parse().unwrap();
    let bob_public: SocketAddr = "203.0.113.2:6000".parse().unwrap();

    // Both open toward each other at the same moment, as after a rendezvous.
    let (ka, kb) = (
        sim.endpoint(alice).public_key(),
        sim.endpoint(bob).public_key(),
    );
    let ha = sim
        .endpoint(alice)
        .connect(start, kb, &[bob_public])
        .unwrap();
    let hb = sim
        .endpoint(bob)
        .connect(start, ka, &[alice_public])
        .unwrap();
    println!("alice {ka}\nbob   {kb}");

    let data_a: Vec<u8> = (0..bytes).map(|i| (i * 7 % 251) as u8).collect();
    let data_b: Vec<u8> = (0..bytes).map(|i| (i * 13 % 241) as u8).collect();
    let (mut wa, mut wb) = (0usize, 0usize);
    let (mut ra, mut rb) = (Vec::with_capacity(bytes), Vec::with_capacity(bytes));
    let mut handshake = None;
    let mut closed = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let wall = Instant::now();
    let finished = sim.run_until(Duration::from_secs(600), |sim, events| {
        for e in events {
            match &e.event {
                Event::Connected { remote, .. } => {
                    handshake.get_or_insert(sim.elapsed());
                    println!(
                        "{:>9.3} s  node {} connected via {remote}",
                        sim.elapsed().as_secs_f64(),
                        e.node.0
                    );
                }
                Event::Closed { reason } => {
                    closed += 1;
                    println!(
                        "{:>9.3} s  node {} closed: {reason}",
                        sim.elapsed().as_secs_f64(),
                        e.node.0
                    );
                }
                _ => {}
            }
        }
        for (node, h, data, written, received) in [
            (alice, ha, &data_a, &mut wa, &mut ra),
            (bob, hb, &data_b, &mut wb, &mut rb),
        ] {
            let ep = sim.endpoint(node);
            while *written < data.len() {
                match ep.write(h, &data[*written..]) {
                    Ok(n) if n > 0 => *written += n,
                    _ => break,
                }
            }
            if *written == data.len() {
                let _ = ep.finish(h);
            }
            while let Ok(n) = ep.read(h, &mut buf) {
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&buf[..n]);
            }
        }
        closed == 2
    });
    let elapsed = sim.elapsed();
    let stats = sim.endpoint(alice).stats(ha).expect("connection is known");
    let intact = ra == data_b && rb == data_a;
    println!("transfer:  {mib} MiB each way, {loss}% loss, 50 ms RTT, 100 Mbit/s");
    println!(
        "handshake: {:.1} ms (virtual)",
        handshake.unwrap_or_default().as_secs_f64() * 1e3
    );
    println!(
        "done in:   {:.3} s virtual ({:.1} Mbit/s each way), {:.2} s wall clock",
        elapsed.as_secs_f64(),
        bytes as f64 * 8.0 / elapsed.as_secs_f64() / 1e6,
        wall.elapsed().as_secs_f64()
    );
    println!(
        "alice:     {} packets sent, {} lost, {} bytes retransmitted, srtt {:.1} ms",
        stats.packets_sent,
        stats.packets_lost,
        stats.stream_bytes_retransmitted,
        stats.srtt.as_secs_f64() * 1e3
    );
    println!(
        "integrity: {}",
        if intact {
            "both directions byte-identical"
        } else {
            "MISMATCH"
        }
    );
    if finished && intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
