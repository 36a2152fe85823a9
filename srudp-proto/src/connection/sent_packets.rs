//! Packets sent and not yet acknowledged or declared lost (RFC 9002 §A.1).
//!
//! Packet numbers are consecutive, so the record is a ring indexed by
//! `pn - first`: no allocation per packet once the ring has grown.

use std::collections::VecDeque;
use std::time::Instant;

use super::send_stream::StreamChunk;

/// What we remember about one sent packet.
#[derive(Debug, Clone)]
pub(crate) struct SentPacket {
    pub(crate) time_sent: Instant,
    /// Bytes on the wire.
    pub(crate) size: u16,
    pub(crate) ack_eliciting: bool,
    /// Counted in bytes in flight (ack-eliciting or padding).
    pub(crate) in_flight: bool,
    /// The sender was not using the whole congestion window.
    pub(crate) app_limited: bool,
    pub(crate) stream: Option<StreamChunk>,
    /// The packet carried a MAX_DATA frame (resend the current limit if lost).
    pub(crate) max_data: bool,
}

#[derive(Debug, Default)]
pub(crate) struct SentPackets {
    ring: VecDeque<Option<SentPacket>>,
    /// Packet number of `ring[0]`.
    first: u64,
    bytes_in_flight: u64,
    ack_eliciting_in_flight: u64,
}

impl SentPackets {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records packet `pn`, which must be the next number after the last one recorded.
    pub(crate) fn push(&mut self, pn: u64, packet: SentPacket) {
        if self.ring.is_empty() {
            self.first = pn;
        }
        debug_assert_eq!(pn, self.first + self.ring.len() as u64);
        if packet.in_flight {
            self.bytes_in_flight += u64::from(packet.size);
        }
        if packet.ack_eliciting {
            self.ack_eliciting_in_flight += 1;
        }
        self.ring.push_back(Some(packet));
    }

    /// Removes and returns packet `pn` if it is outstanding.
    pub(crate) fn take(&mut self, pn: u64) -> Option<SentPacket> {
        let idx = pn.checked_sub(self.first)?;
        let slot = self.ring.get_mut(usize::try_from(idx).ok()?)?;
        let packet = slot.take()?;
        if packet.in_flight {
            self.bytes_in_flight -= u64::from(packet.size);
        }
        if packet.ack_eliciting {
            self.ack_eliciting_in_flight -= 1;
        }
        while let Some(None) = self.ring.front() {
            self.ring.pop_front();
            self.first += 1;
        }
        if self.ring.is_empty() && self.ring.capacity() > 4096 {
            self.ring.shrink_to(64);
        }
        Some(packet)
    }

    /// The lowest outstanding packet number (the next one to send when none is outstanding).
    pub(crate) fn first_pn(&self) -> u64 {
        self.first
    }

    pub(crate) fn get(&self, pn: u64) -> Option<&SentPacket> {
        let idx = pn.checked_sub(self.first)?;
        self.ring.get(usize::try_from(idx).ok()?)?.as_ref()
    }

    /// Outstanding packet numbers within `lo..=hi`, in order.
    #[cfg(test)]
    fn outstanding_in(&self, lo: u64, hi: u64) -> impl Iterator<Item = u64> + '_ {
        let lo = lo.max(self.first);
        let end = self.first + self.ring.len() as u64;
        let hi_excl = hi.saturating_add(1).min(end);
        (lo..hi_excl.max(lo)).filter(move |&pn| self.get(pn).is_some())
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
        self.ack_eliciting_in_flight > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(t: Instant, size: u16) -> SentPacket {
        SentPacket {
            time_sent: t,
            size,
            ack_eliciting: true,
            in_flight: true,
            app_limited: false,
            stream: None,
            max_data: false,
        }
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
        assert_eq!(
            s.outstanding_in(0, u64::MAX).collect::<Vec<_>>(),
            vec![10, 11, 13, 14]
        );
        s.take(10);
        s.take(11);
        assert_eq!(s.iter().map(|(pn, _)| pn).collect::<Vec<_>>(), vec![13, 14]);
        assert_eq!(s.bytes_in_flight(), 200);
    }
}
