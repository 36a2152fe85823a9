//! The endpoint: one per UDP socket. Routes datagrams to connections by
//! connection id, answers handshakes, and resolves simultaneous opens
//! (spec §3–§4). See the crate docs for the calling contract.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, trace};

use crate::config::{AcceptPolicy, ConfigError, CookieMode, EndpointConfig};
use crate::connection::{
    ConnectError, Connection, ConnectionStats, InitiatorSetup, ReadError, ResponderSetup, Transmit,
    TransportParams, UnansweredBudget, WriteError, MAX_CANDIDATES, MAX_PARAMS_LEN,
};
use crate::crypto::cookie::{mac1_of, CookieSecrets, MacKeys};
use crate::crypto::{Handshake, HandshakePattern};
use crate::event::{ConnectionHandle, Event};
use crate::keys::PublicKey;
use crate::random::Rng;
use crate::ticket::ProofRole;
use crate::wire::{
    ConnectionId, CookieReply, HandshakeInit, HandshakeResponse, Packet, COOKIE_NONCE_LEN,
    HANDSHAKE_INIT_SIZE, MAC_LEN, MAX_DATAGRAM_SIZE,
};
use handshake_load::HandshakeLoad;

#[cfg(any(test, fuzzing, feature = "test-hooks"))]
mod hooks;

mod accept;
#[cfg(test)]
mod tests;

/// Most stateless datagrams (refusals, cookie replies) queued at once; more
/// are dropped.
const MAX_STATELESS_QUEUE: usize = 64;

mod handshake_load;
mod knock;
mod relay;
pub use relay::{PathKind, RelaySessionId};
mod timer_queue;
use timer_queue::TimerQueue;

/// Counters of an endpoint, for operators and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Datagrams that did not parse.
    pub dropped_malformed: u64,
    /// Data packets or responses for no known connection.
    pub dropped_unknown_connection: u64,
    /// Handshake initiations that did not authenticate (bad `mac1` or Noise).
    pub dropped_bad_handshake: u64,
    /// Initiations dropped because of the pending-handshake or connection limit.
    pub dropped_over_limit: u64,
    /// Initiations dropped because the handshake capacity
    /// ([`EndpointConfig::handshake_rate`]) was spent.
    pub dropped_over_capacity: u64,
    /// Initiations answered with a CookieReply instead of a handshake.
    pub cookie_replies_sent: u64,
    /// Initiations refused by the accept policy (including those below).
    pub refused: u64,
    /// Initiations refused because they did not prove they hold the ticket
    /// the endpoint requires (spec §4.9).
    pub refused_without_ticket: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Knocks answered (spec §4.4).
    pub knocks_answered: u64,
}

/// Options of a connection attempt: what `connect_with` takes, on
/// srudp-proto's [`Endpoint::connect_with`] and on the runtime adapters'
/// endpoints alike.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The peer's static public key: only it can answer.
    pub peer: PublicKey,
    /// Addresses at which the peer may be reached; all are punched, the first
    /// that answers wins. `connect_with` trusts them (they get the
    /// HandshakeInit at once); srudp-proto's
    /// [`Endpoint::connect_introduced`], which a rendezvous uses for
    /// candidates a server handed over, knocks first.
    pub candidates: Vec<SocketAddr>,
    /// Handshake pattern; `None` uses the endpoint's default.
    pub pattern: Option<HandshakePattern>,
    /// A ticket shared with the peer (spec §4.9): we prove in our handshake
    /// message that we hold it, and close the connection
    /// ([`CloseReason::PeerWithoutTicket`](crate::CloseReason::PeerWithoutTicket))
    /// if the peer does not prove it in return. A peer whose
    /// [`AcceptPolicy::Ticket`] names another secret refuses us
    /// ([`CloseReason::TicketRefused`](crate::CloseReason::TicketRefused)).
    pub ticket: Option<crate::TicketSecret>,
}

