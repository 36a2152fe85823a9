//! Loss detection and recovery as in RFC 9002 §6 (spec §6.5): acknowledgment
//! processing and its sanity checks, packet- and time-threshold loss,
//! persistent congestion, spurious-loss detection with undo, probe timeouts.

use std::time::{Duration, Instant};

use tracing::debug;

use super::mtu_discovery::Change;
use super::{Connection, Timer};
use crate::event::Event;
use crate::wire::AckFrame;

/// RFC 9002 kPersistentCongestionThreshold.
const PERSISTENT_CONGESTION_THRESHOLD: u32 = 3;
/// Largest exponent of the PTO backoff.
const MAX_PTO_BACKOFF: u32 = 16;
/// Slack for clock readings when checking a peer's ack delay: it may not
/// exceed the acknowledged packet's age by more than this.
const ACK_DELAY_SLACK: Duration = Duration::from_millis(10);
/// Packets declared lost are remembered this many PTOs, to notice a late
/// acknowledgment (spurious loss).
const LOST_RETENTION_PTOS: u32 = 2;

impl Connection {
    /// Processes an ACK frame. Errors are protocol violations (spec §6.2).
    pub(super) fn on_ack_frame(
        &mut self,
        now: Instant,
        ack: &AckFrame<'_>,
    ) -> Result<(), &'static str> {
        if ack.largest >= self.next_pn {
            return Err("ack for a packet never sent");
        }
        let ack_delay = Duration::from_micros(ack.ack_delay_micros);
        let largest_sent = self.sent.get(ack.largest).map(|p| p.time_sent);
        // The peer cannot have held the acknowledgment longer than the packet
        // (or, if we no longer know it, the connection) has existed.
        let age = now.saturating_duration_since(largest_sent.unwrap_or(self.created));
        if ack_delay > age + ACK_DELAY_SLACK {
            return Err("ack delay longer than the acknowledged packet has existed");
        }
        if let Some(sent) = largest_sent {
            // RFC 9002 §5.3: the largest acknowledged is newly acknowledged and
            // ack-eliciting (only those are recorded); the peer's delay counts
            // up to its max_ack_delay.
            self.rtt.update(
                now.saturating_duration_since(sent),
                ack_delay.min(self.peer_max_ack_delay),
            );
            if self.first_pn_after_rtt_sample.is_none() {
                self.first_pn_after_rtt_sample = Some(self.next_pn);
            }
        }
        self.lost.expire(now, self.pto() * LOST_RETENTION_PTOS);

