//! Pacing (spec §7.2): spreads ack-eliciting packets over the round trip
//! instead of sending a window in one burst, which would overflow shallow
//! bottleneck queues and inflate everyone's delay.
//!
//! A token bucket in disguise: the rate is `gain × window / smoothed RTT`
//! (gain 2 in slow start, 1.25 after, from the congestion controller), and
//! up to a small burst — 2 ms at that rate plus one full datagram, at least
//! 2 and at most 256 full datagrams — may leave back to back after an idle
//! period, so a coarse event loop timer still keeps up: a wake-up up to
//! 2 ms late loses no sending time, however long one datagram takes at the
//! rate. (Without the extra datagram, 1472-byte datagrams at 10 Mbit/s,
//! 1.2 ms each, kept only 0.8 ms of slack, and a tokio timer's lateness
//! cost a fifth of the rate on a real path.) (A cap of 10 datagrams limited
//! a driver woken by a 1 ms timer to 10 datagrams per wake-up, 12 MB/s,
//! whenever nothing else woke it: on loopback and fast LANs the pacer, not
//! the window, set the rate.) Instead of counting tokens we
//! keep the instant at which the bucket is (or was) empty: a datagram may
//! leave when that instant plus the datagram's transmission time at the
//! pacing rate has passed, and `poll_timeout` reports that instant otherwise.

use std::time::{Duration, Instant};

/// The burst is sized to let this much time's worth of packets out at once.
const BURST_INTERVAL: Duration = Duration::from_millis(2);
/// Burst bounds, in datagrams.
const MIN_BURST_PACKETS: u64 = 2;
const MAX_BURST_PACKETS: u64 = 256;

/// A pacing rate and its burst allowance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PacingRate {
    /// Bytes per second.
    pub(crate) bytes_per_second: f64,
    /// Bytes that may leave back to back.
    pub(crate) burst: u64,
    /// How far back a full bucket reaches: the time the burst's datagrams
    /// take one by one as `on_sent` charges them (each rounded up to a
    /// whole nanosecond), so that a full bucket lets the whole burst leave
    /// even at rates where one datagram takes under a nanosecond (a round
    /// trip of a few microseconds or less, as between endpoints in memory).
    burst_time: Duration,
    /// A full datagram and its transmission time, the one asked for most
    /// (twice per packet sent), computed once.
    mss: u64,
    mss_time: Duration,
}

impl PacingRate {
    /// The rate for a congestion `window` (bytes), smoothed RTT and gain.
    pub(crate) fn new(window: u64, srtt: Duration, gain: f64, mss: u64) -> PacingRate {
        let srtt = srtt.max(Duration::from_micros(1)).as_secs_f64();
        PacingRate::at(gain * window.max(mss) as f64 / srtt, mss)
    }

    /// A rate of `bytes_per_second` (at least 1), as a model-based
    /// controller sets it directly.
    pub(crate) fn at(bytes_per_second: f64, mss: u64) -> PacingRate {
        let bytes_per_second = bytes_per_second.max(1.0);
        let burst = ((bytes_per_second * BURST_INTERVAL.as_secs_f64()) as u64)
            .saturating_add(mss)
            .clamp(MIN_BURST_PACKETS * mss, MAX_BURST_PACKETS * mss);
        let mut rate = PacingRate {
            bytes_per_second,
            burst,
            burst_time: Duration::ZERO,
            mss,
            mss_time: Duration::ZERO,
        };
        rate.mss_time = rate.compute_transmission_time(mss);
        let whole_datagrams = u32::try_from(burst / mss.max(1)).unwrap_or(u32::MAX);
        rate.burst_time = rate
            .transmission_time(burst)
            .max(rate.mss_time.saturating_mul(whole_datagrams));
        rate
    }

    /// How long `bytes` take at this rate, rounded up to the nanosecond.
    pub(crate) fn transmission_time(&self, bytes: u64) -> Duration {
        if bytes == self.mss {
            return self.mss_time;
        }
        self.compute_transmission_time(bytes)
    }

    fn compute_transmission_time(&self, bytes: u64) -> Duration {
        let nanos = (bytes as f64 * 1e9 / self.bytes_per_second).ceil();
        Duration::from_nanos(nanos.min(u64::MAX as f64) as u64)
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Pacer {
    /// When the bucket is (was) empty; `None`: full.
    empty_at: Option<Instant>,
    /// The last rate computed and what it was computed from: the inputs
    /// change once per acknowledgment at most, the rate is asked for twice
    /// per packet sent (three float divisions and roundings each time).
    last_rate: Option<(RateInputs, PacingRate)>,
}

/// What a [`PacingRate`] is computed from (floats by their bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RateInputs {
    Window {
        window: u64,
        srtt: Duration,
        gain: u64,
        mss: u64,
    },
    Rate {
        bytes_per_second: u64,
        mss: u64,
    },
}

impl Pacer {
    /// `PacingRate::new(window, srtt, gain, mss)`, computed again only when
    /// an input changed.
    pub(crate) fn rate(&mut self, window: u64, srtt: Duration, gain: f64, mss: u64) -> PacingRate {
        let inputs = RateInputs::Window {
            window,
            srtt,
            gain: gain.to_bits(),
            mss,
        };
        self.remembered(inputs, || PacingRate::new(window, srtt, gain, mss))
    }

