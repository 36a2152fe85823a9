//! Reading the srudp cause back out of the `io::Error`s every adapter
//! returns (the kinds are in [`stream_error`](crate::stream_error)). The
//! same cause is also the `io::Error`'s
//! [`source`](std::error::Error::source).

use std::io;

use srudp_proto::rendezvous::RendezvousError;
use srudp_proto::{CloseReason, ConnectError};

use crate::stream_error::{ConnectFailed, DriverStopped, StreamError};

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

/// Why a connection could not be started at all (no candidates, our own
/// key, a full endpoint…), behind an `io::Error` of `connect`, in any
/// adapter. The same [`ConnectError`] is the error's `source()`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use srudp_async::{connect_error, Endpoint, EndpointConfig, Keypair};
/// use srudp_async::srudp_proto::ConnectError;
/// let endpoint = Endpoint::bind("127.0.0.1:0".parse().unwrap(),
///                               EndpointConfig::new(Keypair::generate_from_os())).unwrap();
/// let err = endpoint.connect(endpoint.public_key(), &[endpoint.local_addr()]).await.unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// assert!(matches!(connect_error(&err), Some(ConnectError::SelfConnect)));
/// let source = std::error::Error::source(&err).unwrap();
/// assert!(matches!(source.downcast_ref::<ConnectError>(), Some(ConnectError::SelfConnect)));
/// # }
/// ```
pub fn connect_error(err: &io::Error) -> Option<&ConnectError> {
    err.get_ref()?
        .downcast_ref::<ConnectFailed>()
        .map(|ConnectFailed(e)| e)
}

/// Why the endpoint's driver ended (its runtime shut down, its UDP socket
/// failed) behind an `io::Error` of any call on the endpoint or its
/// streams, in any adapter. The same [`DriverStopped`] is the error's
/// `source()`.
///
/// ```
/// use srudp_async::{driver_stopped, DriverStopped, StreamError};
/// let err: std::io::Error = StreamError::DriverStopped(DriverStopped::Dropped("its runtime shut down")).into();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
/// assert!(matches!(driver_stopped(&err), Some(DriverStopped::Dropped(_))));
/// assert_eq!(driver_stopped(&std::io::Error::other("not ours")), None);
/// ```
pub fn driver_stopped(err: &io::Error) -> Option<&DriverStopped> {
    match err.get_ref()?.downcast_ref::<StreamError>()? {
        StreamError::DriverStopped(e) => Some(e),
        _ => None,
    }
}
