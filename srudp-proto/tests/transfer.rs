//! Bulk transfer acceptance tests (spec §6): integrity, speed on a clean
//! link, and a seeded sweep of hostile network conditions.

mod common;

use std::time::Duration;

use common::{data, Pair};
use srudp_proto::sim::{LinkConfig, LossModel};
use srudp_proto::{CloseReason, TransportConfig};

const MIB: usize = 1 << 20;

#[test]
fn sixteen_mib_each_way_over_a_clean_50ms_100mbit_link() {
    let rate_bps = 100_000_000u64;
    let one_way = Duration::from_millis(25);
    let bdp = (rate_bps / 8) as usize / 20; // 50 ms of data
                                            // Each access link carries half of the delay; the bottleneck queue holds one BDP.
    let link = LinkConfig::default()
        .with_latency(one_way / 2)
        .with_bandwidth_bps(rate_bps)
        .with_queue_bytes(bdp);
    let mut p = Pair::public(1, link, TransportConfig::default());
    let a_data = data(11, 16 * MIB);
    let b_data = data(12, 16 * MIB);
    let t = p.transfer(&a_data, &b_data, Duration::from_secs(60));
    assert!(
        t.a.received == b_data,
        "a received {} of {} bytes",
        t.a.received.len(),
        b_data.len()
    );
    assert!(
        t.b.received == a_data,
        "b received {} of {} bytes",
        t.b.received.len(),
        a_data.len()
    );
    assert_eq!(t.a.closed, Some(CloseReason::Finished));
    assert_eq!(t.b.closed, Some(CloseReason::Finished));

    // What the link allows: the payload at link rate (both directions run in
    // parallel on a full-duplex link), plus slow start: from 10 packets to
    // one BDP doubles each RTT, log2(625 kB / 12 kB) < 6 round trips, plus
    // the handshake and the closing round trip.
    let wire_overhead = 1200.0 / 1024.0;
    let at_link_rate =
        Duration::from_secs_f64((16 * MIB) as f64 * 8.0 * wire_overhead / rate_bps as f64);
    let rtt = one_way * 2;
    let slow_start = rtt * 8;
    let allowed = at_link_rate.mul_f64(1.5) + slow_start;
    println!(
        "16 MiB each way: {:?} (link-rate bound {:?}, allowed {:?})",
        t.elapsed, at_link_rate, allowed
    );
    assert!(
        t.elapsed <= allowed,
        "took {:?}, allowed {:?}",
        t.elapsed,
        allowed
    );
}

/// One scenario of the sweep, derived from its seed.
fn scenario(seed: u64) -> (LinkConfig, String) {
    let mut r = srudp_proto::Rng::from_seed(seed);
    let mut pick = |n: u64| r.below(n);
    let loss_pct = pick(21) as f64; // 0..=20 %
    let loss = if pick(2) == 0 {
        LossModel::Bernoulli(loss_pct / 100.0)
    } else {
        // Burst loss: average loss about loss_pct, bursts of ~3 packets.
        let p_bad_to_good = 0.33;
        let p_good_to_bad = (loss_pct / 100.0) * p_bad_to_good / (1.0 - loss_pct / 100.0).max(0.05);
        LossModel::GilbertElliott {
            p_good_to_bad: p_good_to_bad.min(1.0),
            p_bad_to_good,
            loss_in_good: 0.0,
            loss_in_bad: 1.0,
        }
    };
    let latency = Duration::from_millis(1 + pick(60));
    let jitter = Duration::from_millis(pick(20));
    let duplicate = pick(6) as f64 / 100.0;
    let reorder = pick(11) as f64 / 100.0;
    let corrupt = pick(4) as f64 / 100.0;
    let link = LinkConfig::default()
        .with_latency(latency)
        .with_jitter(jitter)
        .with_loss(loss)
        .with_duplicate(duplicate)
        .with_reorder(reorder, Duration::from_millis(5 + pick(30)))
        .with_corrupt(corrupt)
        .with_bandwidth_bps(20_000_000)
        .with_queue_bytes(256 * 1024);
    let desc = format!(
        "seed {seed}: loss {loss:?}, latency {latency:?}, jitter {jitter:?}, dup {duplicate}, reorder {reorder}, corrupt {corrupt}"
    );
    (link, desc)
}

#[test]
fn seeded_sweep_of_200_impaired_networks_delivers_intact_or_fails_cleanly() {
    let mut delivered = 0;
    let mut failures = Vec::new();
    for seed in 0..200u64 {
        let (link, desc) = scenario(seed);
        // The impairments sit on a's access link, which both directions cross
        // once: the path sees the configured loss in each direction.
        let mut p = Pair::public_with(
            1000 + seed,
            link,
            LinkConfig::default(),
            TransportConfig::default(),
        );
        let size = 32 * 1024 + (seed as usize * 7919) % (96 * 1024);
        let a_data = data(seed, size);
        let b_data = data(seed + 7, size / 2);
        let t = p.transfer(&a_data, &b_data, Duration::from_secs(300));
        // Whatever happened, nothing wrong may have been delivered.
        assert!(
            a_data.starts_with(&t.b.received),
            "{desc}: b received corrupted bytes"
        );
        assert!(
            b_data.starts_with(&t.a.received),
            "{desc}: a received corrupted bytes"
        );
        match (&t.a.closed, &t.b.closed) {
            (Some(CloseReason::Finished), Some(CloseReason::Finished)) => {
                assert_eq!(t.b.received, a_data, "{desc}");
                assert_eq!(t.a.received, b_data, "{desc}");
                delivered += 1;
            }
            (Some(ra), _) => {
                // A clean error: a timeout, never a protocol violation.
                assert!(
                    matches!(ra, CloseReason::IdleTimeout | CloseReason::HandshakeTimeout),
                    "{desc}: unexpected close {ra:?} / {:?}",
                    t.b.closed
                );
                failures.push(desc);
            }
            (None, _) => panic!("{desc}: no outcome within 300 s of virtual time (hang)"),
        }
    }
    println!(
        "sweep: {delivered} delivered, {} clean failures: {failures:#?}",
        failures.len()
    );
    assert!(delivered >= 190, "only {delivered}/200 transfers completed");
}
