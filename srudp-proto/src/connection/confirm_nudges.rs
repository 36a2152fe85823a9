//! The responder's nudges while it waits for the initiator to confirm the
//! handshake (spec §4.2, step 2).
//!
//! The initiator confirms by sending a Data packet to the address the
//! response came from. When that address stops leading to us between our
//! response and its confirmation — our NAT forgot the mapping and gave us
//! another port — the initiator, already connected, keeps sending to a dead
//! address and we never hear it: it reports a connection we time out.
//! So an unconfirmed responder sends a few Data packets holding one PING:
//! from our current address, the initiator learns the new one (its path
//! validation, spec §6.7, then confirms us), and through our relay, if a
//! rendezvous bound one (spec §11.5), from the third nudge on, for
//! initiators whose NAT lets nothing in from our new port.
//!
//! A relay bound while we wait (our own Introduce of the initiator arrived
//! late and claimed the connection) gets a nudge at once.
//!
//! Bounded: at most [`MAX_NUDGES`] per handshake, 250 ms after the response
//! (the handshake retry interval), then at doubling intervals of at most
//! 2 s, so that they cover the handshake timeout (the last is 9.75 s after
//! the response) — each 35 bytes, far below the three times the
//! initiation's 1200 bytes a responder may send an address it has not
//! validated.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Nudges sent per handshake, at most.
pub(super) const MAX_NUDGES: u8 = 7;

/// The longest wait between two nudges.
const MAX_INTERVAL: Duration = Duration::from_secs(2);

/// The nudge from which a bound relay gets a copy too.
const FIRST_RELAYED_NUDGE: u8 = 3;

#[derive(Debug)]
pub(super) struct ConfirmNudges {
    /// Nudges whose timer fired.
    fired: u8,
    /// The wait before the next one.
    interval: Duration,
    /// Where the nudges of the last timer still have to go.
    due: [Option<SocketAddr>; 2],
}

impl ConfirmNudges {
    /// Nudges for a response sent at `now`; returns them and when the first
    /// is due.
    pub(super) fn new(now: Instant, first_after: Duration) -> (ConfirmNudges, Instant) {
        let nudges = ConfirmNudges {
            fired: 0,
            interval: first_after,
            due: [None, None],
        };
        (nudges, now + first_after)
    }

    /// The timer fired: the next nudge goes to the initiator's address, and
    /// from the third one on to `relay` too. Returns when the next is due.
    pub(super) fn fire(
        &mut self,
        now: Instant,
        initiator: SocketAddr,
        relay: Option<SocketAddr>,
    ) -> Option<Instant> {
        if self.fired >= MAX_NUDGES {
            return None;
        }
        self.fired += 1;
        self.due[0] = Some(initiator);
        self.due[1] = relay.filter(|r| self.fired >= FIRST_RELAYED_NUDGE && *r != initiator);
        self.interval = (self.interval * 2).min(MAX_INTERVAL);
        (self.fired < MAX_NUDGES).then_some(now + self.interval)
    }

    /// A relay was just bound to the connection: a nudge goes through it
    /// now, whatever the schedule (it does not count against it).
    pub(super) fn through_new_relay(&mut self, relay: SocketAddr) {
        self.due[1] = Some(relay);
    }

    /// The next destination of a nudge due now.
    pub(super) fn poll(&mut self) -> Option<SocketAddr> {
        self.due.iter_mut().find_map(Option::take)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, base: Instant) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn seven_nudges_at_doubling_intervals_up_to_2s_the_relay_from_the_third() {
        let t0 = Instant::now();
        let peer: SocketAddr = "198.51.100.1:4000".parse().unwrap();
        let relay: SocketAddr = "203.0.113.100:3478".parse().unwrap();
        let (mut n, first) = ConfirmNudges::new(t0, Duration::from_millis(250));
        assert_eq!(first, at(250, t0));
        let mut now = first;
        let mut schedule = vec![];
        for _ in 0..MAX_NUDGES {
            let next = n.fire(now, peer, Some(relay));
            let mut to = vec![];
            while let Some(d) = n.poll() {
                to.push(d);
            }
            schedule.push((now - t0, to));
            match next {
                Some(next) => now = next,
                None => break,
            }
        }
        let ms = Duration::from_millis;
        assert_eq!(
            schedule,
            vec![
                (ms(250), vec![peer]),
                (ms(750), vec![peer]),
                (ms(1750), vec![peer, relay]),
                (ms(3750), vec![peer, relay]),
                (ms(5750), vec![peer, relay]),
                (ms(7750), vec![peer, relay]),
                (ms(9750), vec![peer, relay]),
            ]
        );
        assert_eq!(n.fire(now, peer, Some(relay)), None, "no eighth nudge");
        assert_eq!(n.poll(), None);
    }

    #[test]
    fn a_relay_bound_late_is_nudged_at_once() {
        let t0 = Instant::now();
        let peer: SocketAddr = "198.51.100.1:4000".parse().unwrap();
        let relay: SocketAddr = "203.0.113.100:3478".parse().unwrap();
        let (mut n, _) = ConfirmNudges::new(t0, Duration::from_millis(250));
        assert_eq!(n.poll(), None);
        n.through_new_relay(relay);
        assert_eq!(n.poll(), Some(relay));
        assert_eq!(n.poll(), None);
        // The schedule is unchanged: the first timer still nudges only
        // the initiator.
        n.fire(t0, peer, Some(relay));
        assert_eq!(n.poll(), Some(peer));
        assert_eq!(n.poll(), None);
    }

    #[test]
    fn without_a_relay_only_the_initiator_is_nudged() {
        let t0 = Instant::now();
        let peer: SocketAddr = "198.51.100.1:4000".parse().unwrap();
        let (mut n, mut now) = ConfirmNudges::new(t0, Duration::from_millis(250));
        for _ in 0..MAX_NUDGES {
            let next = n.fire(now, peer, None);
            assert_eq!(n.poll(), Some(peer));
            assert_eq!(n.poll(), None);
            now = next.unwrap_or(now);
        }
    }
}
