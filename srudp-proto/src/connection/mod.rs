//! One connection's state machine: handshake, punching, packet protection,
//! acknowledgments, loss recovery, the byte stream and closing (spec §4–§6).
//!
//! A [`Connection`] is driven only by its [`Endpoint`](crate::Endpoint); the
//! application reaches it through the endpoint's methods and a
//! [`ConnectionHandle`](crate::ConnectionHandle).

mod params;
mod punch;
mod received_packets;
mod recovery;
mod recv_stream;
mod rtt;
mod send_stream;
mod sent_packets;
mod stats;
mod timer;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, trace};

pub(crate) use params::TransportParams;
pub(crate) use punch::Punch;
pub use punch::MAX_CANDIDATES;
use received_packets::ReceivedPackets;
pub use recv_stream::ReadError;
use recv_stream::RecvStream;
pub use rtt::RttEstimator;
use send_stream::SendStream;
pub use send_stream::WriteError;
use sent_packets::{SentPacket, SentPackets};
pub use stats::ConnectionStats;
use timer::{Timer, TimerTable};

use crate::config::TransportConfig;
use crate::congestion::Controller;
use crate::crypto::{Handshake, HandshakePattern, ReplayWindow, Session};
use crate::event::{close_code, CloseReason, Event};
use crate::keys::PublicKey;
use crate::random::Rng;
use crate::wire::coding::Writer;
use crate::wire::{
    CloseFrame, ConnectionId, DataHeader, Frame, FrameIter, HandshakeResponse, StreamFrame,
    DATA_HEADER_LEN, MAX_DATAGRAM_SIZE, MAX_STREAM_PAYLOAD, STREAM_FRAME_MAX_OVERHEAD, TAG_LEN,
};

/// Largest plaintext of a data packet.
const MAX_PLAINTEXT: usize = MAX_DATAGRAM_SIZE - DATA_HEADER_LEN - TAG_LEN;

/// Where to send a datagram written by `poll_transmit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The destination address.
    pub destination: SocketAddr,
    /// How many bytes of the caller's buffer make up the datagram.
    pub size: usize,
}

/// Which side of the handshake we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Initiator,
    Responder,
}

#[derive(Debug)]
enum State {
    /// Initiator: probing candidate addresses with the cached initiation.
    Handshaking {
        handshake: Box<Handshake>,
        init: Box<[u8]>,
        punch: Punch,
    },
    /// Responder: keys ready, waiting for the initiator's first packet.
    Confirming {
        response: Box<[u8]>,
        resend_to: Option<SocketAddr>,
    },
    Established,
    /// We sent CLOSE; answer further packets with it until the deadline.
    Closing {
        send_close: bool,
    },
    /// The peer sent CLOSE; stay silent until the deadline.
    Draining,
    /// Nothing more will be sent or accepted.
    Closed,
}

/// A path validation in progress (spec §6.7).
#[derive(Debug)]
struct PathChallenge {
    remote: SocketAddr,
    data: [u8; 8],
    send: bool,
}

/// The peer address in use and what we know about it.
#[derive(Debug)]
struct Path {
    remote: SocketAddr,
    /// Bytes received from / sent to an address not yet validated (anti-amplification).
    bytes_received: u64,
    bytes_sent: u64,
    validated: bool,
}

/// Why creating a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No candidate address was given.
    #[error("no candidate address to connect to")]
    NoCandidates,
    /// More candidates than a connection probes.
    #[error("too many candidate addresses (at most {MAX_CANDIDATES})")]
    TooManyCandidates,
    /// Connecting to our own public key.
    #[error("cannot connect to this endpoint's own key")]
    SelfConnect,
    /// The endpoint holds as many connections as it may.
    #[error("connection limit reached")]
    TooManyConnections,
    /// The handshake could not be started.
    #[error("handshake setup failed: {0}")]
    Crypto(#[from] crate::crypto::CryptoError),
}

pub(crate) struct InitiatorSetup {
    pub(crate) pattern: HandshakePattern,
    pub(crate) peer: PublicKey,
    pub(crate) candidates: Vec<SocketAddr>,
    pub(crate) local_cid: ConnectionId,
    pub(crate) handshake: Handshake,
    pub(crate) init_datagram: Box<[u8]>,
}

