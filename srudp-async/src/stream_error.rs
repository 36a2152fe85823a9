//! Errors of the application-side stream API that runtime adapters expose,
//! and their mapping onto [`std::io::Error`].
//!
//! Adapters return `std::io::Error` so their streams plug into the `Read`/
//! `Write` / `AsyncRead` / `AsyncWrite` ecosystems. The mapping lives here,
//! once, so every adapter reports the same [`std::io::ErrorKind`] for the same
//! cause:
//!
//! | cause | `ErrorKind` |
//! |---|---|
//! | [`CloseReason::IdleTimeout`], [`CloseReason::HandshakeTimeout`], [`CloseReason::PeerStoppedAcknowledging`] | `TimedOut` |
//! | [`CloseReason::PeerClose`], [`CloseReason::PeerError`], [`CloseReason::ProtocolViolation`] | `ConnectionReset` |
//! | [`CloseReason::Refused`] | `ConnectionRefused` |
//! | [`CloseReason::LocalClose`] (the application or its endpoint closed it) | `ConnectionAborted` |
//! | [`CloseReason::Finished`] (writing after a graceful close) | `BrokenPipe` |
//! | writing after finishing ([`StreamError::Finished`]) | `BrokenPipe` |
//! | a stream the endpoint no longer knows ([`StreamError::UnknownStream`]) | `NotConnected` |
//! | using an endpoint after [`close`](crate::Endpoint::close) ([`StreamError::EndpointClosed`]) | `NotConnected` |
//! | the endpoint's driver was dropped with its runtime or task ([`DriverStopped::Dropped`]) | `NotConnected` |
//! | the endpoint's UDP socket failed ([`DriverStopped::SocketFailed`]) | the socket error's kind |
//! | [`RendezvousError::PeerNotRegistered`] (no peer under that key or name) | `NotFound` |
//! | [`RendezvousError::Timeout`] | `TimedOut` |
//! | [`RendezvousError::ServerUnreachable`] | `HostUnreachable` |
//! | [`RendezvousError::Refused`] (the server refused a request or the registration) | `PermissionDenied` |
//! | [`RendezvousError::Connection`] (no path to the introduced peer worked) | `ConnectionRefused` |
//! | [`RendezvousError::InvalidName`], [`RendezvousError::SelfConnect`] (our own key or name) | `InvalidInput` |
//! | [`RendezvousError::TooManyRequests`], [`RendezvousError::EndpointRefused`] | `Other` |
//!
//! The `io::Error` carries a [`StreamError`] (`err.get_ref()`, downcast) —
//! or, for a connect that could not start, a private wrapper of its
//! [`ConnectError`] — and its [`source`](std::error::Error::source) is the
//! srudp cause: the [`CloseReason`] of a closed connection, the
//! [`RendezvousError`] of a failed connect by key or name, the
//! [`ConnectError`], the [`DriverStopped`] of an endpoint whose driver
//! ended. [`close_reason`](crate::close_reason),
//! [`rendezvous_error`](crate::rendezvous_error),
//! [`connect_error`](crate::connect_error) and
//! [`driver_stopped`](crate::driver_stopped) read them back.

use std::io;

use srudp_proto::rendezvous::RendezvousError;
use srudp_proto::{CloseReason, ConnectError};

