//! The `fairness` scenario: two flows share one bottleneck, the second
//! starts late. One run ([`TwoFlows::run`]) and a sweep over seeds and
//! start phases ([`SweepSummary`]).
//!
//! Two senders, each on its own access link (12.5 ms), send endless streams
//! to one receiver whose access link (12.5 ms, `mbps`, a queue of one
//! bandwidth-delay product, tail drop) is the shared bottleneck: 50 ms RTT
//! for both. Flow 1 starts at 0 s, flow 2 at `late_start`; the run ends at
//! 70 s. Throughput is what the receiving application read, per second.
//! Reported: Jain's fairness index over the last 30 s, and how long after
//! its start flow 2 first reached 80 % of its fair share (half of what both
//! flows got in that same second).
//!
//! The senders' access links add in-order jitter
//! ([`LinkConfig::in_order_jitter`]): each packet, data or ack, is delayed
//! by a random `[0, jitter)` without ever overtaking another, drawn from the
//! network's seed. Without it, perfectly periodic senders at a
//! deterministic tail-drop queue lose by the exact phase at which their
//! packets reach the queue rather than by their share of it (`fairness`'s
//! docs say more).

use std::time::Duration;

use serde_json::{json, Value};
use srudp_proto::sim::{LinkConfig, Network};
use srudp_proto::{ConnectionHandle, Event, TransportConfig};

use crate::harness::{addr, endpoint, read_discard, write_endless, Net, NetEvent};
use crate::models::jain_index;

const SENDERS: [&str; 2] = ["192.0.2.1:4433", "192.0.2.2:4433"];
const RECEIVER: &str = "198.51.100.1:4433";
/// How long a run lasts.
pub const RUN: Duration = Duration::from_secs(70);
/// The window at the end of the run over which fairness is judged.
pub const WINDOW: Duration = Duration::from_secs(30);
/// Issue 3's targets: Jain's index over the last [`WINDOW`] at least this…
pub const JAIN_TARGET: f64 = 0.95;
/// …and flow 2 within 20 % of its fair share within this long of its start.
pub const CONVERGENCE_TARGET: Duration = Duration::from_secs(30);

pub use crate::controller::Controller;

/// One run's parameters.
#[derive(Debug, Clone)]
pub struct TwoFlows {
    /// Seeds the network (jitter) and the endpoints.
    pub seed: u64,
    /// Bottleneck rate in Mbit/s.
    pub mbps: u64,
    /// When flow 2 starts (before `RUN - WINDOW`).
    pub late_start: Duration,
    /// In-order jitter on each sender's access link.
    pub jitter: Duration,
    /// Flow 1's congestion controller.
    pub controller: Controller,
    /// Flow 2's (the late one's); the same as flow 1's unless a run pits
    /// two controllers against each other.
    pub controller2: Controller,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct TwoFlowsResult {
    /// The run's parameters.
    pub scenario: TwoFlows,
    /// Average bytes per second each flow got over the last [`WINDOW`].
    pub last_window_bytes_per_s: [f64; 2],
    /// Jain's index of those averages.
    pub jain_index: f64,
    /// The lowest Jain's index of a single second in the last [`WINDOW`].
    pub min_jain_index_per_second: f64,
    /// Seconds after its start until flow 2 first got 80 % of its fair
    /// share in one second (`None`: never).
    pub convergence_s: Option<f64>,
    /// Per-flow counters (JSON objects) from the senders' stats.
    pub flows: Vec<Value>,
    /// One JSON line per second, when asked for.
    pub series: Vec<Value>,
}

struct Flows {
    receiver: usize,
    senders: [usize; 2],
    /// The sending handles, once each flow started.
    send: [Option<ConnectionHandle>; 2],
    /// The receiving handles, by sender index.
    recv: [Option<ConnectionHandle>; 2],
    /// Bytes read per flow since the last sample.
    read: [u64; 2],
}

impl Flows {
    fn on(&mut self, net: &mut Net, events: &[NetEvent]) {
        for e in events {
            if e.node == self.receiver {
                if let Event::Connected { remote, .. } = &e.event {
                    if let Some(i) = SENDERS.iter().position(|s| addr(s) == *remote) {
                        self.recv[i] = Some(e.handle);
                    }
                }
            }
        }
        for i in 0..2 {
            if let Some(h) = self.send[i] {
                write_endless(net.endpoint(self.senders[i]), h);
            }
            if let Some(h) = self.recv[i] {
                self.read[i] += read_discard(net.endpoint(self.receiver), h);
            }
        }
    }
}

impl TwoFlows {
    /// The bottleneck rate in bytes per second.
    pub fn bottleneck_bytes_per_s(&self) -> f64 {
        self.mbps as f64 * 1e6 / 8.0
    }

