//! The endpoint: one UDP socket, one driver, any number of streams.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use srudp_net::batch::UdpBatch;
use srudp_proto::rendezvous::ClientConfig;
use srudp_proto::{
    AcceptPolicy, ConnectOptions, ConnectionHandle, EndpointConfig, EndpointStats, PublicKey,
};

use crate::driven::DrivenEndpoint;
use crate::driver::Driver;
use crate::runtime::Runtime;
use crate::shared::Shared;
use crate::stream::Stream;

/// A srudp endpoint: one UDP socket that opens and accepts any
/// number of connections.
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
pub struct Endpoint {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_addr", &self.shared.local_addr)
            .field("public_key", &self.shared.public_key)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Binds a UDP socket to `addr` and starts the endpoint's driver on the
    /// default runtime (see [the crate docs](crate#which-runtime-runs-the-driver)):
    /// the current tokio runtime when called inside one (feature `tokio`),
    /// else a thread of its own on async-io's reactor (feature `async-io`).
    ///
    /// IPv4 and IPv6 both work; `[::]:port` is dual-stack where the OS
    /// allows, reaching IPv4 peers too. Errors: the bind fails, the
    /// configuration is invalid (`InvalidInput`), or no runtime can run the
    /// driver: a tokio runtime without IO and time, or neither feature's
    /// runtime available (`Other`).
    pub fn bind(addr: SocketAddr, config: EndpointConfig) -> io::Result<Endpoint> {
        crate::spawn::bind_on_default_runtime(addr, config, None)
    }

    /// Binds like [`bind`](Endpoint::bind) but returns the driver future on
    /// async-io's reactor for you to spawn on your executor, for example
    /// `smol::spawn(driver).detach()` or `async_std::task::spawn(driver)`.
    /// Nothing is sent or received until it runs; see [`Driver`].
    #[cfg(feature = "async-io")]
    pub fn bind_with_driver(
        addr: SocketAddr,
        config: EndpointConfig,
    ) -> io::Result<(Endpoint, Driver<crate::runtime::AsyncIo>)> {
        Endpoint::bind_with_runtime(addr, config, None)
    }

    /// Binds like [`bind`](Endpoint::bind) — with a rendezvous client when
    /// `rendezvous` is set (see
    /// [`bind_with_rendezvous`](Endpoint::bind_with_rendezvous)) — and runs
    /// the driver on a thread of its own, named `srudp-driver`, which waits
    /// in an OS poller of its own (epoll, kqueue, IOCP): it needs no
    /// runtime and uses none, whichever the caller runs on. srudp-std runs
    /// on it. The thread ends with the driver; when the process exits
    /// first, the driver tells its peers, as
    /// [`Driver::spawn_thread`]'s does.
    #[cfg(feature = "thread")]
    pub fn bind_on_thread(
        addr: SocketAddr,
        config: EndpointConfig,
        rendezvous: Option<ClientConfig>,
    ) -> io::Result<Endpoint> {
        use crate::runtime::thread;
        let (endpoint, driver) =
            Endpoint::bind_with_runtime::<thread::OwnThread>(addr, config, rendezvous)?;
        thread::spawn(driver)?;
        Ok(endpoint)
    }

    /// Binds a UDP socket to `addr` and makes the endpoint's driver, for the
    /// caller to spawn on runtime `R` (a [`Runtime`] of the caller's making,
    /// or one of [`crate::runtime`]'s); with `rendezvous`, the endpoint also
    /// registers there (see [`bind_with_rendezvous`](Endpoint::bind_with_rendezvous)).
    /// Errors: the bind fails, the configuration is invalid
    /// (`InvalidInput`), or the runtime cannot take the socket or make a
    /// timer (its own error).
    pub fn bind_with_runtime<R: Runtime>(
        addr: SocketAddr,
        config: EndpointConfig,
        rendezvous: Option<ClientConfig>,
    ) -> io::Result<(Endpoint, Driver<R>)> {
        Endpoint::bind_machine(addr, config, move |now, endpoint, local| match rendezvous {
            None => Ok(DrivenEndpoint::plain(endpoint)),
            Some(rendezvous) => crate::rendezvous_client::machine(now, endpoint, local, rendezvous),
        })
    }

