//! Delivery-rate samples (spec §7.1), as in draft-cheng-iccrg-delivery-rate-estimation:
//! on every ACK, how fast the path delivered data over the interval that
//! the newest acknowledged packet's journey spans.
//!
//! Each ack-eliciting packet remembers, when it is sent, how many bytes had
//! been delivered then ([`PacketDelivery`]). When it is acknowledged, the
//! bytes delivered since, divided by the longer of the *send* interval
//! (from the first packet of its flight to it) and the *ack* interval (from
//! the delivery it remembered to now), is the delivery rate. Taking the
//! longer interval caps the estimate at the rate we actually sent: a peer
//! that holds its acknowledgments back and then releases them in one burst
//! (or acknowledges with huge delays) shortens the ack interval, never the
//! send interval, so it cannot inflate the estimate beyond what was sent.
//!
//! Packets sent while the sender had nothing more to send (or the peer's
//! flow control held it back) are marked application limited until the
//! data in flight then is delivered: their samples measure the application,
//! not the path, and a controller must not lower its bandwidth model on them.

use std::time::{Duration, Instant};

/// What a packet remembers of the connection's delivery state when it is
/// sent: 24 bytes, since every slot of the sent-packet record carries one
/// (spec §10.3). Byte totals are kept modulo 2³² — what is delivered or lost
/// while one packet is in flight is far below that — and instants as
/// microseconds before the packet's own sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PacketDelivery {
    /// Bytes delivered (acknowledged) before it was sent, modulo 2³².
    delivered: u32,
    /// Microseconds from when that total last grew to its sending.
    since_delivered_us: u32,
    /// Microseconds from the sending of its flight's first packet to its own.
    since_first_sent_us: u32,
    /// Bytes in flight once it was sent, itself included (saturating).
    tx_in_flight: u32,
    /// Bytes declared lost before it was sent, modulo 2³².
    lost: u32,
    /// Sent in an application-limited period.
    app_limited: bool,
}

/// Microseconds from `earlier` to `later`, saturating.
fn micros_between(earlier: Instant, later: Instant) -> u32 {
    u32::try_from(later.saturating_duration_since(earlier).as_micros()).unwrap_or(u32::MAX)
}

/// The full total whose low 32 bits are `low`, at most `total` and within
/// 2³² below it.
fn widen(low: u32, total: u64) -> u64 {
    total - u64::from((total as u32).wrapping_sub(low))
}

/// One ACK's delivery-rate sample, handed to the congestion controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSample {
    /// Bytes per second delivered over the sample's interval; `None` when
    /// the interval is shorter than the minimum RTT (too short to trust).
    pub delivery_rate: Option<f64>,
    /// Bytes delivered over the interval.
    pub delivered: u64,
    /// The interval: the longer of the send and the ack interval.
    pub interval: Duration,
    /// The connection's total of delivered bytes when the sample's packet
    /// was sent (rounds are counted by it).
    pub prior_delivered: u64,
    /// The connection's total of delivered bytes now.
    pub total_delivered: u64,
    /// The sample's packet was sent while application limited.
    pub app_limited: bool,
    /// Round-trip time of the sample's packet (the newest acknowledged),
    /// the peer's ack delay included.
    pub rtt: Duration,
    /// Bytes in flight when the sample's packet was sent.
    pub tx_in_flight: u64,
    /// Bytes declared lost between the sample's packet's sending and now.
    pub lost_since_sent: u64,
    /// Bytes newly acknowledged by this ACK.
    pub newly_acked: u64,
    /// Bytes newly declared lost while processing this ACK.
    pub newly_lost: u64,
}

/// The connection's side of delivery-rate estimation.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryRate {
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    /// Nonzero: the delivered total at which the application-limited period ends.
    app_limited_until: u64,
    lost: u64,
    /// The sample being built from the current ACK.
    sample: Option<Building>,
    newly_acked: u64,
    newly_lost: u64,
}

#[derive(Debug, Clone, Copy)]
struct Building {
    prior_delivered: u64,
    prior_time: Instant,
    app_limited: bool,
    tx_in_flight: u64,
    lost_at_send: u64,
    send_elapsed: Duration,
    rtt: Duration,
}

