//! One connection's state machine: handshake, punching, packet protection,
//! acknowledgments, loss recovery, the byte stream and closing (spec §4–§6).
//!
//! A `Connection` is driven only by its [`Endpoint`](crate::Endpoint); the
//! application reaches it through the endpoint's methods and a
//! [`ConnectionHandle`](crate::ConnectionHandle).

mod idle;
#[cfg(test)]
pub(crate) use idle::IDLE_RELEASE_DELAY;
mod ack_frequency;
mod confirm_nudges;
mod delivery_rate;
mod hard_nat;
mod keepalive;
mod lost_packets;
mod mtu_discovery;
mod pacing;
mod params;
mod paths;
mod persistent_congestion;
mod punch;
#[cfg(test)]
mod reassembly_tests;
mod receive;
mod received_packets;
mod recovery;
pub(crate) mod recv_stream;
mod rtt;
mod send_stream;
mod sent_packets;
mod stats;
#[cfg(any(test, fuzzing, feature = "test-hooks"))]
mod test_hooks;
#[cfg(test)]
mod tests;
mod timer;
mod transmit;
mod unanswered_budget;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::debug;

use ack_frequency::AckFrequency;
use confirm_nudges::ConfirmNudges;
use delivery_rate::DeliveryRate;
pub use delivery_rate::RateSample;
use hard_nat::HardNatRound;
pub use hard_nat::{HARD_NAT_BYTES_PER_MINUTE, HARD_NAT_KNOCKS, HARD_NAT_SPARE_SOCKETS};
use lost_packets::{LostPackets, SpuriousLoss};
use mtu_discovery::MtuDiscovery;
use pacing::Pacer;
pub(crate) use params::{TransportParams, MAX_PARAMS_LEN};
use paths::PathProbes;
use persistent_congestion::LossRun;
pub(crate) use punch::Punch;
pub use punch::{MAX_CANDIDATES, MAX_KNOCKS_PER_CANDIDATE, UNANSWERED_BYTES_PER_CONNECTION};
use received_packets::ReceivedPackets;
use recv_stream::RecvStream;
pub use recv_stream::{ReadError, FRAGMENT_OVERHEAD};
pub use rtt::RttEstimator;
use send_stream::SendStream;
pub use send_stream::WriteError;
use sent_packets::{SentPacket, SentPackets};
pub use stats::ConnectionStats;

/// The closing period's floor (spec §6.6): a side that sent CLOSE answers
/// every further packet of the peer with CLOSE for max(3 × PTO,
/// `CLOSING_PERIOD`) — longer than an idle peer's keepalive interval (a
/// third of the default 30 s idle timeout), so a peer whose one CLOSE was
/// lost learns the close at its next packet, whatever the profile's probe
/// timeouts. An application that closes and exits should keep its endpoint
/// running this long.
pub const CLOSING_PERIOD: Duration = Duration::from_secs(12);
use stats::LimitClock;
use timer::{Timer, TimerTable};
pub(crate) use unanswered_budget::UnansweredBudget;
pub use unanswered_budget::UNANSWERED_BYTES_PER_MINUTE;

use crate::config::TransportConfig;
use crate::congestion::Controller;
use crate::crypto::cookie::{InitiatorCookies, MacKeys};
use crate::crypto::{Handshake, HandshakePattern, ReplayWindow, Session};
use crate::event::{close_code, CloseReason, Event};
use crate::keys::PublicKey;
use crate::random::Rng;
use crate::wire::coding::Writer;
use crate::wire::{
    CloseFrame, ConnectionId, DataHeader, Frame, FrameIter, HandshakeResponse, StreamFrame,
    DATA_HEADER_LEN, MAX_DATAGRAM_SIZE, STREAM_FRAME_MAX_OVERHEAD, TAG_LEN,
};