    /// Runs the scenario in virtual time; `series` keeps one line per second.
    pub fn run(&self, series: bool) -> TwoFlowsResult {
        let rate_bps = self.mbps * 1_000_000;
        let bdp = (rate_bps / 8 / 20) as usize; // 50 ms
        let mut network = Network::new(self.seed);
        let access = LinkConfig::default().with_latency(Duration::from_micros(12_500));
        for s in SENDERS {
            let jittered = access.clone().with_in_order_jitter(self.jitter);
            network
                .add_host(addr(s).ip(), jittered)
                .expect("unique address");
        }
        let bottleneck = access.with_bandwidth_bps(rate_bps).with_queue_bytes(bdp);
        network
            .add_host(addr(RECEIVER).ip(), bottleneck)
            .expect("unique address");
        let mut net = Net::new(network);
        let transport = |c: Controller| TransportConfig {
            congestion: c.factory(),
            ..TransportConfig::default()
        };
        let seed = self.seed;
        let senders = [
            net.add(
                addr(SENDERS[0]),
                endpoint(seed * 3 + 1, transport(self.controller)),
            ),
            net.add(
                addr(SENDERS[1]),
                endpoint(seed * 3 + 2, transport(self.controller2)),
            ),
        ];
        let receiver = net.add(
            addr(RECEIVER),
            endpoint(seed * 3 + 3, transport(self.controller)),
        );
        let mut flows = Flows {
            receiver,
            senders,
            send: [None, None],
            recv: [None, None],
            read: [0, 0],
        };
        let start = net.now();
        let receiver_key = net.endpoint(receiver).public_key();
        let mut samples: Vec<[f64; 2]> = Vec::new();
        let mut lines = Vec::new();
        let starts = [Duration::ZERO, self.late_start];
        for second in 1..=RUN.as_secs() as u32 {
            let until = start + Duration::from_secs(second.into());
            for (i, s) in starts.iter().enumerate() {
                if flows.send[i].is_none() && start + *s < until {
                    net.run_to(start + *s, &mut |net, ev| flows.on(net, ev));
                    let now = net.now();
                    flows.send[i] = net
                        .endpoint(senders[i])
                        .connect(now, receiver_key, &[addr(RECEIVER)])
                        .ok();
                }
            }
            net.run_to(until, &mut |net, ev| flows.on(net, ev));
            let sample = [flows.read[0] as f64, flows.read[1] as f64];
            flows.read = [0, 0];
            if series {
                let mut line = json!({"t": second, "flow1_bytes_per_s": sample[0], "flow2_bytes_per_s": sample[1]});
                for (i, (handle, sender)) in flows.send.iter().zip(senders).enumerate() {
                    if let Some(st) = handle.and_then(|h| net.endpoint(sender).stats(h)) {
                        let n = i + 1;
                        line[format!("flow{n}_cwnd")] = json!(st.cwnd);
                        line[format!("flow{n}_srtt_ms")] = json!(st.srtt.as_secs_f64() * 1e3);
                        line[format!("flow{n}_lost")] = json!(st.packets_lost);
                        line[format!("flow{n}_congestion_events")] = json!(st.congestion_events);
                        line[format!("flow{n}_app_limited_s")] =
                            json!(st.app_limited_time.as_secs_f64());
                        line[format!("flow{n}_flow_limited_s")] =
                            json!(st.flow_limited_time.as_secs_f64());
                    }
                }
                lines.push(line);
            }
            samples.push(sample);
        }
        let mut counters = Vec::new();
        for (handle, sender) in flows.send.iter().zip(senders) {
            if let Some(st) = handle.and_then(|h| net.endpoint(sender).stats(h)) {
                counters.push(json!({
                    "packets_lost": st.packets_lost,
                    "packets_spuriously_lost": st.packets_spuriously_lost,
                    "congestion_events": st.congestion_events,
                    "congestion_events_undone": st.congestion_events_undone,
                    "pto_count": st.pto_count,
                }));
            }
        }
        let (last_window_bytes_per_s, min_jain_index_per_second) = last_window(&samples);
        TwoFlowsResult {
            scenario: self.clone(),
            jain_index: jain_index(&last_window_bytes_per_s),
            last_window_bytes_per_s,
            min_jain_index_per_second,
            convergence_s: convergence(&samples, self.late_start),
            flows: counters,
            series: lines,
        }
    }
}

/// Each flow's average over the last [`WINDOW`] seconds of `samples`, and
/// the lowest per-second Jain's index in that window.
fn last_window(samples: &[[f64; 2]]) -> ([f64; 2], f64) {
    let window = WINDOW.as_secs() as usize;
    let last = &samples[samples.len().saturating_sub(window)..];
    let average = |i: usize| last.iter().map(|s| s[i]).sum::<f64>() / window as f64;
    let min_jain = last.iter().map(|s| jain_index(s)).fold(1.0, f64::min);
    ([average(0), average(1)], min_jain)
}

/// Seconds from flow 2's start to the end of the first whole-second sample
/// in which flow 2 got at least 80 % of half of both flows' total.
/// `samples[i]` covers second `i` to `i + 1` of the run; flow 2's first
/// full second is the one after its start.
fn convergence(samples: &[[f64; 2]], late_start: Duration) -> Option<f64> {
    samples
        .iter()
        .enumerate()
        .skip(late_start.as_secs() as usize)
        .find(|(_, s)| s[1] > 0.0 && s[1] >= 0.8 * (s[0] + s[1]) / 2.0)
        .map(|(i, _)| (i + 1) as f64 - late_start.as_secs_f64())
}

impl TwoFlowsResult {
    /// Whether the run met issue 3's Jain target.
    pub fn jain_ok(&self) -> bool {
        self.jain_index >= JAIN_TARGET
    }

