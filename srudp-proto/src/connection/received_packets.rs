//! Packet numbers we received, and when to acknowledge them (spec §6.2).

use std::time::{Duration, Instant};

use crate::range_set::RangeSet;
use crate::wire::MAX_ACK_RANGES;

#[derive(Debug)]
pub(crate) struct ReceivedPackets {
    /// Received packet numbers; only the highest ranges are kept.
    ranges: RangeSet,
    largest: Option<(u64, Instant)>,
    /// Ack-eliciting packets received since the last ACK we sent.
    unacked_eliciting: u32,
    /// Any packet (even non-eliciting) received since the last ACK.
    unacked_any: bool,
    /// Send an ACK no later than this.
    deadline: Option<Instant>,
    immediate: bool,
}

impl ReceivedPackets {
    pub(crate) fn new() -> Self {
        ReceivedPackets {
            ranges: RangeSet::new(),
            largest: None,
            unacked_eliciting: 0,
            unacked_any: false,
            deadline: None,
            immediate: false,
        }
    }

    /// Records an authenticated packet.
    pub(crate) fn on_packet(
        &mut self,
        pn: u64,
        ack_eliciting: bool,
        now: Instant,
        threshold: u32,
        max_delay: Duration,
    ) {
        let out_of_order = self.largest.is_some_and(|(l, _)| pn < l)
            || self.largest.is_some_and(|(l, _)| pn > l + 1);
        self.ranges.insert_one(pn);
        if self.ranges.len() > MAX_ACK_RANGES {
            self.ranges.retain_highest(MAX_ACK_RANGES);
        }
        if self.largest.is_none_or(|(l, _)| pn > l) {
            self.largest = Some((pn, now));
        }
        self.unacked_any = true;
        if !ack_eliciting {
            return;
        }
        self.unacked_eliciting += 1;
        if self.unacked_eliciting >= threshold || out_of_order {
            self.immediate = true;
        } else if self.deadline.is_none() {
            self.deadline = Some(now + max_delay);
        }
    }

    /// Whether an ACK must go out now.
    pub(crate) fn ack_due(&self, now: Instant) -> bool {
        self.immediate || self.deadline.is_some_and(|d| d <= now)
    }

    /// Whether an ACK would tell the peer something new.
    pub(crate) fn ack_pending(&self) -> bool {
        self.unacked_any && !self.ranges.is_empty()
    }

    /// Whether to add an ACK to a packet we send anyway: when an ack-eliciting
    /// packet awaits acknowledgment. Packets that elicit none (the peer's
    /// ACK-only packets) are acknowledged only along with those: acking them
    /// on every data packet would waste bytes (RFC 9000 §13.2.1).
    pub(crate) fn should_piggyback(&self) -> bool {
        self.unacked_eliciting > 0 && !self.ranges.is_empty()
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        if self.immediate {
            None
        } else {
            self.deadline
        }
    }

    /// An ACK frame was written; returns the ack delay to report.
    pub(crate) fn on_ack_sent(&mut self, now: Instant) -> Duration {
        self.unacked_eliciting = 0;
        self.unacked_any = false;
        self.deadline = None;
        self.immediate = false;
        self.largest
            .map_or(Duration::ZERO, |(_, t)| now.saturating_duration_since(t))
    }

    pub(crate) fn ranges(&self) -> &RangeSet {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_ack_eliciting_packet_triggers_an_immediate_ack() {
        let t = Instant::now();
        let d = Duration::from_millis(25);
        let mut r = ReceivedPackets::new();
        r.on_packet(0, true, t, 2, d);
        assert!(!r.ack_due(t));
        assert_eq!(r.deadline(), Some(t + d));
        assert!(r.ack_due(t + d));
        r.on_packet(1, true, t, 2, d);
        assert!(r.ack_due(t));
        r.on_ack_sent(t);
        assert!(!r.ack_pending());
    }

    #[test]
    fn a_gap_triggers_an_immediate_ack() {
        let t = Instant::now();
        let mut r = ReceivedPackets::new();
        r.on_packet(0, true, t, 10, Duration::from_millis(25));
        r.on_ack_sent(t);
        r.on_packet(2, true, t, 10, Duration::from_millis(25));
        assert!(r.ack_due(t));
    }

    #[test]
    fn non_eliciting_packets_are_acked_only_by_piggyback() {
        let t = Instant::now();
        let mut r = ReceivedPackets::new();
        r.on_packet(0, false, t, 2, Duration::from_millis(25));
        assert!(!r.ack_due(t + Duration::from_secs(1)));
        assert!(r.ack_pending());
    }
}
