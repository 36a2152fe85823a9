//! One seed, one trace (spec §2): the same seeds replay exactly.

mod common;

use std::time::Duration;

use common::{data, Pair};
use srudp_proto::sim::{LinkConfig, LossModel};
use srudp_proto::TransportConfig;

fn traced_run(seed: u64) -> Vec<String> {
    let link = LinkConfig::default()
        .with_latency(Duration::from_millis(20))
        .with_jitter(Duration::from_millis(5))
        .with_loss(LossModel::Bernoulli(0.05))
        .with_duplicate(0.02)
        .with_reorder(0.05, Duration::from_millis(10))
        .with_bandwidth_bps(10_000_000)
        .with_queue_bytes(64 * 1024);
    let mut p = Pair::public(seed, link, TransportConfig::default());
    p.sim.record_trace();
    let t = p.transfer(&data(1, 100_000), &data(2, 50_000), Duration::from_secs(60));
    assert_eq!(t.b.received.len(), 100_000);
    p.sim.trace().to_vec()
}

#[test]
fn the_same_seed_gives_the_same_event_trace_twice() {
    let first = traced_run(42);
    let second = traced_run(42);
    assert!(
        first.len() > 200,
        "trace is substantial ({} lines)",
        first.len()
    );
    assert!(
        first.iter().any(|l| l.contains("event")),
        "trace records events"
    );
    assert_eq!(first, second);
}

#[test]
fn a_different_seed_gives_a_different_trace() {
    assert_ne!(traced_run(42), traced_run(43));
}