/// Where to send a datagram written by `poll_transmit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The destination address.
    pub destination: SocketAddr,
    /// How many bytes of the caller's buffer make up the datagram.
    pub size: usize,
    /// Send this datagram with this IP hop limit (IPv4 TTL, IPv6 hop
    /// limit) instead of the socket's; `None` for the socket's own. Only
    /// the opening knocks of hole punching carry one (spec §4.4): an
    /// adapter that cannot honour it sends the datagram as usual.
    pub hop_limit: Option<u8>,
    /// When not 0: send this datagram once from each of this many fresh
    /// local sockets ("spare sockets", bound to the endpoint socket's IP
    /// address and port 0) instead of from the endpoint's socket, feed
    /// whatever those sockets receive to the endpoint like any datagram,
    /// and send later datagrams to an address last heard on a spare
    /// (from the IP address it was opened toward) through that spare. Only the spare probe of the hard-NAT round
    /// carries it (spec §4.4): each spare opens one more mapping of a
    /// symmetric NAT toward the peer. An adapter that cannot honour it
    /// sends the datagram once from its own socket, as usual.
    pub spare_sockets: u16,
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
        cookies: Box<InitiatorCookies>,
        /// Keys the MAC of our knocks (spec §9.3.8).
        knock_keys: Box<MacKeys>,
    },
    /// Responder: keys ready, waiting for the initiator's first packet.
    Confirming {
        response: Box<[u8]>,
        resend_to: Option<SocketAddr>,
        /// PINGs that show the initiator where we are now (spec §4.2).
        nudges: ConfirmNudges,
    },
    Established,
    /// We sent CLOSE; answer further packets with it until the deadline,
    /// or until the peer's CLOSE shows it has closed too (spec §6.6).
    Closing {
        /// Where to send the CLOSE next: the address of the packet it
        /// answers (spec §6.6), or none.
        send_close_to: Option<SocketAddr>,
    },
    /// The peer sent CLOSE; stay silent until the deadline, except for one
    /// CLOSE answering it (`answer_close`): that answer lets the peer stop
    /// lingering (spec §6.6).
    Draining {
        answer_close: bool,
    },
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
    /// The application gave the candidates itself: they get the
    /// HandshakeInit at once. Otherwise (an introduction) each is knocked
    /// until it answers (spec §4.4).
    pub(crate) trusted_candidates: bool,
    pub(crate) local_cid: ConnectionId,
    pub(crate) handshake: Handshake,
    pub(crate) init_datagram: Box<[u8]>,
    pub(crate) ticket: Option<crate::TicketSecret>,
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
    /// The ticket the initiator proved it holds, if one was required.
    pub(crate) ticket: Option<crate::TicketSecret>,
}

/// The state of one connection.
#[derive(Debug)]
pub(crate) struct Connection {
    config: Arc<TransportConfig>,
    side: Side,
    state: State,
    local_cid: ConnectionId,
    remote_cid: ConnectionId,
    /// The peer's static key, only once the handshake authenticated it:
    /// always for an initiator, for a responder only with IK (spec §4.7).
    /// Never inferred from an address.
    peer: Option<PublicKey>,
    expected_peer: Option<PublicKey>,
    /// The pattern of our own initiation (initiators; `None` for responders).
    own_pattern: Option<HandshakePattern>,
    /// The ticket this connection was opened or accepted with (spec §4.9).
    ticket: Option<crate::TicketSecret>,
    session: Option<Session>,
    path: Path,
    challenge: Option<PathChallenge>,
    /// Challenges to other candidate addresses of the peer (spec §11.6).
    probes: PathProbes,
    /// The hard-NAT round, while one runs (spec §4.4).
    hard_nat: Option<HardNatRound>,
    /// The relay toward the peer, if a rendezvous gave us one (spec §11.6).
    relay: Option<SocketAddr>,
    /// When an authenticated packet last arrived on the current path.
    path_heard: Instant,
    path_responses: VecDeque<(SocketAddr, [u8; 8])>,
    rng: Rng,

    next_pn: u64,
    replay: ReplayWindow,
    largest_received: Option<u64>,
    received: ReceivedPackets,

    sent: SentPackets,
    /// Packets declared lost, kept a while to spot spurious losses.
    lost: LostPackets,
    loss_run: LossRun,
    rtt: RttEstimator,
    /// Packets from this number on were sent after the first RTT sample.
    first_pn_after_rtt_sample: Option<u64>,
    cc: Box<dyn Controller>,
    /// The datagram size the controller was last told of.
    cc_datagram_size: u64,
    /// Delivery-rate samples for the controller (spec §7.1).
    delivery: DeliveryRate,
    pacer: Pacer,
    largest_acked: Option<u64>,
    loss_time: Option<Instant>,
    pto_count: u32,
    time_of_last_ack_eliciting: Option<Instant>,
    probes_pending: u8,
    ping_pending: bool,
    peer_max_ack_delay: Duration,
    /// The peer takes ACK_FREQUENCY frames (transport parameter, spec §4.3).
    peer_accepts_ack_frequency: bool,
    /// The peer initiated because of a rendezvous introduction (spec §11.4).
    peer_introduced: bool,
    /// How often we ask the peer to acknowledge (spec §6.2).
    ack_frequency: AckFrequency,
    /// The largest UDP payload the peer accepts (transport parameter, spec §4.3).
    peer_max_udp_payload: usize,
    /// How large Data packets on the current direct path may be (spec §6.9).
    mtu: MtuDiscovery,
    /// The path `mtu` was started for.
    mtu_path: Option<SocketAddr>,
    idle_timeout: Duration,
    /// Reused buffers of the acknowledgment path (no allocation per ACK).
    acked_scratch: Vec<(u64, SentPacket)>,
    spurious_scratch: Vec<SpuriousLoss>,

