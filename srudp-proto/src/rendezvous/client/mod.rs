//! The rendezvous client (spec §11): keeps a registration at a rendezvous
//! server alive over the endpoint's own socket, connects to peers by key or
//! name through introductions, falls back to the server's relay, and learns
//! its NAT's behaviour.
//!
//! # Calling contract
//!
//! A [`RendezvousClient`] owns the application's [`Endpoint`] and is driven
//! exactly like it, in its place:
//!
//! * **Inputs**: [`handle_datagram`](RendezvousClient::handle_datagram) for
//!   every datagram the socket receives, [`handle_timeout`](RendezvousClient::handle_timeout)
//!   when [`poll_timeout`](RendezvousClient::poll_timeout) passes.
//! * **Commands**: [`connect_by_key`](RendezvousClient::connect_by_key),
//!   [`connect_by_name`](RendezvousClient::connect_by_name),
//!   [`detect_nat`](RendezvousClient::detect_nat); every other command
//!   (`write`, `read`, `finish`, `close`, `release`, plain `connect`) goes to
//!   the endpoint through [`endpoint_mut`](RendezvousClient::endpoint_mut).
//! * **Outputs**, after every input or command:
//!   [`poll_transmit`](RendezvousClient::poll_transmit) until `None` (with a
//!   buffer of [`MAX_DATAGRAM_SIZE`](crate::wire::MAX_DATAGRAM_SIZE) bytes), then
//!   [`poll_event`](RendezvousClient::poll_event) until `None` — it yields the
//!   endpoint's events too, as [`ClientEvent::Connection`] — then
//!   `poll_timeout`. Do not poll the endpoint's own events or transmits.
//!
//! The client connects to the server with IK (so the server learns and
//! authenticates its key), registers, refreshes the registration every
//! `refresh_interval`, and after losing the server (a restart, a dead NAT
//! mapping) reconnects with exponential backoff and registers again.

mod config;
mod error;
mod event;
mod introductions;
mod nat_test;
mod waiting_ping;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::debug;

pub use config::ClientConfig;
pub use error::RendezvousError;
pub use event::ClientEvent;
use introductions::{HeldIntroduction, PeerLink, Request};
use nat_test::{NatObservation, NatTest};

use super::message::{ErrorCode, Message, RequestId, Target, MAX_MESSAGE_CANDIDATES};
use super::stream::MessageStream;
use super::{NatBehavior, NatFiltering, NatMapping};
use crate::wire::relay::is_nat_probe;
use crate::wire::{NatProbe, NAT_PROBE_SIZE};
use crate::{
    CloseReason, ConfigError, ConnectOptions, ConnectionHandle, Endpoint, Event, HandshakePattern,
    PathKind, PublicKey, Rng, Transmit,
};

/// The state of the link to the server.
#[derive(Debug, Clone, Copy)]
enum Link {
    /// Not connected; try again at `retry_at`.
    Down { retry_at: Instant },
    /// Handshaking with the server.
    Connecting(ConnectionHandle),
    /// Connected (registered or registering).
    Up(ConnectionHandle),
}

/// A rendezvous client around the application's [`Endpoint`]. See the
/// module docs for the calling contract.
#[derive(Debug)]
pub struct RendezvousClient {
    endpoint: Endpoint,
    config: ClientConfig,
    rng: Rng,
    now: Instant,
    link: Link,
    stream: MessageStream,
    backoff: Duration,
    next_request: RequestId,
    /// The Register request awaiting its answer, and its deadline.
    register_pending: Option<(RequestId, Instant)>,
    registered: bool,
    refresh_at: Option<Instant>,
    refresh_interval: Duration,
    observed: Option<SocketAddr>,
    requests: BTreeMap<RequestId, Request>,
    peers: BTreeMap<ConnectionHandle, PeerLink>,
    /// Incoming introduced connections waiting for our Introduce of their
    /// peer (spec §11.4); at most `max_held_introductions`.
    held: BTreeMap<ConnectionHandle, HeldIntroduction>,
    nat: NatTest,
    nat_result: Option<NatBehavior>,
    raw_queue: VecDeque<(SocketAddr, [u8; NAT_PROBE_SIZE])>,
    events: VecDeque<ClientEvent>,
    warned_small_buffer: bool,
    /// The server link rides the stream carrier (spec §12.5): UDP is
    /// blocked here, so introduced connections relay from their start.
    link_on_stream: bool,
    /// When to ping the server link next while something waits on it
    /// (`waiting_ping.rs`).
    waiting_ping_at: Option<Instant>,
}