impl PacketDelivery {
    /// A packet sent with nothing delivered or in flight before it.
    #[cfg(test)]
    pub(crate) fn idle() -> Self {
        PacketDelivery {
            delivered: 0,
            since_delivered_us: 0,
            since_first_sent_us: 0,
            tx_in_flight: 0,
            lost: 0,
            app_limited: false,
        }
    }
}

impl DeliveryRate {
    pub(crate) fn new(now: Instant) -> Self {
        DeliveryRate {
            delivered: 0,
            delivered_time: now,
            first_sent_time: now,
            app_limited_until: 0,
            lost: 0,
            sample: None,
            newly_acked: 0,
            newly_lost: 0,
        }
    }

    /// An ack-eliciting packet is sent at `now`; `in_flight` counts it;
    /// `app_limited`: the sender has nothing more it may send.
    pub(crate) fn on_sent(
        &mut self,
        now: Instant,
        in_flight: u64,
        size: u64,
        app_limited: bool,
    ) -> PacketDelivery {
        if in_flight <= size {
            // Nothing else in flight: a new flight starts now.
            self.first_sent_time = now;
            self.delivered_time = now;
        }
        if app_limited {
            self.app_limited_until = (self.delivered + in_flight).max(1);
        }
        PacketDelivery {
            delivered: self.delivered as u32,
            since_delivered_us: micros_between(self.delivered_time, now),
            since_first_sent_us: micros_between(self.first_sent_time, now),
            tx_in_flight: u32::try_from(in_flight).unwrap_or(u32::MAX),
            lost: self.lost as u32,
            app_limited: self.app_limited_until != 0,
        }
    }

    /// A packet of `size` bytes sent at `sent` with `packet` was
    /// acknowledged at `now` (call oldest first, then [`take_sample`](Self::take_sample)).
    pub(crate) fn on_acked(
        &mut self,
        now: Instant,
        sent: Instant,
        size: u64,
        packet: &PacketDelivery,
    ) {
        let prior_delivered = widen(packet.delivered, self.delivered);
        self.delivered += size;
        self.delivered_time = now;
        self.newly_acked += size;
        let newer = self
            .sample
            .is_none_or(|s| prior_delivered >= s.prior_delivered);
        if newer {
            self.first_sent_time = sent;
            let us = |n: u32| Duration::from_micros(u64::from(n));
            self.sample = Some(Building {
                prior_delivered,
                prior_time: sent
                    .checked_sub(us(packet.since_delivered_us))
                    .unwrap_or(sent),
                app_limited: packet.app_limited,
                tx_in_flight: u64::from(packet.tx_in_flight),
                lost_at_send: widen(packet.lost, self.lost),
                send_elapsed: us(packet.since_first_sent_us),
                rtt: now.saturating_duration_since(sent),
            });
        }
    }

    /// Bytes were declared lost.
    pub(crate) fn on_lost(&mut self, bytes: u64) {
        self.lost += bytes;
        self.newly_lost += bytes;
    }

