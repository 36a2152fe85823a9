//! [`Endpoint`]: one UDP socket, its driver thread, and every connection
//! opened or accepted on it.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use srudp_proto::{AcceptPolicy, ConnectOptions, EndpointConfig, EndpointStats, PublicKey};

use crate::driver;
use crate::error::Error;
use crate::socket::{self, canonical};
use crate::state::{Conn, Lifecycle, Shared, State};
use crate::stream::Stream;
use srudp_proto::rendezvous::DrivenEndpoint;

/// A srudp endpoint on one UDP socket: it opens connections with
/// [`connect`](Self::connect) and accepts them with [`accept`](Self::accept),
/// any number at once, all over the same socket.
///
/// A background driver thread owns the socket's receiving side and runs the
/// protocol; every method here is a blocking call that hands a command to it
/// and waits. The handle is cheap to [`Clone`] and share between threads.
///
/// **Lifetime.** Streams keep the endpoint's driver running. When the last
/// `Endpoint` handle is dropped, new incoming connections are refused but
/// existing streams keep working; when the last stream is dropped too, the
/// driver waits for dropped streams to deliver their data (each at most its
/// close timeout), closes whatever is left, and the thread is joined.
/// [`close`](Self::close) stops everything at once.
#[derive(Debug, Clone)]
pub struct Endpoint {
    handle: Arc<EndpointHandle>,
}

/// Dropped with the last `Endpoint` clone: the endpoint stops accepting.
#[derive(Debug)]
struct EndpointHandle {
    inner: Arc<EndpointInner>,
}

/// Dropped with the last `Endpoint` or `Stream`: the driver stops.
#[derive(Debug)]
pub(crate) struct EndpointInner {
    pub(crate) shared: Arc<Shared>,
    driver: Mutex<Option<JoinHandle<()>>>,
}

impl Endpoint {
    /// Binds a UDP socket to `addr` and starts the endpoint's driver thread.
    ///
    /// `addr` may be IPv4 or IPv6; the unspecified IPv6 address (`"[::]:port"`)
    /// also carries IPv4 where the OS allows dual-stack sockets. Port 0 picks
    /// a free port (see [`local_addr`](Self::local_addr)). As with
    /// [`std::net::UdpSocket::bind`], every resolved address is tried in turn.
    ///
    /// Fails with `InvalidInput` if `config` is invalid.
    pub fn bind<A: ToSocketAddrs>(addr: A, config: EndpointConfig) -> io::Result<Endpoint> {
        Endpoint::bind_machine(addr, config, |endpoint, _| {
            Ok(DrivenEndpoint::plain(endpoint))
        })
    }

    /// Binds the socket (trying each resolved address in turn), lets
    /// `machine` wrap the protocol endpoint (given the bound address), then
    /// starts the driver.
    pub(crate) fn bind_machine<A: ToSocketAddrs>(
        addr: A,
        config: EndpointConfig,
        machine: impl FnOnce(srudp_proto::Endpoint, SocketAddr) -> io::Result<DrivenEndpoint>,
    ) -> io::Result<Endpoint> {
        let proto = srudp_proto::Endpoint::new(config).map_err(Error::from)?;
        let mut last_error = None;
        for addr in addr.to_socket_addrs()? {
            match socket::bind(addr) {
                Ok((socket, family)) => {
                    let proto = machine(proto, socket.local_addr()?)?;
                    return Endpoint::start(socket, family, proto);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no address to bind to")
        }))
    }

    fn start(
        socket: std::net::UdpSocket,
        family: socket::Family,
        proto: DrivenEndpoint,
    ) -> io::Result<Endpoint> {
        let local_addr = socket.local_addr()?;
        let (poller, waker) = driver::Poller::new(socket)?;
        let shared = Arc::new(Shared::new(State::new(proto), waker, local_addr, family));
        let thread = driver::spawn(shared.clone(), poller)?;
        let inner = Arc::new(EndpointInner {
            shared,
            driver: Mutex::new(Some(thread)),
        });
        Ok(Endpoint {
            handle: Arc::new(EndpointHandle { inner }),
        })
    }

