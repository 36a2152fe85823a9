//! Loss detection and recovery as in RFC 9002 §6 (spec §6.5): acknowledgment
//! processing, packet- and time-threshold loss, probe timeouts.

use std::time::{Duration, Instant};

use super::Connection;
use crate::event::Event;
use crate::wire::AckFrame;

/// RFC 9002 kPersistentCongestionThreshold.
const PERSISTENT_CONGESTION_THRESHOLD: u32 = 3;
/// Largest exponent of the PTO backoff.
const MAX_PTO_BACKOFF: u32 = 16;

impl Connection {
    /// Processes an ACK frame. Errors are protocol violations.
    pub(super) fn on_ack_frame(
        &mut self,
        now: Instant,
        ack: &AckFrame<'_>,
    ) -> Result<(), &'static str> {
        if ack.largest >= self.next_pn {
            return Err("ack for a packet never sent");
        }
        // RTT sample from the largest acknowledged, if it is newly acknowledged and ack-eliciting.
        if let Some(p) = self.sent.get(ack.largest) {
            if p.ack_eliciting {
                let delay = Duration::from_micros(ack.ack_delay_micros.min(u64::from(u32::MAX)))
                    .min(self.peer_max_ack_delay);
                self.rtt
                    .update(now.saturating_duration_since(p.time_sent), delay);
            }
        }
        let mut newly_acked = false;
        for range in ack.ranges() {
            let (lo, hi) = (*range.start(), *range.end());
            let mut pn = lo.max(self.sent.first_pn());
            let hi = hi.min(self.next_pn - 1);
            while pn <= hi {
                if let Some(p) = self.sent.take(pn) {
                    newly_acked = true;
                    if p.in_flight {
                        self.cc.on_ack(
                            now,
                            p.time_sent,
                            u64::from(p.size),
                            p.app_limited,
                            &self.rtt,
                        );
                    }
                    if let Some(chunk) = p.stream {
                        if self.send.on_acked(chunk) {
                            self.events.push_back(Event::Writable);
                        }
                    }
                }
                pn += 1;
            }
        }
        if !newly_acked {
            return Ok(());
        }
        self.largest_acked = Some(
            self.largest_acked
                .map_or(ack.largest, |l| l.max(ack.largest)),
        );
        self.detect_lost(now);
        self.pto_count = 0;
        self.set_loss_timer();
        Ok(())
    }

    /// Declares lost every outstanding packet below the largest acknowledged
    /// that is 3 packets or 9/8 RTT older than it; arms the time-threshold timer
    /// for the rest.
    pub(super) fn detect_lost(&mut self, now: Instant) {
        let Some(largest) = self.largest_acked else {
            return;
        };
        self.loss_time = None;
        let loss_delay = self
            .rtt
            .latest()
            .max(self.rtt.smoothed())
            .mul_f64(self.config.time_threshold)
            .max(self.config.granularity);
        let lost_before = now.checked_sub(loss_delay);
        let threshold = self.config.packet_threshold;

        let mut lost_bytes = 0u64;
        let mut newest_lost: Option<Instant> = None;
        let mut oldest_lost: Option<Instant> = None;
        let mut loss_time: Option<Instant> = None;
        loop {
            // Take the lost packets one at a time (in order), so no list is allocated.
            let mut found = None;
            for (pn, p) in self.sent.iter() {
                if pn > largest {
                    break;
                }
                let by_time = lost_before.is_some_and(|b| p.time_sent <= b);
                let by_count = largest >= pn.saturating_add(threshold);
                if by_time || by_count {
                    found = Some(pn);
                    break;
                }
                let at = p.time_sent + loss_delay;
                loss_time = Some(loss_time.map_or(at, |t| t.min(at)));
            }
            let Some(pn) = found else { break };
            let p = self.sent.take(pn).expect("found above");
            self.stats.packets_lost += 1;
            if let Some(chunk) = p.stream {
                self.send.on_lost(chunk);
            }
            if p.max_data {
                self.max_data_pending = true;
            }
            if p.in_flight {
                lost_bytes += u64::from(p.size);
                newest_lost = Some(newest_lost.map_or(p.time_sent, |t| t.max(p.time_sent)));
                oldest_lost = Some(oldest_lost.map_or(p.time_sent, |t| t.min(p.time_sent)));
            }
        }
        self.loss_time = loss_time;
        if let (Some(newest), Some(oldest)) = (newest_lost, oldest_lost) {
            let persistent_duration = self
                .rtt
                .pto_base(self.config.granularity, self.peer_max_ack_delay)
                * PERSISTENT_CONGESTION_THRESHOLD;
            let persistent = self.rtt.has_sample()
                && newest.saturating_duration_since(oldest) > persistent_duration;
            self.cc
                .on_congestion_event(now, newest, persistent, lost_bytes);
        }
    }

    /// Arms the loss-detection timer: the time-threshold deadline if one is
    /// pending, else the probe timeout if anything ack-eliciting is in flight.
    /// The probe timeout after backoff, capped at `max_probe_timeout`.
    fn backed_off_pto(&self) -> Duration {
        let backoff = 1u32 << self.pto_count.min(MAX_PTO_BACKOFF);
        let pto = self.pto();
        (pto * backoff).min(self.config.max_probe_timeout.max(pto))
    }

    pub(super) fn set_loss_timer(&mut self) {
        use super::Timer;
        if let Some(t) = self.loss_time {
            self.timers.set(Timer::LossDetection, t);
            return;
        }
        let Some(base) = self.time_of_last_ack_eliciting else {
            self.timers.stop(Timer::LossDetection);
            return;
        };
        if !self.sent.has_ack_eliciting_in_flight() {
            self.timers.stop(Timer::LossDetection);
            return;
        }
        let timeout = self.backed_off_pto();
        self.timers.set(Timer::LossDetection, base + timeout);
    }

    pub(super) fn on_loss_timeout(&mut self, now: Instant) {
        if self.loss_time.is_some() {
            self.detect_lost(now);
            self.set_loss_timer();
            return;
        }
        if !self.sent.has_ack_eliciting_in_flight() {
            return;
        }
        // Probe timeout: send two ack-eliciting probes, carrying data if we can.
        self.pto_count = self.pto_count.saturating_add(1);
        self.stats.pto_count += 1;
        self.probes_pending = 2;
        if !self.send.has_data(self.peer_max_data) {
            let oldest = self.sent.iter().find_map(|(_, p)| p.stream);
            if let Some(chunk) = oldest {
                self.send.on_lost(chunk);
            }
        }
        // Count the next timeout from now: if the probes cannot leave (say
        // the path is not validated), the timer must still move forward.
        let timeout = self.backed_off_pto();
        self.timers.set(super::Timer::LossDetection, now + timeout);
    }
}
