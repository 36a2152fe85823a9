//! Pinging the server while something waits for it (spec §11.3).
//!
//! The server reaches a client only at the address it last heard it from.
//! When the client's NAT forgets its mapping and gives it another port, the
//! server learns the new one from the client's next packet: with nothing
//! else to send, the keepalive, up to 10 s later. An Introduce, an answer or
//! a PeerOpened sent meanwhile goes to the dead address, and an
//! introduction times out on one side while the other connects; and the
//! relay, which forwards to that address too, cannot help. So while the
//! client waits on the server it pings the link every
//! `waiting_ping_interval` (1 s): one small packet a second, only while a
//! connect request, a held introduction or an introduced connection that
//! has not connected yet is outstanding.

use std::time::Instant;

use super::introductions::PeerLink;
use super::{Link, RendezvousClient};

impl RendezvousClient {
    /// Whether something waits for a message from the server.
    pub(super) fn waits_on_server(&self) -> bool {
        self.requests.values().any(|r| r.sent)
            || !self.held.is_empty()
            || self.peers.values().any(PeerLink::is_connecting)
    }

    /// When the next waiting ping is due, if one is.
    pub(super) fn waiting_ping_timer(&self) -> Option<Instant> {
        match self.link {
            Link::Up(_) if self.waits_on_server() => self.waiting_ping_at,
            _ => None,
        }
    }

    /// Pings the link if something waits on the server and the last ping
    /// is an interval old; forgets the schedule when nothing waits.
    pub(super) fn ping_while_waiting(&mut self, now: Instant) {
        let Link::Up(server) = self.link else {
            self.waiting_ping_at = None;
            return;
        };
        if !self.waits_on_server() {
            self.waiting_ping_at = None;
            return;
        }
        match self.waiting_ping_at {
            Some(at) if at > now => {}
            Some(_) => {
                self.endpoint.ping(server);
                self.waiting_ping_at = Some(now + self.config.waiting_ping_interval);
            }
            // Something just started waiting: the message it waits for is
            // on its way; the first ping goes an interval later.
            None => self.waiting_ping_at = Some(now + self.config.waiting_ping_interval),
        }
    }
}
