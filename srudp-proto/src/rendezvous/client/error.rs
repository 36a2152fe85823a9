//! Why connecting to a peer through the rendezvous failed.

use crate::rendezvous::message::ErrorCode;
use crate::CloseReason;

/// Why connecting to a peer through the rendezvous failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RendezvousError {
    /// No peer is registered under that key or name.
    #[error("peer not registered")]
    PeerNotRegistered,
    /// The server was reachable but did not answer in time.
    #[error("the rendezvous server did not answer in time")]
    Timeout,
    /// The rendezvous server could not be reached.
    #[error("rendezvous server unreachable")]
    ServerUnreachable,
    /// The server refused the request.
    #[error("refused by the rendezvous server: {0}")]
    Refused(ErrorCode),
    /// The connection to the peer failed (for example no path, direct or
    /// relayed, answered before the handshake timeout).
    #[error("connection to the peer failed: {0}")]
    Connection(CloseReason),
    /// The name is not a valid [`Name`](crate::rendezvous::Name): 1–64
    /// bytes of `a-z 0-9 . _ -`.
    #[error("invalid name (1-64 bytes of a-z 0-9 . _ -)")]
    InvalidName,
    /// Connecting to our own key, or to the name we registered under.
    #[error("cannot connect to ourselves")]
    SelfConnect,
    /// Too many connect requests outstanding.
    #[error("too many connect requests outstanding")]
    TooManyRequests,
    /// The endpoint could not open the connection (connection limit, bad
    /// candidates from the server).
    #[error("the endpoint could not open the connection")]
    EndpointRefused,
}
