//! The server's relay (spec §11.5): forwarding RelayData envelopes between
//! the two members of a session, allotting the session when a member first
//! relays through it, within the quotas and rate limits.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::RendezvousServer;
use crate::wire::RelayData;
use crate::PublicKey;

/// Shortest time between two path probes a relay sends on behalf of a session.
const POKE_INTERVAL: Duration = Duration::from_secs(1);

impl RendezvousServer {
    /// Forwards a RelayData envelope to the other peer of its session (spec
    /// §11.5), within the rate limits.
    pub(super) fn relay(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let Ok(envelope) = RelayData::parse(datagram) else {
            self.stats.relay_dropped += 1;
            return;
        };
        let id = envelope.session;
        let Some(peers) = self.relays.get(id).map(|s| s.peers) else {
            self.stats.relay_dropped += 1;
            return;
        };
        let member = |k: &PublicKey| {
            let h = self.registry.get(k)?.handle;
            Some((h, self.endpoint.remote_address(h)?))
        };
        let (m0, m1) = (member(&peers[0]), member(&peers[1]));
        let (sender, dest) = match (m0, m1) {
            (Some((h, a)), other) if a == from => (h, other.map(|o| o.1)),
            (other, Some((h, b))) if b == from => (h, other.map(|o| o.1)),
            _ => {
                // Perhaps a member's NAT mapping changed: probe its
                // rendezvous connection at the new address (at most once a
                // second), so the relay follows once the client answers.
                let stale = [m0, m1]
                    .into_iter()
                    .flatten()
                    .find(|(_, a)| a.ip() == from.ip());
                if let (Some((h, _)), Some(session)) = (stale, self.relays.get_mut(id)) {
                    if session.next_poke <= now {
                        session.next_poke = now + POKE_INTERVAL;
                        self.endpoint.probe_path(now, h, from);
                    }
                }
                self.stats.relay_dropped += 1;
                return;
            }
        };
        let Some(dest) = dest else {
            self.stats.relay_dropped += 1;
            return;
        };
        // The pair needs the relay now: the session counts against the
        // server's bound and its caller's source's quota from here on.
        let limits = self.relay_limits();
        if self.relays.allot(id, &limits).is_err() {
            self.stats.relay_refused += 1;
            return;
        }
        let Some(session) = self.relays.get_mut(id) else {
            return;
        };
        let len = datagram.len() as u64;
        if !session
            .bucket
            .try_take(self.config.relay_pair_rate, now, len)
        {
            self.stats.relay_rate_limited += 1;
            return;
        }
        let client_limit = self.config.relay_client_rate;
        if !self
            .links
            .get_mut(&sender)
            .is_some_and(|l| l.relay.try_take(client_limit, now, len))
        {
            self.stats.relay_rate_limited += 1;
            return;
        }
        if self.relay_queue.len() >= self.config.max_relay_queue {
            self.stats.relay_dropped += 1;
            return;
        }
        session.last_used = now;
        let mut buf = self.spare_buffers.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(datagram);
        self.relay_queue.push_back((dest, buf));
        self.stats.relayed_datagrams += 1;
        self.stats.relayed_bytes += len;
    }
}
