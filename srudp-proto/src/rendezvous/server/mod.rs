//! The rendezvous server (spec §11): registrations, introductions with a
//! coordinated start, group notices, the relay and NAT tests, around one
//! [`Endpoint`] (and, optionally, a second socket for NAT tests).
//!
//! # Calling contract
//!
//! The same as [`Endpoint`]'s, for up to two sockets:
//!
//! * **Inputs**: [`handle_datagram`](RendezvousServer::handle_datagram) for
//!   each datagram on the main socket,
//!   [`handle_alt_datagram`](RendezvousServer::handle_alt_datagram) for each on
//!   the second socket ([`ServerConfig::alt_address`]), and
//!   [`handle_timeout`](RendezvousServer::handle_timeout) when
//!   [`poll_timeout`](RendezvousServer::poll_timeout) passes.
//! * **Outputs**, after every input: [`poll_transmit`](RendezvousServer::poll_transmit)
//!   (main socket) and [`poll_filter_transmit`](RendezvousServer::poll_filter_transmit)
//!   (a third, send-only socket on the second socket's IP, any port: the
//!   source of NAT filtering probes, spec §11.7; the second socket itself
//!   only receives) until `None`, with buffers of at least
//!   [`MAX_DATAGRAM_SIZE`] bytes; then [`poll_event`](RendezvousServer::poll_event)
//!   (for logs; optional) and `poll_timeout`.
//!
//! The endpoint must accept IK initiators (the default [`AcceptPolicy::AcceptAll`](crate::AcceptPolicy),
//! or an [`AcceptKeys`](crate::AcceptPolicy::AcceptKeys) list for a private
//! server). Its other connections, if any, are treated as clients too.

mod config;
mod event;
mod nat_test;
mod relay;
mod stats;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::debug;

pub use config::ServerConfig;
pub use event::ServerEvent;
use nat_test::NatTests;
pub use stats::ServerStats;

use super::candidate_filter::forwarded_candidates;
use super::close_code;
use super::group::GroupMembership;
use super::message::{ErrorCode, Message, MessageError, Name, RequestId, Target};
use super::registry::{Registry, RegistryLimits};
use super::relay_table::{RelayLimits, RelayTable};
use super::source::{SourcePrefix, SourceRate, SourceRateTable};
use super::stream::MessageStream;
use crate::token_bucket::TokenBucket;
use crate::wire::relay::is_relay_data;
use crate::wire::{MAX_DATAGRAM_SIZE, NAT_PROBE_SIZE};
use crate::{
    ConfigError, ConnectionHandle, Endpoint, Event, PublicKey, RelaySessionId, Rng, Transmit,
};

/// Most events kept when nobody polls them.
const MAX_EVENTS: usize = 1024;

/// One client connection.
#[derive(Debug)]
struct Link {
    /// The client's key, when it connected with IK.
    key: Option<PublicKey>,
    /// Where the connection came from (its first remote address): what the
    /// client's registration, relays and requests count against.
    source: SourcePrefix,
    stream: MessageStream,
    requests: TokenBucket,
    relay: TokenBucket,
}

/// A rendezvous server around one [`Endpoint`]. See the module docs for the
/// calling contract.
#[derive(Debug)]
pub struct RendezvousServer {
    endpoint: Endpoint,
    config: ServerConfig,
    rng: Rng,
    now: Instant,
    links: BTreeMap<ConnectionHandle, Link>,
    registry: Registry,
    relays: RelayTable,
    sources: SourceRateTable,
    nat_tests: NatTests,
    relay_queue: VecDeque<(SocketAddr, Vec<u8>)>,
    spare_buffers: Vec<Vec<u8>>,
    /// Unsolicited filtering probes, for the send-only third socket.
    filter_queue: VecDeque<(SocketAddr, [u8; NAT_PROBE_SIZE])>,
    events: VecDeque<ServerEvent>,
    stats: ServerStats,
    warned_small_buffer: bool,
}