    /// Whether flow 2 reached 80 % of its fair share within the target.
    pub fn converged_in_time(&self) -> bool {
        self.convergence_s
            .is_some_and(|s| s <= CONVERGENCE_TARGET.as_secs_f64())
    }

    /// The run's JSON line (the field names scripts read).
    pub fn to_json(&self) -> Value {
        let s = &self.scenario;
        let [f1, f2] = self.last_window_bytes_per_s;
        json!({
            "flows": self.flows,
            "scenario": "two_flows_late_start",
            "cc": s.controller.name(),
            "cc2": s.controller2.name(),
            "seed": s.seed,
            "sender_jitter_us": s.jitter.as_micros() as u64,
            "bottleneck_bytes_per_s": s.bottleneck_bytes_per_s(),
            "rtt_ms": 50,
            "flow2_start_s": s.late_start.as_secs_f64(),
            "run_s": RUN.as_secs(),
            "flow1_bytes_per_s": f1,
            "flow2_bytes_per_s": f2,
            "utilization": (f1 + f2) / s.bottleneck_bytes_per_s(),
            "jain_index_last_30s": self.jain_index,
            "min_jain_index_per_second_last_30s": self.min_jain_index_per_second,
            "flow2_reached_80pct_of_fair_share_after_s": self.convergence_s,
        })
    }
}

/// How many runs of a sweep met each target.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSummary {
    /// Runs in the sweep.
    pub runs: usize,
    /// Runs with Jain's index over the last 30 s ≥ [`JAIN_TARGET`].
    pub jain_ok: usize,
    /// Runs where flow 2 reached 80 % of its fair share within [`CONVERGENCE_TARGET`].
    pub converged_in_time: usize,
    /// Runs meeting both.
    pub met_both: usize,
    /// Median time to 80 % of the fair share (a run that never got there
    /// counts as never, above every other).
    pub median_convergence_s: Option<f64>,
    /// The lowest Jain's index of any run.
    pub min_jain_index: f64,
}