    /// `PacingRate::at(bytes_per_second, mss)`, computed again only when an
    /// input changed.
    pub(crate) fn rate_at(&mut self, bytes_per_second: f64, mss: u64) -> PacingRate {
        let inputs = RateInputs::Rate {
            bytes_per_second: bytes_per_second.to_bits(),
            mss,
        };
        self.remembered(inputs, || PacingRate::at(bytes_per_second, mss))
    }

    fn remembered(
        &mut self,
        inputs: RateInputs,
        compute: impl FnOnce() -> PacingRate,
    ) -> PacingRate {
        match self.last_rate {
            Some((last, rate)) if last == inputs => rate,
            _ => {
                let rate = compute();
                self.last_rate = Some((inputs, rate));
                rate
            }
        }
    }

    /// The instant at which the bucket would be empty, given the burst cap.
    fn base(&self, now: Instant, rate: &PacingRate) -> Instant {
        let full_since = now.checked_sub(rate.burst_time).unwrap_or(now);
        self.empty_at.map_or(full_since, |e| e.max(full_since))
    }

    /// When a datagram of `size` bytes may leave: `None` means now.
    pub(crate) fn delay(&self, now: Instant, size: u64, rate: &PacingRate) -> Option<Instant> {
        let ready = self.base(now, rate) + rate.transmission_time(size);
        (ready > now).then_some(ready)
    }

