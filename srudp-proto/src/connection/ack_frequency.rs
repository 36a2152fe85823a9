//! How often we ask the peer to acknowledge (spec §6.2, ACK_FREQUENCY).
//!
//! One ACK per two packets costs a bulk receiver a packet to build, seal and
//! send for every two it receives, and the sender one to open and process.
//! With a window of many packets, far fewer ACKs clock the sender just as
//! well: we ask for one per eighth of the congestion window (at least 2, at
//! most the configured cap) or a quarter of the smoothed RTT, whichever comes
//! first. Small windows (the start of slow start, after a loss) keep the
//! default of one ACK per two packets, and the receiver still acknowledges a
//! reordering at once, so loss recovery is as quick as before.

use std::time::Duration;

use crate::wire::{AckFrequencyFrame, MAX_DATAGRAM_SIZE};

/// ACKs asked for per congestion window.
const ACKS_PER_WINDOW: u64 = 8;
/// The shortest delay we ask for: below it timers only add wake-ups.
const MIN_DELAY: Duration = Duration::from_millis(1);

/// Our ACK_FREQUENCY requests to the peer.
#[derive(Debug, Default)]
pub(super) struct AckFrequency {
    /// Sequence number of the next frame.
    next_sequence: u64,
    /// The threshold and delay the peer was last asked for (or will be, when
    /// `pending`).
    requested: Option<(u64, Duration)>,
    /// A frame with `requested` must be sent (a new request, or the last one
    /// was lost).
    pending: bool,
}

impl AckFrequency {
    /// Recomputes the request from the congestion window and smoothed RTT;
    /// queues a frame when it changed noticeably. `max_threshold` 0 turns
    /// requests off; `peer_max_ack_delay` caps the delay (the peer would cap
    /// it anyway, and our probe timeout counts with it).
    pub(super) fn update(
        &mut self,
        window: u64,
        srtt: Duration,
        peer_max_ack_delay: Duration,
        max_threshold: u32,
    ) {
        if max_threshold == 0 {
            return;
        }
        let max_threshold = u64::from(max_threshold);
        let threshold = (window / (ACKS_PER_WINDOW * MAX_DATAGRAM_SIZE as u64))
            .clamp(2.min(max_threshold), max_threshold);
        let delay = (srtt / 4).clamp(MIN_DELAY.min(peer_max_ack_delay), peer_max_ack_delay);
        let changed = match self.requested {
            None => threshold != 2 || delay < peer_max_ack_delay,
            // Hysteresis on the delay: the RTT estimate moves all the time.
            Some((t, d)) => t != threshold || delay < d * 3 / 4 || delay > d * 5 / 4,
        };
        if changed {
            self.requested = Some((threshold, delay));
            self.pending = true;
        }
    }

    /// The frame to send, if one is due (sending it is up to the caller).
    pub(super) fn poll_frame(&mut self) -> Option<AckFrequencyFrame> {
        if !self.pending {
            return None;
        }
        let (threshold, delay) = self.requested?;
        self.pending = false;
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        Some(AckFrequencyFrame {
            sequence,
            threshold,
            max_delay_micros: u64::try_from(delay.as_micros()).unwrap_or(u64::MAX),
        })
    }

    /// A packet carrying our latest request was lost: send it again (with a
    /// new sequence number, so it cannot be mistaken for an old one).
    pub(super) fn on_lost(&mut self) {
        if self.requested.is_some() {
            self.pending = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u64 = MAX_DATAGRAM_SIZE as u64;
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn small_windows_keep_the_default_and_large_ones_ask_for_fewer_acks() {
        let mut f = AckFrequency::default();
        f.update(10 * MSS, 100 * MS, 25 * MS, 10);
        assert_eq!(f.poll_frame(), None, "initial window: the default suits");
        f.update(40 * MSS, 100 * MS, 25 * MS, 10);
        let frame = f.poll_frame().expect("a request");
        assert_eq!((frame.sequence, frame.threshold), (0, 5));
        assert_eq!(frame.max_delay_micros, 25_000, "capped at the peer's max");
        assert_eq!(f.poll_frame(), None, "sent once");
        f.update(1000 * MSS, 8 * MS, 25 * MS, 10);
        let frame = f.poll_frame().expect("a new request");
        assert_eq!((frame.sequence, frame.threshold), (1, 10), "capped at 10");
        assert_eq!(frame.max_delay_micros, 2_000, "a quarter RTT");
        // Small RTT changes do not send anything; a window drop does.
        f.update(1000 * MSS, 9 * MS, 25 * MS, 10);
        assert_eq!(f.poll_frame(), None);
        f.update(20 * MSS, 8 * MS, 25 * MS, 10);
        assert_eq!(f.poll_frame().map(|f| f.threshold), Some(2));
    }

    #[test]
    fn a_lost_request_is_sent_again_with_a_new_sequence() {
        let mut f = AckFrequency::default();
        f.on_lost();
        assert_eq!(f.poll_frame(), None, "nothing was requested");
        f.update(400 * MSS, 40 * MS, 25 * MS, 10);
        let first = f.poll_frame().unwrap();
        f.on_lost();
        let again = f.poll_frame().unwrap();
        assert_eq!(again.sequence, first.sequence + 1);
        assert_eq!(
            (again.threshold, again.max_delay_micros),
            (first.threshold, first.max_delay_micros)
        );
    }

    #[test]
    fn a_cap_of_zero_turns_requests_off() {
        let mut f = AckFrequency::default();
        f.update(1000 * MSS, 40 * MS, 25 * MS, 0);
        assert_eq!(f.poll_frame(), None);
    }
}
