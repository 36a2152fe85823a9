//! Hole punching: the schedule of handshake probes toward a peer's candidate
//! addresses (spec §4.4).
//!
//! One round sends the cached handshake initiation to every candidate, spaced
//! by `punch_probe_spacing`; rounds repeat with a gap that doubles from
//! `handshake_retry_initial` up to `handshake_retry_max`, until a response
//! authenticates or the handshake timeout passes. Outgoing probes also open
//! our own NAT toward the peer, which is what lets the peer's probes in.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::TransportConfig;

/// Most candidate addresses one connection probes.
pub const MAX_CANDIDATES: usize = 16;

#[derive(Debug)]
pub(crate) struct Punch {
    candidates: Vec<SocketAddr>,
    next_index: usize,
    round_gap: Duration,
    next_at: Instant,
    /// Candidates to probe again at once, out of schedule (a cookie arrived
    /// from them, spec §4.8), and since when.
    urgent: Vec<SocketAddr>,
    urgent_at: Instant,
}

impl Punch {
    pub(crate) fn new(candidates: Vec<SocketAddr>, now: Instant, config: &TransportConfig) -> Self {
        Punch {
            candidates,
            next_index: 0,
            round_gap: config.handshake_retry_initial,
            next_at: now,
            urgent: Vec::new(),
            urgent_at: now,
        }
    }

    /// The destination of the probe due at `now`, if any.
    pub(crate) fn poll(&mut self, now: Instant, config: &TransportConfig) -> Option<SocketAddr> {
        if let Some(addr) = self.urgent.pop() {
            return Some(addr);
        }
        if now < self.next_at || self.candidates.is_empty() {
            return None;
        }
        let addr = self.candidates[self.next_index];
        self.next_index += 1;
        if self.next_index == self.candidates.len() {
            self.next_index = 0;
            self.next_at = now + self.round_gap;
            self.round_gap = (self.round_gap * 2).min(config.handshake_retry_max);
        } else {
            self.next_at = now + config.punch_probe_spacing;
        }
        Some(addr)
    }

    pub(crate) fn next_at(&self) -> Instant {
        if self.urgent.is_empty() {
            self.next_at
        } else {
            self.urgent_at.min(self.next_at)
        }
    }

    /// Probes `addr` (a candidate) once more at once, outside the schedule.
    pub(crate) fn probe_now(&mut self, addr: SocketAddr, now: Instant) {
        if self.candidates.contains(&addr) && !self.urgent.contains(&addr) {
            if self.urgent.is_empty() {
                self.urgent_at = now;
            }
            self.urgent.push(addr);
        }
    }

    /// Sends nothing before `at`.
    pub(crate) fn delay_until(&mut self, at: Instant) {
        self.next_at = self.next_at.max(at);
    }

    pub(crate) fn candidates(&self) -> &[SocketAddr] {
        &self.candidates
    }

    /// Adds a candidate learned late (for example from a rendezvous); probes it at once.
    pub(crate) fn add_candidate(&mut self, addr: SocketAddr, now: Instant) -> bool {
        if self.candidates.contains(&addr) || self.candidates.len() >= MAX_CANDIDATES {
            return false;
        }
        self.candidates.push(addr);
        self.next_at = self.next_at.min(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_probe_every_candidate_then_back_off() {
        let config = TransportConfig::default();
        let t0 = Instant::now();
        let a: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let b: SocketAddr = "198.51.100.1:2".parse().unwrap();
        let mut p = Punch::new(vec![a, b], t0, &config);
        assert_eq!(p.poll(t0, &config), Some(a));
        assert_eq!(p.poll(t0, &config), None, "spaced within a round");
        let t1 = t0 + config.punch_probe_spacing;
        assert_eq!(p.poll(t1, &config), Some(b));
        assert_eq!(p.next_at(), t1 + config.handshake_retry_initial);
        let t2 = p.next_at();
        assert_eq!(p.poll(t2, &config), Some(a));
        let t3 = p.next_at();
        assert_eq!(p.poll(t3, &config), Some(b));
        assert_eq!(p.next_at(), t3 + config.handshake_retry_initial * 2);
    }
}