impl RendezvousServer {
    /// A server answering on `endpoint` (whose key clients must know).
    pub fn new(
        now: Instant,
        endpoint: Endpoint,
        config: ServerConfig,
    ) -> Result<RendezvousServer, ConfigError> {
        config.validate()?;
        let rng = match config.rng_seed {
            Some(seed) => Rng::from_seed(seed),
            None => Rng::from_os(),
        };
        Ok(RendezvousServer {
            endpoint,
            config,
            rng,
            now,
            links: BTreeMap::new(),
            registry: Registry::default(),
            relays: RelayTable::default(),
            sources: SourceRateTable::default(),
            nat_tests: NatTests::default(),
            relay_queue: VecDeque::new(),
            spare_buffers: Vec::new(),
            filter_queue: VecDeque::new(),
            events: VecDeque::new(),
            stats: ServerStats::default(),
            warned_small_buffer: false,
        })
    }

    // ----- getters ---------------------------------------------------------

    /// The endpoint (for its key and statistics).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    /// Registrations held.
    pub fn registration_count(&self) -> usize {
        self.registry.len()
    }

    /// Relay sessions allotted (in use by a pair that relays).
    pub fn relay_count(&self) -> usize {
        self.relays.len()
    }

    /// Relay sessions offered by introductions and not yet used.
    pub fn relay_offer_count(&self) -> usize {
        self.relays.offer_count()
    }

    /// Registrations held for clients from `source`.
    pub fn registrations_from(&self, source: SourcePrefix) -> usize {
        self.registry.count_from(source)
    }

    /// Relay sessions allotted for introductions `source` asked for.
    pub fn relays_allotted_to(&self, source: SourcePrefix) -> usize {
        self.relays.allotted_to(source)
    }

    /// Bytes of messages the server holds for the registered client `key`:
    /// written into its connection and not yet acknowledged, plus queued
    /// beyond it. At most [`ServerConfig::max_backlog`]: beyond it the client
    /// is dropped (spec §11.3).
    pub fn held_for(&self, key: &PublicKey) -> Option<usize> {
        let handle = self.registry.get(key)?.handle;
        let link = self.links.get(&handle)?;
        Some(link.stream.held(&self.endpoint, handle))
    }

    /// NAT tests waiting for the client's probe (at most one per client).
    pub fn nat_test_count(&self) -> usize {
        self.nat_tests.len()
    }

    /// Whether `key` is registered, and at which observed address.
    pub fn registered_address(&self, key: &PublicKey) -> Option<SocketAddr> {
        let r = self.registry.get(key)?;
        self.endpoint.remote_address(r.handle)
    }

    /// The current remote addresses of the client connections the server
    /// holds (each opened by a completed handshake): what an adapter checks
    /// its stream carrier paths against, to drop a TCP connection that
    /// carries no authenticated client (spec §12.4). O(clients).
    pub fn client_addresses(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.links
            .keys()
            .filter_map(|&handle| self.endpoint.remote_address(handle))
    }

    // ----- inputs ----------------------------------------------------------

