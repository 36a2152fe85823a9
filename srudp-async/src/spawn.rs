//! Where the driver runs when the caller does not say: the default runtime
//! of [`Endpoint::bind`](crate::Endpoint::bind) and
//! [`Endpoint::bind_with_rendezvous`](crate::Endpoint::bind_with_rendezvous).
//!
//! Inside a tokio runtime (feature `tokio`), the driver is a task of that
//! runtime. Otherwise (feature `async-io`) it runs on async-io's reactor on
//! a thread of its own, named `srudp-driver`, which ends with the driver:
//! that works under any executor, or none. With neither, binding fails.

use std::io;
use std::net::SocketAddr;

use srudp_proto::rendezvous::ClientConfig;
use srudp_proto::EndpointConfig;

use crate::endpoint::Endpoint;

/// Binds with [`Endpoint::bind_with_runtime`] on the default runtime and
/// starts the driver there.
pub(crate) fn bind_on_default_runtime(
    addr: SocketAddr,
    config: EndpointConfig,
    rendezvous: Option<ClientConfig>,
) -> io::Result<Endpoint> {
    #[cfg(feature = "tokio")]
    if let Ok(runtime) = ::tokio::runtime::Handle::try_current() {
        // The socket and timer register with the runtime being entered.
        let _enter = runtime.enter();
        let (endpoint, driver) =
            Endpoint::bind_with_runtime::<crate::runtime::Tokio>(addr, config, rendezvous)?;
        runtime.spawn(driver);
        return Ok(endpoint);
    }
    #[cfg(feature = "async-io")]
    {
        let (endpoint, driver) =
            Endpoint::bind_with_runtime::<crate::runtime::AsyncIo>(addr, config, rendezvous)?;
        driver.spawn_thread()?;
        Ok(endpoint)
    }
    #[cfg(not(feature = "async-io"))]
    {
        let _ = (addr, config, rendezvous);
        Err(io::Error::other(
            "binding a srudp endpoint needs a runtime: call it within a tokio runtime \
             (feature `tokio`), or enable the `async-io` feature",
        ))
    }
}
