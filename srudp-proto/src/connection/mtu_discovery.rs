//! Path MTU discovery (spec §6.9): how large a Data packet the direct path
//! carries, found by sending padded probes, as in DPLPMTUD (RFC 8899).
//!
//! Every path carries [`MAX_DATAGRAM_SIZE`] (1200) bytes. On a direct path,
//! when both sides announce a larger `max_udp_payload` (spec §4.3), the
//! sender probes: one probe at a time, a PING padded to the candidate size.
//! An acknowledged probe raises the size Data packets take; a size whose
//! probe is lost [`MAX_PROBES`] times is out of reach. The first candidate
//! is the largest allowed (most paths have an Ethernet MTU of 1500), then
//! the search halves the interval until it is narrower than
//! [`SEARCH_PRECISION`]. A probe's loss says nothing about congestion: it
//! never shrinks the window. The search runs again
//! [`TransportConfig::mtu_research_interval`](crate::TransportConfig) after
//! it ends, in case the path changed.
//!
//! A path that stops carrying the larger packets (a black hole: a route
//! change, a tunnel) shows as large packets lost while a smaller one sent
//! after them (a probe timeout's bare PING, spec §6.5) is acknowledged
//! and no large one sent after them is: [`BLACK_HOLE_LOSSES`] such losses
//! and the size falls back to the base; the search runs again after the
//! research interval. Congestion does not look like that: it drops large
//! and small packets alike, and the packets after a burst of losses,
//! large like them, get through.
//!
//! This file is the state machine only; the connection sends the probes
//! (`transmit.rs`) and reports their fate (`recovery.rs`).

use std::time::{Duration, Instant};

use crate::wire::MAX_DATAGRAM_SIZE;

/// Losses of one candidate size after which it counts as too large (RFC
/// 8899's MAX_PROBES).
pub(crate) const MAX_PROBES: u8 = 3;

/// The search stops when the largest size known to pass and the smallest
/// known to fail are closer than this, in bytes.
pub(crate) const SEARCH_PRECISION: usize = 16;

/// Large packets lost, with a smaller later one acknowledged and no larger
/// later one, that make a black hole.
pub(crate) const BLACK_HOLE_LOSSES: u32 = 4;

/// Path MTU discovery for one connection's current direct path.
#[derive(Debug, Clone)]
pub(crate) struct MtuDiscovery {
    /// The largest datagram both sides allow on this path (0: probing is
    /// off until [`MtuDiscovery::start`]).
    limit: usize,
    /// The size Data packets take now: the largest acknowledged probe.
    current: usize,
    state: State,
    research_interval: Duration,
    /// Black-hole evidence: the newest acknowledged packet larger than the
    /// base, and the newest of the base size or smaller.
    largest_large_acked: Option<u64>,
    largest_small_acked: Option<u64>,
    /// Large packets declared lost after `largest_large_acked`, and the
    /// newest of them.
    large_lost: u32,
    newest_large_lost: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not probing: the path is relayed, or a side allows no more than the
    /// base.
    Off,
    /// Looking for the largest size between `current` (passes) and
    /// `ceiling` (may pass).
    Searching {
        ceiling: usize,
        /// The probe in flight: its packet number and size.
        in_flight: Option<(u64, usize)>,
        /// Losses of the current candidate.
        losses: u8,
    },
    /// Done until `again_at`, when the search runs again.
    Done { again_at: Instant },
}

/// What the connection should do after a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    None,
    /// Data packets may now be this large.
    Raised(usize),
    /// Data packets fall back to this size (a black hole).
    Lowered(usize),
}

impl MtuDiscovery {
    /// Off: every packet takes the base size until [`start`](Self::start).
    pub(crate) fn new(research_interval: Duration) -> Self {
        MtuDiscovery {
            limit: 0,
            current: MAX_DATAGRAM_SIZE,
            state: State::Off,
            research_interval,
            largest_large_acked: None,
            largest_small_acked: None,
            large_lost: 0,
            newest_large_lost: None,
        }
    }

    /// A new direct path whose datagrams may reach `limit` bytes (the
    /// smaller of both sides' `max_udp_payload` and the address family's
    /// maximum): back to the base size, and a search if `limit` is larger.
    pub(crate) fn start(&mut self, limit: usize) {
        self.limit = limit;
        self.current = MAX_DATAGRAM_SIZE;
        self.large_lost = 0;
        self.newest_large_lost = None;
        self.state = if limit > MAX_DATAGRAM_SIZE {
            State::Searching {
                ceiling: limit,
                in_flight: None,
                losses: 0,
            }
        } else {
            State::Off
        };
    }

    /// A path that is not ours to probe (a relay): the base size, no search.
    pub(crate) fn stop(&mut self) {
        self.limit = 0;
        self.current = MAX_DATAGRAM_SIZE;
        self.state = State::Off;
    }