    /// The sample of the ACK just processed, if it acknowledged anything;
    /// `min_rtt` is the path's minimum RTT so far.
    pub(crate) fn take_sample(&mut self, min_rtt: Duration) -> Option<RateSample> {
        let newly_acked = std::mem::take(&mut self.newly_acked);
        let newly_lost = std::mem::take(&mut self.newly_lost);
        let b = self.sample.take()?;
        if self.app_limited_until != 0 && self.delivered > self.app_limited_until {
            self.app_limited_until = 0;
        }
        let ack_elapsed = self.delivered_time.saturating_duration_since(b.prior_time);
        let interval = b.send_elapsed.max(ack_elapsed);
        let delivered = self.delivered - b.prior_delivered;
        let delivery_rate = (interval >= min_rtt && !interval.is_zero())
            .then(|| delivered as f64 / interval.as_secs_f64());
        Some(RateSample {
            delivery_rate,
            delivered,
            interval,
            prior_delivered: b.prior_delivered,
            total_delivered: self.delivered,
            app_limited: b.app_limited,
            rtt: b.rtt,
            tx_in_flight: b.tx_in_flight,
            lost_since_sent: self.lost - b.lost_at_send,
            newly_acked,
            newly_lost,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const SIZE: u64 = 1000;

    /// Sends `n` packets `gap` apart from `t`, returning their records and send times.
    fn send(
        d: &mut DeliveryRate,
        t: Instant,
        n: u64,
        gap: Duration,
        in_flight: &mut u64,
    ) -> Vec<(Instant, PacketDelivery)> {
        (0..n)
            .map(|i| {
                let at = t + gap * i as u32;
                *in_flight += SIZE;
                (at, d.on_sent(at, *in_flight, SIZE, false))
            })
            .collect()
    }

    #[test]
    fn a_first_flight_is_measured_over_its_whole_round_trip() {
        // 10 packets of 1000 bytes, 1 ms apart, from an idle start; each
        // acknowledged 50 ms after it was sent, one ACK per packet.
        let t0 = Instant::now();
        let mut d = DeliveryRate::new(t0);
        let mut in_flight = 0;
        let sent = send(&mut d, t0, 10, MS, &mut in_flight);
        let mut last = None;
        for (at, p) in &sent {
            d.on_acked(*at + 50 * MS, *at, SIZE, p);
            last = d.take_sample(10 * MS);
        }
        // The last packet's sample: 10 000 bytes delivered since the flight
        // began (t0), over the longer of the send interval (9 ms) and the
        // ack interval (t0 to 59 ms): 59 ms.
        let s = last.unwrap();
        assert_eq!(s.delivered, 10_000);
        assert_eq!(s.interval, 59 * MS);
        assert_eq!(s.delivery_rate, Some(10_000.0 / 0.059));
        assert_eq!(s.rtt, 50 * MS);
        assert_eq!(s.newly_acked, SIZE);
        assert_eq!(s.total_delivered, 10_000);
        // Under min_rtt the interval is too short to trust.
        let mut d = DeliveryRate::new(t0);
        let p = d.on_sent(t0, SIZE, SIZE, false);
        d.on_acked(t0 + 5 * MS, t0, SIZE, &p);
        assert_eq!(d.take_sample(10 * MS).unwrap().delivery_rate, None);
    }

    #[test]
    fn a_continuous_transfer_measures_the_sending_rate() {
        // A sender keeps 50 packets in flight, one sent every ms (1 MB/s),
        // each acknowledged 50 ms after sending.
        let t0 = Instant::now();
        let mut d = DeliveryRate::new(t0);
        let mut sent: std::collections::VecDeque<(Instant, PacketDelivery)> = Default::default();
        let mut in_flight = 0;
        let mut rate = None;
        for ms in 0..400u32 {
            let now = t0 + MS * ms;
            while sent.front().is_some_and(|(at, _)| *at + 50 * MS <= now) {
                let (at, p) = sent.pop_front().unwrap();
                in_flight -= SIZE;
                d.on_acked(now, at, SIZE, &p);
                rate = d.take_sample(50 * MS).unwrap().delivery_rate.or(rate);
            }
            in_flight += SIZE;
            sent.push_back((now, d.on_sent(now, in_flight, SIZE, false)));
        }
        let rate = rate.expect("samples over a full round trip");
        assert!((rate - 1_000_000.0).abs() < 1.0, "{rate}");
    }

    #[test]
    fn acknowledgments_held_back_and_released_in_a_burst_cannot_exceed_the_sending_rate() {
        // Attacker: the peer acknowledges nothing for 200 ms, then all 100
        // packets (sent 1 ms apart: 1 MB/s) at once, with one ACK per packet
        // in the same instant. The ack interval is tiny; the send interval
        // is not, so no sample exceeds 1 MB/s.
        let t0 = Instant::now();
        let mut d = DeliveryRate::new(t0);
        let mut in_flight = 0;
        let sent = send(&mut d, t0, 100, MS, &mut in_flight);
        let burst = t0 + 300 * MS;
        for (at, p) in &sent {
            d.on_acked(burst, *at, SIZE, p);
            if let Some(rate) = d.take_sample(Duration::ZERO).unwrap().delivery_rate {
                assert!(rate <= 1_000_000.0 * 1.000_001, "{rate}");
            }
        }
        // A second flight sent at 10 MB/s against acks of the first flight
        // coming back in a burst: still capped by what was sent.
        let sent2 = send(&mut d, burst, 100, MS / 10, &mut in_flight);
        let burst2 = burst + 500 * MS;
        for (at, p) in &sent2 {
            d.on_acked(burst2, *at, SIZE, p);
            let s = d.take_sample(Duration::ZERO).unwrap();
            if let Some(rate) = s.delivery_rate {
                let sent_rate = s.delivered as f64 / s.interval.as_secs_f64();
                assert!(rate <= sent_rate && rate < 10_000_000.0 * 1.01, "{rate}");
            }
        }
    }

    #[test]
    fn app_limited_marks_last_until_the_data_then_in_flight_is_delivered() {
        let t0 = Instant::now();
        let mut d = DeliveryRate::new(t0);
        let a = d.on_sent(t0, SIZE, SIZE, false);
        let b = d.on_sent(t0 + MS, 2 * SIZE, SIZE, true);
        let c = d.on_sent(t0 + 2 * MS, 3 * SIZE, SIZE, false);
        assert!(!a.app_limited);
        assert!(
            b.app_limited && c.app_limited,
            "marked until delivered past b"
        );
        d.on_acked(t0 + 50 * MS, t0, SIZE, &a);
        assert!(!d.take_sample(MS).unwrap().app_limited);
        d.on_acked(t0 + 51 * MS, t0 + MS, SIZE, &b);
        assert!(d.take_sample(MS).unwrap().app_limited);
        d.on_acked(t0 + 52 * MS, t0 + 2 * MS, SIZE, &c);
        assert!(d.take_sample(MS).unwrap().app_limited);
        // Everything in flight when b was sent is delivered: the mark is gone.
        let e = d.on_sent(t0 + 53 * MS, SIZE, SIZE, false);
        assert!(!e.app_limited);
    }

    #[test]
    fn a_sample_counts_the_losses_since_its_packet_was_sent() {
        let t0 = Instant::now();
        let mut d = DeliveryRate::new(t0);
        d.on_lost(500);
        let a = d.on_sent(t0, SIZE, SIZE, false);
        let b = d.on_sent(t0 + MS, 2 * SIZE, SIZE, false);
        d.on_lost(1200);
        d.on_acked(t0 + 50 * MS, t0 + MS, SIZE, &b);
        let s = d.take_sample(MS).unwrap();
        assert_eq!(s.lost_since_sent, 1200);
        assert_eq!(s.newly_lost, 1700);
        assert_eq!(s.tx_in_flight, 2 * SIZE);
        assert!(!a.app_limited);
        assert_eq!(d.take_sample(MS), None, "no ACK, no sample");
    }

    #[test]
    fn totals_kept_modulo_2_to_the_32_are_widened_back() {
        assert_eq!(widen(5, 5), 5);
        assert_eq!(widen(3, 10), 3);
        let big = (7u64 << 32) + 100;
        assert_eq!(widen(100, big), big);
        assert_eq!(widen(u32::MAX - 9, big), big - 110);
        // A sample across a wrap of the low 32 bits.
        let t0 = Instant::now();
        let mut d = DeliveryRate::new(t0);
        d.delivered = (1 << 32) - 500;
        d.lost = (1 << 32) - 100;
        let p = d.on_sent(t0, SIZE, SIZE, false);
        d.on_lost(1000);
        d.on_acked(t0 + 50 * MS, t0, SIZE, &p);
        let s = d.take_sample(MS).unwrap();
        assert_eq!(s.prior_delivered, (1 << 32) - 500);
        assert_eq!(s.delivered, SIZE);
        assert_eq!(s.lost_since_sent, 1000);
    }

    #[test]
    fn a_packet_remembers_its_delivery_state_in_24_bytes() {
        assert!(std::mem::size_of::<PacketDelivery>() <= 24);
    }
}