    /// A datagram of `size` bytes left at `now`.
    pub(crate) fn on_sent(&mut self, now: Instant, size: u64, rate: &PacingRate) {
        self.empty_at = Some(self.base(now, rate) + rate.transmission_time(size));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_rate_is_gain_times_window_per_rtt() {
        // 1.25 × 12 000 B / 100 ms = 150 000 B/s: a 1200-byte datagram every 8 ms.
        let r = PacingRate::new(12_000, 100 * MS, 1.25, 1200);
        assert_eq!(r.bytes_per_second, 150_000.0);
        assert_eq!(r.transmission_time(1200), 8 * MS);
        assert_eq!(r.transmission_time(600), 4 * MS);
        // 2 ms at that rate is 300 bytes: the burst is the 2-datagram minimum.
        assert_eq!(r.burst, 2400);
        // 1.25 × 1.2 MB / 50 ms = 30 MB/s: 40 µs per datagram; 2 ms of it
        // and one datagram more is a 51-datagram burst.
        let r = PacingRate::new(1_200_000, 50 * MS, 1.25, 1200);
        assert_eq!(r.transmission_time(1200), Duration::from_micros(40));
        assert_eq!(r.burst, 61_200);
        // Loopback: a huge window over 100 µs; the burst is capped at 256
        // datagrams, still about a millisecond's worth of system calls.
        let r = PacingRate::new(64 << 20, Duration::from_micros(100), 2.0, 1200);
        assert_eq!(r.burst, 256 * 1200);
    }

    #[test]
    fn a_burst_leaves_at_once_then_one_datagram_per_interval() {
        let t0 = Instant::now();
        let r = PacingRate::new(12_000, 100 * MS, 1.25, 1200);
        let mut p = Pacer::default();
        // Two datagrams of burst, back to back.
        for _ in 0..2 {
            assert_eq!(p.delay(t0, 1200, &r), None);
            p.on_sent(t0, 1200, &r);
        }
        // The third waits 8 ms; nothing may leave before.
        assert_eq!(p.delay(t0, 1200, &r), Some(t0 + 8 * MS));
        assert_eq!(p.delay(t0 + 7 * MS, 1200, &r), Some(t0 + 8 * MS));
        assert_eq!(p.delay(t0 + 8 * MS, 1200, &r), None);
        p.on_sent(t0 + 8 * MS, 1200, &r);
        // A small datagram needs only its own share: 600 bytes, 4 ms.
        assert_eq!(p.delay(t0 + 8 * MS, 600, &r), Some(t0 + 12 * MS));
        p.on_sent(t0 + 12 * MS, 600, &r);
        assert_eq!(p.delay(t0 + 12 * MS, 1200, &r), Some(t0 + 20 * MS));
        // After a second of silence the burst is available again, not more.
        let t1 = t0 + Duration::from_secs(1);
        for _ in 0..2 {
            assert_eq!(p.delay(t1, 1200, &r), None);
            p.on_sent(t1, 1200, &r);
        }
        assert_eq!(p.delay(t1, 1200, &r), Some(t1 + 8 * MS));
    }

    #[test]
    fn the_whole_burst_leaves_at_once_even_when_a_datagram_takes_under_a_nanosecond() {
        // In memory the round trip can measure zero (floored at 1 µs): at
        // 2 × 19 MB / 1 µs a datagram takes 0.03 ns, charged as 1 ns. A full
        // bucket must still hold the 256-datagram burst, not the 8 ns that
        // the burst's exact transmission time gives (8 datagrams).
        let t0 = Instant::now();
        let r = PacingRate::new(19_000_000, Duration::ZERO, 2.0, 1200);
        assert_eq!(r.burst, 256 * 1200);
        let mut p = Pacer::default();
        let now = t0 + Duration::from_millis(1);
        let mut sent = 0;
        while p.delay(now, 1200, &r).is_none() {
            p.on_sent(now, 1200, &r);
            sent += 1;
            assert!(sent <= 256, "no more than the burst");
        }
        assert_eq!(sent, 256, "the whole burst leaves back to back");
        assert_eq!(p.delay(now, 1200, &r), Some(now + Duration::from_nanos(1)));
    }

    #[test]
    fn the_remembered_rate_follows_every_input() {
        let mut p = Pacer::default();
        let inputs = [
            (12_000, 100 * MS, 1.25, 1200),
            (12_000, 100 * MS, 1.25, 1200),
            (24_000, 100 * MS, 1.25, 1200),
            (24_000, 50 * MS, 1.25, 1200),
            (24_000, 50 * MS, 2.0, 1200),
            (24_000, 50 * MS, 2.0, 1210),
            (12_000, 100 * MS, 1.25, 1200),
        ];
        for (window, srtt, gain, mss) in inputs {
            assert_eq!(
                p.rate(window, srtt, gain, mss),
                PacingRate::new(window, srtt, gain, mss),
                "{window} {srtt:?} {gain} {mss}"
            );
        }
        // A controller's own rate: 1.5 MB/s, 0.8 ms per datagram.
        assert_eq!(
            p.rate_at(1_500_000.0, 1200),
            PacingRate::at(1_500_000.0, 1200)
        );
        assert_eq!(
            p.rate_at(1_500_000.0, 1200).transmission_time(1200),
            Duration::from_micros(800)
        );
        assert_eq!(p.rate_at(3e6, 1200), PacingRate::at(3e6, 1200));
        assert_eq!(
            p.rate(12_000, 100 * MS, 1.25, 1200),
            PacingRate::new(12_000, 100 * MS, 1.25, 1200)
        );
    }

    /// Bytes a sender of `size`-byte datagrams gets out in `secs` at
    /// `rate`, woken by a timer that fires on the next whole millisecond
    /// after the deadline and `late_us` later still (an event loop like
    /// tokio's, on a busy machine).
    fn sent_with_a_coarse_timer(rate: f64, size: u64, late_us: u64, secs: u64) -> u64 {
        let t0 = Instant::now();
        let r = PacingRate::at(rate, size);
        let mut p = Pacer::default();
        let (mut now, mut sent) = (t0, 0);
        while now < t0 + Duration::from_secs(secs) {
            match p.delay(now, size, &r) {
                None => {
                    p.on_sent(now, size, &r);
                    sent += size;
                }
                Some(at) => {
                    let ms = (at - t0).as_nanos().div_ceil(1_000_000) as u64;
                    now = t0 + Duration::from_millis(ms) + Duration::from_micros(late_us);
                }
            }
        }
        sent
    }

    #[test]
    fn a_millisecond_timer_up_to_two_milliseconds_late_keeps_the_rate() {
        // 10 Mbit/s: a 1472-byte datagram takes 1.2 ms, more than half the
        // 2 ms burst interval; at 50 Mbit/s one takes 0.24 ms.
        for rate in [1_200_000.0, 6_000_000.0] {
            for size in [1200, 1472] {
                for late_us in [0, 500, 900] {
                    let sent = sent_with_a_coarse_timer(rate, size, late_us, 2) as f64;
                    assert!(
                        sent >= 0.995 * rate * 2.0,
                        "{rate} B/s, {size} B, {late_us} µs late: {sent}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_deadline_is_always_in_the_future_so_no_busy_loop() {
        let t0 = Instant::now();
        let r = PacingRate::new(7_777, 33 * MS, 1.25, 1200);
        let mut p = Pacer::default();
        let mut now = t0;
        for _ in 0..1000 {
            match p.delay(now, 1200, &r) {
                None => p.on_sent(now, 1200, &r),
                Some(at) => {
                    assert!(at > now);
                    now = at;
                }
            }
        }
        // 1000 decisions at ~294 kB/s: roughly half sends, each 4.1 ms apart.
        let elapsed = now - t0;
        assert!(
            elapsed > Duration::from_secs(1) && elapsed < Duration::from_secs(3),
            "{elapsed:?}"
        );
    }
}