impl RendezvousClient {
    /// A client that starts connecting to its server at once.
    pub fn new(
        now: Instant,
        endpoint: Endpoint,
        config: ClientConfig,
    ) -> Result<RendezvousClient, ConfigError> {
        config.validate()?;
        if config.server_key == endpoint.public_key() {
            return Err(ConfigError(
                "the rendezvous server's key is this endpoint's own".into(),
            ));
        }
        let rng = match config.rng_seed {
            Some(seed) => Rng::from_seed(seed),
            None => Rng::from_os(),
        };
        let mut client = RendezvousClient {
            endpoint,
            rng,
            now,
            link: Link::Down { retry_at: now },
            stream: MessageStream::new(config.max_backlog),
            backoff: config.reconnect_initial,
            next_request: 1,
            register_pending: None,
            registered: false,
            refresh_at: None,
            refresh_interval: config.refresh_interval,
            observed: None,
            requests: BTreeMap::new(),
            peers: BTreeMap::new(),
            held: BTreeMap::new(),
            nat: NatTest::default(),
            nat_result: None,
            raw_queue: VecDeque::new(),
            events: VecDeque::new(),
            warned_small_buffer: false,
            link_on_stream: false,
            waiting_ping_at: None,
            config,
        };
        client.connect_link(now);
        Ok(client)
    }

    /// Adds `candidate` to the host candidates we register (e.g. the
    /// external address of a port mapping our gateway granted, which the
    /// adapter learns after the client started) and registers again at once
    /// if we are registered (or registering: the newer Register's answer
    /// is the one awaited), so peers introduced from now on punch toward it
    /// too. Ignored when already present or when the list is full
    /// ([`MAX_MESSAGE_CANDIDATES`]). The server forwards it to peers only
    /// if it can justify it (spec §11.4).
    pub fn add_host_candidate(&mut self, now: Instant, candidate: SocketAddr) {
        let hosts = &mut self.config.host_candidates;
        if hosts.contains(&candidate) || hosts.len() >= MAX_MESSAGE_CANDIDATES {
            return;
        }
        hosts.push(candidate);
        if self.registered || self.register_pending.is_some() {
            self.register(now);
        }
    }

    /// Tells the client which carrier its server link rides (the adapter
    /// knows; spec §12.5). On the stream carrier, UDP does not pass here:
    /// introduced connections punch through the relay from their
    /// coordinated start instead of after `relay_fallback` (their direct
    /// punches still go out, and a direct path found later still takes
    /// over, §11.6); connections still punching go to the relay at once.
    ///
    /// The client also tells the server, in its Register (spec §11.2
    /// `flags`), re-sent at once when this changes while registered: the
    /// server passes it on in the Introduce its peers get, and they go to
    /// the relay at the start too rather than after their own
    /// `relay_fallback` — their punches toward us cannot succeed.
    pub fn set_link_carrier(&mut self, now: Instant, carrier: crate::stream_carrier::Carrier) {
        let on_stream = carrier == crate::stream_carrier::Carrier::Stream;
        let changed = on_stream != self.link_on_stream;
        self.link_on_stream = on_stream;
        if self.link_on_stream {
            self.relay_fallback_now(now);
        }
        if changed && self.registered {
            self.register(now);
        }
    }

    // ----- getters ---------------------------------------------------------

    /// The endpoint, for getters.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The endpoint, for commands on application connections (`write`,
    /// `read`, `finish`, `close`, `release`, plain `connect`). Do not poll it.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Whether the server currently holds our registration.
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// Our address as the server last observed it (server-reflexive).
    pub fn observed_address(&self) -> Option<SocketAddr> {
        self.observed
    }

