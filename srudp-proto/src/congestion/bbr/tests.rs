//! Hand-worked runs of BBR's state machine. Each `round` call is one round
//! trip: one rate sample whose packet was sent at the round's start, so it
//! ends the round. Bandwidth 1 MB/s and RTT 50 ms give a BDP of 50 000 bytes.

use super::*;

const MSS: u64 = 1000;
const MS: Duration = Duration::from_millis(1);
const RTT: Duration = Duration::from_millis(50);
const BW: f64 = 1_000_000.0;
const BDP: u64 = 50_000;
/// The pacer runs this fraction of the model's rate (0.995).
const MARGIN: f64 = 1.0 - PACING_MARGIN;

struct Run {
    bbr: Bbr,
    rng: Rng,
    now: Instant,
    delivered: u64,
}

impl Run {
    fn new() -> Run {
        let now = Instant::now();
        Run {
            bbr: Bbr::new(BbrFactory::default(), now, MSS),
            rng: Rng::from_seed(7),
            now,
            delivered: 0,
        }
    }

    /// One round trip of `rtt`: `acked` bytes delivered at `rate`, `lost`
    /// bytes declared lost, `in_flight` bytes left in flight (and in flight
    /// when the sample's packet was sent).
    fn round(&mut self, rate: f64, rtt: Duration, acked: u64, lost: u64, in_flight: u64) {
        self.round_sent_at(rate, rtt, acked, lost, in_flight, in_flight);
    }

    /// [`round`](Self::round), with the sample's packet sent when
    /// `tx_in_flight` bytes were in flight.
    fn round_sent_at(
        &mut self,
        rate: f64,
        rtt: Duration,
        acked: u64,
        lost: u64,
        tx_in_flight: u64,
        in_flight: u64,
    ) {
        self.now += rtt;
        if lost > 0 {
            self.bbr
                .on_congestion_event(self.now, self.now - rtt, false, lost);
        }
        let prior = self.delivered;
        self.delivered += acked;
        let s = RateSample {
            delivery_rate: Some(rate),
            delivered: acked,
            interval: rtt,
            prior_delivered: prior,
            total_delivered: self.delivered,
            app_limited: false,
            rtt,
            tx_in_flight,
            lost_since_sent: lost,
            newly_acked: acked,
            newly_lost: lost,
        };
        self.bbr
            .on_rate_sample(self.now, &s, in_flight, &mut self.rng);
    }

    /// A round at the path's rate without loss or queue.
    fn steady(&mut self, in_flight: u64) {
        self.round(BW, RTT, BDP, 0, in_flight);
    }

    /// Startup to the plateau, Drain, and into ProbeBW CRUISE.
    fn run_into_cruise(&mut self) {
        for rate in [100_000.0, 200_000.0, 400_000.0, 800_000.0] {
            self.round(rate, RTT, (rate * 0.05) as u64, 0, (rate * 0.1) as u64);
        }
        for _ in 0..3 {
            self.steady(2 * BDP);
        }
        // The plateau's third round, with the queue already drained: Drain
        // ends at once, and DOWN at the next round.
        self.steady(BDP);
        self.steady(BDP);
        assert_eq!(self.bbr.mode(), Mode::ProbeBw(ProbeBwPhase::Cruise));
    }

