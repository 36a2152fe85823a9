//! Connecting to peers through the rendezvous (spec §11.4–§11.6): connect
//! requests, introductions, the relay fallback and the background search for
//! a direct path.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::debug;

use super::{ClientEvent, RendezvousClient, RendezvousError};
use crate::rendezvous::candidate_filter::is_local_scope;
use crate::rendezvous::message::{Message, RequestId, Target};
use crate::{
    CloseReason, ConnectError, ConnectOptions, ConnectionHandle, Event, HandshakePattern,
    PublicKey, RelaySessionId,
};

/// A connect request waiting for the server's answer.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) target: Target,
    /// Asked by the client itself (a fresh introduction for a connection
    /// it already has): no event reports it.
    pub(super) internal: bool,
    /// Whether it went out on the current link.
    pub(super) sent: bool,
    pub(super) deadline: Instant,
}

/// A connection opened because of an introduction.
#[derive(Debug)]
pub(super) struct PeerLink {
    peer: PublicKey,
    /// Our requests it answers (empty: the peer asked for us).
    requests: Vec<RequestId>,
    /// The peer's candidates from the introduction (for direct probes).
    candidates: Vec<SocketAddr>,
    /// Whether the application was told (it owns the handle from then on).
    connected: bool,
    /// The coordinated start of the punch.
    start: Instant,
    /// Whether a relay session is bound to the connection.
    relay: bool,
    /// When to check that the direct path still answers.
    check_at: Option<Instant>,
    /// Probe timeouts and packets received at the last check.
    last_ptos: u64,
    last_received: u64,
    /// When to punch through the relay too.
    fallback_at: Option<Instant>,
    /// When to probe the direct candidates again.
    probe_at: Option<Instant>,
    probe_rounds_left: u32,
    /// A hard-NAT round ran for this introduction (spec §4.4, §11.6).
    hard_nat_tried: bool,
}

/// An incoming connection whose initiator said it comes from an
/// introduction (spec §4.3 `introduced`), confirmed before our own
/// Introduce of that peer arrived: held for it, unseen by the application.
#[derive(Debug)]
pub(super) struct HeldIntroduction {
    /// The initiator's authenticated (IK) key.
    peer: PublicKey,
    /// When to stop waiting and report it as an ordinary incoming connection.
    pub(super) until: Instant,
    /// The connection's `Connected` event, reported on release.
    connected: Event,
    /// Stream data arrived while held.
    readable: bool,
}

impl PeerLink {
    /// Not connected yet: punching, or answered and waiting for the
    /// peer's confirmation.
    pub(super) fn is_connecting(&self) -> bool {
        !self.connected
    }

    pub(super) fn next_timer(&self) -> Option<Instant> {
        [self.fallback_at, self.probe_at, self.check_at]
            .into_iter()
            .flatten()
            .min()
    }
}

impl RendezvousClient {
    pub(super) fn request_connect(
        &mut self,
        now: Instant,
        target: Target,
    ) -> Result<RequestId, RendezvousError> {
        self.now = self.now.max(now);
        let outstanding =
            self.requests.len() + self.peers.values().map(|p| p.requests.len()).sum::<usize>();
        if outstanding >= self.config.max_pending_requests {
            return Err(RendezvousError::TooManyRequests);
        }
        Ok(self.queue_request(now, target, false))
    }

    fn queue_request(&mut self, now: Instant, target: Target, internal: bool) -> RequestId {
        let request = self.new_request_id();
        self.requests.insert(
            request,
            Request {
                target,
                internal,
                sent: false,
                deadline: now + self.config.request_timeout,
            },
        );
        self.send_queued_requests(now);
        request
    }

    /// Sends the requests not yet sent on the current link (the server reads
    /// them after our Register, which went first on the stream).
    pub(super) fn send_queued_requests(&mut self, now: Instant) {
        let super::Link::Up(handle) = self.link else {
            return;
        };
        let queued: Vec<(RequestId, Target)> = self
            .requests
            .iter_mut()
            .filter(|(_, r)| !r.sent)
            .map(|(id, r)| {
                r.sent = true;
                (*id, r.target.clone())
            })
            .collect();
        for (request, target) in queued {
            self.send(now, handle, &Message::Connect { request, target });
        }
    }