impl ConnectOptions {
    /// Options toward `peer` at `candidates`, with the endpoint's default
    /// pattern and no ticket.
    pub fn new(peer: PublicKey, candidates: Vec<SocketAddr>) -> ConnectOptions {
        ConnectOptions {
            peer,
            candidates,
            pattern: None,
            ticket: None,
        }
    }
}

struct Slot {
    /// Boxed: a connection is a few KiB, and the map's nodes hold up to 11
    /// slots each, about half of them empty after sequential inserts.
    conn: Box<Connection>,
    /// Ephemeral key of the initiation we answered (responders), to spot duplicates.
    init_key: Option<[u8; 32]>,
    released: bool,
    /// In `Endpoint::pending` (see `refresh`).
    pending: bool,
    /// In `Endpoint::punching` (see `refresh`).
    punching: bool,
    /// In `Endpoint::ready`: may have something to send.
    ready: bool,
    /// In `Endpoint::to_collect`: drained, and released or never seen.
    over: bool,
    /// The deadline the timer queue holds for it, so that `sync` touches
    /// the queue only when the connection's deadline moved (it is asked
    /// after every datagram; a burst rarely moves it).
    deadline: Option<Instant>,
}

/// A srudp endpoint: the whole protocol for one UDP socket, without the socket.
pub struct Endpoint {
    config: Arc<EndpointConfig>,
    rng: Rng,
    connections: BTreeMap<ConnectionHandle, Slot>,
    /// Our own connection ids (random, chosen by us): a fast hash is safe.
    by_cid: crate::local_key_hash::LocalKeyMap<ConnectionId, ConnectionHandle>,
    by_init: HashMap<[u8; 32], ConnectionHandle>,
    /// Accepted handshakes not yet confirmed (responders the application
    /// does not see yet), in step with the slots' `pending` flags: the limit
    /// check is O(1) and a late connect searches only these.
    pending: BTreeSet<ConnectionHandle>,
    /// Our own initiations still punching (spec §4.5: the only connections
    /// a crossing initiation can meet), in step with the slots' `punching` flags.
    punching: BTreeSet<ConnectionHandle>,
    /// The deadline of every connection with a timer armed.
    timers: TimerQueue<ConnectionHandle>,
    /// Connections that may have something to send, in the order they
    /// became so (round robin: one that sent goes to the back). A
    /// connection leaves it when it has nothing to send; any input, command
    /// or timer that touches it puts it back.
    ready: VecDeque<ConnectionHandle>,
    /// Connections that are over, for `collect_garbage`.
    to_collect: Vec<ConnectionHandle>,
    next_handle: u64,
    events: VecDeque<(ConnectionHandle, Event)>,
    stateless: VecDeque<(SocketAddr, Box<[u8]>)>,
    /// Keys of `mac1` and sealed cookies for initiations toward us.
    mac_keys: MacKeys,
    cookie_secrets: CookieSecrets,
    load: HandshakeLoad,
    scratch: Box<[u8]>,
    /// Reused by `handle_timeout` for the handles whose timers are due.
    due_scratch: Vec<ConnectionHandle>,
    stats: EndpointStats,
    /// Relay sessions bound to connections (spec §11.5).
    relay_routes: relay::RelayRoutes,
    /// Bytes we may still send to addresses that never answered us (spec §4.4).
    unanswered: UnansweredBudget,
    /// Bytes hard-NAT rounds may still send (spec §4.4).
    hard_nat_budget: UnansweredBudget,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("public_key", &self.config.keypair.public())
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint with this configuration.
    pub fn new(config: EndpointConfig) -> Result<Endpoint, ConfigError> {
        config.validate()?;
        let rng = match config.rng_seed {
            Some(seed) => Rng::from_seed(seed),
            None => Rng::from_os(),
        };
        Ok(Endpoint {
            mac_keys: MacKeys::for_responder(&config.keypair.public()),
            cookie_secrets: CookieSecrets::default(),
            load: HandshakeLoad::new(config.handshake_rate),
            config: Arc::new(config),
            rng,
            connections: BTreeMap::new(),
            by_cid: Default::default(),
            by_init: HashMap::new(),
            pending: BTreeSet::new(),
            punching: BTreeSet::new(),
            timers: TimerQueue::default(),
            ready: VecDeque::new(),
            to_collect: Vec::new(),
            next_handle: 0,
            events: VecDeque::new(),
            stateless: VecDeque::new(),
            scratch: vec![0u8; crate::wire::MAX_UDP_PAYLOAD_SIZE].into_boxed_slice(),
            due_scratch: Vec::new(),
            stats: EndpointStats::default(),
            relay_routes: relay::RelayRoutes::default(),
            unanswered: UnansweredBudget::default(),
            hard_nat_budget: UnansweredBudget::per_minute(crate::HARD_NAT_BYTES_PER_MINUTE),
        })
    }