    /// Rounds of `steady` until the mode is `mode` (at most `limit` rounds).
    fn until(&mut self, mode: Mode, limit: u32, in_flight: u64) {
        for _ in 0..limit {
            if self.bbr.mode() == mode {
                return;
            }
            self.steady(in_flight);
        }
        assert_eq!(self.bbr.mode(), mode, "not reached in {limit} rounds");
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= b * 1e-9
}

#[test]
fn startup_paces_at_2_77_and_exits_after_three_rounds_without_25_percent_growth() {
    let mut r = Run::new();
    assert_eq!(r.bbr.mode(), Mode::Startup);
    assert_eq!(r.bbr.window(), 10 * MSS);
    assert_eq!(
        r.bbr.pacing_rate(),
        None,
        "no model, no RTT yet: the window paces"
    );
    assert_eq!(r.bbr.pacing_gain(), STARTUP_PACING_GAIN);
    // The rate doubles each round; the window grows by what was acknowledged.
    r.round(100_000.0, RTT, 5_000, 0, 10_000);
    assert!(close(
        r.bbr.pacing_rate().unwrap(),
        2.77 * 100_000.0 * MARGIN
    ));
    assert_eq!(r.bbr.window(), 15_000);
    for rate in [200_000.0, 400_000.0, 800_000.0] {
        r.round(rate, RTT, (rate * 0.05) as u64, 0, (rate * 0.1) as u64);
    }
    // 1 MB/s is 1.25 × 800 kB/s: still growth. Then two flat rounds.
    r.round(BW, RTT, BDP, 0, 2 * BDP);
    r.round(BW, RTT, BDP, 0, 2 * BDP);
    r.round(BW, RTT, BDP, 0, 2 * BDP);
    assert_eq!(
        r.bbr.mode(),
        Mode::Startup,
        "two flat rounds are not a plateau"
    );
    // The third flat round: the pipe is full.
    r.round(BW, RTT, BDP, 0, 2 * BDP);
    assert_eq!(r.bbr.mode(), Mode::Drain);
    assert_eq!(r.bbr.max_bw(), BW);
    assert_eq!(r.bbr.bdp(), Some(BDP));
    assert!(close(r.bbr.pacing_rate().unwrap(), 0.35 * BW * MARGIN));
    // The window is capped at 2 BDP + 4 packets.
    assert!(r.bbr.window() <= 2 * BDP + 4 * MSS, "{}", r.bbr.window());
}

#[test]
fn startup_paces_at_least_at_2_77_windows_per_smoothed_rtt() {
    let mut r = Run::new();
    let mut rtt = RttEstimator::new(Duration::from_millis(333));
    rtt.update(RTT, Duration::ZERO);
    r.bbr.on_ack(r.now, r.now, MSS, false, &rtt);
    // 2.77 × 10 000 bytes / 50 ms.
    assert!(close(r.bbr.pacing_rate().unwrap(), 554_000.0));
    // A model below that (the first flight's rate) does not slow it.
    r.round(100_000.0, RTT, 5_000, 0, 10_000);
    assert!(close(r.bbr.pacing_rate().unwrap(), 2.77 * 15_000.0 / 0.05));
}

#[test]
fn samples_near_the_minimum_rtt_hold_probe_rtt_off() {
    let mut r = Run::new();
    r.run_into_cruise();
    // 51.5 ms is within 1/32 of 50 ms: no queue to drain, no ProbeRTT.
    for _ in 0..200 {
        r.round(BW, Duration::from_micros(51_500), BDP, 0, BDP);
        assert_ne!(r.bbr.mode(), Mode::ProbeRtt);
    }
    assert_eq!(r.bbr.min_rtt(), Some(RTT));
}

#[test]
fn a_round_with_a_standing_queue_ends_startup() {
    let mut r = Run::new();
    for rate in [100_000.0, 200_000.0, 400_000.0, 800_000.0] {
        r.round(rate, RTT, (rate * 0.05) as u64, 0, (rate * 0.1) as u64);
    }
    r.round(BW, 57 * MS, 60_000, 0, 2 * BDP);
    assert_eq!(r.bbr.mode(), Mode::Startup, "57 ms is within 50 / 8 + 1 ms");
    // The queue stands: 58 ms against 50.
    r.round(BW, 58 * MS, 60_000, 0, 2 * BDP);
    assert_eq!(r.bbr.mode(), Mode::Drain);
}

#[test]
fn a_growing_rate_keeps_startup_going() {
    let mut r = Run::new();
    let mut rate = 10_000.0;
    for _ in 0..12 {
        r.round(rate, RTT, (rate * 0.05) as u64 + 20 * MSS, 0, 2 * BDP);
        rate *= 1.3;
    }
    assert_eq!(r.bbr.mode(), Mode::Startup);
}

#[test]
fn drain_ends_when_inflight_is_down_to_one_bdp() {
    let mut r = Run::new();
    for rate in [100_000.0, 200_000.0, 400_000.0, 800_000.0] {
        r.round(rate, RTT, (rate * 0.05) as u64, 0, (rate * 0.1) as u64);
    }
    // Growth to 1 MB/s, then three flat rounds: the plateau.
    for _ in 0..4 {
        r.steady(2 * BDP);
    }
    assert_eq!(r.bbr.mode(), Mode::Drain);
    r.steady(BDP + MSS);
    assert_eq!(r.bbr.mode(), Mode::Drain, "one packet above the BDP");
    r.steady(BDP);
    assert_eq!(r.bbr.mode(), Mode::ProbeBw(ProbeBwPhase::Down));
    // DOWN ends at once: inflight is already at the BDP.
    r.steady(BDP);
    assert_eq!(r.bbr.mode(), Mode::ProbeBw(ProbeBwPhase::Cruise));
    assert!(close(r.bbr.pacing_rate().unwrap(), BW * MARGIN));
    assert_eq!(r.bbr.window(), 2 * BDP + 4 * MSS);
}

#[test]
fn probe_bw_cycles_cruise_refill_up_down_within_a_second_and_a_half() {
    let mut r = Run::new();
    r.run_into_cruise();
    let cruise_start = r.now;
    r.until(Mode::ProbeBw(ProbeBwPhase::Refill), 80, BDP);
    let waited = r.now - cruise_start;
    // 0.5–1 s of probe wait (drawn); 50 rounds (one BDP in packets) of
    // 50 ms would be 2.5 s.
    assert!(waited <= Duration::from_millis(1050), "{waited:?}");
    assert!(waited >= Duration::from_millis(500) - 2 * RTT, "{waited:?}");
    r.steady(BDP);
    assert_eq!(r.bbr.mode(), Mode::ProbeBw(ProbeBwPhase::Up));
    assert!(close(r.bbr.pacing_rate().unwrap(), 1.25 * BW * MARGIN));
    // UP lasts until 1.25 BDP are in flight after a round.
    r.steady(BDP);
    assert_eq!(r.bbr.mode(), Mode::ProbeBw(ProbeBwPhase::Up));
    r.steady(BDP * 5 / 4);
    assert_eq!(r.bbr.mode(), Mode::ProbeBw(ProbeBwPhase::Down));
    assert!(close(r.bbr.pacing_rate().unwrap(), 0.9 * BW * MARGIN));
}

#[test]
fn probe_rtt_follows_five_seconds_without_a_new_minimum_rtt() {
    let mut r = Run::new();
    r.run_into_cruise();
    // The RTT reads 60 ms from now on (a queue someone else keeps).
    let start = r.now;
    while r.bbr.mode() != Mode::ProbeRtt {
        r.round(BW, 60 * MS, 60_000, 0, BDP);
        assert!(r.now - start <= PROBE_RTT_INTERVAL + 60 * MS, "no ProbeRTT");
    }
    assert!(r.now - start >= PROBE_RTT_INTERVAL - RTT * 8);
    // The expired minimum gave way to the current sample; the window is
    // half a BDP at that RTT.
    assert_eq!(r.bbr.min_rtt(), Some(60 * MS));
    assert_eq!(r.bbr.window(), 30_000);
    // The queue drains: samples at 50 ms again, inflight below the window.
    r.round(BW, RTT, BDP, 0, 20_000);
    assert_eq!(r.bbr.min_rtt(), Some(RTT));
    assert_eq!(r.bbr.mode(), Mode::ProbeRtt);
    // 200 ms and at least a round later, back to cruising.
    for _ in 0..3 {
        r.round(BW, RTT, BDP, 0, 20_000);
        assert_eq!(r.bbr.mode(), Mode::ProbeRtt);
    }
    r.round(BW, RTT, BDP, 0, 20_000);
    assert_eq!(r.bbr.mode(), Mode::ProbeBw(ProbeBwPhase::Cruise));
    assert!(r.bbr.window() > 30_000, "the window regrows");
}

#[test]
fn loss_over_two_percent_with_a_standing_queue_sets_inflight_hi_and_ends_the_probe() {
    let mut r = Run::new();
    r.run_into_cruise();
    r.until(Mode::ProbeBw(ProbeBwPhase::Up), 80, BDP);
    // The probe overflows the buffer: RTT 70 ms, 6 of 56 packets lost.
    r.round(BW, 70 * MS, BDP, 6 * MSS, 80_000);
    assert_eq!(r.bbr.congested_rounds(), 1);
    assert_eq!(r.bbr.inflight_hi(), Some(56_000), "0.7 × 80 000");
    assert_eq!(r.bbr.mode(), Mode::ProbeBw(ProbeBwPhase::Down));
    // Outside probing the window keeps 15 % below inflight_hi.
    assert_eq!(r.bbr.window(), 47_600);
    // Congestion while cruising cuts the short-term bounds by 0.3.
    r.until(Mode::ProbeBw(ProbeBwPhase::Cruise), 5, 40_000);
    r.round(BW, 70 * MS, 40_000, 6 * MSS, 47_000);
    assert_eq!(
        r.bbr.inflight_lo(),
        Some(40_000),
        "max(delivered, 0.7 × cwnd)"
    );
    assert!(r.bbr.window() <= 40_000);
    // REFILL forgets them.
    r.until(Mode::ProbeBw(ProbeBwPhase::Refill), 80, BDP);
    assert_eq!(r.bbr.inflight_lo(), None);
}

#[test]
fn a_bound_the_sending_filled_grows_sixteen_datagrams_a_round() {
    let mut r = Run::new();
    r.run_into_cruise();
    r.until(Mode::ProbeBw(ProbeBwPhase::Up), 80, BDP);
    r.round(BW, 70 * MS, BDP, 6 * MSS, 80_000);
    assert_eq!(r.bbr.inflight_hi(), Some(56_000));
    r.until(Mode::ProbeBw(ProbeBwPhase::Cruise), 5, 40_000);
    let hi = r.bbr.inflight_hi().unwrap();
    // Sent well below the bound (47 600 outside probing): no growth.
    r.steady(30_000);
    assert_eq!(r.bbr.inflight_hi(), Some(hi));
    // A packet sent within two datagrams of the bound: one step, though
    // only 40 000 bytes are left in flight when its acknowledgment comes.
    r.round_sent_at(BW, RTT, BDP, 0, 46_000, 40_000);
    assert_eq!(r.bbr.inflight_hi(), Some(hi + 16 * MSS));
    // The bound moved to 0.85 × 72 000 = 61 200: 46 000 no longer fills it...
    r.round_sent_at(BW, RTT, BDP, 0, 46_000, 40_000);
    assert_eq!(r.bbr.inflight_hi(), Some(hi + 16 * MSS));
    // ...60 000 does: additive, a step a round.
    r.round_sent_at(BW, RTT, BDP, 0, 60_000, 40_000);
    assert_eq!(r.bbr.inflight_hi(), Some(hi + 32 * MSS));
}

#[test]
fn loss_without_a_standing_queue_is_background_not_congestion() {
    let mut r = Run::new();
    r.run_into_cruise();
    // 5 % random loss, no queue, for 40 rounds and on to the next probe
    // for bandwidth: the background learns it, and the cycles go on.
    for i in 0..160 {
        if i >= 40 && r.bbr.mode() == Mode::ProbeBw(ProbeBwPhase::Up) {
            break;
        }
        r.round(BW * 0.95, RTT, 47_500, 2_500, BDP);
    }
    assert_eq!(r.bbr.mode(), Mode::ProbeBw(ProbeBwPhase::Up));
    assert!(
        (r.bbr.background_loss() - 0.05).abs() < 0.002,
        "{}",
        r.bbr.background_loss()
    );
    assert_eq!(r.bbr.congested_rounds(), 0);
    // Probing builds a queue; the loss rate stays 5 %: not congestion.
    r.round(BW * 0.95, 65 * MS, 47_500, 2_500, BDP * 5 / 4);
    assert_eq!(r.bbr.congested_rounds(), 0);
    assert_eq!(r.bbr.inflight_hi(), None);
    // The model is the delivery rate (95 % of BW, the filter forgot the
    // first cycles'); the loss took nothing off it: DOWN paces at 0.9 of it.
    assert!(r.bbr.pacing_rate().unwrap() >= 0.9 * (BW * 0.95) * MARGIN * 0.999);
    // 9 % with a queue is 4 % in excess of the background: congestion.
    r.round(BW * 0.95, 65 * MS, 45_500, 4_500, BDP * 5 / 4);
    assert_eq!(r.bbr.congested_rounds(), 1);
}

#[test]
fn startup_ends_at_a_buffer_overflow_with_inflight_hi_at_the_bdp_or_above() {
    let mut r = Run::new();
    for rate in [100_000.0, 200_000.0, 400_000.0] {
        r.round(rate, RTT, (rate * 0.05) as u64, 0, (rate * 0.1) as u64);
    }
    // Still growing, but the queue overflowed: 10 % lost, RTT 80 ms.
    r.round(800_000.0, 80 * MS, 40_000, 4_000, 100_000);
    assert_eq!(r.bbr.mode(), Mode::Drain);
    assert_eq!(r.bbr.inflight_hi(), Some(70_000));
}

#[test]
fn too_few_packets_in_a_round_are_judged_with_the_next() {
    let mut r = Run::new();
    r.run_into_cruise();
    // 10 packets, 3 lost, queue: too small a round to judge alone.
    r.round(BW, 70 * MS, 7 * MSS, 3 * MSS, BDP);
    assert_eq!(r.bbr.congested_rounds(), 0);
    // Merged with 40 clean packets: 3 of 50 lost, 6 % with a queue.
    r.round(BW, 70 * MS, 40 * MSS, 0, BDP);
    assert_eq!(r.bbr.congested_rounds(), 1);
}

#[test]
fn the_minimum_window_is_four_of_the_datagrams_sent_now() {
    let mut r = Run::new();
    r.run_into_cruise();
    r.bbr.on_max_datagram_size(1472);
    r.bbr.on_congestion_event(r.now, r.now, true, 10 * MSS);
    assert_eq!(r.bbr.window(), 4 * 1472);
}

#[test]
fn persistent_congestion_drops_the_window_to_the_minimum() {
    let mut r = Run::new();
    r.run_into_cruise();
    r.bbr.on_congestion_event(r.now, r.now, true, 10 * MSS);
    assert_eq!(r.bbr.window(), 4 * MSS);
}