    pub(crate) fn inner(&self) -> &Arc<EndpointInner> {
        &self.handle.inner
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.handle.inner.shared
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.shared().local_addr)
    }

    /// This endpoint's public key: what peers pass to `connect`.
    pub fn public_key(&self) -> PublicKey {
        self.shared().public_key
    }

    /// Opens a connection to the peer holding `peer`'s secret key, punching
    /// every candidate address (the first that answers wins), and blocks
    /// until it is established.
    ///
    /// Both sides may call `connect` toward each other at the same time (hole
    /// punching through NATs): exactly one connection results, and each side
    /// gets it from its own `connect`. If the peer's connection arrived
    /// before we called `connect` (and was not accepted yet), `connect`
    /// returns that connection instead of opening a second one, so the two
    /// sides need not agree on timing (spec §4.5, late open). It is
    /// recognised by the peer's key when the peer authenticated with IK,
    /// otherwise (NK) by its address being one of `candidates`; like the
    /// protocol's NK simultaneous open, that attributes it to `peer` on the
    /// strength of its address only — use IK where that matters.
    ///
    /// Errors: `TimedOut` when no candidate answered within the handshake
    /// timeout, `ConnectionRefused` when the peer refused, `InvalidInput`
    /// for unusable arguments (no candidates, none of this socket's address
    /// family, our own key).
    pub fn connect(&self, peer: PublicKey, candidates: &[SocketAddr]) -> io::Result<Stream> {
        self.connect_with(ConnectOptions {
            peer,
            candidates: candidates.to_vec(),
            pattern: None,
            ticket: None,
        })
    }

    /// [`connect`](Self::connect) with explicit options, such as the IK
    /// handshake pattern that authenticates us to the peer.
    pub fn connect_with(&self, mut options: ConnectOptions) -> io::Result<Stream> {
        let family = self.shared().family;
        if !options.candidates.is_empty() {
            options.candidates.retain(|a| family.can_reach(*a));
            if options.candidates.is_empty() {
                return Err(Error::NoUsableCandidate.into());
            }
            for a in &mut options.candidates {
                *a = canonical(*a);
            }
        }
        let handle = {
            let shared = self.shared();
            let mut state = shared.lock();
            if let Some(e) = state.stopped_error() {
                return Err(e.into());
            }
            if let Some(handle) = state.claim_incoming(&options) {
                drop(state);
                return Ok(Stream::new(self.inner().clone(), handle));
            }
            let first = options.candidates.first().copied();
            let peer = options.peer;
            let handle = state
                .proto
                .endpoint_mut()
                .connect_with(Instant::now(), options)
                .map_err(Error::from)?;
            let remote = first.unwrap_or(shared.local_addr);
            state.conns.insert(handle, Conn::new(remote, Some(peer)));
            shared.wake_driver(&mut state);
            handle
        };
        // From here on, dropping the stream (on error) releases the handle.
        let stream = Stream::new(self.inner().clone(), handle);
        stream.wait_established()?;
        Ok(stream)
    }

    /// Waits for the next incoming connection; returns it with the peer's
    /// address and, when the peer authenticated with IK, its public key.
    ///
    /// Fails with `InvalidInput` if the accept policy refuses everyone, and
    /// `NotConnected` once the endpoint is closed.
    pub fn accept(&self) -> io::Result<(Stream, SocketAddr, Option<PublicKey>)> {
        self.accept_until(None)
    }

    /// [`accept`](Self::accept), giving up with an `io::ErrorKind::WouldBlock`
    /// error after `timeout`.
    pub fn accept_timeout(
        &self,
        timeout: Duration,
    ) -> io::Result<(Stream, SocketAddr, Option<PublicKey>)> {
        self.accept_until(Some(Instant::now() + timeout))
    }

    fn accept_until(
        &self,
        deadline: Option<Instant>,
    ) -> io::Result<(Stream, SocketAddr, Option<PublicKey>)> {
        let shared = self.shared();
        let mut state = shared.lock();
        loop {
            if let Some(e) = state.stopped_error() {
                return Err(e.into());
            }
            if let Some(handle) = state.accept_queue.pop_front() {
                let (remote, peer) = state
                    .conns
                    .get(&handle)
                    .map(|c| (c.remote, c.peer))
                    .ok_or(Error::StreamClosed)?;
                drop(state);
                let stream = Stream::new(self.inner().clone(), handle);
                return Ok((stream, remote, peer));
            }
            if state.proto.endpoint().config().accept == AcceptPolicy::RefuseAll {
                return Err(Error::NotAccepting.into());
            }
            let timed_out;
            (state, timed_out) = shared.wait(&shared.signals.accept, state, deadline);
            if timed_out {
                return Err(Error::WaitTimeout.into());
            }
        }
    }

    /// Changes who may connect to this endpoint from now on.
    pub fn set_accept_policy(&self, policy: AcceptPolicy) {
        let shared = self.shared();
        let mut state = shared.lock();
        state.proto.endpoint_mut().set_accept_policy(policy);
        // A blocked `accept` re-checks the policy.
        shared.signals.accept.notify_all();
    }

    /// The endpoint's counters (malformed or refused datagrams, accepted
    /// connections, …).
    pub fn stats(&self) -> EndpointStats {
        self.shared()
            .lock()
            .proto
            .endpoint()
            .endpoint_stats()
            .clone()
    }

    /// Closes the endpoint now: every connection is closed abruptly (peers
    /// receive a CLOSE), blocked calls on it and its streams return
    /// `NotConnected` errors, and the driver thread is joined. Unsent data of
    /// open streams is discarded: close streams first for a graceful end.
    /// Calling it again does nothing.
    pub fn close(&self) {
        self.inner().stop(Lifecycle::Closed);
    }
}

impl EndpointInner {
    /// Moves the endpoint to `lifecycle` (unless it already stopped), wakes
    /// the driver and every waiter, and joins the driver.
    fn stop(&self, lifecycle: Lifecycle) {
        {
            let shared = &self.shared;
            let mut state = shared.lock();
            if matches!(state.lifecycle, Lifecycle::Running | Lifecycle::Draining) {
                state.lifecycle = lifecycle;
            }
            state.wake_all(&shared.signals);
            // Wake the driver even if it is not asleep yet: it checks the
            // lifecycle on its next turn, and an extra wake-up is harmless.
            state.driver_sleeping = true;
            shared.wake_driver(&mut state);
        }
        let thread = self
            .driver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            // A panicking driver already left the state consistent enough
            // for the waiters; dropping must not panic in turn.
            let _ = thread.join();
        }
    }
}

impl Drop for EndpointHandle {
    fn drop(&mut self) {
        let shared = &self.inner.shared;
        let mut state = shared.lock();
        state.accepting = false;
        // Connections nobody can accept any more.
        let now = Instant::now();
        let queued: Vec<_> = state.accept_queue.drain(..).collect();
        for handle in queued {
            state.release(now, handle);
        }
        shared.wake_driver(&mut state);
    }
}

impl Drop for EndpointInner {
    fn drop(&mut self) {
        self.stop(Lifecycle::Draining);
    }
}
