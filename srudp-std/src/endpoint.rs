//! [`Endpoint`]: one UDP socket, its driver thread, and every connection
//! opened or accepted on it — blocking calls over srudp-async's endpoint.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use srudp_proto::rendezvous::ClientConfig;
use srudp_proto::{AcceptPolicy, ConnectOptions, EndpointConfig, EndpointStats, PublicKey};

use crate::block::block_on;
use crate::error::Error;
use crate::stream::Stream;

/// A srudp endpoint on one UDP socket: it opens connections with
/// [`connect`](Self::connect) and accepts them with [`accept`](Self::accept),
/// any number at once, all over the same socket.
///
/// A background driver thread owns the socket and runs the protocol; every
/// method here is a blocking call on the shared state. The handle is cheap
/// to [`Clone`] and share between threads.
///
/// **Lifetime.** Streams keep the endpoint's driver running. When the last
/// `Endpoint` handle is dropped, new incoming connections are refused but
/// existing streams keep working; once every stream is gone too and every
/// connection has closed and lingered its closing period (so the peer
/// learns why), the driver thread ends by itself. [`close`](Self::close)
/// closes every connection at once; [`wait_idle`](Self::wait_idle) waits
/// for the lingering to end, for a program about to exit.
#[derive(Debug, Clone)]
pub struct Endpoint {
    inner: srudp_async::Endpoint,
}

impl Endpoint {
    /// Binds a UDP socket to `addr` and starts the endpoint's driver thread
    /// (named `srudp-driver`).
    ///
    /// `addr` may be IPv4 or IPv6; the unspecified IPv6 address (`"[::]:port"`)
    /// also carries IPv4 where the OS allows dual-stack sockets. Port 0 picks
    /// a free port (see [`local_addr`](Self::local_addr)). As with
    /// [`std::net::UdpSocket::bind`], every resolved address is tried in turn.
    ///
    /// Fails with `InvalidInput` if `config` is invalid.
    pub fn bind<A: ToSocketAddrs>(addr: A, config: EndpointConfig) -> io::Result<Endpoint> {
        Endpoint::bind_machine(addr, config, None)
    }

