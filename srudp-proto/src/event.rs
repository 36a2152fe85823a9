//! What an endpoint tells the application (spec §8).

use std::fmt;
use std::net::SocketAddr;

use crate::keys::PublicKey;

/// Opaque, never-reused name of one connection of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionHandle(pub u64);

impl fmt::Display for ConnectionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Something happened on a connection; drained with [`Endpoint::poll_event`](crate::Endpoint::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed. For an accepted connection this is the
    /// application's cue to start using the handle.
    Connected {
        /// Whether we accepted (responder) rather than opened the connection.
        incoming: bool,
        /// The peer's address on the path that won.
        remote: SocketAddr,
        /// The peer's authenticated static key, when the handshake revealed it:
        /// always for connections we opened, for accepted ones only with IK.
        peer: Option<PublicKey>,
    },
    /// New in-order data (or the end of the stream) can be read.
    Readable,
    /// The send buffer has room again after a write was refused.
    Writable,
    /// The peer finished its direction and every byte it sent has arrived;
    /// after the buffered bytes, reads report end of stream.
    PeerFinished,
    /// Our direction was finished and the peer acknowledged every byte of it.
    AllDataAcked,
    /// The connection now uses a new peer address (validated first).
    PathChanged {
        /// The new address.
        remote: SocketAddr,
    },
    /// The connection is over. Data that arrived before can still be read
    /// until the handle is released.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// Both directions were finished and acknowledged: a graceful close.
    Finished,
    /// The application closed the connection abruptly with this code.
    LocalClose {
        /// The application's code.
        code: u32,
    },
    /// The peer closed the connection abruptly.
    PeerClose {
        /// The peer application's code.
        code: u32,
        /// The peer's reason text (lossily decoded UTF-8).
        reason: String,
    },
    /// Nothing authenticated arrived for the idle timeout.
    IdleTimeout,
    /// The handshake (and hole punching) did not complete in time.
    HandshakeTimeout,
    /// The peer refused our handshake.
    Refused,
    /// The peer refused our handshake because it requires a ticket (spec
    /// §4.9) and ours was missing or not the one it requires.
    TicketRefused,
    /// This connection was opened with a ticket, and the peer did not prove
    /// that it holds it (spec §4.9); we closed the connection.
    PeerWithoutTicket,
    /// The peer broke the protocol; we closed the connection.
    ProtocolViolation {
        /// What was wrong.
        detail: String,
    },
    /// The peer kept the connection alive but stopped acknowledging what we
    /// sent: nothing we sent was acknowledged for the idle timeout, or more
    /// packets went unacknowledged than a connection keeps records of
    /// (spec §6.5). A peer whose packets arrive but who receives none of
    /// ours looks the same.
    PeerStoppedAcknowledging,
    /// The peer reported that we broke the protocol (or hit its limits).
    PeerError {
        /// The transport error code it sent.
        code: u64,
        /// Its reason text.
        reason: String,
    },
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Finished => f.write_str("closed gracefully"),
            CloseReason::LocalClose { code } => write!(f, "closed locally with code {code}"),
            CloseReason::PeerClose { code, reason } => {
                write!(f, "peer closed the connection with code {code}: {reason}")
            }
            CloseReason::IdleTimeout => f.write_str("idle timeout: the peer stopped answering"),
            CloseReason::HandshakeTimeout => {
                f.write_str("handshake timeout: no candidate address answered")
            }
            CloseReason::Refused => f.write_str("the peer refused the connection"),
            CloseReason::TicketRefused => f.write_str(
                "the peer refused the connection: it requires a ticket, and ours is missing or not the one it requires",
            ),
            CloseReason::PeerWithoutTicket => f.write_str(
                "the peer does not hold this connection's ticket: connection closed",
            ),
            CloseReason::PeerStoppedAcknowledging => {
                f.write_str("the peer stopped acknowledging: what we sent went unacknowledged")
            }
            CloseReason::ProtocolViolation { detail } => {
                write!(f, "peer violated the protocol: {detail}")
            }
            CloseReason::PeerError { code, reason } => {
                write!(
                    f,
                    "peer closed the connection with transport error {code}: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for CloseReason {}

/// Transport error codes carried in CLOSE frames (spec §6.6). Application
/// codes travel as `APPLICATION_BASE + code`.
pub mod close_code {
    /// Graceful close: both directions finished and acknowledged.
    pub const NO_ERROR: u64 = 0;
    /// The peer sent something the protocol forbids.
    pub const PROTOCOL_VIOLATION: u64 = 1;
    /// The peer sent beyond the flow-control limit.
    pub const FLOW_CONTROL: u64 = 2;
    /// A resource limit was hit.
    pub const RESOURCE_LIMIT: u64 = 3;
    /// The connection was opened with a ticket, and the peer did not prove
    /// that it holds it (spec §4.9).
    pub const TICKET_REQUIRED: u64 = 4;
    /// Codes from here up are the application's.
    pub const APPLICATION_BASE: u64 = 0x100;
}