pub(crate) struct ResponderSetup {
    pub(crate) local_cid: ConnectionId,
    pub(crate) remote_cid: ConnectionId,
    pub(crate) remote: SocketAddr,
    pub(crate) peer: Option<PublicKey>,
    pub(crate) peer_params: TransportParams,
    pub(crate) session: Session,
    pub(crate) response: Box<[u8]>,
    pub(crate) init_len: usize,
}

/// The state of one connection.
#[derive(Debug)]
pub(crate) struct Connection {
    config: Arc<TransportConfig>,
    side: Side,
    state: State,
    local_cid: ConnectionId,
    remote_cid: ConnectionId,
    peer: Option<PublicKey>,
    expected_peer: Option<PublicKey>,
    session: Option<Session>,
    path: Path,
    challenge: Option<PathChallenge>,
    path_responses: VecDeque<(SocketAddr, [u8; 8])>,
    rng: Rng,

    next_pn: u64,
    replay: ReplayWindow,
    largest_received: Option<u64>,
    received: ReceivedPackets,

    sent: SentPackets,
    rtt: RttEstimator,
    cc: Box<dyn Controller>,
    largest_acked: Option<u64>,
    loss_time: Option<Instant>,
    pto_count: u32,
    time_of_last_ack_eliciting: Option<Instant>,
    probes_pending: u8,
    ping_pending: bool,
    peer_max_ack_delay: Duration,
    idle_timeout: Duration,

    send: SendStream,
    recv: RecvStream,
    peer_max_data: u64,
    max_data_pending: bool,

    timers: TimerTable,
    events: VecDeque<Event>,
    close_frame: Option<(u64, Vec<u8>)>,
    close_reason: Option<CloseReason>,
    peer_finished_reported: bool,
    all_acked_reported: bool,
    connected_reported: bool,
    /// The application knows this handle (it opened the connection, or was told it connected).
    app_visible: bool,
    created: Instant,
    stats: ConnectionStats,
}

impl Connection {
    /// A connection that opens toward `setup.peer` by punching every candidate.
    pub(crate) fn new_initiator(
        now: Instant,
        config: Arc<TransportConfig>,
        setup: InitiatorSetup,
        cc: Box<dyn Controller>,
        rng: Rng,
    ) -> Connection {
        let punch = Punch::new(setup.candidates.clone(), now, &config);
        let remote = setup.candidates[0];
        let mut conn = Connection::blank(
            now,
            config,
            Side::Initiator,
            setup.local_cid,
            remote,
            cc,
            rng,
        );
        conn.expected_peer = Some(setup.peer);
        conn.app_visible = true;
        conn.state = State::Handshaking {
            handshake: Box::new(setup.handshake),
            init: setup.init_datagram,
            punch,
        };
        let _ = setup.pattern;
        conn.timers
            .set(Timer::Handshake, now + conn.config.handshake_timeout);
        conn.timers.set(Timer::Punch, now);
        conn
    }

    /// A connection accepted from an initiation; the response is already built.
    pub(crate) fn new_responder(
        now: Instant,
        config: Arc<TransportConfig>,
        setup: ResponderSetup,
        cc: Box<dyn Controller>,
        rng: Rng,
    ) -> Connection {
        let mut conn = Connection::blank(
            now,
            config,
            Side::Responder,
            setup.local_cid,
            setup.remote,
            cc,
            rng,
        );
        conn.become_responder(now, setup);
        conn
    }

    /// Turns a connection we were opening into the responder of the peer's
    /// crossing handshake (simultaneous open, spec §4.5). Data the
    /// application already wrote is kept.
    pub(crate) fn become_responder(&mut self, now: Instant, setup: ResponderSetup) {
        self.side = Side::Responder;
        self.remote_cid = setup.remote_cid;
        self.path = Path {
            remote: setup.remote,
            bytes_received: setup.init_len as u64,
            bytes_sent: 0,
            validated: false,
        };
        if setup.peer.is_some() {
            self.peer = setup.peer;
        } else {
            // NK: the initiator proved nothing about itself; only an
            // expected key from our own connect request is reported.
            self.peer = self.expected_peer;
        }
        self.apply_peer_params(&setup.peer_params);
        self.session = Some(setup.session);
        self.state = State::Confirming {
            response: setup.response,
            resend_to: Some(setup.remote),
        };
        self.timers.stop(Timer::Punch);
        self.timers
            .set(Timer::Handshake, now + self.config.handshake_timeout);
    }