    send: SendStream,
    recv: RecvStream,
    peer_max_data: u64,
    /// The peer's initial limit (transport parameter): MAX_DATA never goes below it.
    peer_initial_max_data: u64,
    /// Packet number and value of the MAX_DATA frame in the peer's newest packet carrying one.
    peer_max_data_frame: Option<(u64, u64)>,
    max_data_pending: bool,
    /// The application read: check at the next transmit whether to raise our limit.
    flow_update_due: bool,
    limits: LimitClock,
    /// The latest `now` seen, for statistics read between inputs.
    last_now: Instant,

    timers: TimerTable,
    events: VecDeque<Event>,
    /// A `Readable` that comes before everything in `events`: new data
    /// arriving while nothing else waits sets this flag instead of queueing
    /// an event (which the endpoint would take out again), once per packet
    /// of a transfer.
    readable_first: bool,
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
        mut rng: Rng,
    ) -> Connection {
        let punch = Punch::new(
            &setup.candidates,
            setup.trusted_candidates,
            now,
            &config,
            &mut rng,
        );
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
        conn.own_pattern = Some(setup.pattern);
        conn.ticket = setup.ticket;
        conn.app_visible = true;
        conn.state = State::Handshaking {
            handshake: Box::new(setup.handshake),
            init: setup.init_datagram,
            punch,
            cookies: Box::new(InitiatorCookies::new(&setup.peer)),
            knock_keys: Box::new(MacKeys::for_responder(&setup.peer)),
        };
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
        // Only what the handshake authenticated (IK) is reported: an NK
        // initiator proved nothing about itself, whatever its address.
        self.peer = setup.peer;
        self.ticket = setup.ticket;
        self.apply_peer_params(&setup.peer_params);
        self.session = Some(setup.session);
        let (nudges, first_nudge) = ConfirmNudges::new(now, self.config.handshake_retry_initial);
        self.state = State::Confirming {
            response: setup.response,
            resend_to: Some(setup.remote),
            nudges,
        };
        self.timers.stop(Timer::Punch);
        self.timers.set(Timer::ConfirmNudge, first_nudge);
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
            own_pattern: None,
            ticket: None,
            session: None,
            path: Path {
                remote,
                bytes_received: 0,
                bytes_sent: 0,
                validated: false,
            },
            challenge: None,
            probes: PathProbes::default(),
            hard_nat: None,
            relay: None,
            path_heard: now,
            path_responses: VecDeque::new(),
            rng,
            next_pn: 0,
            replay: ReplayWindow::new(),
            largest_received: None,
            received: ReceivedPackets::new(config.ack_eliciting_threshold, config.max_ack_delay),
            sent: SentPackets::new(),
            lost: LostPackets::new(),
            loss_run: LossRun::default(),
            rtt: RttEstimator::new(config.initial_rtt),
            first_pn_after_rtt_sample: None,
            cc,
            // What every controller is built for (`ControllerFactory::build`).
            cc_datagram_size: MAX_DATAGRAM_SIZE as u64,
            delivery: DeliveryRate::new(now),
            pacer: Pacer::default(),
            largest_acked: None,
            loss_time: None,
            pto_count: 0,
            time_of_last_ack_eliciting: None,
            probes_pending: 0,
            ping_pending: false,
            peer_max_ack_delay: config.max_ack_delay,
            peer_accepts_ack_frequency: false,
            peer_introduced: false,
            ack_frequency: AckFrequency::default(),
            peer_max_udp_payload: MAX_DATAGRAM_SIZE,
            mtu: MtuDiscovery::new(config.mtu_research_interval),
            mtu_path: None,
            idle_timeout: config.idle_timeout,
            acked_scratch: Vec::new(),
            spurious_scratch: Vec::new(),
            send: SendStream::new(config.send_buffer),
            recv: RecvStream::new(now, config.receive_window, config.max_receive_window),
            peer_max_data: 0,
            peer_initial_max_data: 0,
            peer_max_data_frame: None,
            max_data_pending: false,
            flow_update_due: false,
            limits: LimitClock::default(),
            last_now: now,
            timers: TimerTable::default(),
            events: VecDeque::new(),
            readable_first: false,
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
        self.peer_initial_max_data = params.max_data;
        self.peer_max_ack_delay = Duration::from_millis(params.max_ack_delay_ms);
        self.peer_accepts_ack_frequency = params.accepts_ack_frequency;
        self.peer_introduced = params.introduced;
        self.peer_max_udp_payload = usize::try_from(params.max_udp_payload).unwrap_or(usize::MAX);
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

    /// The peer's initiation said it comes from a rendezvous introduction.
    pub(crate) fn peer_introduced(&self) -> bool {
        self.peer_introduced
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

    /// Makes an answered, unconfirmed incoming connection the application's
    /// own, as if it had connected to `peer` (spec §4.5, late open). The
    /// endpoint calls it only for an initiator that authenticated (IK) as
    /// `peer`.
    pub(crate) fn adopt(&mut self, peer: PublicKey) {
        debug_assert_eq!(self.peer, Some(peer), "adopted without authentication");
        self.app_visible = true;
        self.expected_peer = Some(peer);
    }

    /// Sends an ack-eliciting PING soon (an established connection only):
    /// the peer hears from us now, from wherever our NAT maps us now.
    pub(crate) fn ping(&mut self) {
        if matches!(self.state, State::Established) {
            self.ping_pending = true;
        }
    }

    /// The ticket the connection was opened or accepted with.
    pub(crate) fn ticket(&self) -> Option<&crate::TicketSecret> {
        self.ticket.as_ref()
    }

    /// The pattern of our own initiation, while we are (or were) its initiator.
    pub(crate) fn own_pattern(&self) -> Option<HandshakePattern> {
        self.own_pattern
    }

    pub(crate) fn is_closed(&self) -> bool {
        matches!(
            self.state,
            State::Closing { .. } | State::Draining { .. } | State::Closed
        )
    }

    /// Fully done: nothing to send, no timer left.
    pub(crate) fn is_drained(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Over for whoever waits on it: closed, or draining with its one
    /// answering CLOSE sent. What is left of a draining connection is a
    /// silent wait (spec §6.6) that needs nobody: both sides have closed and
    /// heard each other, so the process may exit.
    pub(crate) fn is_over(&self) -> bool {
        matches!(
            self.state,
            State::Closed
                | State::Draining {
                    answer_close: false
                }
        )
    }

    pub(crate) fn stats(&self) -> ConnectionStats {
        let mut s = self.limits.snapshot(self.last_now, &self.stats);
        s.srtt = self.rtt.smoothed();
        s.rttvar = self.rtt.var();
        s.min_rtt = self.rtt.min();
        s.cwnd = self.cc.window();
        s.ssthresh = self.cc.ssthresh();
        s.bytes_in_flight = self.sent.bytes_in_flight();
        s.max_datagram_size = self.max_datagram_to(self.path.remote) as u64;
        s.ack_work = self.sent.visited();
        s.sent_records = self.sent.slots() as u64;
        s.sent_record_bytes = self.sent.memory() as u64;
        s.stream_bytes_acked = self.send.acked_prefix();
        s.stream_bytes_received = self.recv.received();
        s.stream_bytes_duplicate = self.recv.duplicate_bytes();
        s.peer_max_data = self.peer_max_data;
        s.receive_window = self.recv.window();
        s
    }

    /// Stream bytes written and not yet acknowledged in order: what the send
    /// buffer holds.
    pub(crate) fn send_buffered(&self) -> u64 {
        self.send.written() - self.send.acked_prefix()
    }

    /// Adds a candidate the application (or our own rendezvous client, for
    /// its relay) vouches for: it gets the HandshakeInit at once.
    pub(crate) fn add_candidate(&mut self, addr: SocketAddr, now: Instant) -> bool {
        match &mut self.state {
            State::Handshaking { punch, .. } => {
                let added = punch.add_candidate(addr, true, now, &mut self.rng);
                if added {
                    self.timers.set(Timer::Punch, now);
                }
                added
            }
            _ => false,
        }
    }

    /// The peer proved itself from `from` (its initiation authenticated as
    /// the key we punch toward, spec §4.4): `from` is a **peer-reflexive**
    /// candidate, the address the peer's NAT gave it toward us, and gets our
    /// HandshakeInit at once. Once per authenticated datagram: nothing is
    /// sent to `from` later unless the peer proves itself from there again.
    pub(crate) fn answer_peer_reflexive(&mut self, from: SocketAddr, now: Instant) {
        if let State::Handshaking { punch, .. } = &mut self.state {
            if punch.answer_peer_reflexive(from, now) {
                self.timers.set(Timer::Punch, now);
            }
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
                    // Decided at the next transmit, which knows the time.
                    self.flow_update_due = true;
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
        self.limits.stop(now, &mut self.stats);
        self.report_closed(local);
        self.timers.stop_all();
        if can_send {
            let graceful = code == close_code::NO_ERROR;
            self.close_frame = Some((code, reason));
            self.state = State::Closing {
                send_close_to: Some(self.path.remote),
            };
            // The closing period (spec §6.6): long enough to answer a few of
            // the peer's backed-off probes and an idle peer's next keepalive,
            // whatever the profile: if our CLOSE is lost, the peer's next
            // packet gets another.
            let mut linger = self.linger().max(CLOSING_PERIOD);
            if graceful {
                // After a graceful close the peer may still be waiting for
                // the acknowledgment of its last bytes, which only our CLOSE
                // can now give: answer its probes for as long as it may
                // send them, until its idle timeout. The peer's answering
                // CLOSE ends this early (`handle_data`).
                linger = linger.max(self.idle_timeout + self.pto());
            }
            self.timers.set(Timer::Close, now + linger);
        } else {
            self.state = State::Closed;
        }
    }

    /// The peer's CLOSE arrived. `answer_close`: send one CLOSE back (the
    /// one we sent, or code 0 if we had not closed), so a peer lingering in
    /// `Closing` learns that we heard it.
    fn enter_draining(&mut self, now: Instant, reason: CloseReason, answer_close: bool) {
        self.limits.stop(now, &mut self.stats);
        self.report_closed(reason);
        self.timers.stop_all();
        if answer_close && self.close_frame.is_none() {
            self.close_frame = Some((close_code::NO_ERROR, Vec::new()));
        }
        self.state = State::Draining { answer_close };
        self.timers.set(Timer::Close, now + self.linger());
    }

    fn enter_closed(&mut self, reason: CloseReason) {
        self.limits.stop(self.last_now, &mut self.stats);
        self.report_closed(reason);
        self.timers.stop_all();
        self.state = State::Closed;
    }

    fn report_closed(&mut self, reason: CloseReason) {
        if self.close_reason.is_none() {
            // For diagnosing a slow or failed connection from its log:
            // loss, retransmissions, path MTU, what limited the sender.
            debug!(cid = %self.local_cid, stats = ?self.stats(), "connection statistics at close");
            self.close_reason = Some(reason.clone());
            if self.app_visible {
                self.events.push_back(Event::Closed { reason });
            }
        }
    }

    /// 3 × PTO (`close_linger_ptos`): how long a side draining stays silent,
    /// and the closing period's part that grows with the round trip.
    fn linger(&self) -> Duration {
        self.pto() * self.config.close_linger_ptos
    }

    fn pto(&self) -> Duration {
        self.rtt
            .pto_base(self.config.granularity, self.peer_max_ack_delay)
    }

    /// Spec §6.5: nothing we sent was acknowledged for the idle timeout, or
    /// the sent-packet record is full. Without acknowledgments we cannot
    /// tell lost packets from delivered ones, nor free their records.
    fn peer_stopped_acknowledging(&mut self, now: Instant) {
        debug!(cid = %self.local_cid, "the peer stopped acknowledging");
        self.enter_closing(
            now,
            close_code::RESOURCE_LIMIT,
            b"peer stopped acknowledging",
            CloseReason::PeerStoppedAcknowledging,
        );
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
        if std::mem::take(&mut self.readable_first) {
            return Some(Event::Readable);
        }
        self.events.pop_front()
    }

    /// Reports new readable data: a `Readable` right behind another adds
    /// nothing (the application reads until `Blocked`) and is left out.
    fn report_readable(&mut self) {
        match self.events.back() {
            None => self.readable_first = true,
            Some(Event::Readable) => {}
            Some(_) => self.events.push_back(Event::Readable),
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ----- inputs (receive.rs holds the datagram handlers) ---------------

    /// Processes expired timers.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
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
                Timer::Punch | Timer::Ack | Timer::Pacing => {
                    // Due now: the next poll_transmit sends the probe, the
                    // ACK or the paced packet, and re-arms the timer.
                }
                Timer::Keepalive => {
                    self.ping_pending = true;
                }
                Timer::LossDetection => self.on_loss_timeout(now),
                Timer::PathValidation => {
                    self.challenge = None;
                }
                Timer::IdleRelease => self.on_idle_release_timeout(),
                Timer::ConfirmNudge => {
                    if let State::Confirming { nudges, .. } = &mut self.state {
                        if let Some(next) = nudges.fire(now, self.path.remote, self.relay) {
                            self.timers.set(Timer::ConfirmNudge, next);
                        }
                    }
                }
            }
        }
    }
}