    /// The size Data packets take on the path now.
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// The size of the probe to send at `now`, if one is due: none while
    /// one is in flight or the search is over.
    pub(crate) fn probe_due(&mut self, now: Instant) -> Option<usize> {
        if let State::Done { again_at } = self.state {
            if now < again_at {
                return None;
            }
            self.state = State::Searching {
                ceiling: self.limit,
                in_flight: None,
                losses: 0,
            };
        }
        match self.state {
            State::Searching {
                ceiling,
                in_flight: None,
                ..
            } => Some(self.candidate(ceiling)),
            _ => None,
        }
    }

    /// The next size to try: the ceiling first, halfway once it failed.
    fn candidate(&self, ceiling: usize) -> usize {
        if ceiling == self.limit {
            ceiling
        } else {
            self.current + (ceiling - self.current).div_ceil(2)
        }
    }

    /// The probe of `size` bytes went out as packet `pn`.
    pub(crate) fn on_probe_sent(&mut self, pn: u64, size: usize) {
        if let State::Searching { in_flight, .. } = &mut self.state {
            *in_flight = Some((pn, size));
        }
    }

    /// Whether packet `pn` is the probe in flight.
    pub(crate) fn is_probe(&self, pn: u64) -> bool {
        matches!(self.state, State::Searching { in_flight: Some((p, _)), .. } if p == pn)
    }

    /// The probe `pn` was acknowledged at `now`.
    pub(crate) fn on_probe_acked(&mut self, now: Instant, pn: u64) -> Change {
        let State::Searching {
            ceiling,
            in_flight: Some((p, size)),
            ..
        } = self.state
        else {
            return Change::None;
        };
        if p != pn {
            return Change::None;
        }
        self.current = self.current.max(size);
        self.state = State::Searching {
            ceiling,
            in_flight: None,
            losses: 0,
        };
        self.end_if_narrow(now);
        Change::Raised(self.current)
    }

    /// The probe `pn` was declared lost at `now`.
    pub(crate) fn on_probe_lost(&mut self, now: Instant, pn: u64) {
        let State::Searching {
            ceiling,
            in_flight: Some((p, size)),
            losses,
        } = self.state
        else {
            return;
        };
        if p != pn {
            return;
        }
        let losses = losses + 1;
        self.state = if losses >= MAX_PROBES {
            State::Searching {
                ceiling: size - 1,
                in_flight: None,
                losses: 0,
            }
        } else {
            State::Searching {
                ceiling,
                in_flight: None,
                losses,
            }
        };
        self.end_if_narrow(now);
    }

    /// Ends the search once the interval left is narrower than
    /// [`SEARCH_PRECISION`].
    fn end_if_narrow(&mut self, now: Instant) {
        if let State::Searching {
            ceiling,
            in_flight: None,
            ..
        } = self.state
        {
            if ceiling < self.current + SEARCH_PRECISION {
                self.state = State::Done {
                    again_at: now + self.research_interval,
                };
            }
        }
    }

    /// Packet `pn` of `size` bytes (ack-eliciting, not a probe in flight)
    /// was acknowledged.
    pub(crate) fn on_acked(&mut self, pn: u64, size: usize) {
        if size > MAX_DATAGRAM_SIZE {
            if self.largest_large_acked.is_none_or(|l| pn > l) {
                self.largest_large_acked = Some(pn);
                self.large_lost = 0;
            }
        } else if self.largest_small_acked.is_none_or(|s| pn > s) {
            self.largest_small_acked = Some(pn);
        }
    }

    /// Packet `pn` of `size` bytes (not a probe) was declared lost.
    pub(crate) fn on_lost(&mut self, pn: u64, size: usize) {
        if size > MAX_DATAGRAM_SIZE && self.largest_large_acked.is_none_or(|l| pn > l) {
            self.large_lost += 1;
            self.newest_large_lost = self.newest_large_lost.max(Some(pn));
        }
    }