    pub(super) fn expire_requests(&mut self, now: Instant) {
        let expired: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for request in expired {
            let Some(r) = self.requests.remove(&request) else {
                continue;
            };
            if r.internal {
                continue;
            }
            let error = if r.sent {
                RendezvousError::Timeout
            } else {
                RendezvousError::ServerUnreachable
            };
            let peer = match r.target {
                Target::Key(k) => Some(k),
                Target::Name(_) => None,
            };
            self.events.push_back(ClientEvent::ConnectFailed {
                request: Some(request),
                peer,
                error,
            });
        }
    }

    /// The server introduced us to `peer` (spec §11.4): open a connection
    /// that starts punching at the coordinated instant. The peer does the
    /// same; the simultaneous-open rule (spec §4.5) leaves one connection.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_introduce(
        &mut self,
        now: Instant,
        request: RequestId,
        peer: PublicKey,
        start_in: Duration,
        relay_session: u64,
        candidates: Vec<SocketAddr>,
        peer_stream_only: bool,
    ) {
        let asked = match self.requests.remove(&request) {
            Some(r) if request != 0 => Some((request, r.internal)),
            _ => None,
        };
        let request = asked.filter(|(_, internal)| !internal).map(|(r, _)| r);
        // The peer's punch got through before this Introduce (ours was lost
        // or late): its connection, held for us, is the introduction's.
        if self.adopt_held(now, peer, request, relay_session, &candidates) {
            return;
        }
        // Already connecting or connected to this peer through an earlier
        // introduction (both sides asked at once, a repeated request, or a
        // fresh introduction to find a new direct path): keep that connection.
        // An application's own request for a peer it is already connected
        // to, or already connecting to for another of its requests, asks for
        // one more connection (one stream each, e.g. a TCP forwarder): that
        // opens a new one, which the peer accepts like any initiation (its
        // accept policy, the ticket). It only joins a connection the peer's
        // own request opened (both sides asked at once).
        let wants_another = request.is_some();
        let existing = self.peers.iter_mut().find(|(h, p)| {
            p.peer == peer
                && !self.endpoint.is_closed(**h)
                && !(wants_another && (p.connected || !p.requests.is_empty()))
        });
        if let Some((&handle, link)) = existing {
            if link.connected {
                // Fresh candidates: probe them at the coordinated moment.
                link.candidates = candidates;
                if self
                    .endpoint
                    .path_kind(handle)
                    .is_some_and(|p| p.is_relayed())
                {
                    link.probe_at = Some(now + start_in);
                    link.probe_rounds_left = self.config.direct_probe_rounds;
                    link.hard_nat_tried = false;
                }
                if let (Some(r), Some(path)) = (request, self.endpoint.path_kind(handle)) {
                    self.events.push_back(ClientEvent::PeerConnected {
                        handle,
                        peer,
                        request: Some(r),
                        path,
                    });
                }
            } else if let Some(r) = request {
                link.requests.push(r);
            }
            return;
        }
        let start = now + start_in;
        let options = ConnectOptions {
            peer,
            candidates: candidates.clone(),
            // IK both ways: each side's key is authenticated, so a lying
            // server can impersonate neither (spec §11.4).
            pattern: Some(HandshakePattern::IK),
            // Both sides of a ticket connection prove the ticket (spec §4.9).
            ticket: self.config.ticket.clone(),
        };
        // The candidates come from the server, not from the peer we can
        // authenticate: each is knocked before it gets a HandshakeInit, so
        // neither a caller nor the server can aim our handshakes at a third
        // party (spec §4.4, §11.9).
        // Only opening knocks until the peer opened its NAT toward us (its
        // PeerOpened), or until `opened_wait` after the start (spec §11.4).
        let hold = start + self.config.opened_wait;
        let handle = match self.endpoint.connect_introduced(now, options, hold) {
            Ok(h) => h,
            Err(e) => {
                debug!(%peer, "cannot open the introduced connection: {e}");
                let error = match e {
                    ConnectError::SelfConnect => RendezvousError::SelfConnect,
                    _ => RendezvousError::EndpointRefused,
                };
                self.events.push_back(ClientEvent::ConnectFailed {
                    request,
                    peer: Some(peer),
                    error,
                });
                return;
            }
        };
        // Until the peer acts on its own Introduce, the handshake timeout
        // waits for it (`on_peer_opened`), up to `introduction_timeout`.
        let handshake_timeout = self.endpoint.config().transport.handshake_timeout;
        self.endpoint.set_handshake_deadline(
            handle,
            (start + self.config.introduction_timeout).max(hold + handshake_timeout),
        );
        let relay = relay_session != 0
            && self.endpoint.set_relay(
                handle,
                self.config.server_addr,
                RelaySessionId(relay_session),
            );
        debug!(%handle, %peer, ?start_in, relay, "introduced: punching");
        // Our opening knocks are due now, ahead of anything the peer can
        // send in answer to this: tell it (through the server) that our
        // NAT is open toward it.
        if let super::Link::Up(server) = self.link {
            self.send(now, server, &Message::Opened { peer });
        }
        self.peers.insert(
            handle,
            PeerLink {
                peer,
                requests: request.into_iter().collect(),
                candidates,
                connected: false,
                start,
                relay,
                check_at: None,
                last_ptos: 0,
                last_received: 0,
                fallback_at: relay.then(|| {
                    if self.link_on_stream || peer_stream_only {
                        // UDP is blocked here, or at the peer (spec
                        // §12.5): the relay from the start.
                        start
                    } else {
                        start + self.config.relay_fallback
                    }
                }),
                probe_at: None,
                probe_rounds_left: self.config.direct_probe_rounds,
                hard_nat_tried: false,
            },
        );
    }

    /// The server says `peer` opened its NAT toward us (spec §11.4): our
    /// introduced connection to it, if still held, punches all the way now.
    pub(super) fn on_peer_opened(&mut self, now: Instant, peer: PublicKey) {
        let handshake_timeout = self.endpoint.config().transport.handshake_timeout;
        let (opened_wait, limit) = (self.config.opened_wait, self.config.introduction_timeout);
        let due: Vec<(ConnectionHandle, Instant)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.peer == peer && !p.connected)
            .map(|(h, p)| {
                // The handshake timeout counts from now, or from the hold's
                // end if that is later, within `introduction_timeout`.
                let from = now.max(p.start + opened_wait);
                (*h, (from + handshake_timeout).min(p.start + limit))
            })
            .collect();
        for (handle, deadline) in due {
            debug!(%handle, %peer, "the peer opened its NAT: punching all the way");
            self.endpoint.punch_now(now, handle);
            self.endpoint.set_handshake_deadline(handle, deadline);
        }
    }

    /// An incoming connection just confirmed: if its initiator authenticated
    /// (IK) and said it comes from an introduction, hold it for our own
    /// Introduce of that peer instead of reporting it (spec §11.4). Bounded
    /// in time (`introduction_hold`) and count (`max_held_introductions`):
    /// beyond, it is reported at once. Returns whether it is held.
    pub(super) fn hold(&mut self, now: Instant, handle: ConnectionHandle) -> bool {
        if self.held.len() >= self.config.max_held_introductions
            || !self.endpoint.is_introduced_by_peer(handle)
        {
            return false;
        }
        let Some(peer) = self.endpoint.peer_identity(handle) else {
            return false;
        };
        // Already connecting or connected to this peer through an
        // introduction: its Introduce came, and this is one more connection
        // the peer's application asked for (one stream each), reported at
        // once.
        if self
            .peers
            .iter()
            .any(|(h, p)| p.peer == peer && !self.endpoint.is_closed(*h))
        {
            return false;
        }
        let connected = match self.endpoint.remote_address(handle) {
            Some(remote) => Event::Connected {
                incoming: true,
                remote,
                peer: Some(peer),
            },
            None => return false,
        };
        debug!(%handle, %peer, "introduced by the peer: held for our Introduce");
        self.held.insert(
            handle,
            HeldIntroduction {
                peer,
                until: now + self.config.introduction_hold,
                connected,
                readable: false,
            },
        );
        true
    }

    /// An event of a held connection: nobody sees it yet.
    pub(super) fn on_held_event(&mut self, now: Instant, handle: ConnectionHandle, event: Event) {
        match event {
            Event::Readable => {
                if let Some(h) = self.held.get_mut(&handle) {
                    h.readable = true;
                }
            }
            Event::Closed { .. } => {
                // Never shown: forget it.
                self.held.remove(&handle);
                self.endpoint.release(now, handle);
            }
            _ => {}
        }
    }

    /// Held connections whose Introduce never came are reported as
    /// ordinary incoming connections.
    pub(super) fn release_held(&mut self, now: Instant) {
        let due: Vec<ConnectionHandle> = self
            .held
            .iter()
            .filter(|(_, h)| h.until <= now)
            .map(|(handle, _)| *handle)
            .collect();
        for handle in due {
            let Some(h) = self.held.remove(&handle) else {
                continue;
            };
            debug!(%handle, peer = %h.peer, "no Introduce for the held connection: reported as incoming");
            self.events.push_back(ClientEvent::Connection {
                handle,
                event: h.connected,
            });
            if h.readable {
                self.events.push_back(ClientEvent::Connection {
                    handle,
                    event: Event::Readable,
                });
            }
        }
    }

    /// Takes a held connection from `peer` as the one this introduction
    /// opens; returns whether there was one.
    fn adopt_held(
        &mut self,
        now: Instant,
        peer: PublicKey,
        request: Option<RequestId>,
        relay_session: u64,
        candidates: &[SocketAddr],
    ) -> bool {
        let Some(handle) = self
            .held
            .iter()
            .find(|(h, held)| held.peer == peer && !self.endpoint.is_closed(**h))
            .map(|(h, _)| *h)
        else {
            return false;
        };
        let Some(held) = self.held.remove(&handle) else {
            return false;
        };
        let Some(path) = self.endpoint.path_kind(handle) else {
            return false;
        };
        let relay = relay_session != 0
            && self.endpoint.set_relay(
                handle,
                self.config.server_addr,
                RelaySessionId(relay_session),
            );
        debug!(%handle, %peer, "introduced: the peer's connection got here first");
        self.peers.insert(
            handle,
            PeerLink {
                peer,
                requests: Vec::new(),
                candidates: candidates.to_vec(),
                connected: true,
                start: now,
                relay,
                check_at: relay.then(|| now + self.config.path_check_interval),
                last_ptos: 0,
                last_received: 0,
                fallback_at: None,
                probe_at: path
                    .is_relayed()
                    .then(|| now + self.config.direct_probe_interval),
                probe_rounds_left: self.config.direct_probe_rounds,
                hard_nat_tried: false,
            },
        );
        self.events.push_back(ClientEvent::PeerConnected {
            handle,
            peer,
            request,
            path,
        });
        if held.readable {
            self.events.push_back(ClientEvent::Connection {
                handle,
                event: Event::Readable,
            });
        }
        true
    }

    /// An event of a connection opened by an introduction.
    pub(super) fn on_peer_event(&mut self, now: Instant, handle: ConnectionHandle, event: Event) {
        let Some(link) = self.peers.get_mut(&handle) else {
            return;
        };
        match event {
            Event::Connected { .. } if !link.connected => {
                link.connected = true;
                link.fallback_at = None;
                let path = self.endpoint.path_kind(handle);
                let Some(path) = path else { return };
                if path.is_relayed() {
                    link.probe_at = Some(now + self.config.direct_probe_interval);
                }
                if link.relay {
                    link.check_at = Some(now + self.config.path_check_interval);
                }
                let peer = link.peer;
                let requests = std::mem::take(&mut link.requests);
                debug!(%handle, %peer, %path, "peer connected");
                if requests.is_empty() {
                    self.events.push_back(ClientEvent::PeerConnected {
                        handle,
                        peer,
                        request: None,
                        path,
                    });
                }
                for r in requests {
                    self.events.push_back(ClientEvent::PeerConnected {
                        handle,
                        peer,
                        request: Some(r),
                        path,
                    });
                }
            }
            Event::Closed { reason } if !link.connected => {
                // The application never saw this handle: report the failure
                // and forget it.
                let Some(link) = self.peers.remove(&handle) else {
                    return;
                };
                let error = match reason {
                    CloseReason::HandshakeTimeout => RendezvousError::Timeout,
                    other => RendezvousError::Connection(other),
                };
                let requests: Vec<Option<RequestId>> = if link.requests.is_empty() {
                    vec![None]
                } else {
                    link.requests.into_iter().map(Some).collect()
                };
                for request in requests {
                    self.events.push_back(ClientEvent::ConnectFailed {
                        request,
                        peer: Some(link.peer),
                        error: error.clone(),
                    });
                }
                self.endpoint.release(now, handle);
            }
            Event::Closed { .. } => {
                self.peers.remove(&handle);
                self.events
                    .push_back(ClientEvent::Connection { handle, event });
            }
            Event::PathChanged { .. } => {
                let relayed = self
                    .endpoint
                    .path_kind(handle)
                    .is_some_and(|p| p.is_relayed());
                link.probe_at = relayed.then(|| now + self.config.direct_probe_interval);
                link.probe_rounds_left = self.config.direct_probe_rounds;
                let peer = link.peer;
                self.events
                    .push_back(ClientEvent::Connection { handle, event });
                if relayed {
                    // The direct path was lost (a NAT forgot its mapping, an
                    // interface went away): the peer's addresses may have
                    // changed, so ask the server for fresh ones and a
                    // coordinated moment to punch again (spec §11.6).
                    debug!(%handle, %peer, "moved to the relay: asking for a fresh introduction");
                    self.queue_request(now, Target::Key(peer), true);
                }
            }
            event => {
                self.events
                    .push_back(ClientEvent::Connection { handle, event });
            }
        }
    }

    /// Connections still waiting for their relay fallback take it now.
    pub(super) fn relay_fallback_now(&mut self, now: Instant) {
        for link in self.peers.values_mut() {
            if let Some(at) = &mut link.fallback_at {
                *at = (*at).min(now);
            }
        }
    }

    /// Relay fallback and direct probes of introduced connections.
    pub(super) fn peer_timers(&mut self, now: Instant) {
        let server = self.config.server_addr;
        let due: Vec<ConnectionHandle> = self
            .peers
            .iter()
            .filter(|(_, p)| p.next_timer().is_some_and(|t| t <= now))
            .map(|(h, _)| *h)
            .collect();
        for handle in due {
            let Some(link) = self.peers.get_mut(&handle) else {
                continue;
            };
            if link.fallback_at.is_some_and(|t| t <= now) {
                link.fallback_at = None;
                if self.endpoint.add_candidate(now, handle, server) {
                    debug!(%handle, "no direct path yet: punching through the relay too");
                }
            }
            if link.check_at.is_some_and(|t| t <= now) {
                link.check_at = Some(now + self.config.path_check_interval);
                if let (Some(stats), Some(path)) =
                    (self.endpoint.stats(handle), self.endpoint.path_kind(handle))
                {
                    let heard = stats.packets_received != link.last_received;
                    if heard || path.is_relayed() {
                        link.last_ptos = stats.pto_count;
                    } else if stats.pto_count >= link.last_ptos + 2 {
                        // Two probe timeouts and not a packet: the direct
                        // path is gone. Try the relay (spec §11.6).
                        debug!(%handle, "direct path silent: probing the relay");
                        self.endpoint.probe_path(now, handle, server);
                        link.last_ptos = stats.pto_count;
                    }
                    link.last_received = stats.packets_received;
                }
            }
            if link.probe_at.is_some_and(|t| t <= now) {
                link.probe_at = None;
                let still_relayed = self
                    .endpoint
                    .path_kind(handle)
                    .is_some_and(|p| p.is_relayed());
                if still_relayed && link.probe_rounds_left > 0 {
                    link.probe_rounds_left -= 1;
                    for c in &link.candidates {
                        self.endpoint.probe_path(now, handle, *c);
                    }
                    // Punching failed (the connection is on the relay): once
                    // per introduction, the hard-NAT round toward the address
                    // the server observed for the peer, its first candidate
                    // (spec §4.4, §11.6). Not for a peer on our LAN.
                    if !link.hard_nat_tried {
                        link.hard_nat_tried = true;
                        let observed = link.candidates.first().copied();
                        let public =
                            |o: &SocketAddr| !is_local_scope(o.ip()) && !o.ip().is_loopback();
                        if let Some(observed) = observed.filter(public) {
                            self.endpoint.start_hard_nat_round(now, handle, observed);
                        }
                    }
                    if link.probe_rounds_left > 0 {
                        link.probe_at = Some(now + self.config.direct_probe_interval);
                    }
                }
            }
        }
    }
}
