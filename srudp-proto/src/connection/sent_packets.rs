//! Ack-eliciting packets sent and not yet acknowledged or declared lost
//! (RFC 9002 §A.1).
//!
//! Packet numbers are consecutive, so the record is a ring indexed by
//! `pn - first`: no allocation per packet once the ring has grown. Packets
//! that elicit no acknowledgment (ACK-only, CLOSE) are not recorded: they are
//! not in flight, the peer does not acknowledge them, and keeping them would
//! grow the ring without bound on a connection that only receives. They
//! leave empty slots.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::send_stream::StreamChunks;

/// What we remember about one ack-eliciting packet (all of them count in flight).
#[derive(Debug, Clone)]
pub(crate) struct SentPacket {
    pub(crate) time_sent: Instant,
    /// Bytes on the wire.
    pub(crate) size: u16,
    /// The sender was not using the whole congestion window.
    pub(crate) app_limited: bool,
    pub(crate) stream: StreamChunks,
    /// The packet carried a MAX_DATA frame (resend the current limit if lost).
    pub(crate) max_data: bool,
    /// The packet carried an ACK_FREQUENCY frame (resend the request if lost).
    pub(crate) ack_frequency: bool,
}

#[derive(Debug, Default)]
pub(crate) struct SentPackets {
    ring: VecDeque<Option<SentPacket>>,
    /// Packet number of `ring[0]`.
    first: u64,
    bytes_in_flight: u64,
    count: u64,
}

impl SentPackets {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records packet `pn`, which must be above every number recorded before.
    pub(crate) fn push(&mut self, pn: u64, packet: SentPacket) {
        if self.ring.is_empty() {
            self.first = pn;
        }
        debug_assert!(pn >= self.first + self.ring.len() as u64);
        while self.first + (self.ring.len() as u64) < pn {
            self.ring.push_back(None);
        }
        self.bytes_in_flight += u64::from(packet.size);
        self.count += 1;
        self.ring.push_back(Some(packet));
    }

    /// Removes and returns packet `pn` if it is outstanding.
    #[cfg(test)]
    pub(crate) fn take(&mut self, pn: u64) -> Option<SentPacket> {
        let idx = pn.checked_sub(self.first)?;
        let slot = self.ring.get_mut(usize::try_from(idx).ok()?)?;
        let packet = slot.take()?;
        self.bytes_in_flight -= u64::from(packet.size);
        self.count -= 1;
        self.compact();
        Some(packet)
    }

    fn compact(&mut self) {
        while let Some(None) = self.ring.front() {
            self.ring.pop_front();
            self.first += 1;
        }
        if self.ring.is_empty() && self.ring.capacity() > 4096 {
            self.ring.shrink_to(64);
        }
    }

    /// Removes every outstanding packet numbered within `lo..=hi` and hands it
    /// to `out`, in order. Visits only the part of the range that is recorded.
    pub(crate) fn take_range(&mut self, lo: u64, hi: u64, out: &mut Vec<(u64, SentPacket)>) {
        let end = self.first + self.ring.len() as u64;
        let lo = lo.max(self.first);
        if lo >= end || hi < lo {
            return;
        }
        let hi = hi.min(end - 1);
        for pn in lo..=hi {
            let idx = (pn - self.first) as usize;
            if let Some(packet) = self.ring[idx].take() {
                self.bytes_in_flight -= u64::from(packet.size);
                self.count -= 1;
                out.push((pn, packet));
            }
        }
        self.compact();
    }

    /// Removes the packets declared lost: in packet-number order up to
    /// `largest_acked`, every packet `packet_threshold` or more below it or
    /// sent at or before `lost_before`. Both rules pick a prefix (packets are
    /// numbered in sending order), so the scan stops at the first survivor,
    /// whose send time plus `loss_delay` is returned: when it will be lost by
    /// time unless acknowledged first.
    pub(crate) fn take_lost(
        &mut self,
        largest_acked: u64,
        packet_threshold: u64,
        lost_before: Option<Instant>,
        loss_delay: Duration,
        out: &mut Vec<(u64, SentPacket)>,
    ) -> Option<Instant> {
        let mut loss_time = None;
        for (i, slot) in self.ring.iter_mut().enumerate() {
            let pn = self.first + i as u64;
            if pn > largest_acked {
                break;
            }
            let Some(packet) = slot else { continue };
            let by_time = lost_before.is_some_and(|b| packet.time_sent <= b);
            let by_count = largest_acked >= pn.saturating_add(packet_threshold);
            if !(by_time || by_count) {
                loss_time = Some(packet.time_sent + loss_delay);
                break;
            }
            let packet = slot.take().expect("matched Some above");
            self.bytes_in_flight -= u64::from(packet.size);
            self.count -= 1;
            out.push((pn, packet));
        }
        self.compact();
        loss_time
    }

