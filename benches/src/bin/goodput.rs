//! Goodput of one bulk transfer under loss, against the PFTK model of TCP.
//!
//! ```text
//! cargo run --release -p srudp-benches --bin goodput -- [--seed N] [--mib N] [--mbps N] [--rtt-ms N] [--only SCENARIO] [--cc cubic|newreno|bbr] [--max-udp-payload N] [--trace]
//! ```
//!
//! Path: 50 ms RTT, 100 Mbit/s bottleneck with a queue of one
//! bandwidth-delay product (625 000 bytes), 64 MiB from sender to receiver;
//! `--mbps` and `--rtt-ms` change the rate and the round trip (the queue
//! stays one bandwidth-delay product), as the real-path lab's do.
//! The sender's access link is the bottleneck and carries the loss model,
//! which applies once per direction (to data and to acknowledgments); the
//! receiver's link only adds its half of the delay. Scenarios: random loss
//! of 0, 1, 5 and 10 %, and one Gilbert–Elliott burst-loss case.
//!
//! PFTK uses MSS 1024 (the stream bytes of one full STREAM frame), RTT 50 ms,
//! T0 200 ms and b = 1 (one packet per ACK): the stricter of the two usual
//! choices, since b = 2 predicts less. `link_bytes_per_s` is the raw link
//! rate (100 Mbit/s = 12.5 MB/s, headers included), so `link_ratio` counts
//! srudp's own packet overhead against it. `--cc` chooses the congestion
//! controller (default: the throughput profile's). The links carry any
//! datagram, so path MTU discovery (spec §6.9) takes the sender's Data
//! packets to 1472 bytes within a round trip; `--max-udp-payload 1200`
//! keeps them at the base size, as before it.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;
use srudp_benches::args::Args;
use srudp_benches::controller::Controller;
use srudp_benches::harness::{bulk_transfer, two_hosts};
use srudp_benches::models::pftk_bytes_per_s;
use srudp_proto::sim::{LinkConfig, LossModel};
use srudp_proto::TransportConfig;

const PFTK_MSS: f64 = 1024.0;
const PFTK_T0: f64 = 0.2;
const PFTK_B: f64 = 1.0;

fn scenarios() -> Vec<(&'static str, LossModel)> {
    vec![
        ("random_0", LossModel::None),
        ("random_1", LossModel::Bernoulli(0.01)),
        ("random_5", LossModel::Bernoulli(0.05)),
        ("random_10", LossModel::Bernoulli(0.10)),
        // Bursts of 4 packets on average (p_bad_to_good 0.25), 2.9 % lost overall.
        (
            "gilbert_elliott",
            LossModel::GilbertElliott {
                p_good_to_bad: 0.0075,
                p_bad_to_good: 0.25,
                loss_in_good: 0.0,
                loss_in_bad: 1.0,
            },
        ),
    ]
}

fn main() -> ExitCode {
    let usage =
        "usage: goodput [--seed N] [--mib N] [--mbps N] [--rtt-ms N] [--only SCENARIO] [--cc cubic|newreno|bbr] [--max-udp-payload N] [--trace]";
    let args = match Args::parse(
        std::env::args().skip(1),
        &[
            "seed",
            "mib",
            "mbps",
            "rtt-ms",
            "only",
            "cc",
            "max-udp-payload",
        ],
        &["trace"],
    ) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    let (seed, mib, mbps, rtt_ms) = match (
        args.number("seed", 1u64),
        args.number("mib", 64u64),
        args.number("mbps", 100u64),
        args.number("rtt-ms", 50u64),
    ) {
        (Ok(s), Ok(m), Ok(r), Ok(t))
            if m > 0 && (1..=10_000).contains(&r) && (2..=10_000).contains(&t) =>
        {
            (s, m, r, t)
        }
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let mut transport = TransportConfig::default();
    // --max-udp-payload 1200 turns path MTU discovery off (spec §6.9).
    match args.number("max-udp-payload", transport.max_udp_payload as u64) {
        Ok(n) => transport.max_udp_payload = n as usize,
        Err(_) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    }
    // No --cc: the profile's own controller.
    let controller = match Controller::overriding(args.text("cc"), &mut transport) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    let bytes = mib << 20;
    let rate_bps = mbps * 1_000_000;
    let rtt = Duration::from_millis(rtt_ms);
    let one_way = rtt / 2;
    let bdp_bytes = (rate_bps / 8 * rtt_ms / 1000) as usize;
    let link_bytes_per_s = rate_bps as f64 / 8.0;
    for (name, loss) in scenarios() {
        if args.text("only").is_some_and(|only| only != name) {
            continue;
        }
        let bottleneck = LinkConfig::default()
            .with_latency(one_way / 2)
            .with_bandwidth_bps(rate_bps)
            .with_queue_bytes(bdp_bytes)
            .with_loss(loss);
        let far_side = LinkConfig::default().with_latency(one_way / 2);
        let (mut sim, a, b) = two_hosts(seed, bottleneck, far_side, transport.clone());
        let trace = args.flag("trace").then_some(Duration::from_millis(100));
        let r = bulk_transfer(&mut sim, a, b, bytes, Duration::from_secs(7200), trace);
        let p = loss.mean_loss();
        let goodput = r.delivered as f64 / r.elapsed.as_secs_f64();
        let pftk = pftk_bytes_per_s(p, rtt.as_secs_f64(), PFTK_T0, PFTK_B, PFTK_MSS, None);
        let s = &r.sender;
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        println!(
            "{}",
            json!({
                "scenario": name,
                "seed": seed,
                "cc": controller.map_or("default", Controller::name),
                "loss": p,
                "rtt_ms": rtt.as_secs_f64() * 1e3,
                "mbps": mbps,
                "bytes": bytes,
                "complete": r.complete,
                "elapsed_s": r.elapsed.as_secs_f64(),
                "goodput_bytes_per_s": goodput,
                "pftk_bytes_per_s": if pftk.is_finite() { Some(pftk) } else { None },
                "pftk_ratio": if pftk.is_finite() { Some(goodput / pftk) } else { None },
                "link_bytes_per_s": link_bytes_per_s,
                "link_ratio": goodput / link_bytes_per_s,
                "retransmit_ratio": ratio(s.stream_bytes_retransmitted, s.stream_bytes_sent),
                "spurious_ratio": ratio(s.packets_spuriously_lost, s.packets_lost),
                "duplicate_ratio": ratio(r.receiver.stream_bytes_duplicate, s.stream_bytes_retransmitted),
                "packets_sent": s.packets_sent,
                "packets_lost": s.packets_lost,
                "packets_spuriously_lost": s.packets_spuriously_lost,
                "congestion_events": s.congestion_events,
                "congestion_events_undone": s.congestion_events_undone,
                "persistent_congestion_events": s.persistent_congestion_events,
                "pto_count": s.pto_count,
                "final_cwnd": s.cwnd,
                "srtt_ms": s.srtt.as_secs_f64() * 1e3,
                "cwnd_limited_s": s.cwnd_limited_time.as_secs_f64(),
                "pacing_limited_s": s.pacing_limited_time.as_secs_f64(),
                "flow_limited_s": s.flow_limited_time.as_secs_f64(),
                "app_limited_s": s.app_limited_time.as_secs_f64(),
                "receive_window": r.receiver.receive_window,
            })
        );
    }
    ExitCode::SUCCESS
}