    // ----- getters -------------------------------------------------------

    /// This endpoint's public key: what peers pass to `connect`.
    pub fn public_key(&self) -> PublicKey {
        self.config.keypair.public()
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Counters.
    pub fn endpoint_stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// Connections held (including closed ones not yet released).
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Connections the application can see that are not over yet: open,
    /// connecting, closing (waiting, within the closing period, for the
    /// peer to answer our CLOSE), or draining with its answering CLOSE not
    /// yet sent (spec §6.6). Zero once every one is over, released or not:
    /// what an adapter's `wait_idle` waits for. A draining connection whose
    /// answer went out is over — the rest of its draining period is silent
    /// and needs nobody — so this is about one round trip after the last
    /// close when the peers answer.
    pub fn unfinished_connection_count(&self) -> usize {
        self.connections
            .values()
            .filter(|s| s.conn.is_app_visible() && !s.conn.is_over())
            .count()
    }

    /// Whether the connection is over (see
    /// [`unfinished_connection_count`](Endpoint::unfinished_connection_count)),
    /// or unknown.
    pub fn is_over(&self, handle: ConnectionHandle) -> bool {
        self.connections
            .get(&handle)
            .is_none_or(|s| s.conn.is_over())
    }

    /// Accepted handshakes the initiator has not confirmed yet (bounded by
    /// [`EndpointConfig::max_pending_handshakes`]).
    pub fn pending_handshake_count(&self) -> usize {
        self.pending.len()
    }

    /// Counters of one connection.
    pub fn stats(&self, handle: ConnectionHandle) -> Option<ConnectionStats> {
        self.visible(handle).map(Connection::stats)
    }

    /// Stream bytes the application wrote on the connection that the peer has
    /// not acknowledged yet: the memory its send buffer holds (at most
    /// [`TransportConfig::send_buffer`](crate::TransportConfig::send_buffer)).
    pub fn send_buffered(&self, handle: ConnectionHandle) -> Option<u64> {
        self.visible(handle).map(Connection::send_buffered)
    }

    /// The peer address the connection currently uses.
    pub fn remote_address(&self, handle: ConnectionHandle) -> Option<SocketAddr> {
        self.visible(handle).map(Connection::remote_address)
    }

    /// The peer's static key, when authenticated (see [`Event::Connected`]).
    pub fn peer_identity(&self, handle: ConnectionHandle) -> Option<PublicKey> {
        self.visible(handle).and_then(Connection::peer_identity)
    }

    /// Whether the peer initiated this connection because a rendezvous
    /// server introduced us (its authenticated transport parameters say so,
    /// spec §4.3): a rendezvous client holds it for that introduction.
    pub fn is_introduced_by_peer(&self, handle: ConnectionHandle) -> bool {
        self.visible(handle)
            .is_some_and(Connection::peer_introduced)
    }

    /// Whether the connection is closing or closed (or unknown).
    pub fn is_closed(&self, handle: ConnectionHandle) -> bool {
        self.visible(handle).is_none_or(Connection::is_closed)
    }

    fn visible(&self, handle: ConnectionHandle) -> Option<&Connection> {
        self.connections
            .get(&handle)
            .filter(|s| !s.released && s.conn.is_app_visible())
            .map(|s| &*s.conn)
    }

    /// Runs a command on a connection the application can see, then lets
    /// the endpoint catch up with what it changed (see `refresh`).
    fn with_visible<R>(
        &mut self,
        handle: ConnectionHandle,
        command: impl FnOnce(&mut Connection) -> R,
    ) -> Option<R> {
        let conn = self
            .connections
            .get_mut(&handle)
            .filter(|s| !s.released && s.conn.is_app_visible())
            .map(|s| &mut *s.conn)?;
        let result = command(conn);
        self.refresh(handle);
        Some(result)
    }

    // ----- commands --------------------------------------------------------

    /// Opens a connection to `peer`, punching every candidate address, with
    /// the endpoint's default handshake pattern.
    pub fn connect(
        &mut self,
        now: Instant,
        peer: PublicKey,
        candidates: &[SocketAddr],
    ) -> Result<ConnectionHandle, ConnectError> {
        self.connect_with(
            now,
            ConnectOptions {
                peer,
                candidates: candidates.to_vec(),
                pattern: None,
                ticket: None,
            },
        )
    }

    /// Opens a connection with explicit options.
    ///
    /// If `options.peer` already opened a connection to us with IK (so its
    /// key is authenticated) that we answered but that is not confirmed yet
    /// (so the application has not seen it), that connection's handle is
    /// returned instead of a new one (spec §4.5, late open): it reports
    /// [`Event::Connected`] (with `incoming: true`) once confirmed. Options
    /// other than the peer do not apply to it. An anonymous (NK) initiation
    /// is never taken for `options.peer`, whatever address it came from.
    ///
    /// When both peers may connect to each other at the same moment (a
    /// simultaneous open, for example after a rendezvous introduction), both
    /// must use [`HandshakePattern::IK`]: only an initiation whose static key
    /// the handshake authenticated is matched to a connect.
    pub fn connect_with(
        &mut self,
        now: Instant,
        options: ConnectOptions,
    ) -> Result<ConnectionHandle, ConnectError> {
        self.open(now, options, true)
    }

    /// `connect_with`, with candidates the application vouches for
    /// (`trusted`) or learned from an introduction.
    fn open(
        &mut self,
        now: Instant,
        options: ConnectOptions,
        trusted: bool,
    ) -> Result<ConnectionHandle, ConnectError> {
        let mut candidates = options.candidates;
        candidates.dedup();
        if candidates.is_empty() {
            return Err(ConnectError::NoCandidates);
        }
        if candidates.len() > MAX_CANDIDATES {
            return Err(ConnectError::TooManyCandidates);
        }
        if options.peer == self.public_key() {
            return Err(ConnectError::SelfConnect);
        }
        if let Some(handle) = self.joinable_responder(&options.peer, options.ticket.as_ref()) {
            // The peer's initiation reached us before this connect (a
            // simultaneous open where our side was a little late, spec §4.5):
            // the connection we are answering is the one asked for.
            if let Some(slot) = self.connections.get_mut(&handle) {
                slot.conn.adopt(options.peer);
            }
            self.refresh(handle);
            debug!(%handle, peer = %options.peer, "connect joins the peer's handshake");
            return Ok(handle);
        }
        if self.connections.len() >= self.config.max_connections {
            return Err(ConnectError::TooManyConnections);
        }
        let pattern = options.pattern.unwrap_or(self.config.default_pattern);
        let local_cid = self.new_cid();
        let mut handshake = Handshake::initiator(
            pattern,
            self.config.cipher,
            &self.config.keypair,
            &options.peer,
            local_cid,
            self.rng.seed32(),
        )?;
        let mut params = self.local_params(local_cid);
        // Candidates nobody vouches for come from an introduction (spec
        // §11.4): say so, so the peer holds our connection for its own.
        params.introduced = !trusted;
        params.ticket_proof = options
            .ticket
            .as_ref()
            .map(|t| t.proof(ProofRole::Initiator, local_cid));
        let mut payload = [0u8; MAX_PARAMS_LEN];
        let n = params
            .encode(&mut payload)
            .expect("MAX_PARAMS_LEN bytes hold the parameters");
        let mut noise = [0u8; HANDSHAKE_INIT_SIZE];
        let noise_len = handshake.write(&payload[..n], &mut noise)?;
        let mut init = vec![0u8; HANDSHAKE_INIT_SIZE].into_boxed_slice();
        HandshakeInit {
            pattern,
            cipher: self.config.cipher,
            sender_cid: local_cid,
            noise: &noise[..noise_len],
            mac1: [0; MAC_LEN],
            mac2: [0; MAC_LEN],
        }
        .emit(&mut init)
        .expect("an initiation always fits 1200 bytes");
        MacKeys::for_responder(&options.peer).stamp_mac1(&mut init);
        let setup = InitiatorSetup {
            pattern,
            peer: options.peer,
            candidates,
            trusted_candidates: trusted,
            local_cid,
            handshake,
            init_datagram: init,
            ticket: options.ticket,
        };
        let cc = self
            .config
            .transport
            .congestion
            .build(now, MAX_DATAGRAM_SIZE as u64);
        let conn = Connection::new_initiator(
            now,
            self.config.transport.clone(),
            setup,
            cc,
            self.child_rng(),
        );
        let handle = self.insert(conn, None);
        debug!(%handle, peer = %options.peer, "connecting");
        Ok(handle)
    }

    /// A connection we are answering, not yet confirmed nor shown to the
    /// application, whose initiator authenticated (IK) as `peer`. An
    /// anonymous (NK) initiator never qualifies, whatever its address: an
    /// address proves nothing about a key (spec §4.5, §4.7).
    /// With a ticket, it must have been accepted with that same ticket.
    fn joinable_responder(
        &self,
        peer: &PublicKey,
        ticket: Option<&crate::TicketSecret>,
    ) -> Option<ConnectionHandle> {
        // Only pending responders qualify: the walk is bounded by
        // `max_pending_handshakes`, not by the number of connections.
        self.pending.iter().copied().find(|h| {
            self.connections.get(h).is_some_and(|s| {
                !s.released
                    && s.conn.is_pending_responder()
                    && s.conn.peer_identity() == Some(*peer)
                    && (ticket.is_none() || s.conn.ticket() == ticket)
            })
        })
    }

    /// Adds a candidate address to a connection still punching (for example
    /// one learned late from a rendezvous). Returns whether it was added.
    pub fn add_candidate(
        &mut self,
        now: Instant,
        handle: ConnectionHandle,
        addr: SocketAddr,
    ) -> bool {
        self.with_visible(handle, |c| c.add_candidate(addr, now))
            .unwrap_or(false)
    }

    /// Changes who may connect to this endpoint from now on.
    pub fn set_accept_policy(&mut self, policy: AcceptPolicy) {
        Arc::make_mut(&mut self.config).accept = policy;
    }

    /// Queues bytes on the connection's stream; returns how many were taken
    /// (fewer than offered when the send buffer fills: wait for [`Event::Writable`]).
    /// Writing before the handshake completes is allowed: the bytes go out once it does.
    pub fn write(&mut self, handle: ConnectionHandle, data: &[u8]) -> Result<usize, WriteError> {
        self.with_visible(handle, |c| c.write(data))
            .ok_or(WriteError::UnknownConnection)?
    }

    /// Ends our direction of the stream after the bytes already written.
    pub fn finish(&mut self, handle: ConnectionHandle) -> Result<(), WriteError> {
        self.with_visible(handle, Connection::finish)
            .ok_or(WriteError::UnknownConnection)?
    }

    /// Reads in-order bytes. `Ok(0)` (with a non-empty `buf`) is the end of the
    /// peer's stream; `Err(Blocked)` means wait for [`Event::Readable`].
    pub fn read(&mut self, handle: ConnectionHandle, buf: &mut [u8]) -> Result<usize, ReadError> {
        self.with_visible(handle, |c| c.read(buf))
            .ok_or(ReadError::UnknownConnection)?
    }

    /// Sends an ack-eliciting PING on an established connection at the next
    /// [`poll_transmit`](Self::poll_transmit): the peer hears from us, from
    /// wherever our NAT maps us now (after a rebinding it follows us there,
    /// spec §6.7), and its acknowledgment tells us the path answers. Nothing
    /// for a connection that is not established or unknown.
    pub fn ping(&mut self, handle: ConnectionHandle) {
        self.with_visible(handle, Connection::ping);
    }

    /// Closes the connection at once with an application code and reason
    /// (at most 256 bytes), which the peer receives. Unsent data is discarded;
    /// for a graceful close use [`finish`](Self::finish) and wait for [`Event::Closed`].
    pub fn close(&mut self, now: Instant, handle: ConnectionHandle, code: u32, reason: &[u8]) {
        self.with_visible(handle, |c| c.close(now, code, reason));
    }

    /// Forgets a connection. If it is still open it is closed abruptly (code
    /// 0). After this the handle is unknown; no more events are reported for it.
    pub fn release(&mut self, now: Instant, handle: ConnectionHandle) {
        if let Some(slot) = self.connections.get_mut(&handle) {
            if !slot.conn.is_closed() {
                slot.conn.close(now, 0, b"released");
            }
            slot.released = true;
        }
        self.refresh(handle);
        self.events.retain(|(h, _)| *h != handle);
        self.collect_garbage();
    }

    // ----- inputs ----------------------------------------------------------

    /// Processes a datagram received from `from`. Anything that does not parse
    /// or authenticate is dropped without changing connection state.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if crate::wire::relay::is_relay_data(datagram) {
            self.handle_relay_datagram(now, from, datagram);
            return;
        }
        let packet = match Packet::parse(datagram) {
            Ok(p) => p,
            Err(e) => {
                self.stats.dropped_malformed += 1;
                trace!(%from, "dropping datagram: {e}");
                return;
            }
        };
        match packet {
            Packet::Data(header, sealed) => {
                let Some(&handle) = self.by_cid.get(&header.dcid) else {
                    self.stats.dropped_unknown_connection += 1;
                    return;
                };
                if let Some(slot) = self.connections.get_mut(&handle) {
                    slot.conn.handle_data(
                        now,
                        from,
                        header,
                        sealed,
                        datagram.len(),
                        &mut self.scratch,
                    );
                }
                self.refresh(handle);
            }
            Packet::HandshakeResponse(response) => {
                let Some(&handle) = self.by_cid.get(&response.initiator_cid) else {
                    self.stats.dropped_unknown_connection += 1;
                    return;
                };
                if let Some(slot) = self.connections.get_mut(&handle) {
                    slot.conn
                        .handle_response(now, from, &response, &mut self.scratch);
                }
                self.refresh(handle);
            }
            Packet::HandshakeInit(init) => self.handle_init(now, from, &init, datagram),
            Packet::Knock(knock) => self.answer_knock(from, &knock, datagram),
            Packet::KnockReply(reply) => self.handle_knock_reply(now, from, &reply),
            Packet::CookieReply(reply) => {
                let Some(&handle) = self.by_cid.get(&reply.initiator_cid) else {
                    self.stats.dropped_unknown_connection += 1;
                    return;
                };
                if let Some(slot) = self.connections.get_mut(&handle) {
                    slot.conn.handle_cookie_reply(now, from, &reply);
                }
                self.refresh(handle);
            }
        }
    }

    /// As [`handle_datagram`](Self::handle_datagram), but a data packet is
    /// decrypted in `datagram` itself instead of in a copy: one copy less
    /// per received packet, for callers that own the receive buffer. On
    /// return `datagram`'s bytes are unspecified (a data packet's payload
    /// is left decrypted or partly overwritten); everything else, what is
    /// accepted, dropped and counted, is exactly as with `handle_datagram`.
    pub fn handle_datagram_in_place(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &mut [u8],
    ) {
        let data_header = match Packet::parse(datagram) {
            Ok(Packet::Data(header, sealed)) if !crate::wire::relay::is_relay_data(datagram) => {
                Some((header, datagram.len() - sealed.len()))
            }
            _ => None,
        };
        let Some((header, sealed_start)) = data_header else {
            // Not a direct data packet: nothing to open in place.
            self.handle_datagram(now, from, datagram);
            return;
        };
        let Some(&handle) = self.by_cid.get(&header.dcid) else {
            self.stats.dropped_unknown_connection += 1;
            return;
        };
        let datagram_len = datagram.len();
        if let Some(slot) = self.connections.get_mut(&handle) {
            slot.conn.handle_data_in_place(
                now,
                from,
                header,
                &mut datagram[sealed_start..],
                datagram_len,
            );
        }
        self.refresh(handle);
    }

    /// Our transport parameters for connection id `cid`: not refused, no
    /// ticket proof (callers set those).
    fn local_params(&self, cid: ConnectionId) -> TransportParams {
        let t = &self.config.transport;
        TransportParams {
            refused: false,
            ticket_proof: None,
            ticket_required: false,
            introduced: false,
            cid,
            max_data: t.receive_window,
            idle_timeout_ms: t.idle_timeout.as_millis().min(u128::from(u32::MAX)) as u64,
            max_ack_delay_ms: t.max_ack_delay.as_millis() as u64,
            accepts_ack_frequency: true,
            max_udp_payload: t.max_udp_payload as u64,
        }
    }

    /// Processes every timer that expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // The list of due handles reuses one buffer: this runs for every
        // pacing tick of a bulk transfer, which must not allocate.
        let mut due = std::mem::take(&mut self.due_scratch);
        due.clear();
        // Earliest deadline first, ties by handle. Collected before any is
        // handled: a connection re-armed for `now` waits for the next call.
        due.extend(std::iter::from_fn(|| self.timers.pop_due(now)));
        for &handle in &due {
            if let Some(slot) = self.connections.get_mut(&handle) {
                slot.deadline = None; // popped from the queue
                slot.conn.handle_timeout(now);
            }
            self.refresh(handle);
        }
        self.due_scratch = due;
        self.collect_garbage();
    }

    // ----- outputs ---------------------------------------------------------

    /// Writes the next datagram to send into `buf` and says where it goes.
    /// Call until `None` after every input. Give it
    /// [`MAX_UDP_PAYLOAD_SIZE`](crate::MAX_UDP_PAYLOAD_SIZE) bytes: a direct
    /// path whose MTU discovery (spec §6.9) found room takes Data packets
    /// that large. With a smaller buffer every datagram stays within it and
    /// no larger probe goes out; below [`MAX_DATAGRAM_SIZE`] nothing is
    /// written. Relay envelopes (spec §11.5) are no larger than 1200 bytes:
    /// a relayed connection builds its packets 10 bytes smaller.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if buf.len() < MAX_DATAGRAM_SIZE {
            return None;
        }
        if let Some((destination, datagram)) = self.stateless.pop_front() {
            buf[..datagram.len()].copy_from_slice(&datagram);
            return Some(Transmit {
                destination,
                size: datagram.len(),
                hop_limit: None,
                spare_sockets: 0,
            });
        }
        // Round robin over the connections that may have something to send:
        // one that sends goes to the back of the queue, one that has nothing
        // leaves it. Only connections an input, command or timer touched
        // since they last had nothing are asked, so the end of a round costs
        // nothing per idle connection.
        for _ in 0..self.ready.len() {
            let handle = self.ready.pop_front()?;
            let Some(slot) = self.connections.get_mut(&handle) else {
                continue; // gone
            };
            match slot
                .conn
                .poll_transmit(now, buf, &mut self.unanswered, &mut self.hard_nat_budget)
            {
                Some(t) => {
                    debug_assert!(t.size <= crate::wire::MAX_UDP_PAYLOAD_SIZE);
                    self.ready.push_back(handle);
                    let t = self.relay_wrap(handle, buf, t);
                    self.refresh(handle);
                    return Some(t);
                }
                None => {
                    slot.ready = false;
                    slot.conn.on_nothing_to_send(now);
                    // Asking may have armed a timer (pacing) or stopped one.
                    self.sync(handle);
                }
            }
        }
        None
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) must
    /// be called: the earliest deadline of any connection, kept in a timer
    /// queue (O(1), however many connections the endpoint holds).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The next event, in the order they happened.
    pub fn poll_event(&mut self) -> Option<(ConnectionHandle, Event)> {
        self.events.pop_front()
    }

    // ----- internals -------------------------------------------------------

    fn insert(&mut self, conn: Connection, init_key: Option<[u8; 32]>) -> ConnectionHandle {
        let handle = ConnectionHandle(self.next_handle);
        self.next_handle += 1;
        self.by_cid.insert(conn.local_cid(), handle);
        self.connections.insert(
            handle,
            Slot {
                conn: Box::new(conn),
                init_key,
                released: false,
                pending: false,
                punching: false,
                ready: false,
                over: false,
                deadline: None,
            },
        );
        self.refresh(handle);
        handle
    }

    fn new_cid(&mut self) -> ConnectionId {
        loop {
            let cid = ConnectionId(self.rng.next_u64());
            if !self.by_cid.contains_key(&cid) {
                return cid;
            }
        }
    }

    fn child_rng(&mut self) -> Rng {
        Rng::from_seed(self.rng.next_u64())
    }

    /// Lets the endpoint catch up with a connection after anything that may
    /// have changed it — every input, command or output that touched it:
    /// moves its events to the endpoint's queue, puts it in the ready queue
    /// (it may have something to send), gives the timer queue its deadline,
    /// keeps the pending and punching sets in step, and notes it for
    /// `collect_garbage` once it is over. O(log n) in the number of
    /// connections.
    fn refresh(&mut self, handle: ConnectionHandle) {
        let Some(slot) = self.connections.get_mut(&handle) else {
            return;
        };
        if !slot.ready {
            slot.ready = true;
            self.ready.push_back(handle);
        }
        self.sync(handle);
    }

    /// `refresh` but for the ready queue.
    fn sync(&mut self, handle: ConnectionHandle) {
        let Some(slot) = self.connections.get_mut(&handle) else {
            return;
        };
        while let Some(event) = slot.conn.poll_event() {
            // A `Readable` right behind the same connection's `Readable`
            // tells nothing new (the application reads until `Blocked`):
            // a transfer queues one per burst instead of one per packet.
            let repeated = matches!(event, Event::Readable)
                && matches!(self.events.back(), Some((h, Event::Readable)) if *h == handle);
            if !slot.released && !repeated {
                self.events.push_back((handle, event));
            }
        }
        let deadline = slot.conn.poll_timeout();
        if deadline != slot.deadline {
            slot.deadline = deadline;
            self.timers.set(handle, deadline);
        }
        let pending = slot.conn.is_pending_responder();
        if pending != slot.pending {
            slot.pending = pending;
            if pending {
                self.pending.insert(handle);
            } else {
                self.pending.remove(&handle);
            }
        }
        let punching = !slot.released && slot.conn.is_handshaking();
        if punching != slot.punching {
            slot.punching = punching;
            if punching {
                self.punching.insert(handle);
            } else {
                self.punching.remove(&handle);
            }
        }
        if !slot.over && slot.conn.is_drained() && (slot.released || !slot.conn.is_app_visible()) {
            // Stays so: `released` and `is_drained` never go back, and an
            // invisible connection can only become visible before it is over.
            slot.over = true;
            self.to_collect.push(handle);
        }
    }

    /// Removes connections that are over and that the application either
    /// released or never saw.
    fn collect_garbage(&mut self) {
        while let Some(handle) = self.to_collect.pop() {
            self.forget_relay(handle);
            self.timers.remove(handle);
            self.pending.remove(&handle);
            self.punching.remove(&handle);
            if let Some(slot) = self.connections.remove(&handle) {
                self.by_cid.remove(&slot.conn.local_cid());
                if let Some(k) = slot.init_key {
                    self.by_init.remove(&k);
                }
            }
        }
    }
}
