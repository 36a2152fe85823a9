//! Reading the srudp cause back out of the `io::Error`s every adapter
//! returns (the kinds are in [`stream_error`](crate::stream_error)). The
//! same cause is also the `io::Error`'s
//! [`source`](std::error::Error::source).

use std::io;

use srudp_proto::rendezvous::RendezvousError;
use srudp_proto::CloseReason;

use crate::stream_error::StreamError;

/// The srudp reason behind an `io::Error` of a closed connection, in any
/// adapter.
///
/// ```
/// use srudp_async::{close_reason, CloseReason, StreamError};
/// let err: std::io::Error = StreamError::Closed(CloseReason::IdleTimeout).into();
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// assert_eq!(close_reason(&err), Some(&CloseReason::IdleTimeout));
/// assert_eq!(close_reason(&std::io::Error::other("not ours")), None);
/// ```
pub fn close_reason(err: &io::Error) -> Option<&CloseReason> {
    match err.get_ref()?.downcast_ref::<StreamError>()? {
        StreamError::Closed(reason) => Some(reason),
        _ => None,
    }
}

/// The [`RendezvousError`] behind an `io::Error` of a connect by key or
/// name (or a refused registration), in any adapter.
///
/// ```
/// use srudp_async::rendezvous_error;
/// use srudp_async::rendezvous::RendezvousError;
/// # async fn example(endpoint: srudp_async::Endpoint) {
/// match endpoint.connect_by_name("laptop").await {
///     Ok(stream) => { /* ... */ }
///     Err(e) if rendezvous_error(&e) == Some(&RendezvousError::PeerNotRegistered) => {
///         eprintln!("nobody is registered as laptop");
///     }
///     Err(e) => eprintln!("cannot connect: {e}"),
/// }
/// # }
/// ```
pub fn rendezvous_error(err: &io::Error) -> Option<&RendezvousError> {
    match err.get_ref()?.downcast_ref::<StreamError>()? {
        StreamError::Rendezvous(e) => Some(e),
        _ => None,
    }
}