    /// A datagram arrived on the main socket.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.now = self.now.max(now);
        if is_relay_data(datagram) {
            self.relay(now, from, datagram);
        } else {
            self.endpoint.handle_datagram(now, from, datagram);
            self.process_endpoint_events(now);
        }
    }

    /// Processes timers that expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.endpoint.handle_timeout(now);
        while let Some((key, r)) = self.registry.pop_expired(now) {
            debug!(%key, "registration expired");
            self.after_unregister(now, key, &r.groups);
        }
        self.relays.expire(now, self.config.relay_idle_timeout);
        self.nat_tests.expire(now);
        self.process_endpoint_events(now);
    }

    // ----- outputs ---------------------------------------------------------

    /// The next datagram for the main socket. `buf` must hold
    /// [`MAX_DATAGRAM_SIZE`] bytes for relayed datagrams to go out.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.now = self.now.max(now);
        self.process_endpoint_events(now);
        if buf.len() < MAX_DATAGRAM_SIZE && !self.warned_small_buffer {
            self.warned_small_buffer = true;
            tracing::warn!(
                len = buf.len(),
                "transmit buffer smaller than MAX_DATAGRAM_SIZE: the relay cannot send"
            );
        }
        if buf.len() >= MAX_DATAGRAM_SIZE {
            if let Some((destination, datagram)) = self.relay_queue.pop_front() {
                let size = datagram.len();
                buf[..size].copy_from_slice(&datagram);
                self.spare_buffers.push(datagram);
                return Some(Transmit {
                    destination,
                    size,
                    hop_limit: None,
                    spare_sockets: 0,
                });
            }
        }
        self.endpoint.poll_transmit(now, buf)
    }

    /// The next instant at which to call [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.endpoint.poll_timeout(),
            self.registry.next_expiry(),
            self.relays.next_check(),
            self.nat_tests.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next event for the operator's log.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    // ----- internals -------------------------------------------------------

    fn event(&mut self, e: ServerEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn process_endpoint_events(&mut self, now: Instant) {
        while let Some((handle, event)) = self.endpoint.poll_event() {
            match event {
                Event::Connected { peer, .. } => {
                    let Some(remote) = self.endpoint.remote_address(handle) else {
                        continue;
                    };
                    let source = SourcePrefix::of(remote.ip());
                    self.sources.link_opened(
                        source,
                        self.config.introduction_rate_per_source,
                        self.config.nat_test_rate_per_source,
                    );
                    let link = Link {
                        key: peer,
                        source,
                        stream: MessageStream::new(self.config.max_backlog),
                        requests: TokenBucket::new(self.config.request_rate),
                        relay: TokenBucket::new(self.config.relay_client_rate),
                    };
                    self.links.insert(handle, link);
                }
                Event::Readable => self.read_messages(now, handle),
                Event::Writable => {
                    if let Some(link) = self.links.get_mut(&handle) {
                        link.stream.flush(&mut self.endpoint, handle);
                    }
                }
                Event::PeerFinished => {
                    // The client said goodbye; do the same.
                    let _ = self.endpoint.finish(handle);
                }
                Event::Closed { .. } => self.drop_link(now, handle),
                _ => {}
            }
        }
    }

    fn read_messages(&mut self, now: Instant, handle: ConnectionHandle) {
        loop {
            let Some(link) = self.links.get_mut(&handle) else {
                return;
            };
            match link.stream.next_message(&mut self.endpoint, handle) {
                Ok(Some(m)) => self.handle_message(now, handle, m),
                Ok(None) => return,
                Err(e) => {
                    self.misbehaved(now, handle, &e);
                    return;
                }
            }
        }
    }

    /// Closes a client's connection for a malformed message (spec §11.2):
    /// only that client is affected.
    fn misbehaved(&mut self, now: Instant, handle: ConnectionHandle, e: &MessageError) {
        debug!(%handle, "closing a client connection: {e}");
        self.stats.clients_dropped += 1;
        self.endpoint.close(
            now,
            handle,
            close_code::MALFORMED_MESSAGE,
            format!("malformed rendezvous message: {e}").as_bytes(),
        );
        self.event(ServerEvent::ClientDropped {
            handle,
            reason: e.to_string(),
        });
        self.drop_link(now, handle);
    }

    /// Forgets a client connection and its registration.
    fn drop_link(&mut self, now: Instant, handle: ConnectionHandle) {
        if let Some(link) = self.links.remove(&handle) {
            self.sources.link_closed(link.source);
            if let Some(key) = link.key {
                if self.registry.get(&key).is_some_and(|r| r.handle == handle) {
                    if let Some(r) = self.registry.remove(&key) {
                        self.after_unregister(now, key, &r.groups);
                    }
                }
            }
        }
        self.nat_tests.forget_client(handle);
        self.endpoint.release(now, handle);
    }

    fn after_unregister(&mut self, now: Instant, key: PublicKey, groups: &[GroupMembership]) {
        for g in groups {
            let members: Vec<PublicKey> = self.registry.members(&g.group).copied().collect();
            for m in members {
                self.notify(
                    now,
                    &m,
                    &Message::PeerLeft {
                        group: g.group,
                        peer: key,
                    },
                );
            }
        }
        self.event(ServerEvent::Unregistered { key });
    }

    /// Sends a message to a client connection; a client that does not read
    /// its messages is dropped.
    fn send(&mut self, now: Instant, handle: ConnectionHandle, m: &Message) {
        let Some(link) = self.links.get_mut(&handle) else {
            return;
        };
        if link.stream.send(&mut self.endpoint, handle, m).is_err() {
            debug!(%handle, "client does not read its messages: closing");
            self.stats.clients_dropped += 1;
            self.endpoint.close(
                now,
                handle,
                close_code::BACKLOG,
                b"too many unread messages",
            );
            self.event(ServerEvent::ClientDropped {
                handle,
                reason: "backlog overflow".into(),
            });
            self.drop_link(now, handle);
        }
    }

    /// Sends a message to the registered client `key`.
    fn notify(&mut self, now: Instant, key: &PublicKey, m: &Message) {
        if let Some(handle) = self.registry.get(key).map(|r| r.handle) {
            self.send(now, handle, m);
        }
    }

    fn error(
        &mut self,
        now: Instant,
        handle: ConnectionHandle,
        request: RequestId,
        code: ErrorCode,
    ) {
        self.send(now, handle, &Message::Error { request, code });
    }

    fn handle_message(&mut self, now: Instant, handle: ConnectionHandle, m: Message) {
        let request = match &m {
            Message::Register { request, .. }
            | Message::Connect { request, .. }
            | Message::NatTest { request } => Some(*request),
            Message::Unregister { .. } => None,
            Message::Opened { peer } => {
                self.forward_opened(now, handle, *peer);
                return;
            }
            // Server-to-client messages from a client: ignored.
            _ => return,
        };
        if let Some(request) = request {
            let limit = self.config.request_rate;
            let Some(link) = self.links.get_mut(&handle) else {
                return;
            };
            if !link.requests.try_take(limit, now, 1) {
                self.stats.rate_limited += 1;
                self.error(now, handle, request, ErrorCode::RateLimited);
                return;
            }
        }
        match m {
            Message::Register {
                request,
                name,
                groups,
                candidates,
                stream_only,
            } => self.register(now, handle, request, name, groups, candidates, stream_only),
            Message::Unregister { .. } => {
                let key = self.links.get(&handle).and_then(|l| l.key);
                if let Some(key) = key {
                    if self.registry.get(&key).is_some_and(|r| r.handle == handle) {
                        if let Some(r) = self.registry.remove(&key) {
                            self.after_unregister(now, key, &r.groups);
                        }
                    }
                }
            }
            Message::Connect { request, target } => self.introduce(now, handle, request, target),
            Message::NatTest { request } => self.nat_test(now, handle, request),
            _ => {}
        }
    }

    /// Opened (spec §11.4): the client's NAT is open toward `peer`; tells
    /// `peer`, if the two were introduced (they hold a relay session) and
    /// both are registered. Drawn on the client's request rate, without an
    /// answer: a client can only notify peers it was introduced to, once
    /// per request it may make.
    fn forward_opened(&mut self, now: Instant, handle: ConnectionHandle, peer: PublicKey) {
        let limit = self.config.request_rate;
        let Some(link) = self.links.get_mut(&handle) else {
            return;
        };
        if !link.requests.try_take(limit, now, 1) {
            self.stats.rate_limited += 1;
            return;
        }
        let Some(from) = link.key else {
            return;
        };
        let registered_here = self.registry.get(&from).is_some_and(|r| r.handle == handle);
        if !registered_here || !self.relays.has_pair(from, peer) {
            return;
        }
        let Some(to) = self.registry.get(&peer).map(|r| r.handle) else {
            return;
        };
        self.send(now, to, &Message::PeerOpened { peer: from });
    }

    #[allow(clippy::too_many_arguments)]
    fn register(
        &mut self,
        now: Instant,
        handle: ConnectionHandle,
        request: RequestId,
        name: Option<Name>,
        groups: Vec<GroupMembership>,
        candidates: Vec<SocketAddr>,
        stream_only: bool,
    ) {
        let Some(link) = self.links.get(&handle) else {
            return;
        };
        let source = link.source;
        let Some(key) = link.key else {
            self.error(now, handle, request, ErrorCode::NotAuthenticated);
            return;
        };
        let Some(observed) = self.endpoint.remote_address(handle) else {
            return;
        };
        let limits = RegistryLimits {
            max_registrations: self.config.max_registrations,
            max_registrations_per_source: self.config.max_registrations_per_source,
            max_group_members: self.config.max_group_members,
        };
        let expires = now + self.config.registration_expiry;
        let outcome = match self.registry.register(
            key,
            handle,
            source,
            name.clone(),
            groups,
            candidates,
            expires,
            limits,
        ) {
            Ok(o) => o,
            Err(code) => {
                if code == ErrorCode::QuotaExceeded {
                    self.stats.source_limited += 1;
                }
                self.error(now, handle, request, code);
                return;
            }
        };
        self.stats.registrations += 1;
        self.registry.set_stream_only(&key, stream_only);
        if let Some(old) = outcome.replaced {
            // The key proved itself again on a new connection (a restarted
            // client, a new NAT mapping): the old one is stale.
            debug!(%key, %old, "registration moved to a new connection");
            self.endpoint.close(
                now,
                old,
                close_code::REPLACED,
                b"registered again from another connection",
            );
            if let Some(old_link) = self.links.remove(&old) {
                self.sources.link_closed(old_link.source);
            }
            self.nat_tests.forget_client(old);
            self.endpoint.release(now, old);
        }
        self.send(
            now,
            handle,
            &Message::Registered {
                request,
                observed,
                refresh_secs: self.config.refresh_interval.as_secs().max(1) as u16,
                expiry_secs: self.config.registration_expiry.as_secs() as u16,
            },
        );
        if outcome.new || outcome.replaced.is_some() {
            self.event(ServerEvent::Registered {
                key,
                name: name.clone(),
                observed,
            });
        }
        for g in &outcome.left {
            let members: Vec<PublicKey> = self.registry.members(g).copied().collect();
            for m in members {
                let notice = Message::PeerLeft {
                    group: *g,
                    peer: key,
                };
                self.notify(now, &m, &notice);
            }
        }
        // Members learn of each other only through groups whose id they
        // presented, and with each other's proof of the secret (spec §11.3).
        for g in &outcome.joined {
            let Some(proof) = self.registry.proof_of(&key, g) else {
                continue;
            };
            let members: Vec<PublicKey> = self
                .registry
                .members(g)
                .copied()
                .filter(|m| *m != key)
                .collect();
            for m in members {
                let Some(member_proof) = self.registry.proof_of(&m, g) else {
                    continue;
                };
                let to_member = Message::PeerJoined {
                    group: *g,
                    peer: key,
                    name: name.clone(),
                    proof,
                };
                self.notify(now, &m, &to_member);
                let to_newcomer = Message::PeerJoined {
                    group: *g,
                    peer: m,
                    name: self.registry.get(&m).and_then(|r| r.name.clone()),
                    proof: member_proof,
                };
                self.send(now, handle, &to_newcomer);
            }
        }
    }

    /// A Connect request (spec §11.4).
    fn introduce(
        &mut self,
        now: Instant,
        handle: ConnectionHandle,
        request: RequestId,
        target: Target,
    ) {
        let Some(link) = self.links.get(&handle) else {
            return;
        };
        let source = link.source;
        let caller = match link.key {
            Some(k) if self.registry.get(&k).is_some_and(|r| r.handle == handle) => k,
            _ => {
                self.error(now, handle, request, ErrorCode::NotRegistered);
                return;
            }
        };
        let limit = self.config.introduction_rate_per_source;
        if !self
            .sources
            .try_take(source, SourceRate::Introduction, limit, now)
        {
            self.stats.source_limited += 1;
            self.error(now, handle, request, ErrorCode::RateLimited);
            return;
        }
        let Some((callee, callee_reg)) = self.registry.lookup(&target) else {
            self.stats.peer_unknown += 1;
            self.error(now, handle, request, ErrorCode::PeerUnknown);
            return;
        };
        if callee == caller {
            self.error(now, handle, request, ErrorCode::InvalidRequest);
            return;
        }
        let callee_handle = callee_reg.handle;
        let Some(caller_reg) = self.registry.get(&caller) else {
            return;
        };
        let (Some(caller_cands), Some(callee_cands)) = (
            self.candidates(handle, &caller_reg.candidates),
            self.candidates(callee_handle, &callee_reg.candidates),
        ) else {
            self.error(now, handle, request, ErrorCode::PeerUnknown);
            return;
        };
        let caller_name = caller_reg.name.clone();
        let callee_name = callee_reg.name.clone();
        let (caller_stream_only, callee_stream_only) =
            (caller_reg.stream_only, callee_reg.stream_only);
        let limits = self.relay_limits();
        let relay = self
            .relays
            .offer(caller, callee, source, now, &limits, &mut self.rng);
        // Both start punching at the same moment: each message takes about
        // half its connection's RTT to arrive (spec §11.4).
        let rtt = |h| self.endpoint.stats(h).map_or(Duration::ZERO, |s| s.srtt);
        let (rtt_caller, rtt_callee) = (rtt(handle), rtt(callee_handle));
        let meet = rtt_caller.max(rtt_callee) / 2 + self.config.start_margin;
        let start_in = |own: Duration| {
            let d = meet.saturating_sub(own / 2);
            u16::try_from(d.as_millis()).unwrap_or(u16::MAX)
        };
        let relay_session = relay.unwrap_or(0);
        self.send(
            now,
            handle,
            &Message::Introduce {
                request,
                peer: callee,
                name: callee_name,
                start_in_ms: start_in(rtt_caller),
                relay_session,
                candidates: callee_cands,
                peer_stream_only: callee_stream_only,
            },
        );
        self.send(
            now,
            callee_handle,
            &Message::Introduce {
                request: 0,
                peer: caller,
                name: caller_name,
                start_in_ms: start_in(rtt_callee),
                relay_session,
                candidates: caller_cands,
                peer_stream_only: caller_stream_only,
            },
        );
        self.stats.introductions += 1;
        debug!(%caller, %callee, relay = ?relay, "introduced");
        self.event(ServerEvent::Introduced {
            caller,
            callee,
            relay: relay.map(RelaySessionId),
        });
    }

    /// The relay table's bounds, from the configuration.
    pub(super) fn relay_limits(&self) -> RelayLimits {
        RelayLimits {
            max_relays: self.config.max_relays,
            max_relays_per_source: self.config.max_relays_per_source,
            max_offers: self.config.max_relay_offers,
            max_offers_per_source: self.config.max_relay_offers_per_source,
            idle: self.config.relay_idle_timeout,
            pair_rate: self.config.relay_pair_rate,
        }
    }

    /// A client's candidates: the observed address first, then the host
    /// addresses the server can justify (spec §11.4, `candidate_filter`).
    fn candidates(
        &self,
        handle: ConnectionHandle,
        hosts: &[SocketAddr],
    ) -> Option<Vec<SocketAddr>> {
        let observed = self.endpoint.remote_address(handle)?;
        Some(forwarded_candidates(observed, hosts))
    }
}