    fn blank(
        now: Instant,
        config: Arc<TransportConfig>,
        side: Side,
        local_cid: ConnectionId,
        remote: SocketAddr,
        cc: Box<dyn Controller>,
        rng: Rng,
    ) -> Connection {
        Connection {
            side,
            state: State::Closed,
            local_cid,
            remote_cid: ConnectionId(0),
            peer: None,
            expected_peer: None,
            session: None,
            path: Path {
                remote,
                bytes_received: 0,
                bytes_sent: 0,
                validated: false,
            },
            challenge: None,
            path_responses: VecDeque::new(),
            rng,
            next_pn: 0,
            replay: ReplayWindow::new(),
            largest_received: None,
            received: ReceivedPackets::new(),
            sent: SentPackets::new(),
            rtt: RttEstimator::new(config.initial_rtt),
            cc,
            largest_acked: None,
            loss_time: None,
            pto_count: 0,
            time_of_last_ack_eliciting: None,
            probes_pending: 0,
            ping_pending: false,
            peer_max_ack_delay: config.max_ack_delay,
            idle_timeout: config.idle_timeout,
            send: SendStream::new(config.send_buffer),
            recv: RecvStream::new(config.receive_window),
            peer_max_data: 0,
            max_data_pending: false,
            timers: TimerTable::default(),
            events: VecDeque::new(),
            close_frame: None,
            close_reason: None,
            peer_finished_reported: false,
            all_acked_reported: false,
            connected_reported: false,
            app_visible: false,
            created: now,
            stats: ConnectionStats::default(),
            config,
        }
    }

    fn apply_peer_params(&mut self, params: &TransportParams) {
        self.peer_max_data = params.max_data;
        self.peer_max_ack_delay = Duration::from_millis(params.max_ack_delay_ms);
        if params.idle_timeout_ms > 0 {
            self.idle_timeout = self
                .idle_timeout
                .min(Duration::from_millis(params.idle_timeout_ms));
        }
    }

    // ----- getters -------------------------------------------------------

    pub(crate) fn local_cid(&self) -> ConnectionId {
        self.local_cid
    }

    pub(crate) fn remote_address(&self) -> SocketAddr {
        self.path.remote
    }

    pub(crate) fn peer_identity(&self) -> Option<PublicKey> {
        self.peer
    }

    pub(crate) fn expected_peer(&self) -> Option<PublicKey> {
        self.expected_peer
    }

    /// Still punching toward candidates (no response yet).
    pub(crate) fn is_handshaking(&self) -> bool {
        matches!(self.state, State::Handshaking { .. })
    }

    /// Whether the application knows this connection: it opened it, or was
    /// told it connected. Accepted connections stay invisible until the
    /// initiator confirms the handshake.
    pub(crate) fn is_app_visible(&self) -> bool {
        self.app_visible
    }

    /// An accepted connection the initiator has not confirmed yet.
    pub(crate) fn is_pending_responder(&self) -> bool {
        !self.app_visible && matches!(self.state, State::Confirming { .. })
    }

    pub(crate) fn candidates(&self) -> &[SocketAddr] {
        match &self.state {
            State::Handshaking { punch, .. } => punch.candidates(),
            _ => &[],
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        matches!(
            self.state,
            State::Closing { .. } | State::Draining | State::Closed
        )
    }

    /// Fully done: nothing to send, no timer left.
    pub(crate) fn is_drained(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    pub(crate) fn stats(&self) -> ConnectionStats {
        let mut s = self.stats.clone();
        s.srtt = self.rtt.smoothed();
        s.rttvar = self.rtt.var();
        s.min_rtt = self.rtt.min();
        s.cwnd = self.cc.window();
        s.bytes_in_flight = self.sent.bytes_in_flight();
        s
    }

    pub(crate) fn add_candidate(&mut self, addr: SocketAddr, now: Instant) -> bool {
        match &mut self.state {
            State::Handshaking { punch, .. } => {
                let added = punch.add_candidate(addr, now);
                if added {
                    self.timers.set(Timer::Punch, now);
                }
                added
            }
            _ => false,
        }
    }

    // ----- application commands ------------------------------------------

    pub(crate) fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        if self.is_closed() {
            return Err(WriteError::Closed);
        }
        self.send.write(data)
    }

    pub(crate) fn finish(&mut self) -> Result<(), WriteError> {
        if self.is_closed() {
            return Err(WriteError::Closed);
        }
        self.send.finish()
    }

    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        match self.recv.read(buf) {
            Ok(n) => {
                if n > 0 && !self.is_closed() {
                    if let Some(_limit) = self.recv.next_max_data() {
                        self.max_data_pending = true;
                    }
                }
                Ok(n)
            }
            Err(ReadError::Blocked) if self.is_closed() => Err(ReadError::Closed),
            Err(e) => Err(e),
        }
    }