    /// The lowest outstanding packet number (the next one to send when none is outstanding).
    #[cfg(test)]
    pub(crate) fn first_pn(&self) -> u64 {
        self.first
    }

    pub(crate) fn get(&self, pn: u64) -> Option<&SentPacket> {
        let idx = pn.checked_sub(self.first)?;
        self.ring.get(usize::try_from(idx).ok()?)?.as_ref()
    }

    /// All outstanding packets in packet-number order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &SentPacket)> + '_ {
        self.ring
            .iter()
            .enumerate()
            .filter_map(move |(i, p)| p.as_ref().map(|p| (self.first + i as u64, p)))
    }

    pub(crate) fn bytes_in_flight(&self) -> u64 {
        self.bytes_in_flight
    }

    pub(crate) fn has_ack_eliciting_in_flight(&self) -> bool {
        self.count > 0
    }
}

/// Idle memory (see `idle.rs`).
impl SentPackets {
    /// No packet outstanding.
    pub(crate) fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    pub(crate) fn holds_buffer(&self) -> bool {
        self.ring.capacity() > 0
    }

    /// Frees the ring if it is empty.
    pub(crate) fn release_buffer(&mut self) {
        if self.ring.is_empty() {
            self.ring = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn packet(t: Instant, size: u16) -> SentPacket {
        SentPacket {
            time_sent: t,
            size,
            app_limited: false,
            stream: StreamChunks::default(),
            max_data: false,
            ack_frequency: false,
        }
    }

    fn pns(v: &[(u64, SentPacket)]) -> Vec<u64> {
        v.iter().map(|(pn, _)| *pn).collect()
    }

    #[test]
    fn taking_packets_tracks_bytes_in_flight_and_compacts() {
        let t = Instant::now();
        let mut s = SentPackets::new();
        for pn in 10..15 {
            s.push(pn, packet(t, 100));
        }
        assert_eq!(s.bytes_in_flight(), 500);
        assert!(s.take(12).is_some());
        assert!(s.take(12).is_none(), "a packet is acknowledged once");
        assert!(s.take(9).is_none());
        assert!(s.take(u64::MAX).is_none());
        s.take(10);
        s.take(11);
        assert_eq!(s.first_pn(), 13);
        assert_eq!(s.iter().map(|(pn, _)| pn).collect::<Vec<_>>(), vec![13, 14]);
        assert_eq!(s.bytes_in_flight(), 200);
    }

    #[test]
    fn unrecorded_numbers_leave_gaps_that_are_skipped() {
        let t = Instant::now();
        let mut s = SentPackets::new();
        s.push(3, packet(t, 100));
        s.push(6, packet(t, 100)); // 4 and 5 were ACK-only
        let mut out = Vec::new();
        s.take_range(0, u64::MAX, &mut out);
        assert_eq!(pns(&out), vec![3, 6]);
        assert!(!s.has_ack_eliciting_in_flight());
        assert_eq!(s.bytes_in_flight(), 0);
        s.take_range(u64::MAX - 1, u64::MAX, &mut out);
        s.take_range(5, 2, &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn loss_takes_the_prefix_below_the_threshold_or_older_than_the_delay() {
        let t0 = Instant::now();
        let mut s = SentPackets::new();
        for pn in 0..10u64 {
            s.push(pn, packet(t0 + MS * pn as u32, 100));
        }
        s.take(8); // acknowledged
        let mut out = Vec::new();
        // Packet threshold 3 below largest acked 8: 0..=5 lost; 6 survives and
        // is lost by time at its send time + the delay.
        let at = s.take_lost(8, 3, None, 50 * MS, &mut out);
        assert_eq!(pns(&out), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(at, Some(t0 + 56 * MS));
        // By time: everything sent at or before t0 + 6 ms.
        out.clear();
        let at = s.take_lost(8, 3, Some(t0 + 6 * MS), 50 * MS, &mut out);
        assert_eq!(pns(&out), vec![6]);
        assert_eq!(at, Some(t0 + 57 * MS));
        assert_eq!(s.iter().map(|(pn, _)| pn).collect::<Vec<_>>(), vec![7, 9]);
    }
}
