//! The endpoint: one UDP socket, one driver task, any number of streams.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use srudp_proto::{AcceptPolicy, ConnectOptions, EndpointConfig, PublicKey};

use crate::driver::EndpointDriver;
use crate::runtime::AsyncIo;
use crate::stream::Stream;

/// A srudp endpoint on async-io (for async-std and smol): one UDP socket
/// that opens and accepts any number of connections.
///
/// Cloning is cheap and gives another handle to the same endpoint. The
/// endpoint's driver task runs until every handle, every [`Stream`] and
/// every pending [`Connecting`] is gone and every connection has closed —
/// or, after [`close`](Endpoint::close), until every connection has drained.
///
/// **Cancellation safety.** [`accept`](Endpoint::accept) is cancellation
/// safe: a connection leaves the accept queue only when the call completes.
/// [`connect`](Endpoint::connect) starts the attempt at once and returns a
/// [`Connecting`] future, which is `Unpin`: poll `&mut connecting` in a
/// `select!` loop to keep the same attempt across iterations. Dropping a
/// `Connecting` before it completes aborts that attempt (the peer, if it had
/// answered, sees the connection close) and leaves nothing behind.
/// [`wait_idle`](Endpoint::wait_idle) is cancellation safe.
#[derive(Clone)]
pub struct Endpoint {
    inner: srudp_async::Endpoint,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Endpoint {
    /// Binds a UDP socket to `addr` and starts the endpoint's driver on a
    /// thread of its own (named `srudp-driver`, ended with the driver), so
    /// it works under any executor — async-std, smol — or none. To run the
    /// driver on your executor instead, use [`bind_with_driver`](Endpoint::bind_with_driver).
    ///
    /// IPv4 and IPv6 both work; `[::]:port` is dual-stack where the OS
    /// allows, reaching IPv4 peers too. Errors: the bind fails, or the
    /// configuration is invalid (`InvalidInput`).
    pub fn bind(addr: SocketAddr, config: EndpointConfig) -> io::Result<Endpoint> {
        let (endpoint, driver) = Endpoint::bind_with_driver(addr, config)?;
        Endpoint::spawn_driver_thread(driver)?;
        Ok(endpoint)
    }

    /// Binds like [`bind`](Endpoint::bind) but returns the driver future for
    /// you to spawn, for example `smol::spawn(driver).detach()` or
    /// `async_std::task::spawn(driver)`. Nothing is sent or received until
    /// it runs; see [`EndpointDriver`].
    pub fn bind_with_driver(
        addr: SocketAddr,
        config: EndpointConfig,
    ) -> io::Result<(Endpoint, EndpointDriver)> {
        Endpoint::wrap(srudp_async::Endpoint::bind::<AsyncIo>(addr, config))
    }

    /// Runs `driver` on a thread of its own (named `srudp-driver`, ended
    /// with the driver).
    pub(crate) fn spawn_driver_thread(driver: EndpointDriver) -> io::Result<()> {
        std::thread::Builder::new()
            .name("srudp-driver".into())
            .spawn(move || async_io::block_on(driver))?;
        Ok(())
    }

    /// The public faces of what `srudp_async` bound.
    pub(crate) fn wrap(
        bound: io::Result<(srudp_async::Endpoint, srudp_async::Driver<AsyncIo>)>,
    ) -> io::Result<(Endpoint, EndpointDriver)> {
        let (inner, driver) = bound?;
        Ok((Endpoint { inner }, EndpointDriver::new(driver)))
    }

    pub(crate) fn inner(&self) -> &srudp_async::Endpoint {
        &self.inner
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr()
    }

    /// This endpoint's public key: what peers pass to `connect`.
    pub fn public_key(&self) -> PublicKey {
        self.inner.public_key()
    }

    /// Opens a connection to the peer whose public key is `peer`, punching
    /// every candidate address at once; the first that answers wins. Both
    /// peers may connect toward each other at the same time: they get one
    /// connection — also when the peer's attempt reached us first: a connect
    /// to a peer whose connection is being answered, or waits unaccepted,
    /// takes that connection over (see spec §4.5). Candidates this socket
    /// cannot reach (the other IP family) are skipped.
    ///
    /// The attempt starts now; await the returned [`Connecting`] for the
    /// stream. Errors: `InvalidInput` for no (reachable) candidate, too many
    /// candidates or our own key; `TimedOut` when no candidate answered
    /// within the handshake timeout; `ConnectionRefused` when the peer
    /// refused; `NotConnected` after [`close`](Endpoint::close).
    pub fn connect(&self, peer: PublicKey, candidates: &[SocketAddr]) -> Connecting {
        Connecting {
            inner: self.inner.connect(peer, candidates),
        }
    }

    /// [`connect`](Endpoint::connect) with explicit options (for example
    /// the IK pattern, which authenticates us to the peer).
    pub fn connect_with(&self, options: ConnectOptions) -> Connecting {
        Connecting {
            inner: self.inner.connect_with(options),
        }
    }

    /// Waits for the next incoming connection and returns its stream, the
    /// peer's address and, when the peer authenticated (IK), its public key.
    /// Which initiators are admitted is the configuration's
    /// [`AcceptPolicy`].
    ///
    /// Cancellation safe. Errors: `NotConnected` after [`close`](Endpoint::close).
    pub async fn accept(&self) -> io::Result<(Stream, SocketAddr, Option<PublicKey>)> {
        let (stream, remote, peer) = self.inner.accept().await?;
        Ok((Stream::new(stream), remote, peer))
    }

    /// Changes who may connect to this endpoint from now on.
    pub fn set_accept_policy(&self, policy: AcceptPolicy) {
        self.inner.set_accept_policy(policy);
    }

    /// Closes every connection at once (the peers are told, with code 0 and
    /// reason "endpoint closed") and stops accepting. Streams then fail
    /// with `ConnectionAborted`; `connect` and `accept` with `NotConnected`.
    /// The driver ends once every connection has drained; await
    /// [`wait_idle`](Endpoint::wait_idle) for that.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Completes when no connection has anything left to do: every one has
    /// closed and lingered its closing period (so a peer whose last packets
    /// crossed our close still hears it). Use it after closing streams or
    /// the endpoint, before the program exits.
    pub async fn wait_idle(&self) {
        self.inner.wait_idle().await;
    }
}

/// A connection attempt started by [`Endpoint::connect`]; resolves to the
/// [`Stream`] once the handshake completes.
///
/// `Unpin`, so it can be polled by reference in a `select!` loop. Dropping
/// it before it completes aborts the attempt.
pub struct Connecting {
    inner: srudp_async::Connecting,
}

impl std::fmt::Debug for Connecting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Future for Connecting {
    type Output = io::Result<Stream>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<Stream>> {
        Pin::new(&mut self.inner).poll(cx).map_ok(Stream::new)
    }
}
