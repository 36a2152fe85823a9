//! The conditions only a blocking API has, as an error type carried inside
//! [`std::io::Error`]. Every other error — a closed connection, a bad
//! argument, a closed endpoint — is the shared core's and maps to the same
//! [`io::ErrorKind`] in every adapter (see [`srudp_async::stream_error`]);
//! [`close_reason`] extracts the srudp [`CloseReason`](srudp_proto::CloseReason)
//! [`rendezvous_error`] the
//! [`RendezvousError`](srudp_proto::rendezvous::RendezvousError),
//! [`connect_error`] the [`ConnectError`](srudp_proto::ConnectError) and
//! [`driver_stopped`] the [`DriverStopped`](srudp_async::DriverStopped) of a
//! driver thread whose socket failed, which are also the `io::Error`'s
//! [`source`](std::error::Error::source).

use std::io;

pub use srudp_async::{close_reason, connect_error, driver_stopped, rendezvous_error};

/// Why a blocking call of this crate failed, beyond the shared core's
/// errors. Carried inside [`io::Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [`Stream::close`](crate::Stream::close) let go of the stream: it can
    /// no longer be used (`ConnectionAborted`, as for any stream this side
    /// ended, in every adapter).
    #[error("the stream was closed by this side")]
    StreamClosed,
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
}

impl Error {
    /// The [`io::ErrorKind`] this error is reported with.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::StreamClosed => io::ErrorKind::ConnectionAborted,
            Error::WaitTimeout => io::ErrorKind::WouldBlock,
            Error::CloseTimeout => io::ErrorKind::TimedOut,
            Error::NotAccepting => io::ErrorKind::InvalidInput,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// Whether `err` says this side let go of the stream ([`Error::StreamClosed`]).
pub(crate) fn is_stream_closed(err: &io::Error) -> bool {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<Error>())
        .is_some_and(|e| matches!(e, Error::StreamClosed))
}

/// Whether `err` is a timeout the application set ([`Error::WaitTimeout`]).
pub(crate) fn is_wait_timeout(err: &io::Error) -> bool {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<Error>())
        .is_some_and(|e| matches!(e, Error::WaitTimeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_conditions_map_to_the_kinds_a_std_user_expects() {
        let kind = |e: Error| io::Error::from(e).kind();
        assert_eq!(kind(Error::WaitTimeout), io::ErrorKind::WouldBlock);
        assert_eq!(kind(Error::CloseTimeout), io::ErrorKind::TimedOut);
        assert_eq!(kind(Error::StreamClosed), io::ErrorKind::ConnectionAborted);
        assert_eq!(kind(Error::NotAccepting), io::ErrorKind::InvalidInput);
        let err = io::Error::from(Error::WaitTimeout);
        assert!(is_wait_timeout(&err));
        assert_eq!(close_reason(&err), None);
    }
}
