//! Packet numbers we received, and when to acknowledge them (spec §6.2).

use std::time::{Duration, Instant};

use crate::range_set::RangeSet;
use crate::wire::MAX_ACK_RANGES;

/// After a packet arrives out of order, this many ack-eliciting packets
/// (that one included) are acknowledged at once, so a sender declaring loss
/// after 3 later packets (RFC 9002's threshold) learns of them without delay.
const IMMEDIATE_AFTER_REORDER: u8 = 3;

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
    /// Acknowledge at once after this many ack-eliciting packets: our own
    /// configuration until the peer asks otherwise (ACK_FREQUENCY, spec §6.2).
    threshold: u32,
    /// Delay an ACK at most this long (likewise).
    max_delay: Duration,
    /// Our own `max_ack_delay`, which no request can exceed.
    own_max_delay: Duration,
    /// Sequence number of the newest ACK_FREQUENCY applied.
    frequency_sequence: Option<u64>,
    /// Ack-eliciting packets still to acknowledge at once after a reordering.
    immediate_remaining: u8,
}

/// The largest ack-eliciting threshold a peer can ask for; larger requests
/// are capped (more would starve the peer's loss detection and clocking).
pub(crate) const MAX_ACK_FREQUENCY_THRESHOLD: u32 = 255;

impl ReceivedPackets {
    /// Acknowledges after `threshold` ack-eliciting packets or `max_delay`,
    /// until the peer asks for something else.
    pub(crate) fn new(threshold: u32, max_delay: Duration) -> Self {
        ReceivedPackets {
            ranges: RangeSet::new(),
            largest: None,
            unacked_eliciting: 0,
            unacked_any: false,
            deadline: None,
            immediate: false,
            threshold: threshold.max(1),
            max_delay,
            own_max_delay: max_delay,
            frequency_sequence: None,
            immediate_remaining: 0,
        }
    }

    /// The peer's ACK_FREQUENCY request (spec §6.2): from now on acknowledge
    /// after `threshold` ack-eliciting packets (capped to 1..=255) or after
    /// `max_delay` (capped at our own `max_ack_delay`). An older request
    /// (lower or equal sequence number) that arrives late is ignored.
    pub(crate) fn on_ack_frequency(&mut self, sequence: u64, threshold: u64, max_delay: Duration) {
        if self.frequency_sequence.is_some_and(|s| sequence <= s) {
            return;
        }
        self.frequency_sequence = Some(sequence);
        self.threshold = u32::try_from(threshold)
            .unwrap_or(u32::MAX)
            .clamp(1, MAX_ACK_FREQUENCY_THRESHOLD);
        self.max_delay = max_delay.min(self.own_max_delay);
        if self.unacked_eliciting >= self.threshold {
            self.immediate = true;
        }
    }

    /// The sequence number of the newest ACK_FREQUENCY applied.
    #[cfg(test)]
    pub(crate) fn frequency_sequence(&self) -> Option<u64> {
        self.frequency_sequence
    }

    /// The threshold in force (the peer's request, or our configuration).
    #[cfg(test)]
    pub(crate) fn threshold(&self) -> u32 {
        self.threshold
    }

    /// Records an authenticated packet.
    pub(crate) fn on_packet(&mut self, pn: u64, ack_eliciting: bool, now: Instant) {
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
        if out_of_order {
            self.immediate_remaining = IMMEDIATE_AFTER_REORDER;
        }
        if !ack_eliciting {
            return;
        }
        self.unacked_eliciting += 1;
        if self.immediate_remaining > 0 {
            self.immediate_remaining -= 1;
            self.immediate = true;
        } else if self.unacked_eliciting >= self.threshold {
            self.immediate = true;
        } else if self.deadline.is_none() {
            self.deadline = Some(now + self.max_delay);
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
        let mut r = ReceivedPackets::new(2, d);
        r.on_packet(0, true, t);
        assert!(!r.ack_due(t));
        assert_eq!(r.deadline(), Some(t + d));
        assert!(r.ack_due(t + d));
        r.on_packet(1, true, t);
        assert!(r.ack_due(t));
        r.on_ack_sent(t);
        assert!(!r.ack_pending());
    }

    #[test]
    fn a_gap_triggers_an_immediate_ack() {
        let t = Instant::now();
        let mut r = ReceivedPackets::new(10, Duration::from_millis(25));
        r.on_packet(0, true, t);
        r.on_ack_sent(t);
        r.on_packet(2, true, t);
        assert!(r.ack_due(t));
    }

    #[test]
    fn non_eliciting_packets_are_acked_only_by_piggyback() {
        let t = Instant::now();
        let mut r = ReceivedPackets::new(2, Duration::from_millis(25));
        r.on_packet(0, false, t);
        assert!(!r.ack_due(t + Duration::from_secs(1)));
        assert!(r.ack_pending());
    }

    #[test]
    fn ack_frequency_raises_the_threshold_and_shortens_the_delay() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut r = ReceivedPackets::new(2, ms(25));
        r.on_ack_frequency(1, 10, ms(5));
        assert_eq!(r.threshold(), 10);
        for pn in 0..9 {
            r.on_packet(pn, true, t);
            assert!(!r.ack_due(t), "packet {pn}: below the threshold");
        }
        assert_eq!(r.deadline(), Some(t + ms(5)), "the requested delay");
        r.on_packet(9, true, t);
        assert!(r.ack_due(t), "the tenth packet");
        r.on_ack_sent(t);
        // A reordered, older request changes nothing; a delay longer than
        // our own max_ack_delay is capped to it; 0 means 1.
        r.on_ack_frequency(0, 2, ms(1));
        assert_eq!(r.threshold(), 10);
        r.on_ack_frequency(2, 0, ms(100));
        assert_eq!(r.threshold(), 1);
        r.on_ack_frequency(3, 1_000_000, ms(100));
        assert_eq!(r.threshold(), MAX_ACK_FREQUENCY_THRESHOLD);
        r.on_packet(10, true, t);
        assert_eq!(r.deadline(), Some(t + ms(25)));
    }

    #[test]
    fn after_a_gap_the_next_packets_are_acknowledged_at_once() {
        let t = Instant::now();
        let mut r = ReceivedPackets::new(10, Duration::from_millis(25));
        r.on_packet(0, true, t);
        r.on_packet(1, true, t);
        assert!(!r.ack_due(t));
        // Packet 2 is lost: 3, 4 and 5 are each acknowledged at once, so the
        // sender's 3-packet loss threshold is reached without delay.
        for pn in 3..6 {
            r.on_packet(pn, true, t);
            assert!(r.ack_due(t), "packet {pn}");
            r.on_ack_sent(t);
        }
        r.on_packet(6, true, t);
        assert!(!r.ack_due(t), "back to the threshold");
    }
}
