//! Paths beyond the one in use (spec §6.7, §11.6): probing a peer's other
//! candidate addresses with PATH_CHALLENGE, so that a connection running
//! over a relay moves to a direct path as soon as one answers; the relay
//! address, onto which a connection does not follow its peer while its
//! direct path still answers; and the delayed start of hole punching that a
//! rendezvous coordinates.

use std::net::SocketAddr;
use std::time::Instant;

use tracing::debug;

use super::*;

/// Most addresses probed at once (one per candidate).
const MAX_PATH_PROBES: usize = MAX_CANDIDATES;

/// PATH_CHALLENGEs sent to candidate addresses of the peer, awaiting their
/// PATH_RESPONSE. An entry lives until answered or until it expires.
#[derive(Debug, Default)]
pub(crate) struct PathProbes {
    entries: Vec<Probe>,
}

#[derive(Debug)]
struct Probe {
    remote: SocketAddr,
    data: [u8; 8],
    send: bool,
    expires: Instant,
}

impl PathProbes {
    /// Queues a challenge to `remote` (replacing an older one to the same
    /// address). Returns `false` when the table is full.
    fn start(&mut self, now: Instant, remote: SocketAddr, data: [u8; 8], expires: Instant) -> bool {
        self.entries.retain(|p| p.expires > now);
        if let Some(p) = self.entries.iter_mut().find(|p| p.remote == remote) {
            *p = Probe {
                remote,
                data,
                send: true,
                expires,
            };
            return true;
        }
        if self.entries.len() >= MAX_PATH_PROBES {
            return false;
        }
        self.entries.push(Probe {
            remote,
            data,
            send: true,
            expires,
        });
        true
    }

    /// The next challenge to send, if any.
    pub(crate) fn poll_send(&mut self) -> Option<(SocketAddr, [u8; 8])> {
        let p = self.entries.iter_mut().find(|p| p.send)?;
        p.send = false;
        Some((p.remote, p.data))
    }

    /// A PATH_RESPONSE arrived: whether it answers one of our probes (which
    /// is then forgotten).
    pub(crate) fn take_response(&mut self, now: Instant, from: SocketAddr, data: [u8; 8]) -> bool {
        let Some(i) = self
            .entries
            .iter()
            .position(|p| p.remote == from && p.data == data && p.expires > now)
        else {
            return false;
        };
        self.entries.swap_remove(i);
        true
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

impl Connection {
    /// Sends a PATH_CHALLENGE to `remote`, another address at which the peer
    /// may be reachable; if the answer comes back from there, the connection
    /// moves to that address. Only established connections probe.
    pub(crate) fn probe_path(&mut self, now: Instant, remote: SocketAddr) -> bool {
        if !matches!(self.state, State::Established) || remote == self.path.remote {
            return false;
        }
        let mut data = [0u8; 8];
        self.rng.fill(&mut data);
        let expires = now + self.pto() * 3;
        let started = self.probes.start(now, remote, data, expires);
        if started {
            debug!(cid = %self.local_cid, %remote, "probing a candidate path");
        }
        started
    }

    /// Marks `relay` as the address of a relay toward the peer (spec §11.6):
    /// the connection uses it only when it was reached through it or chose it
    /// by validation of its own probes, never because the peer's packets
    /// happened to arrive that way while a direct path works.
    pub(crate) fn set_relay_address(&mut self, relay: SocketAddr) {
        self.relay = Some(relay);
        if let State::Confirming { nudges, .. } = &mut self.state {
            nudges.through_new_relay(relay);
        }
    }

    /// Whether an authenticated packet from `from` may start a validation
    /// of that address (spec §6.7): not when it is the relay while the
    /// current, validated direct path was heard from within the last three
    /// PTOs. This keeps two peers that upgraded from a relay to a direct
    /// path at slightly different moments from dragging each other back
    /// onto the relay, yet lets a peer whose direct path went silent follow
    /// the other onto it.
    pub(crate) fn may_validate(&self, now: Instant, from: SocketAddr) -> bool {
        let direct_alive = self.path.validated
            && self.path.remote != from
            && now < self.path_heard + self.pto() * 3;
        !(self.relay == Some(from) && direct_alive)
    }

    /// Holds the first punch probe until `at` (a start time coordinated by a
    /// rendezvous, spec §11.4); the handshake timeout counts from then. The
    /// connection is already punching as far as simultaneous open is
    /// concerned, so the peer's early HandshakeInit is resolved by spec §4.5
    /// instead of being treated as a new incoming connection.
    pub(crate) fn delay_punch(&mut self, at: Instant) {
        if let State::Handshaking { punch, .. } = &mut self.state {
            punch.delay_until(at);
            self.timers.set(Timer::Punch, punch.next_at());
            self.timers
                .set(Timer::Handshake, at + self.config.handshake_timeout);
        }
    }

    /// Moves the handshake timeout of a connection still punching, or
    /// answered and not yet confirmed, to `at` (a rendezvous waits for the
    /// peer to act on its own Introduce, spec §11.4).
    pub(crate) fn set_handshake_deadline(&mut self, at: Instant) {
        if let State::Handshaking { .. } | State::Confirming { .. } = self.state {
            self.timers.set(Timer::Handshake, at);
        }
    }

    /// Ends a [`delay_punch`](Self::delay_punch) hold at `now`.
    pub(crate) fn punch_now(&mut self, now: Instant) {
        if let State::Handshaking { punch, .. } = &mut self.state {
            punch.start_now(now);
            self.timers.set(Timer::Punch, punch.next_at());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_probe_is_sent_once_and_validated_only_by_its_own_answer() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(1);
        let mut p = PathProbes::default();
        assert!(p.start(t0, sa("192.0.2.1:1"), [1; 8], later));
        assert!(p.start(t0, sa("192.0.2.2:2"), [2; 8], later));
        assert_eq!(p.poll_send(), Some((sa("192.0.2.1:1"), [1; 8])));
        assert_eq!(p.poll_send(), Some((sa("192.0.2.2:2"), [2; 8])));
        assert_eq!(p.poll_send(), None);
        // Wrong data, wrong address: no.
        assert!(!p.take_response(t0, sa("192.0.2.1:1"), [2; 8]));
        assert!(!p.take_response(t0, sa("192.0.2.3:1"), [1; 8]));
        assert!(p.take_response(t0, sa("192.0.2.1:1"), [1; 8]));
        assert!(!p.take_response(t0, sa("192.0.2.1:1"), [1; 8]), "only once");
        // An expired probe validates nothing.
        assert!(!p.take_response(later, sa("192.0.2.2:2"), [2; 8]));
    }

    #[test]
    fn the_probe_table_is_bounded() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(1);
        let mut p = PathProbes::default();
        for port in 0..MAX_PATH_PROBES as u16 {
            assert!(p.start(t0, SocketAddr::from(([192, 0, 2, 1], port)), [0; 8], later));
        }
        assert!(!p.start(t0, sa("192.0.2.9:9"), [0; 8], later));
        // Re-probing a known address replaces its entry.
        assert!(p.start(t0, sa("192.0.2.1:0"), [7; 8], later));
        // Once the old ones expire there is room again.
        assert!(p.start(
            later,
            sa("192.0.2.9:9"),
            [0; 8],
            later + Duration::from_secs(1)
        ));
    }
}