    /// Abrupt close with an application code.
    pub(crate) fn close(&mut self, now: Instant, code: u32, reason: &[u8]) {
        if self.is_closed() {
            return;
        }
        let wire_code = close_code::APPLICATION_BASE + u64::from(code);
        self.enter_closing(now, wire_code, reason, CloseReason::LocalClose { code });
    }

    fn enter_closing(&mut self, now: Instant, code: u64, reason: &[u8], local: CloseReason) {
        let can_send = self.session.is_some() && !matches!(self.state, State::Handshaking { .. });
        let reason = reason[..reason.len().min(crate::wire::MAX_CLOSE_REASON)].to_vec();
        debug!(cid = %self.local_cid, code, "closing: {local}");
        self.report_closed(local);
        self.timers.stop_all();
        if can_send {
            self.close_frame = Some((code, reason));
            self.state = State::Closing { send_close: true };
            // Linger long enough to answer a few of the peer's backed-off
            // probes: if our CLOSE is lost, the peer's next probe gets another.
            let linger = self.linger().max(self.config.max_probe_timeout * 3);
            self.timers.set(Timer::Close, now + linger);
        } else {
            self.state = State::Closed;
        }
    }

    fn enter_draining(&mut self, now: Instant, reason: CloseReason) {
        self.report_closed(reason);
        self.timers.stop_all();
        self.state = State::Draining;
        self.timers.set(Timer::Close, now + self.linger());
    }

    fn enter_closed(&mut self, reason: CloseReason) {
        self.report_closed(reason);
        self.timers.stop_all();
        self.state = State::Closed;
    }

    fn report_closed(&mut self, reason: CloseReason) {
        if self.close_reason.is_none() {
            self.close_reason = Some(reason.clone());
            if self.app_visible {
                self.events.push_back(Event::Closed { reason });
            }
        }
    }

    fn linger(&self) -> Duration {
        self.pto() * self.config.close_linger_ptos
    }

    fn pto(&self) -> Duration {
        self.rtt
            .pto_base(self.config.granularity, self.peer_max_ack_delay)
    }

    fn protocol_violation(&mut self, now: Instant, detail: &str, code: u64) {
        debug!(cid = %self.local_cid, "protocol violation: {detail}");
        self.enter_closing(
            now,
            code,
            detail.as_bytes(),
            CloseReason::ProtocolViolation {
                detail: detail.to_string(),
            },
        );
    }

    // ----- outputs ---------------------------------------------------------

    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ----- inputs ----------------------------------------------------------