    /// After acknowledgments and losses were reported at `now`: falls back
    /// to the base size if they show a black hole (see the module
    /// documentation).
    pub(crate) fn check_black_hole(&mut self, now: Instant) -> Change {
        if self.current <= MAX_DATAGRAM_SIZE || self.large_lost < BLACK_HOLE_LOSSES {
            return Change::None;
        }
        let (Some(lost), Some(small)) = (self.newest_large_lost, self.largest_small_acked) else {
            return Change::None;
        };
        if small < lost {
            return Change::None;
        }
        self.current = MAX_DATAGRAM_SIZE;
        self.large_lost = 0;
        self.state = State::Done {
            again_at: now + self.research_interval,
        };
        Change::Lowered(self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn searching(limit: usize) -> (MtuDiscovery, Instant) {
        let mut m = MtuDiscovery::new(10 * MINUTE);
        m.start(limit);
        (m, Instant::now())
    }

    #[test]
    fn a_path_that_carries_the_limit_is_found_with_one_probe() {
        let (mut m, now) = searching(1472);
        assert_eq!(m.current(), 1200);
        assert_eq!(m.probe_due(now), Some(1472));
        m.on_probe_sent(7, 1472);
        assert!(m.is_probe(7) && !m.is_probe(6));
        assert_eq!(m.probe_due(now), None, "one probe at a time");
        assert_eq!(m.on_probe_acked(now, 7), Change::Raised(1472));
        assert_eq!(m.current(), 1472);
        assert_eq!(m.probe_due(now), None, "the search is over");
        assert_eq!(m.probe_due(now + 10 * MINUTE), Some(1472), "and runs again");
    }

    #[test]
    fn a_size_lost_three_times_is_out_of_reach_and_the_search_halves() {
        let (mut m, now) = searching(1472);
        let mut pn = 0;
        for _ in 0..MAX_PROBES {
            assert_eq!(m.probe_due(now), Some(1472));
            m.on_probe_sent(pn, 1472);
            m.on_probe_lost(now, pn);
            pn += 1;
        }
        assert_eq!(m.current(), 1200, "a lost probe changes nothing sent");
        // Between 1200 (passes) and 1471 (may pass): halfway, rounded up.
        assert_eq!(m.probe_due(now), Some(1336));
        m.on_probe_sent(pn, 1336);
        assert_eq!(m.on_probe_acked(now, pn), Change::Raised(1336));
        assert_eq!(m.probe_due(now), Some(1404));
    }

    #[test]
    fn a_1400_byte_path_is_found_within_the_precision() {
        let path_mtu = 1400;
        let (mut m, now) = searching(1472);
        let mut pn = 0;
        while let Some(size) = m.probe_due(now) {
            assert!(pn < 100, "the search ends");
            m.on_probe_sent(pn, size);
            if size <= path_mtu {
                m.on_probe_acked(now, pn);
            } else {
                m.on_probe_lost(now, pn);
            }
            pn += 1;
        }
        assert!(m.current() <= path_mtu);
        assert!(m.current() + SEARCH_PRECISION > path_mtu, "{}", m.current());
    }

    #[test]
    fn a_limit_at_the_base_never_probes() {
        let (mut m, now) = searching(1200);
        assert_eq!(m.probe_due(now), None);
        let mut relayed = MtuDiscovery::new(MINUTE);
        relayed.start(1472);
        relayed.stop();
        assert_eq!(relayed.probe_due(now), None);
        assert_eq!(relayed.current(), 1200);
    }

    #[test]
    fn reports_about_other_packets_change_nothing() {
        let (mut m, now) = searching(1472);
        m.on_probe_sent(5, 1472);
        assert_eq!(m.on_probe_acked(now, 4), Change::None);
        m.on_probe_lost(now, 6);
        assert!(m.is_probe(5));
        assert_eq!(m.current(), 1200);
    }

    /// A path at 1472 bytes, with packets 0..=9 sent at that size.
    fn raised() -> (MtuDiscovery, Instant) {
        let (mut m, now) = searching(1472);
        m.on_probe_sent(100, 1472);
        m.on_probe_acked(now, 100);
        (m, now)
    }

    #[test]
    fn large_packets_lost_while_a_later_small_one_arrives_are_a_black_hole() {
        let (mut m, now) = raised();
        m.on_acked(101, 1472);
        for pn in 102..102 + u64::from(BLACK_HOLE_LOSSES) {
            m.on_lost(pn, 1472);
        }
        // A probe timeout's bare PING, sent after them, gets through.
        m.on_acked(110, 59);
        assert_eq!(m.check_black_hole(now), Change::Lowered(1200));
        assert_eq!(m.current(), 1200);
        assert_eq!(m.probe_due(now + MINUTE), None);
        assert_eq!(
            m.probe_due(now + 10 * MINUTE),
            Some(1472),
            "searched again later"
        );
    }

    #[test]
    fn a_burst_of_losses_followed_by_a_large_packet_is_congestion() {
        let (mut m, now) = raised();
        // Packet 120, after the burst, is acknowledged first: the burst is
        // declared lost by that acknowledgment.
        m.on_acked(120, 1472);
        for pn in 102..118 {
            m.on_lost(pn, 1472);
        }
        m.on_acked(121, 59);
        assert_eq!(m.check_black_hole(now), Change::None);
        assert_eq!(m.current(), 1472);
    }

    #[test]
    fn too_few_losses_or_no_later_small_packet_are_no_black_hole() {
        let (mut m, now) = raised();
        for pn in 102..102 + u64::from(BLACK_HOLE_LOSSES) - 1 {
            m.on_lost(pn, 1472);
        }
        m.on_acked(110, 59);
        assert_eq!(m.check_black_hole(now), Change::None, "one loss short");
        // The small packet acknowledged was sent before the losses.
        let (mut m, now) = raised();
        m.on_acked(101, 59);
        for pn in 102..120 {
            m.on_lost(pn, 1472);
        }
        assert_eq!(
            m.check_black_hole(now),
            Change::None,
            "nothing later arrived"
        );
        // Small packets lost count for nothing.
        let (mut m, now) = raised();
        for pn in 102..120 {
            m.on_lost(pn, 1200);
        }
        m.on_acked(130, 59);
        assert_eq!(m.check_black_hole(now), Change::None, "small losses");
    }
}