    /// The result of the last NAT behaviour test.
    pub fn nat_behavior(&self) -> Option<NatBehavior> {
        self.nat_result
    }

    /// Whether a connection reaches its peer directly or through the relay.
    pub fn path_kind(&self, handle: ConnectionHandle) -> Option<PathKind> {
        self.endpoint.path_kind(handle)
    }

    /// The connection to the rendezvous server, while there is one.
    pub fn server_link(&self) -> Option<ConnectionHandle> {
        match self.link {
            Link::Connecting(h) | Link::Up(h) => Some(h),
            Link::Down { .. } => None,
        }
    }

    /// Stops the client and hands back its endpoint, for shutting down:
    /// nothing refreshes the registration or reconnects anymore. The link
    /// to the server (see [`server_link`](Self::server_link), taken before)
    /// stays open in the endpoint; close it. Connections being introduced
    /// and not yet reported are the endpoint's from now on (their events
    /// are no longer translated).
    pub fn into_endpoint(self) -> Endpoint {
        self.endpoint
    }

    // ----- commands --------------------------------------------------------

    /// Asks the server to introduce us to the peer registered with `peer`.
    /// The outcome is a [`ClientEvent::PeerConnected`] or
    /// [`ClientEvent::ConnectFailed`] carrying the returned request number.
    pub fn connect_by_key(
        &mut self,
        now: Instant,
        peer: PublicKey,
    ) -> Result<RequestId, RendezvousError> {
        if peer == self.endpoint.public_key() {
            return Err(RendezvousError::SelfConnect);
        }
        self.request_connect(now, Target::Key(peer))
    }

    /// Asks the server to introduce us to the peer registered as `name`.
    /// Our own name is [`RendezvousError::SelfConnect`], as our own key is.
    pub fn connect_by_name(
        &mut self,
        now: Instant,
        name: &str,
    ) -> Result<RequestId, RendezvousError> {
        let name = super::message::Name::new(name).map_err(|_| RendezvousError::InvalidName)?;
        if self.config.name.as_ref() == Some(&name) {
            return Err(RendezvousError::SelfConnect);
        }
        self.request_connect(now, Target::Name(name))
    }

    /// Runs a NAT behaviour test now (one runs by itself after the first
    /// registration when [`ClientConfig::detect_nat`] is set). The result
    /// comes as [`ClientEvent::NatDetected`]. Returns `false` if the link is
    /// not up or a test is already running.
    pub fn detect_nat(&mut self, now: Instant) -> bool {
        self.now = self.now.max(now);
        let Link::Up(handle) = self.link else {
            return false;
        };
        if self.nat.is_running() {
            return false;
        }
        let request = self.new_request_id();
        self.nat.start(request, now + self.config.reply_timeout);
        self.send(now, handle, &Message::NatTest { request });
        true
    }

    // ----- inputs ----------------------------------------------------------