    /// The peer's handshake response arrived from `from`.
    pub(crate) fn handle_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        response: &HandshakeResponse<'_>,
        scratch: &mut [u8],
    ) {
        let State::Handshaking { handshake, .. } = &mut self.state else {
            // Another path's response after we settled, or a replay: ignore.
            return;
        };
        let n = match handshake.read(response.noise, scratch) {
            Ok(n) => n,
            Err(e) => {
                self.stats.dropped_unauthenticated += 1;
                trace!(cid = %self.local_cid, "dropping handshake response: {e}");
                return;
            }
        };
        let params = match TransportParams::decode(&scratch[..n]) {
            Ok(p) if p.cid == response.responder_cid => p,
            _ => {
                self.protocol_violation_silent("malformed transport parameters");
                return;
            }
        };
        let State::Handshaking { handshake, .. } =
            std::mem::replace(&mut self.state, State::Established)
        else {
            unreachable!("checked above");
        };
        self.peer = handshake.remote_static();
        if params.refused {
            self.enter_closed(CloseReason::Refused);
            return;
        }
        let session = match handshake.into_session() {
            Ok(s) => s,
            Err(_) => {
                self.protocol_violation_silent("handshake did not finish");
                return;
            }
        };
        self.session = Some(session);
        self.remote_cid = response.responder_cid;
        self.path = Path {
            remote: from,
            bytes_received: 0,
            bytes_sent: 0,
            validated: true,
        };
        self.apply_peer_params(&params);
        self.timers.stop(Timer::Punch);
        self.timers.stop(Timer::Handshake);
        // Confirm at once so the responder can report the connection.
        self.ping_pending = true;
        self.on_established(now);
        debug!(cid = %self.local_cid, %from, elapsed = ?now - self.created, "connected (initiator)");
    }

    /// A handshake error before any keys exist: give up quietly.
    fn protocol_violation_silent(&mut self, detail: &str) {
        self.enter_closed(CloseReason::ProtocolViolation {
            detail: detail.to_string(),
        });
    }

    fn on_established(&mut self, now: Instant) {
        self.connected_reported = true;
        self.app_visible = true;
        self.events.push_back(Event::Connected {
            incoming: self.side == Side::Responder,
            remote: self.path.remote,
            peer: self.peer,
        });
        self.reset_idle(now);
        if let Some(k) = self.config.keepalive_interval {
            self.timers.set(Timer::Keepalive, now + k);
        }
    }

    /// A copy of the initiation we already answered arrived: resend our
    /// cached response, byte for byte.
    pub(crate) fn handle_duplicate_init(&mut self, from: SocketAddr, len: usize) {
        if let State::Confirming { resend_to, .. } = &mut self.state {
            *resend_to = Some(from);
            if from == self.path.remote {
                self.path.bytes_received += len as u64;
            }
        }
    }

    /// A data packet for this connection arrived.
    pub(crate) fn handle_data(
        &mut self,
        now: Instant,
        from: SocketAddr,
        header: DataHeader,
        sealed: &[u8],
        datagram_len: usize,
        scratch: &mut [u8],
    ) {
        let Some(session) = &self.session else { return };
        if matches!(
            self.state,
            State::Draining | State::Closed | State::Handshaking { .. }
        ) {
            return;
        }
        let pn = header.packet_number;
        if !self.replay.check(pn) {
            self.stats.dropped_replayed += 1;
            return;
        }
        let n = match session.open(pn, sealed, scratch) {
            Ok(n) => n,
            Err(_) => {
                self.stats.dropped_unauthenticated += 1;
                return;
            }
        };
        self.replay.mark(pn);
        self.stats.packets_received += 1;
        self.stats.bytes_received += datagram_len as u64;
        let newest = self.largest_received.is_none_or(|l| pn > l);
        if newest {
            self.largest_received = Some(pn);
        }
        self.reset_idle(now);

        if let State::Confirming { .. } = self.state {
            // The initiator's first packet: it holds the keys, so the path it
            // used is the one it chose.
            self.state = State::Established;
            self.path = Path {
                remote: from,
                bytes_received: 0,
                bytes_sent: 0,
                validated: true,
            };
            self.timers.stop(Timer::Handshake);
            self.on_established(now);
            debug!(cid = %self.local_cid, %from, "connected (responder)");
        } else if from != self.path.remote {
            self.on_new_address(from, newest);
        } else if !self.path.validated {
            self.path.bytes_received += datagram_len as u64;
        }

        if let State::Closing { send_close } = &mut self.state {
            *send_close = true;
            return;
        }

        let payload = &scratch[..n];
        // Validate every frame before acting on any (spec §9.4.1): a packet
        // with a malformed frame is a protocol violation and is not acted on.
        if let Some(Err(e)) = FrameIter::new(payload).find(Result::is_err) {
            self.protocol_violation(
                now,
                &format!("malformed frame: {e}"),
                close_code::PROTOCOL_VIOLATION,
            );
            return;
        }
        let mut ack_eliciting = false;
        for frame in FrameIter::new(payload).flatten() {
            ack_eliciting |= frame.is_ack_eliciting();
            match frame {
                Frame::Padding { .. } | Frame::Ping => {}
                Frame::Ack(ack) => {
                    if let Err(detail) = self.on_ack_frame(now, &ack) {
                        self.protocol_violation(now, detail, close_code::PROTOCOL_VIOLATION);
                        return;
                    }
                }
                Frame::Stream(s) => match self.recv.insert(s.offset, s.data, s.fin) {
                    Ok(readable) => {
                        if readable {
                            self.events.push_back(Event::Readable);
                        }
                    }
                    Err(v) => {
                        let code = match v {
                            recv_stream::StreamViolation::FlowControl => close_code::FLOW_CONTROL,
                            recv_stream::StreamViolation::FinalSize => {
                                close_code::PROTOCOL_VIOLATION
                            }
                        };
                        self.protocol_violation(now, &v.to_string(), code);
                        return;
                    }
                },
                Frame::MaxData(max) => {
                    if max > self.peer_max_data {
                        self.peer_max_data = max;
                    }
                }
                Frame::Close(c) => {
                    if c.code == close_code::NO_ERROR && self.send.is_finished() {
                        // A graceful close asserts the peer received our whole stream.
                        self.send.on_peer_closed_gracefully();
                    }
                    self.report_stream_events();
                    let reason = String::from_utf8_lossy(c.reason).into_owned();
                    let why = if c.code == close_code::NO_ERROR {
                        CloseReason::Finished
                    } else if c.code >= close_code::APPLICATION_BASE {
                        let code = u32::try_from(c.code - close_code::APPLICATION_BASE)
                            .unwrap_or(u32::MAX);
                        CloseReason::PeerClose { code, reason }
                    } else {
                        CloseReason::PeerError {
                            code: c.code,
                            reason,
                        }
                    };
                    self.enter_draining(now, why);
                    return;
                }
                Frame::PathChallenge(data) => {
                    if self.path_responses.len() < 4 {
                        self.path_responses.push_back((from, data));
                    }
                }
                Frame::PathResponse(data) => self.on_path_response(from, data),
            }
        }
        self.received.on_packet(
            pn,
            ack_eliciting,
            now,
            self.config.ack_eliciting_threshold,
            self.config.max_ack_delay,
        );
        if let Some(d) = self.received.deadline() {
            self.timers.set(Timer::Ack, d);
        }
        self.check_stream_progress(now);
    }

    /// An authenticated packet from an address other than the current path.
    fn on_new_address(&mut self, from: SocketAddr, newest: bool) {
        if !newest {
            return; // a reordered packet from an old path says nothing
        }
        if self.challenge.as_ref().is_some_and(|c| c.remote == from) {
            return;
        }
        let mut data = [0u8; 8];
        self.rng.fill(&mut data);
        debug!(cid = %self.local_cid, %from, "validating new peer address");
        self.challenge = Some(PathChallenge {
            remote: from,
            data,
            send: true,
        });
    }

    fn on_path_response(&mut self, from: SocketAddr, data: [u8; 8]) {
        let Some(challenge) = &self.challenge else {
            return;
        };
        if challenge.data != data || challenge.remote != from {
            return;
        }
        self.challenge = None;
        self.timers.stop(Timer::PathValidation);
        if from != self.path.remote {
            self.path = Path {
                remote: from,
                bytes_received: 0,
                bytes_sent: 0,
                validated: true,
            };
            self.events.push_back(Event::PathChanged { remote: from });
            // The old path may have eaten packets: start the congestion state afresh-ish
            // by probing soon.
            self.ping_pending = true;
        }
    }

    /// Reports the end of the peer's stream and the acknowledgment of ours, once each.
    fn report_stream_events(&mut self) {
        if !self.peer_finished_reported && self.recv.is_complete() {
            self.peer_finished_reported = true;
            self.events.push_back(Event::PeerFinished);
        }
        if !self.all_acked_reported && self.send.is_fully_acked() {
            self.all_acked_reported = true;
            self.events.push_back(Event::AllDataAcked);
        }
    }

    fn check_stream_progress(&mut self, now: Instant) {
        self.report_stream_events();
        if self.all_acked_reported
            && self.peer_finished_reported
            && matches!(self.state, State::Established)
        {
            // Both directions are complete: close gracefully (spec §6.6).
            self.enter_closing(now, close_code::NO_ERROR, b"", CloseReason::Finished);
        }
    }

    fn reset_idle(&mut self, now: Instant) {
        self.timers.set(Timer::Idle, now + self.idle_timeout);
    }

    /// Processes expired timers.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::Idle => {
                    debug!(cid = %self.local_cid, "idle timeout");
                    self.enter_closed(CloseReason::IdleTimeout);
                }
                Timer::Handshake => {
                    debug!(cid = %self.local_cid, "handshake timeout");
                    self.enter_closed(CloseReason::HandshakeTimeout);
                }
                Timer::Close => {
                    self.state = State::Closed;
                    self.timers.stop_all();
                }
                Timer::Punch | Timer::Ack => {
                    // Due now: the next poll_transmit sends the probe or the
                    // ACK and re-arms the timer.
                }
                Timer::Keepalive => {
                    self.ping_pending = true;
                }
                Timer::LossDetection => self.on_loss_timeout(now),
                Timer::PathValidation => {
                    self.challenge = None;
                }
            }
        }
    }

    /// Writes the next datagram into `buf`, if there is one to send.
    pub(crate) fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        scratch: &mut [u8],
    ) -> Option<Transmit> {
        match &mut self.state {
            State::Handshaking { init, punch, .. } => {
                let dest = punch.poll(now, &self.config)?;
                self.timers.set(Timer::Punch, punch.next_at());
                let len = init.len();
                buf.get_mut(..len)?.copy_from_slice(init);
                self.stats.handshake_probes_sent += 1;
                self.stats.packets_sent += 1;
                self.stats.bytes_sent += len as u64;
                trace!(cid = %self.local_cid, %dest, "punch probe");
                Some(Transmit {
                    destination: dest,
                    size: len,
                })
            }
            State::Confirming {
                response,
                resend_to,
            } => {
                let dest = resend_to.take()?;
                let len = response.len();
                buf.get_mut(..len)?.copy_from_slice(response);
                self.stats.packets_sent += 1;
                self.stats.bytes_sent += len as u64;
                Some(Transmit {
                    destination: dest,
                    size: len,
                })
            }
            State::Closing { send_close } => {
                if !*send_close {
                    return None;
                }
                *send_close = false;
                self.build_close_packet(now, buf, scratch)
            }
            State::Draining | State::Closed => None,
            State::Established => self.build_data_packet(now, buf, scratch),
        }
    }

    fn build_close_packet(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        scratch: &mut [u8],
    ) -> Option<Transmit> {
        let (code, reason) = self.close_frame.clone()?;
        let mut w = Writer::new(&mut scratch[..MAX_PLAINTEXT]);
        if self.received.ack_pending() {
            let delay = self.received.on_ack_sent(now);
            crate::wire::emit_ack(&mut w, self.received.ranges(), delay.as_micros() as u64, 32)
                .ok()?;
        }
        CloseFrame {
            code,
            reason: &reason,
        }
        .emit(&mut w)
        .ok()?;
        let len = w.len();
        let dest = self.path.remote;
        self.seal_and_record(now, dest, buf, scratch, len, false, None, false)
    }

    fn build_data_packet(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        scratch: &mut [u8],
    ) -> Option<Transmit> {
        // A path challenge goes to the new address, on its own.
        if let Some(ch) = &mut self.challenge {
            if ch.send {
                ch.send = false;
                let (dest, data) = (ch.remote, ch.data);
                self.timers.set(Timer::PathValidation, now + self.pto() * 3);
                let mut w = Writer::new(&mut scratch[..MAX_PLAINTEXT]);
                Frame::PathChallenge(data).emit(&mut w).ok()?;
                let len = w.len();
                return self.seal_and_record(now, dest, buf, scratch, len, true, None, false);
            }
        }
        if let Some((dest, data)) = self.path_responses.pop_front() {
            let mut w = Writer::new(&mut scratch[..MAX_PLAINTEXT]);
            Frame::PathResponse(data).emit(&mut w).ok()?;
            let len = w.len();
            return self.seal_and_record(now, dest, buf, scratch, len, true, None, false);
        }

        let ack_due = self.received.ack_due(now);
        let probe = self.probes_pending > 0;
        let cwnd_room = self.sent.bytes_in_flight() + MAX_DATAGRAM_SIZE as u64 <= self.cc.window();
        let can_send_eliciting = cwnd_room || probe;
        let has_stream = self.send.has_data(self.peer_max_data);
        let want_eliciting = self.ping_pending || self.max_data_pending || has_stream || probe;
        if !(ack_due || want_eliciting && can_send_eliciting) {
            return None;
        }
        // Anti-amplification on an unvalidated path.
        if !self.path.validated
            && self.path.bytes_sent + MAX_DATAGRAM_SIZE as u64 > 3 * self.path.bytes_received
        {
            return None;
        }

        let mut w = Writer::new(&mut scratch[..MAX_PLAINTEXT]);
        if self.received.ack_pending() {
            let delay = self.received.on_ack_sent(now);
            self.timers.stop(Timer::Ack);
            crate::wire::emit_ack(&mut w, self.received.ranges(), delay.as_micros() as u64, 32)
                .ok()?;
        }
        let mut ack_eliciting = false;
        let mut max_data = false;
        let mut chunk = None;
        if can_send_eliciting {
            if self.max_data_pending {
                self.max_data_pending = false;
                max_data = true;
                Frame::MaxData(self.recv.max_data()).emit(&mut w).ok()?;
                ack_eliciting = true;
            }
            let room = w.remaining().saturating_sub(STREAM_FRAME_MAX_OVERHEAD);
            if room > 0 {
                if let Some((c, retransmit)) = self
                    .send
                    .next_chunk(room.min(MAX_STREAM_PAYLOAD), self.peer_max_data)
                {
                    let mut tmp = [0u8; MAX_STREAM_PAYLOAD];
                    let data = &mut tmp[..usize::from(c.len)];
                    if self.send.holds(c) {
                        self.send.copy(c, data);
                        StreamFrame {
                            offset: c.offset,
                            fin: c.fin,
                            data,
                        }
                        .emit(&mut w)
                        .ok()?;
                        if retransmit {
                            self.stats.stream_bytes_retransmitted += u64::from(c.len);
                        } else {
                            self.stats.stream_bytes_sent += u64::from(c.len);
                        }
                        chunk = Some(c);
                        ack_eliciting = true;
                    }
                }
            }
            if (self.ping_pending || probe) && !ack_eliciting {
                Frame::Ping.emit(&mut w).ok()?;
                ack_eliciting = true;
            }
            if ack_eliciting {
                self.ping_pending = false;
                self.probes_pending = self.probes_pending.saturating_sub(1);
            }
        }
        let len = w.len();
        if len == 0 {
            return None;
        }
        let dest = self.path.remote;
        let t =
            self.seal_and_record(now, dest, buf, scratch, len, ack_eliciting, chunk, max_data)?;
        if ack_eliciting {
            self.time_of_last_ack_eliciting = Some(now);
            if let Some(k) = self.config.keepalive_interval {
                self.timers.set(Timer::Keepalive, now + k);
            }
            self.set_loss_timer();
        }
        Some(t)
    }

    #[allow(clippy::too_many_arguments)]
    fn seal_and_record(
        &mut self,
        now: Instant,
        dest: SocketAddr,
        buf: &mut [u8],
        scratch: &[u8],
        plaintext_len: usize,
        ack_eliciting: bool,
        stream: Option<send_stream::StreamChunk>,
        max_data: bool,
    ) -> Option<Transmit> {
        let session = self.session.as_ref()?;
        let pn = self.next_pn;
        let header = DataHeader {
            dcid: self.remote_cid,
            packet_number: pn,
        };
        let h = header.emit(buf).ok()?;
        let sealed = session
            .seal(pn, &scratch[..plaintext_len], &mut buf[h..])
            .ok()?;
        let size = h + sealed;
        debug_assert!(size <= MAX_DATAGRAM_SIZE);
        self.next_pn += 1;
        let app_limited = !self.send.has_data(self.peer_max_data);
        self.sent.push(
            pn,
            SentPacket {
                time_sent: now,
                size: size as u16,
                ack_eliciting,
                in_flight: ack_eliciting,
                app_limited,
                stream,
                max_data,
            },
        );
        if ack_eliciting {
            self.cc
                .on_sent(now, size as u64, self.sent.bytes_in_flight());
        }
        if dest == self.path.remote && !self.path.validated {
            self.path.bytes_sent += size as u64;
        }
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += size as u64;
        Some(Transmit {
            destination: dest,
            size,
        })
    }
}