        let mut acked = std::mem::take(&mut self.acked_scratch);
        let mut spurious = std::mem::take(&mut self.spurious_scratch);
        self.stats.ack_ranges_received += ack.range_count() as u64;
        for range in ack.ranges() {
            self.sent
                .take_range(*range.start(), *range.end(), &mut acked);
            self.lost
                .take_acked(*range.start(), *range.end(), &mut spurious);
        }
        // Ranges come highest first; acknowledge oldest first, as the
        // controller expects packets in sending order.
        acked.sort_unstable_by_key(|(pn, _)| *pn);
        let newly_acked = !acked.is_empty();
        self.stats.packets_acked += acked.len() as u64;
        for (pn, p) in acked.drain(..) {
            if self.mtu.is_probe(pn) {
                if let Change::Raised(size) = self.mtu.on_probe_acked(now, pn) {
                    debug!(cid = %self.local_cid, size, "path MTU probe acknowledged");
                }
            }
            self.mtu.on_acked(pn, usize::from(p.size));
            self.loss_run.on_acked(pn);
            self.delivery
                .on_acked(now, p.time_sent, u64::from(p.size), &p.delivery);
            self.cc.on_ack(
                now,
                p.time_sent,
                u64::from(p.size),
                p.app_limited,
                &self.rtt,
            );
            self.on_stream_acked(&p.stream);
        }
        for s in spurious.drain(..) {
            // A packet declared lost arrived after all: its retransmission was
            // wasted, and it breaks any run of losses it belonged to.
            self.stats.packets_spuriously_lost += 1;
            self.loss_run.reset();
            self.on_stream_acked(&s.packet.stream);
            if s.undo {
                self.stats.congestion_events_undone += 1;
                self.cc.on_spurious_congestion_event();
            }
        }
        self.acked_scratch = acked;
        self.spurious_scratch = spurious;
        if !newly_acked {
            return Ok(());
        }
        self.largest_acked = Some(
            self.largest_acked
                .map_or(ack.largest, |l| l.max(ack.largest)),
        );
        self.detect_lost(now);
        if let Some(sample) = self.delivery.take_sample(self.rtt.min()) {
            self.cc
                .on_rate_sample(now, &sample, self.sent.bytes_in_flight(), &mut self.rng);
        }
        self.pto_count = 0;
        self.set_loss_timer();
        if self.peer_accepts_ack_frequency {
            self.ack_frequency.update(
                self.cc.window(),
                self.rtt.smoothed(),
                self.peer_max_ack_delay,
                self.config.ack_frequency_threshold,
            );
        }
        Ok(())
    }

    fn on_stream_acked(&mut self, chunks: &super::send_stream::StreamChunks) {
        for chunk in chunks.iter() {
            if self.send.on_acked(chunk) {
                self.events.push_back(Event::Writable);
            }
        }
    }

    /// Declares lost every outstanding packet below the largest acknowledged
    /// that is `packet_threshold` packets or `time_threshold` RTTs older than
    /// it; arms the time-threshold timer for the rest.
    pub(super) fn detect_lost(&mut self, now: Instant) {
        let Some(largest) = self.largest_acked else {
            return;
        };
        let loss_delay = self
            .rtt
            .latest()
            .max(self.rtt.smoothed())
            .mul_f64(self.config.time_threshold)
            .max(self.config.granularity);
        let mut lost = std::mem::take(&mut self.acked_scratch);
        self.loss_time = self.sent.take_lost(
            largest,
            self.config.packet_threshold,
            now.checked_sub(loss_delay),
            loss_delay,
            &mut lost,
        );
        // A lost path MTU probe says the path may not carry its size, not
        // that it is congested (spec §6.9): it leaves the window alone.
        if lost.iter().any(|(pn, _)| self.mtu.is_probe(*pn)) {
            let mtu = &mut self.mtu;
            let stats = &mut self.stats;
            lost.retain(|(pn, _)| {
                if mtu.is_probe(*pn) {
                    mtu.on_probe_lost(now, *pn);
                    stats.mtu_probes_lost += 1;
                    false
                } else {
                    true
                }
            });
        }
        if let Some((_, newest)) = lost.last() {
            let newest_sent = newest.time_sent;
            let period = self.pto() * PERSISTENT_CONGESTION_THRESHOLD;
            let mut persistent = false;
            let mut lost_bytes = 0;
            for (pn, p) in &lost {
                let eligible = self.first_pn_after_rtt_sample.is_some_and(|f| *pn >= f);
                persistent |= self.loss_run.on_lost(*pn, p.time_sent, eligible, period);
                lost_bytes += u64::from(p.size);
            }
            self.delivery.on_lost(lost_bytes);
            if persistent {
                self.loss_run.reset();
                self.stats.persistent_congestion_events += 1;
            }
            if self.lost.begin_pass(now, newest_sent, persistent) {
                self.stats.congestion_events += 1;
            }
            for (pn, p) in lost.drain(..) {
                self.stats.packets_lost += 1;
                self.mtu.on_lost(pn, usize::from(p.size));
                for chunk in p.stream.iter() {
                    self.send.on_lost(chunk);
                }
                if p.max_data {
                    self.max_data_pending = true;
                }
                if p.ack_frequency {
                    self.ack_frequency.on_lost();
                }
                self.lost.record(now, pn, p);
            }
            self.cc
                .on_congestion_event(now, newest_sent, persistent, lost_bytes);
        }
        self.acked_scratch = lost;
        if let Change::Lowered(size) = self.mtu.check_black_hole(now) {
            // Large packets vanish while a smaller later one arrives
            // (spec §6.9): everything goes at the base size again.
            self.stats.mtu_black_holes += 1;
            debug!(cid = %self.local_cid, size, "path MTU black hole: back to the base size");
        }
    }

    /// The probe timeout after backoff, capped at `max_probe_timeout`.
    fn backed_off_pto(&self) -> Duration {
        let backoff = 1u32 << self.pto_count.min(MAX_PTO_BACKOFF);
        let pto = self.pto();
        (pto * backoff).min(self.config.max_probe_timeout.max(pto))
    }

    /// Arms the loss-detection timer: the time-threshold deadline if one is
    /// pending, else the probe timeout if anything ack-eliciting is in flight.
    pub(super) fn set_loss_timer(&mut self) {
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

    /// Spec §6.5: the peer was heard at least one probe timeout after
    /// `sent`, so it had the time to acknowledge what we sent then. A path
    /// that fell silent is the idle timeout's to report, not this rule's.
    fn heard_since(&self, sent: Instant) -> bool {
        let Some(idle_deadline) = self.timers.deadline(Timer::Idle) else {
            return true;
        };
        let last_heard = idle_deadline
            .checked_sub(self.idle_timeout)
            .unwrap_or(idle_deadline);
        last_heard >= sent + self.pto()
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
        if self.sent.oldest_time_sent().is_some_and(|t| {
            now.saturating_duration_since(t) >= self.idle_timeout && self.heard_since(t)
        }) {
            // Spec §6.5: the peer stopped acknowledging.
            self.peer_stopped_acknowledging(now);
            return;
        }
        // Probe timeout (RFC 9002 §6.2): declares nothing lost and leaves the
        // window alone; sends two ack-eliciting probes that bypass the window
        // and the pacer: the first carries the oldest unacknowledged data,
        // then new data, else a PING; the second is a bare PING (transmit.rs).
        // The oldest data goes first: if it was lost, a receiver at its
        // reassembly limit (spec §6.3) drops everything beyond the gap
        // unacknowledged, so probes of new data alone would never produce the
        // acknowledgment that reveals the loss; the PING's acknowledgment lets
        // loss detection declare the refused packets lost.
        self.pto_count = self.pto_count.saturating_add(1);
        self.stats.pto_count += 1;

        self.probes_pending = 2;
        let oldest = self
            .sent
            .iter()
            .map(|(_, p)| p.stream)
            .find(|s| !s.is_empty());
        if let Some(chunks) = oldest {
            for chunk in chunks.iter() {
                self.send.on_lost(chunk);
            }
        }
        // And the first unacknowledged bytes, wherever they travelled: the
        // oldest packet in flight may carry later data than a retransmission
        // of them sent after it.
        self.send
            .requeue_first_unacked(crate::wire::MAX_STREAM_PAYLOAD as u64);
        // Count the next timeout from now: if the probes cannot leave (say
        // the path is not validated), the timer must still move forward.
        let timeout = self.backed_off_pto();
        self.timers.set(Timer::LossDetection, now + timeout);
    }
}
