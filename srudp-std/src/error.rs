//! The adapter's error type and its mapping to [`std::io::Error`].
//!
//! Every fallible method returns `io::Result`; the `io::Error` carries an
//! [`Error`] as its source, so a caller who needs the srudp [`CloseReason`]
//! gets it with [`close_reason`] (or by downcasting `get_ref()`).

use std::io;

use srudp_proto::{CloseReason, ConfigError, ConnectError};

/// Why an operation of this crate failed. Carried inside [`io::Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection is over; the reason says how. Its [`io::ErrorKind`] is
    /// `TimedOut` for idle and handshake timeouts, `ConnectionRefused` for a
    /// refusal, `ConnectionReset` for a peer's abort, `ConnectionAborted` for
    /// a protocol error, `BrokenPipe` after a graceful close and
    /// `NotConnected` after a local abort.
    #[error("{0}")]
    Closed(CloseReason),
    /// This side finished its direction (`shutdown` or `close`): no more writes.
    #[error("the stream was shut down for writing")]
    WriteShutdown,
    /// This side closed or aborted the stream: it can no longer be used.
    #[error("the stream was closed by this side")]
    StreamClosed,
    /// The endpoint was closed with [`Endpoint::close`](crate::Endpoint::close).
    #[error("the endpoint is closed")]
    EndpointClosed,
    /// The endpoint's UDP socket failed and its driver stopped.
    #[error("the endpoint's socket failed: {0}")]
    SocketFailed(String),
    /// A read, write or accept timeout set by the application passed; the
    /// stream or endpoint is still usable ([`io::ErrorKind::WouldBlock`], as
    /// `std::net` sockets report it on Unix).
    #[error("the operation did not complete within its timeout")]
    WaitTimeout,
    /// [`Stream::close`](crate::Stream::close) gave up waiting for the peer to
    /// acknowledge our data and aborted the connection.
    #[error("the peer did not acknowledge every byte within the close timeout")]
    CloseTimeout,
    /// `accept` on an endpoint whose policy refuses every connection.
    #[error("this endpoint refuses incoming connections (AcceptPolicy::RefuseAll)")]
    NotAccepting,
    /// None of the candidate addresses can be reached from this endpoint's
    /// socket (for example IPv6 candidates on an IPv4 socket).
    #[error("no candidate address matches the endpoint's address family")]
    NoUsableCandidate,
    /// The connection could not be started.
    #[error("cannot connect: {0}")]
    Connect(#[from] ConnectError),
    /// The endpoint configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Error {
    /// The [`io::ErrorKind`] this error is reported with.
    pub fn kind(&self) -> io::ErrorKind {
        use io::ErrorKind as K;
        match self {
            Error::Closed(reason) => match reason {
                CloseReason::Finished => K::BrokenPipe,
                CloseReason::LocalClose { .. } => K::NotConnected,
                CloseReason::PeerClose { .. } => K::ConnectionReset,
                CloseReason::IdleTimeout
                | CloseReason::HandshakeTimeout
                | CloseReason::PeerStoppedAcknowledging => K::TimedOut,
                CloseReason::Refused | CloseReason::TicketRefused => K::ConnectionRefused,
                CloseReason::PeerWithoutTicket => K::PermissionDenied,
                CloseReason::ProtocolViolation { .. } | CloseReason::PeerError { .. } => {
                    K::ConnectionAborted
                }
            },
            Error::WriteShutdown => K::BrokenPipe,
            Error::StreamClosed | Error::EndpointClosed => K::NotConnected,
            Error::SocketFailed(_) => K::Other,
            Error::WaitTimeout => K::WouldBlock,
            Error::CloseTimeout => K::TimedOut,
            Error::NotAccepting | Error::NoUsableCandidate | Error::Connect(_) => K::InvalidInput,
            Error::Config(_) => K::InvalidInput,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// The srudp reason behind an `io::Error` returned by this crate, if the
/// error is a closed connection.
///
/// ```
/// use srudp_std::{close_reason, CloseReason, Error};
/// let err: std::io::Error = Error::Closed(CloseReason::IdleTimeout).into();
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// assert_eq!(close_reason(&err), Some(&CloseReason::IdleTimeout));
/// ```
pub fn close_reason(err: &io::Error) -> Option<&CloseReason> {
    match err.get_ref()?.downcast_ref::<Error>()? {
        Error::Closed(reason) => Some(reason),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_map_to_the_kinds_a_std_user_expects() {
        let kind = |r: CloseReason| io::Error::from(Error::Closed(r)).kind();
        assert_eq!(kind(CloseReason::IdleTimeout), io::ErrorKind::TimedOut);
        assert_eq!(kind(CloseReason::HandshakeTimeout), io::ErrorKind::TimedOut);
        assert_eq!(kind(CloseReason::Refused), io::ErrorKind::ConnectionRefused);
        assert_eq!(
            kind(CloseReason::PeerClose {
                code: 7,
                reason: "bye".into()
            }),
            io::ErrorKind::ConnectionReset
        );
        assert_eq!(kind(CloseReason::Finished), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn the_close_reason_travels_as_the_source() {
        let reason = CloseReason::PeerClose {
            code: 42,
            reason: "going away".into(),
        };
        let err = io::Error::from(Error::Closed(reason.clone()));
        assert_eq!(close_reason(&err), Some(&reason));
        assert!(err.to_string().contains("going away"));
        let other = io::Error::from(Error::WaitTimeout);
        assert_eq!(close_reason(&other), None);
        assert_eq!(other.kind(), io::ErrorKind::WouldBlock);
    }
}