impl SweepSummary {
    /// Counts `results`.
    pub fn of(results: &[TwoFlowsResult]) -> SweepSummary {
        let mut times: Vec<f64> = results
            .iter()
            .map(|r| r.convergence_s.unwrap_or(f64::INFINITY))
            .collect();
        times.sort_by(f64::total_cmp);
        let median = match times.len() {
            0 => None,
            n if n % 2 == 1 => Some(times[n / 2]),
            n => Some((times[n / 2 - 1] + times[n / 2]) / 2.0),
        };
        SweepSummary {
            runs: results.len(),
            jain_ok: results.iter().filter(|r| r.jain_ok()).count(),
            converged_in_time: results.iter().filter(|r| r.converged_in_time()).count(),
            met_both: results
                .iter()
                .filter(|r| r.jain_ok() && r.converged_in_time())
                .count(),
            median_convergence_s: median.filter(|m| m.is_finite()),
            min_jain_index: results.iter().map(|r| r.jain_index).fold(1.0, f64::min),
        }
    }

    /// The summary's JSON line.
    pub fn to_json(&self) -> Value {
        json!({
            "scenario": "two_flows_late_start_sweep",
            "runs": self.runs,
            "jain_index_last_30s_at_least_0_95": self.jain_ok,
            "flow2_within_20pct_of_fair_share_within_30s": self.converged_in_time,
            "met_both_targets": self.met_both,
            "median_flow2_reached_80pct_of_fair_share_after_s": self.median_convergence_s,
            "min_jain_index_last_30s": self.min_jain_index,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(jain: f64, convergence_s: Option<f64>) -> TwoFlowsResult {
        TwoFlowsResult {
            scenario: TwoFlows {
                seed: 1,
                mbps: 20,
                late_start: Duration::from_secs(10),
                jitter: Duration::ZERO,
                controller: Controller::Cubic,
                controller2: Controller::Cubic,
            },
            last_window_bytes_per_s: [1.0, 1.0],
            jain_index: jain,
            min_jain_index_per_second: jain,
            convergence_s,
            flows: Vec::new(),
            series: Vec::new(),
        }
    }

    #[test]
    fn a_sweep_counts_each_target_and_both() {
        let runs = [
            result(0.99, Some(12.0)), // both
            result(0.94, Some(8.0)),  // converged, not fair enough
            result(0.97, Some(31.0)), // fair, converged too late
            result(0.96, None),       // fair, never converged
            result(0.95, Some(30.0)), // both, exactly on the targets
        ];
        let s = SweepSummary::of(&runs);
        assert_eq!(s.runs, 5);
        assert_eq!(s.jain_ok, 4);
        assert_eq!(s.converged_in_time, 3);
        assert_eq!(s.met_both, 2);
        // 8, 12, 30, 31, never: the middle one.
        assert_eq!(s.median_convergence_s, Some(30.0));
        assert_eq!(s.min_jain_index, 0.94);
    }

    #[test]
    fn a_median_among_runs_that_mostly_never_converged_is_none() {
        let runs = [
            result(0.9, None),
            result(0.9, None),
            result(0.99, Some(5.0)),
        ];
        assert_eq!(SweepSummary::of(&runs).median_convergence_s, None);
    }

    #[test]
    fn convergence_counts_from_the_late_start_to_the_end_of_the_first_fair_second() {
        // Flow 2 starts at 2.5 s; seconds 2 and 3 are below 80 % of its fair
        // share (0.8 × half of 10 = 4), second 4 (4–5 s) reaches it.
        let samples = [
            [10.0, 0.0],
            [10.0, 0.0],
            [9.0, 1.0],
            [7.0, 3.0],
            [6.0, 4.0],
            [5.0, 5.0],
        ];
        assert_eq!(
            convergence(&samples, Duration::from_millis(2500)),
            Some(2.5)
        );
        assert_eq!(
            convergence(&samples[..4], Duration::from_millis(2500)),
            None
        );
    }

    #[test]
    fn the_last_window_averages_each_flow_over_thirty_seconds() {
        let mut samples = vec![[100.0, 0.0]; 40];
        samples.extend(std::iter::repeat_n([3.0, 1.0], 30));
        let (avg, min_jain) = last_window(&samples);
        assert_eq!(avg, [3.0, 1.0]);
        // (3 + 1)² / (2 · (9 + 1)) = 0.8 every second.
        assert_eq!(min_jain, 0.8);
    }
}