/// Why a stream operation, or the endpoint call that opens a stream,
/// failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The connection is over; the reason says why.
    #[error("{}", closed_summary(.0))]
    Closed(#[source] CloseReason),
    /// Our direction was already finished: no more writes.
    #[error("the stream was finished: no more writes")]
    Finished,
    /// The endpoint does not know this stream (it was released or the endpoint shut down).
    #[error("the stream is not connected")]
    UnknownStream,
    /// The endpoint was closed ([`Endpoint::close`](crate::Endpoint::close)):
    /// it no longer accepts, connects or reports.
    #[error("the endpoint is closed")]
    EndpointClosed,
    /// Connecting through the rendezvous (by key or name) or registering
    /// there failed; the [`RendezvousError`] says why and is the source.
    #[error("{0}")]
    Rendezvous(#[source] RendezvousError),
    /// The endpoint's driver ended before the endpoint was closed: nothing
    /// is sent or received anymore. The [`DriverStopped`] says why and is
    /// the source.
    #[error("{0}")]
    DriverStopped(#[source] DriverStopped),
}

/// Why an endpoint's driver ended before the application closed the
/// endpoint. Every later call on the endpoint and its streams fails with
/// it (as [`StreamError::DriverStopped`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DriverStopped {
    /// The driver was dropped before the endpoint shut down: its task was
    /// cancelled or its runtime shut down (for example `main` returned
    /// from `#[tokio::main]` while the endpoint was still in use). Before
    /// going it sent what was queued and a CLOSE for every connection. The
    /// text says what that means for the adapter's runtime. `NotConnected`.
    #[error("{0}")]
    Dropped(&'static str),
    /// The endpoint's UDP socket failed with an error that is not transient
    /// (a full buffer or an ICMP error never ends the driver). Reported
    /// with the socket error's kind and message.
    #[error("the endpoint's UDP socket failed: {message}")]
    SocketFailed {
        /// The socket error's kind.
        kind: io::ErrorKind,
        /// The socket error's text.
        message: String,
    },
}

impl DriverStopped {
    /// The socket failure `e`.
    pub(crate) fn socket_failed(e: &io::Error) -> DriverStopped {
        DriverStopped::SocketFailed {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// A one-line summary per close reason; the reason itself is the error's
/// source. A peer's close names its code and reason, since that is what a
/// user needs to see; the reason is the peer's text, so it is escaped
/// (no control characters or line breaks reach a terminal).
fn closed_summary(reason: &CloseReason) -> String {
    let fixed = match reason {
        CloseReason::Finished => "the connection was closed gracefully",
        CloseReason::LocalClose { .. } => "the connection was closed locally",
        CloseReason::PeerClose { code, reason } => {
            return format!(
                "the connection was reset by the peer: application code {code}, reason \"{}\"",
                reason.escape_debug()
            );
        }
        CloseReason::PeerError { code, reason } => {
            return format!(
                "the connection was reset by the peer: transport error code {code}, reason \"{}\"",
                reason.escape_debug()
            );
        }
        CloseReason::ProtocolViolation { .. } => "the connection was aborted: protocol violation",
        CloseReason::IdleTimeout => "the connection timed out",
        CloseReason::PeerStoppedAcknowledging => {
            "the connection timed out: the peer stopped acknowledging"
        }
        CloseReason::HandshakeTimeout => "connecting timed out",
        CloseReason::Refused => "the peer refused the connection",
        CloseReason::TicketRefused => "the peer refused the connection: ticket required",
        CloseReason::PeerWithoutTicket => "the peer does not hold the ticket",
    };
    fixed.to_string()
}

impl StreamError {
    /// The `io::ErrorKind` this error maps to (see the module docs).
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            StreamError::Closed(reason) => match reason {
                CloseReason::IdleTimeout
                | CloseReason::HandshakeTimeout
                | CloseReason::PeerStoppedAcknowledging => io::ErrorKind::TimedOut,
                CloseReason::PeerClose { .. }
                | CloseReason::PeerError { .. }
                | CloseReason::ProtocolViolation { .. } => io::ErrorKind::ConnectionReset,
                CloseReason::Refused | CloseReason::TicketRefused => {
                    io::ErrorKind::ConnectionRefused
                }
                CloseReason::PeerWithoutTicket => io::ErrorKind::PermissionDenied,
                CloseReason::LocalClose { .. } => io::ErrorKind::ConnectionAborted,
                CloseReason::Finished => io::ErrorKind::BrokenPipe,
            },
            StreamError::Finished => io::ErrorKind::BrokenPipe,
            StreamError::UnknownStream | StreamError::EndpointClosed => io::ErrorKind::NotConnected,
            StreamError::Rendezvous(e) => rendezvous_kind(e),
            StreamError::DriverStopped(DriverStopped::Dropped(_)) => io::ErrorKind::NotConnected,
            StreamError::DriverStopped(DriverStopped::SocketFailed { kind, .. }) => *kind,
        }
    }
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// A connection that could not be started, as an `io::Error`: bad requests
/// (no, too many or own-key candidates) are `InvalidInput`; a full endpoint
/// is `Other`. The [`ConnectError`] is the error's source (and
/// [`connect_error`](crate::connect_error) reads it back).
pub(crate) fn connect_failure(e: ConnectError) -> io::Error {
    let kind = match e {
        ConnectError::NoCandidates
        | ConnectError::TooManyCandidates
        | ConnectError::SelfConnect => io::ErrorKind::InvalidInput,
        ConnectError::TooManyConnections | ConnectError::Crypto(_) => io::ErrorKind::Other,
    };
    io::Error::new(kind, ConnectFailed(e))
}

/// The error inside the `io::Error` of a connection that could not be
/// started: it says why in one line, and its source is the
/// [`ConnectError`] (an `io::Error`'s `source()` is its inner error's).
#[derive(Debug, thiserror::Error)]
#[error("cannot connect: {0}")]
pub(crate) struct ConnectFailed(#[source] pub(crate) ConnectError);

/// The kind of a failed connect by key or name (see the module docs).
fn rendezvous_kind(e: &RendezvousError) -> io::ErrorKind {
    use RendezvousError as R;
    match e {
        R::PeerNotRegistered => io::ErrorKind::NotFound,
        R::Timeout => io::ErrorKind::TimedOut,
        R::ServerUnreachable => io::ErrorKind::HostUnreachable,
        R::Refused(_) => io::ErrorKind::PermissionDenied,
        R::Connection(_) => io::ErrorKind::ConnectionRefused,
        R::InvalidName | R::SelfConnect => io::ErrorKind::InvalidInput,
        R::TooManyRequests | R::EndpointRefused => io::ErrorKind::Other,
    }
}

/// A connect by key or name that failed, as an `io::Error` (the kinds are
/// in the module docs); the [`RendezvousError`] is its source.
pub(crate) fn rendezvous_failure(e: RendezvousError) -> io::Error {
    StreamError::Rendezvous(e).into()
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_peer_abort_is_connection_reset_with_the_reason_as_source() {
        let reason = CloseReason::PeerClose {
            code: 7,
            reason: "bye".into(),
        };
        let err = io::Error::from(StreamError::Closed(reason.clone()));
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        let source = err.source().expect("the close reason is the source");
        assert_eq!(source.downcast_ref::<CloseReason>(), Some(&reason));
        let inner = err.get_ref().unwrap().downcast_ref::<StreamError>();
        assert_eq!(inner, Some(&StreamError::Closed(reason)));
    }

    #[test]
    fn a_peer_abort_shows_its_code_and_reason_in_the_message() {
        let err = io::Error::from(StreamError::Closed(CloseReason::PeerClose {
            code: 42,
            reason: "disk full".into(),
        }));
        assert_eq!(
            err.to_string(),
            "the connection was reset by the peer: application code 42, reason \"disk full\""
        );
        let err = io::Error::from(StreamError::Closed(CloseReason::PeerError {
            code: 1,
            reason: "bad ack".into(),
        }));
        assert_eq!(
            err.to_string(),
            "the connection was reset by the peer: transport error code 1, reason \"bad ack\""
        );
    }

    #[test]
    fn a_hostile_reason_cannot_break_the_line_or_drive_the_terminal() {
        let err = io::Error::from(StreamError::Closed(CloseReason::PeerClose {
            code: 1,
            reason: "a\nb\u{1b}[2Jc\"".into(),
        }));
        let text = err.to_string();
        assert!(!text.contains('\n') && !text.contains('\u{1b}'), "{text:?}");
        assert!(text.ends_with(r#"reason "a\nb\u{1b}[2Jc\"""#), "{text:?}");
    }

    #[test]
    fn an_unregistered_peer_is_not_found_with_the_rendezvous_error_as_source() {
        let err = rendezvous_failure(RendezvousError::PeerNotRegistered);
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(err.to_string(), "peer not registered");
        let source = err.source().expect("the rendezvous error is the source");
        assert_eq!(
            source.downcast_ref::<RendezvousError>(),
            Some(&RendezvousError::PeerNotRegistered)
        );
        assert_eq!(
            crate::rendezvous_error(&err),
            Some(&RendezvousError::PeerNotRegistered)
        );
        let timeout = rendezvous_failure(RendezvousError::Timeout);
        assert_eq!(timeout.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn every_rendezvous_cause_maps_to_its_documented_kind() {
        use io::ErrorKind::*;
        use srudp_proto::rendezvous::ErrorCode;
        let cases = [
            (RendezvousError::PeerNotRegistered, NotFound),
            (RendezvousError::Timeout, TimedOut),
            (RendezvousError::ServerUnreachable, HostUnreachable),
            (
                RendezvousError::Refused(ErrorCode::InvalidRequest),
                PermissionDenied,
            ),
            (
                RendezvousError::Connection(CloseReason::HandshakeTimeout),
                ConnectionRefused,
            ),
            (RendezvousError::InvalidName, InvalidInput),
            (RendezvousError::SelfConnect, InvalidInput),
            (RendezvousError::TooManyRequests, Other),
            (RendezvousError::EndpointRefused, Other),
        ];
        for (error, kind) in cases {
            let err = rendezvous_failure(error.clone());
            assert_eq!(err.kind(), kind, "{error:?}");
            assert_eq!(err.to_string(), error.to_string());
            assert_eq!(crate::rendezvous_error(&err), Some(&error));
            assert_eq!(crate::close_reason(&err), None);
        }
    }

    #[test]
    fn a_closed_endpoint_is_not_connected_and_typed() {
        let err = io::Error::from(StreamError::EndpointClosed);
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
        assert_eq!(err.to_string(), "the endpoint is closed");
        let inner = err.get_ref().unwrap().downcast_ref::<StreamError>();
        assert_eq!(inner, Some(&StreamError::EndpointClosed));
    }

    #[test]
    fn every_cause_maps_to_its_documented_kind() {
        use io::ErrorKind::*;
        let cases = [
            (StreamError::Closed(CloseReason::IdleTimeout), TimedOut),
            (StreamError::Closed(CloseReason::HandshakeTimeout), TimedOut),
            (
                StreamError::Closed(CloseReason::PeerStoppedAcknowledging),
                TimedOut,
            ),
            (StreamError::Closed(CloseReason::Refused), ConnectionRefused),
            (
                StreamError::Closed(CloseReason::LocalClose { code: 1 }),
                ConnectionAborted,
            ),
            (
                StreamError::Closed(CloseReason::PeerError {
                    code: 3,
                    reason: String::new(),
                }),
                ConnectionReset,
            ),
            (
                StreamError::Closed(CloseReason::ProtocolViolation { detail: "x".into() }),
                ConnectionReset,
            ),
            (StreamError::Closed(CloseReason::Finished), BrokenPipe),
            (StreamError::Finished, BrokenPipe),
            (StreamError::UnknownStream, NotConnected),
        ];
        for (error, kind) in cases {
            assert_eq!(io::Error::from(error.clone()).kind(), kind, "{error:?}");
        }
    }

    #[test]
    fn bad_connect_requests_are_invalid_input() {
        for e in [
            ConnectError::NoCandidates,
            ConnectError::TooManyCandidates,
            ConnectError::SelfConnect,
        ] {
            assert_eq!(connect_failure(e).kind(), io::ErrorKind::InvalidInput);
        }
        assert_eq!(
            connect_failure(ConnectError::TooManyConnections).kind(),
            io::ErrorKind::Other
        );
    }
}