    /// Binds on the first resolved address that works, with a rendezvous
    /// client when `rendezvous` is set, and starts the driver thread.
    pub(crate) fn bind_machine<A: ToSocketAddrs>(
        addr: A,
        config: EndpointConfig,
        rendezvous: Option<ClientConfig>,
    ) -> io::Result<Endpoint> {
        let mut last_error = None;
        for addr in addr.to_socket_addrs()? {
            match srudp_async::Endpoint::bind_on_thread(addr, config.clone(), rendezvous.clone()) {
                Ok(inner) => return Ok(Endpoint { inner }),
                // A bad configuration fails on every address alike.
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => return Err(e),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no address to bind to")
        }))
    }

    pub(crate) fn inner(&self) -> &srudp_async::Endpoint {
        &self.inner
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local_addr())
    }

    /// This endpoint's public key: what peers pass to `connect`.
    pub fn public_key(&self) -> PublicKey {
        self.inner.public_key()
    }

    /// Opens a connection to the peer holding `peer`'s secret key, punching
    /// every candidate address (the first that answers wins), and blocks
    /// until it is established.
    ///
    /// Both sides may call `connect` toward each other at the same time (hole
    /// punching through NATs): exactly one connection results, and each side
    /// gets it from its own `connect`. If the peer's IK connection arrived
    /// before we called `connect` (and was not accepted yet), `connect`
    /// returns that connection instead of opening a second one, so the two
    /// sides need not agree on timing (spec §4.5, late open). An anonymous
    /// (NK) connection is never taken for `peer`'s.
    ///
    /// Errors: `TimedOut` when no candidate answered within the handshake
    /// timeout, `ConnectionRefused` when the peer refused, `InvalidInput`
    /// for unusable arguments (no candidates, none of this socket's address
    /// family, our own key), `NotConnected` after [`close`](Self::close).
    ///
    /// **A wrong key looks exactly like an unreachable peer.** A responder
    /// stays silent toward an initiation not sealed to its key — by design:
    /// it does not even reveal that srudp listens there (spec §4.2) — so a
    /// wrong `peer`, a wrong address and a peer that is down all end the
    /// same way: `TimedOut` after the handshake timeout
    /// ([`TransportConfig::handshake_timeout`](crate::TransportConfig::handshake_timeout),
    /// default 10 s). `ConnectionRefused` means the key was right.
    ///
    /// **How soon a gone peer is noticed.** A peer that closes the stream
    /// or its endpoint, or whose process exits (`main` returns,
    /// `std::process::exit`: on Unix an exit hook stops the driver thread,
    /// which sends a CLOSE), tells us at once: reads return 0, or fail with
    /// `ConnectionReset`. A peer that vanishes without a word — its process
    /// crashed or killed, its host or the path down — is noticed when
    /// nothing has arrived from it for the idle timeout ([`TransportConfig::idle_timeout`](crate::TransportConfig::idle_timeout),
    /// default 30 s; the smaller of both sides'): then `TimedOut`.
    pub fn connect(&self, peer: PublicKey, candidates: &[SocketAddr]) -> io::Result<Stream> {
        self.connect_with(ConnectOptions::new(peer, candidates.to_vec()))
    }

    /// [`connect`](Self::connect) with explicit options, such as the IK
    /// handshake pattern that authenticates us to the peer. Errors and
    /// timing are `connect`'s: a wrong key looks like an unreachable peer
    /// (`TimedOut` after the handshake timeout, default 10 s), and a peer
    /// killed without a word is noticed after the idle timeout (default 30 s).
    pub fn connect_with(&self, options: ConnectOptions) -> io::Result<Stream> {
        let stream = block_on(None, self.inner.connect_with(options))?;
        Ok(Stream::new(stream, self.inner.local_addr()))
    }

    /// Waits for the next incoming connection; returns it with the peer's
    /// address and, when the peer authenticated with IK, its public key.
    ///
    /// Fails with `NotConnected` once the endpoint is closed, and
    /// `InvalidInput` if the accept policy refuses everyone (instead of
    /// blocking forever).
    pub fn accept(&self) -> io::Result<(Stream, SocketAddr, Option<PublicKey>)> {
        self.accept_within(None)
    }

    /// [`accept`](Self::accept), giving up with an `io::ErrorKind::WouldBlock`
    /// error after `timeout`.
    pub fn accept_timeout(
        &self,
        timeout: Duration,
    ) -> io::Result<(Stream, SocketAddr, Option<PublicKey>)> {
        self.accept_within(Some(timeout))
    }

    fn accept_within(
        &self,
        timeout: Option<Duration>,
    ) -> io::Result<(Stream, SocketAddr, Option<PublicKey>)> {
        if self.inner.accept_policy() == AcceptPolicy::RefuseAll {
            // A closed endpoint refuses everyone too, but says it is closed
            // (`NotConnected`, as in every adapter); a connection queued
            // before the policy changed is still handed out.
            return match futures_lite::future::block_on(futures_lite::future::poll_once(
                self.inner.accept(),
            )) {
                Some(Ok((stream, remote, peer))) => {
                    Ok((Stream::new(stream, self.inner.local_addr()), remote, peer))
                }
                Some(Err(e)) => Err(e),
                None => Err(Error::NotAccepting.into()),
            };
        }
        let (stream, remote, peer) = block_on(timeout, self.inner.accept())?;
        Ok((Stream::new(stream, self.inner.local_addr()), remote, peer))
    }

    /// Changes who may connect to this endpoint from now on.
    pub fn set_accept_policy(&self, policy: AcceptPolicy) {
        self.inner.set_accept_policy(policy);
    }

    /// The endpoint's counters (malformed or refused datagrams, accepted
    /// connections, …). A connection's own counters are [`Stream::stats`].
    pub fn stats(&self) -> EndpointStats {
        self.inner.stats()
    }

    /// Closes the endpoint now: every connection is closed abruptly (peers
    /// receive a CLOSE, code 0, "endpoint closed"), blocked calls on its
    /// streams fail with `ConnectionAborted`, and `accept` and `connect`
    /// with `NotConnected`. Unsent data of open streams is discarded: close
    /// streams first for a graceful end. The driver thread lingers in the
    /// background until the peers have heard; [`wait_idle`](Self::wait_idle)
    /// waits for that. Calling it again does nothing.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Blocks until the application's connections are all over: each
    /// closed (gracefully, abruptly, or by its peer) and past its closing
    /// period — which ends as soon as the peer answers our CLOSE, so this
    /// takes about one round trip after the last close when peers are
    /// alive — and every dropped stream has delivered its data. Returns at
    /// once when there are none; a rendezvous registration does not count.
    ///
    /// The exit recipe: finish or close your streams (or
    /// [`close`](Endpoint::close) the endpoint), then `wait_idle()`, then
    /// return from `main`. A program that exits without it (on Unix) still
    /// tells its peers: at process exit the driver thread sends what the
    /// streams had queued and a CLOSE for every connection, waiting at most
    /// half a second — each peer reads to end-of-stream if it all arrives,
    /// and otherwise learns at once that the connection was closed; but
    /// nothing is retransmitted then, so only this call guarantees
    /// delivery.
    pub fn wait_idle(&self) {
        let waited: io::Result<()> = block_on(None, async {
            self.inner.wait_idle().await;
            Ok(())
        });
        debug_assert!(waited.is_ok(), "no timeout, no error");
    }
}