    /// Binds the socket, then lets `machine` wrap the protocol endpoint
    /// (given the bound address) before the driver is made.
    fn bind_machine<R: Runtime>(
        addr: SocketAddr,
        config: EndpointConfig,
        machine: impl FnOnce(Instant, srudp_proto::Endpoint, SocketAddr) -> io::Result<DrivenEndpoint>,
    ) -> io::Result<(Endpoint, Driver<R>)> {
        let endpoint = srudp_proto::Endpoint::new(config)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let (std_socket, family) = srudp_net::socket::bind(addr)?;
        let local_addr = std_socket.local_addr()?;
        // Before the runtime wraps it: from here on, every receive on the
        // socket must go through the batch (it turned receive offload on).
        let batch = UdpBatch::new(&std_socket)?;
        let machine = machine(Instant::now(), endpoint, local_addr)?;
        let shared = Arc::new(Shared::new(machine, local_addr, family));
        let socket = R::wrap_udp_socket(std_socket)?;
        let timer = R::new_timer()?;
        let driver = Driver::new(shared.clone(), socket, batch, timer);
        Ok((Endpoint { shared }, driver))
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// This endpoint's public key: what peers pass to `connect`.
    pub fn public_key(&self) -> PublicKey {
        self.shared.public_key
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
    /// or its endpoint, or whose program exits (its runtime dropped, `main`
    /// returned; see [exiting cleanly](crate#exiting-cleanly)), tells us at
    /// once: reads end, or fail with `ConnectionReset`. A peer that vanishes
    /// without a word — its process crashed or killed, its host or the path
    /// down — is noticed when nothing has arrived from it for the idle
    /// timeout ([`TransportConfig::idle_timeout`](crate::TransportConfig::idle_timeout),
    /// default 30 s; the smaller of both sides'): then `TimedOut`.
    pub fn connect(&self, peer: PublicKey, candidates: &[SocketAddr]) -> Connecting {
        self.connect_with(ConnectOptions {
            peer,
            candidates: candidates.to_vec(),
            pattern: None,
            ticket: None,
        })
    }

    /// [`connect`](Endpoint::connect) with explicit options (for example
    /// the IK pattern, which authenticates us to the peer). Errors and
    /// timing are `connect`'s: a wrong key looks like an unreachable peer
    /// (`TimedOut` after the handshake timeout, default 10 s), and a peer
    /// killed without a word is noticed after the idle timeout (default 30 s).
    pub fn connect_with(&self, mut options: ConnectOptions) -> Connecting {
        let started = (|| {
            options.candidates = self
                .shared
                .family
                .reachable(&options.candidates, self.shared.local_addr)?;
            let mut guard = self.shared.lock();
            let state = &mut *guard;
            state.check_open()?;
            // If the peer's connection already waits in the accept queue,
            // both sides connected "at once" and ours was late: it is this one.
            if let Some(handle) = state.table.claim_incoming(options.peer) {
                return Ok(handle);
            }
            let now = state.now();
            let handle = state
                .machine
                .endpoint_mut()
                .connect_with(now, options)
                .map_err(crate::stream_error::connect_failure)?;
            state.table.insert_connecting(handle);
            state.wake_driver();
            Ok(handle)
        })();
        Connecting {
            shared: self.shared.clone(),
            state: match started {
                Ok(handle) => ConnectingState::Waiting(handle),
                Err(e) => ConnectingState::Failed(Some(e)),
            },
        }
    }

    /// Waits for the next incoming connection and returns its stream, the
    /// peer's address and, when the peer authenticated (IK), its public key.
    /// Which initiators are admitted is the configuration's
    /// [`AcceptPolicy`].
    ///
    /// Cancellation safe. Errors: `NotConnected` after [`close`](Endpoint::close).
    pub async fn accept(&self) -> io::Result<(Stream, SocketAddr, Option<PublicKey>)> {
        poll_fn(|cx| {
            let mut state = self.shared.lock();
            state.check_open()?;
            match state.table.poll_accept(cx.waker()) {
                Poll::Ready((handle, info)) => Poll::Ready(Ok((
                    Stream::new(self.shared.clone(), handle, info),
                    info.remote,
                    info.peer,
                ))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// The endpoint's counters: datagrams received and dropped (malformed,
    /// refused, over a limit), connections accepted and refused. A
    /// connection's own counters are [`Stream::stats`].
    pub fn stats(&self) -> EndpointStats {
        self.shared
            .lock()
            .machine
            .endpoint()
            .endpoint_stats()
            .clone()
    }

    /// Who may connect to this endpoint now (see
    /// [`set_accept_policy`](Endpoint::set_accept_policy)).
    pub fn accept_policy(&self) -> AcceptPolicy {
        self.shared
            .lock()
            .machine
            .endpoint()
            .config()
            .accept
            .clone()
    }

    /// Changes who may connect to this endpoint from now on.
    pub fn set_accept_policy(&self, policy: AcceptPolicy) {
        let mut state = self.shared.lock();
        if !state.closed {
            state.machine.endpoint_mut().set_accept_policy(policy);
        }
    }

    /// Closes every connection at once (the peers are told, with code 0 and
    /// reason "endpoint closed") and stops accepting. Streams then fail
    /// with `ConnectionAborted`; `connect` and `accept` with `NotConnected`.
    /// The driver ends once every connection has drained; await
    /// [`wait_idle`](Endpoint::wait_idle) for that.
    pub fn close(&self) {
        self.close_with(0, b"endpoint closed");
    }

    /// [`close`](Endpoint::close), telling every peer the application
    /// `code` and `reason` (at most 256 bytes), as [`Stream::abort`] does
    /// for one connection: for example a program interrupted by a signal
    /// says so to all its peers at once. Closing an endpoint already closed
    /// does nothing.
    pub fn close_with(&self, code: u32, reason: &[u8]) {
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        if state.closed {
            return;
        }
        state.closed = true;
        let now = state.now();
        state.machine.stop_rendezvous(now);
        state
            .machine
            .endpoint_mut()
            .set_accept_policy(AcceptPolicy::RefuseAll);
        state
            .table
            .close_all(state.machine.endpoint_mut(), now, code, reason);
        state.wake_driver();
    }

    /// Completes when the application's connections are all over: each
    /// closed (gracefully, abruptly, or by its peer) and past its closing
    /// period — which ends as soon as the peer answers our CLOSE, so this
    /// takes about one round trip after the last close when peers are
    /// alive — and every dropped stream has delivered its data. At once when
    /// there are none. The rendezvous link is not the application's: a
    /// registered endpoint does not keep this waiting.
    ///
    /// The exit recipe: finish or close your streams (or
    /// [`close`](Endpoint::close) the endpoint), then `wait_idle().await`,
    /// then return from `main`. Cancellation safe.
    pub async fn wait_idle(&self) {
        poll_fn(|cx| {
            let mut state = self.shared.lock();
            if state.application_idle() {
                Poll::Ready(())
            } else {
                state.park_idle_waiter(cx.waker());
                state.wake_driver();
                Poll::Pending
            }
        })
        .await
    }
}

impl Clone for Endpoint {
    fn clone(&self) -> Endpoint {
        self.shared.lock().endpoint_handles += 1;
        Endpoint {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        state.endpoint_handles -= 1;
        if state.endpoint_handles == 0 {
            // Nobody can accept anymore: refuse initiators and close what waits.
            let now = state.now();
            state
                .machine
                .endpoint_mut()
                .set_accept_policy(AcceptPolicy::RefuseAll);
            state
                .table
                .stop_accepting(state.machine.endpoint_mut(), now);
        }
        state.wake_driver();
    }
}

/// A connection attempt started by [`Endpoint::connect`]; resolves to the
/// [`Stream`] once the handshake completes.
///
/// `Unpin`, so it can be polled by reference in a `select!` loop. Dropping
/// it before it completes aborts the attempt.
pub struct Connecting {
    shared: Arc<Shared>,
    state: ConnectingState,
}

enum ConnectingState {
    Waiting(ConnectionHandle),
    Failed(Option<io::Error>),
    Done,
}

impl std::fmt::Debug for Connecting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            ConnectingState::Waiting(h) => format!("waiting ({h})"),
            ConnectingState::Failed(_) => "failed".into(),
            ConnectingState::Done => "done".into(),
        };
        f.debug_struct("Connecting").field("state", &state).finish()
    }
}

impl Future for Connecting {
    type Output = io::Result<Stream>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<Stream>> {
        let handle = match &mut self.state {
            ConnectingState::Waiting(handle) => *handle,
            ConnectingState::Failed(e) => {
                let e = e.take().unwrap_or_else(polled_after_completion);
                self.state = ConnectingState::Done;
                return Poll::Ready(Err(e));
            }
            ConnectingState::Done => return Poll::Ready(Err(polled_after_completion())),
        };
        let shared = self.shared.clone();
        let result = {
            let mut guard = shared.lock();
            let state = &mut *guard;
            let now = state.now();
            match state
                .table
                .poll_connect(state.machine.endpoint_mut(), now, handle, cx.waker())
            {
                Poll::Ready(r) => r.map_err(io::Error::from),
                Poll::Pending => match state.check_driver() {
                    Ok(()) => return Poll::Pending,
                    Err(e) => {
                        state
                            .table
                            .abandon_connect(state.machine.endpoint_mut(), now, handle);
                        Err(e)
                    }
                },
            }
        };
        self.state = ConnectingState::Done;
        Poll::Ready(result.map(|info| Stream::new(shared, handle, info)))
    }
}

fn polled_after_completion() -> io::Error {
    io::Error::other("Connecting polled after it completed")
}

impl Drop for Connecting {
    fn drop(&mut self) {
        if let ConnectingState::Waiting(handle) = self.state {
            let mut guard = self.shared.lock();
            let state = &mut *guard;
            let now = state.now();
            state
                .table
                .abandon_connect(state.machine.endpoint_mut(), now, handle);
            state.wake_driver();
        }
    }
}