    /// Processes a datagram received from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if self.took_nat_probe(now, datagram) {
            return;
        }
        self.endpoint.handle_datagram(now, from, datagram);
        self.process(now);
    }

    /// As [`handle_datagram`](Self::handle_datagram), with a data packet
    /// opened in `datagram` itself
    /// ([`Endpoint::handle_datagram_in_place`]); its bytes are unspecified
    /// afterwards.
    pub fn handle_datagram_in_place(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &mut [u8],
    ) {
        if self.took_nat_probe(now, datagram) {
            return;
        }
        self.endpoint.handle_datagram_in_place(now, from, datagram);
        self.process(now);
    }

    /// Advances the clock to `now` and, if `datagram` is a NAT-test probe
    /// (not a packet for the endpoint), takes it; says whether it did.
    fn took_nat_probe(&mut self, now: Instant, datagram: &[u8]) -> bool {
        self.now = self.now.max(now);
        if !is_nat_probe(datagram) {
            return false;
        }
        if let Ok(probe) = NatProbe::parse(datagram) {
            self.nat.on_probe(probe.token);
        }
        true
    }

    /// Processes every timer that expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.endpoint.handle_timeout(now);
        self.process(now);
        if let Link::Down { retry_at } = self.link {
            if retry_at <= now {
                self.connect_link(now);
            }
        }
        if let Some((_, deadline)) = self.register_pending {
            if deadline <= now {
                debug!("the rendezvous server did not answer: reconnecting");
                self.link_lost(now, CloseReason::IdleTimeout);
            }
        }
        if self.refresh_at.is_some_and(|t| t <= now) {
            self.refresh_at = None;
            self.register(now);
        }
        self.expire_requests(now);
        self.release_held(now);
        self.peer_timers(now);
        self.nat_timers(now);
        self.process(now);
    }

    // ----- outputs ---------------------------------------------------------

    /// Writes the next datagram to send into `buf` and says where it goes.
    /// Use a buffer of [`MAX_DATAGRAM_SIZE`](crate::wire::MAX_DATAGRAM_SIZE) bytes, relay envelopes
    /// included: the endpoint does not send with less.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.now = self.now.max(now);
        self.process(now);
        if buf.len() < crate::wire::MAX_DATAGRAM_SIZE && !self.warned_small_buffer {
            self.warned_small_buffer = true;
            tracing::warn!(
                len = buf.len(),
                "transmit buffer smaller than MAX_DATAGRAM_SIZE: the endpoint cannot send"
            );
        }
        if let Some((destination, probe)) = self.raw_queue.front() {
            let size = probe.len();
            if let Some(out) = buf.get_mut(..size) {
                out.copy_from_slice(probe);
                let destination = *destination;
                self.raw_queue.pop_front();
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

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.process(self.now);
        self.events.pop_front()
    }

    /// The next instant at which to call [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let link = match self.link {
            Link::Down { retry_at } => Some(retry_at),
            _ => None,
        };
        let requests = self.requests.values().map(|r| r.deadline).min();
        let peers = self.peers.values().filter_map(PeerLink::next_timer).min();
        let held = self.held.values().map(|h| h.until).min();
        [
            held,
            self.endpoint.poll_timeout(),
            link,
            self.register_pending.map(|(_, t)| t),
            self.refresh_at,
            requests,
            peers,
            self.nat.poll_timeout(),
            self.waiting_ping_timer(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- the link to the server ------------------------------------------

    fn new_request_id(&mut self) -> RequestId {
        let id = self.next_request;
        self.next_request = self.next_request.wrapping_add(1).max(1);
        id
    }

    fn connect_link(&mut self, now: Instant) {
        let options = ConnectOptions {
            peer: self.config.server_key,
            candidates: vec![self.config.server_addr],
            pattern: Some(HandshakePattern::IK),
            ticket: None,
        };
        match self.endpoint.connect_with(now, options) {
            Ok(handle) => {
                debug!(%handle, server = %self.config.server_addr, "connecting to the rendezvous server");
                self.stream = MessageStream::new(self.config.max_backlog);
                self.link = Link::Connecting(handle);
            }
            Err(e) => {
                debug!("cannot connect to the rendezvous server: {e}");
                self.schedule_reconnect(now);
            }
        }
    }

    fn schedule_reconnect(&mut self, now: Instant) {
        // Up to a quarter of jitter, so clients that lost the same server do
        // not all come back at the same instant.
        let jitter_ms = self.rng.below(self.backoff.as_millis() as u64 / 4 + 1);
        self.link = Link::Down {
            retry_at: now + self.backoff + Duration::from_millis(jitter_ms),
        };
        self.backoff = (self.backoff * 2).min(self.config.reconnect_max);
    }

    /// The link is gone: forget it and reconnect later.
    fn link_lost(&mut self, now: Instant, reason: CloseReason) {
        let was_up = matches!(self.link, Link::Up(_));
        if let Some(handle) = self.server_link() {
            self.endpoint.release(now, handle);
        }
        if was_up {
            self.events.push_back(ClientEvent::Disconnected { reason });
        }
        self.registered = false;
        self.register_pending = None;
        self.refresh_at = None;
        if self.nat.is_running() {
            self.nat = NatTest::default();
        }
        for r in self.requests.values_mut() {
            r.sent = false;
        }
        self.schedule_reconnect(now);
    }

    fn send(&mut self, now: Instant, handle: ConnectionHandle, m: &Message) {
        if self.stream.send(&mut self.endpoint, handle, m).is_err() {
            debug!("the rendezvous server does not read our messages: reconnecting");
            self.link_lost(now, CloseReason::IdleTimeout);
        }
    }

    fn register(&mut self, now: Instant) {
        let Link::Up(handle) = self.link else {
            return;
        };
        let request = self.new_request_id();
        self.register_pending = Some((request, now + self.config.reply_timeout));
        let m = Message::Register {
            request,
            name: self.config.name.clone(),
            groups: self
                .config
                .groups
                .iter()
                .map(|g| g.membership(&self.endpoint.public_key()))
                .collect(),
            candidates: self.config.host_candidates.clone(),
            stream_only: self.link_on_stream,
        };
        self.send(now, handle, &m);
    }

    /// Drains the endpoint's events: the link's are ours, introduced
    /// connections' are translated, the rest goes to the application.
    fn process(&mut self, now: Instant) {
        while let Some((handle, event)) = self.endpoint.poll_event() {
            if self.server_link() == Some(handle) {
                self.on_link_event(now, handle, event);
            } else if self.peers.contains_key(&handle) {
                self.on_peer_event(now, handle, event);
            } else if self.held.contains_key(&handle) {
                self.on_held_event(now, handle, event);
            } else if matches!(event, Event::Connected { incoming: true, .. })
                && self.hold(now, handle)
            {
            } else {
                self.events
                    .push_back(ClientEvent::Connection { handle, event });
            }
        }
        self.ping_while_waiting(now);
    }

    fn on_link_event(&mut self, now: Instant, handle: ConnectionHandle, event: Event) {
        match event {
            Event::Connected { .. } => {
                debug!(%handle, "connected to the rendezvous server");
                self.link = Link::Up(handle);
                self.register(now);
                self.send_queued_requests(now);
            }
            Event::Readable => self.read_messages(now, handle),
            Event::Writable => self.stream.flush(&mut self.endpoint, handle),
            Event::Closed { reason } => {
                debug!(%handle, "lost the rendezvous server: {reason}");
                self.link_lost(now, reason);
            }
            _ => {}
        }
    }

    fn read_messages(&mut self, now: Instant, handle: ConnectionHandle) {
        while self.server_link() == Some(handle) {
            match self.stream.next_message(&mut self.endpoint, handle) {
                Ok(Some(m)) => self.on_message(now, m),
                Ok(None) => return,
                Err(e) => {
                    debug!("malformed message from the rendezvous server: {e}");
                    self.endpoint.close(
                        now,
                        handle,
                        super::close_code::MALFORMED_MESSAGE,
                        b"malformed rendezvous message",
                    );
                    self.link_lost(
                        now,
                        CloseReason::ProtocolViolation {
                            detail: e.to_string(),
                        },
                    );
                    return;
                }
            }
        }
    }

    fn on_message(&mut self, now: Instant, m: Message) {
        match m {
            Message::Registered {
                request,
                observed,
                refresh_secs,
                ..
            } => {
                if self.register_pending.map(|(r, _)| r) != Some(request) {
                    return;
                }
                self.register_pending = None;
                let first = !self.registered;
                self.registered = true;
                self.backoff = self.config.reconnect_initial;
                let hint = Duration::from_secs(u64::from(refresh_secs).max(1));
                self.refresh_interval = self.config.refresh_interval.min(hint);
                self.refresh_at = Some(now + self.refresh_interval);
                if first || self.observed != Some(observed) {
                    self.observed = Some(observed);
                    self.events.push_back(ClientEvent::Registered { observed });
                }
                if first && self.config.detect_nat && self.nat_result.is_none() {
                    self.detect_nat(now);
                }
            }
            Message::Error { request, code } => self.on_error(now, request, code),
            Message::Introduce {
                request,
                peer,
                start_in_ms,
                relay_session,
                candidates,
                peer_stream_only,
                ..
            } => self.on_introduce(
                now,
                request,
                peer,
                Duration::from_millis(start_in_ms.into()),
                relay_session,
                candidates,
                peer_stream_only,
            ),
            Message::PeerJoined {
                group,
                peer,
                name,
                proof,
            } => {
                // Only a holder of the group's secret can make the proof: a
                // notice the server made up (or about a group we are not in)
                // is dropped (spec §11.3).
                let genuine = self
                    .config
                    .groups
                    .iter()
                    .any(|g| g.id() == group && g.verify(&peer, &proof));
                if genuine {
                    self.events
                        .push_back(ClientEvent::PeerJoined { group, peer, name });
                } else {
                    debug!(%peer, ?group, "group notice without a valid proof of the secret: dropped");
                    self.events
                        .push_back(ClientEvent::GroupNoticeRejected { group, peer });
                }
            }
            Message::PeerLeft { group, peer } => {
                if self.config.groups.iter().any(|g| g.id() == group) {
                    self.events.push_back(ClientEvent::PeerLeft { group, peer });
                }
            }
            Message::NatTestStarted {
                request,
                alt,
                filter_token,
                mapping_token,
            } => self.nat.on_started(
                now,
                request,
                alt,
                filter_token,
                mapping_token,
                self.config.nat_filter_wait,
            ),
            Message::NatObserved { request, observed } => {
                if let Some(o) = self.nat.on_observed(request, observed) {
                    self.nat_finished(o);
                }
            }
            Message::PeerOpened { peer } => self.on_peer_opened(now, peer),
            // Client-to-server messages from the server: ignored.
            Message::Register { .. }
            | Message::Unregister { .. }
            | Message::Connect { .. }
            | Message::NatTest { .. }
            | Message::Opened { .. } => {}
        }
    }

    fn on_error(&mut self, now: Instant, request: RequestId, code: ErrorCode) {
        if self.register_pending.map(|(r, _)| r) == Some(request) {
            self.register_pending = None;
            self.registered = false;
            // Try again later: a taken name may be freed, a full server may
            // make room.
            self.refresh_at = Some(now + self.refresh_interval);
            self.events
                .push_back(ClientEvent::RegistrationRefused { code });
            return;
        }
        if self.nat.request() == Some(request) {
            if let Some(o) = self.nat.on_error(request) {
                self.nat_finished(o);
            }
            return;
        }
        if let Some(r) = self.requests.remove(&request) {
            if r.internal {
                return;
            }
            let error = match code {
                ErrorCode::PeerUnknown => RendezvousError::PeerNotRegistered,
                other => RendezvousError::Refused(other),
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

    // ----- NAT behaviour ---------------------------------------------------

    fn nat_timers(&mut self, now: Instant) {
        if self.nat.poll_timeout().is_none_or(|t| t > now) {
            return;
        }
        let (probe, done) = self.nat.on_timeout(now, self.config.nat_probe_timeout);
        if let Some((alt, token)) = probe {
            let mut datagram = [0u8; NAT_PROBE_SIZE];
            if (NatProbe { token }).emit(&mut datagram).is_ok() && self.raw_queue.len() < 8 {
                self.raw_queue.push_back((alt, datagram));
            }
        }
        if let Some(o) = done {
            self.nat_finished(o);
        }
    }

    fn nat_finished(&mut self, o: NatObservation) {
        let hosts = &self.config.host_candidates;
        let mapping = match (self.observed, o.via_alt) {
            (Some(main), _) if hosts.contains(&main) => NatMapping::NotBehindNat,
            (Some(main), Some(alt)) if main == alt => NatMapping::EndpointIndependent,
            (Some(_), Some(_)) => NatMapping::EndpointDependent,
            _ => NatMapping::Unknown,
        };
        let filtering = match o.filter_open {
            Some(true) => NatFiltering::Open,
            Some(false) => NatFiltering::Filtered,
            None => NatFiltering::Unknown,
        };
        let behavior = NatBehavior { mapping, filtering };
        debug!(%behavior, "NAT behaviour detected");
        self.nat_result = Some(behavior);
        self.events.push_back(ClientEvent::NatDetected(behavior));
    }
}
