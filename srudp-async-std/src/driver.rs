//! The public face of the endpoint's driver, for callers who spawn it on
//! their own executor (the loop itself is `srudp_async::Driver`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::runtime::AsyncIo;

/// The future that drives one endpoint. [`Endpoint::bind`](crate::Endpoint::bind)
/// runs it on a thread of its own; [`Endpoint::bind_with_driver`](crate::Endpoint::bind_with_driver)
/// hands it to you to spawn on your executor (`smol::spawn(driver).detach()`,
/// `async_std::task::spawn(driver)`).
///
/// It completes once the endpoint has shut down (see the crate docs).
/// Dropping it before that stops the endpoint: every stream then fails with
/// `NotConnected`. Until it is polled, nothing is sent or received.
#[must_use = "the endpoint does nothing unless its driver is spawned"]
pub struct EndpointDriver {
    inner: srudp_async::Driver<AsyncIo>,
}

impl std::fmt::Debug for EndpointDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointDriver")
            .field("local_addr", &self.inner.local_addr())
            .finish_non_exhaustive()
    }
}

impl EndpointDriver {
    pub(crate) fn new(inner: srudp_async::Driver<AsyncIo>) -> EndpointDriver {
        EndpointDriver { inner }
    }
}

impl Future for EndpointDriver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.inner).poll(cx)
    }
}
