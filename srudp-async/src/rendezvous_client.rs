//! An endpoint registered at a rendezvous server: reached and reaching
//! peers by key or name, relay fallback, NAT behaviour (spec §11).
//!
//! The protocol's [`RendezvousClient`] takes the endpoint's place in the
//! driver (see [`DrivenEndpoint`](crate::driven::DrivenEndpoint)); this file turns its events into what the
//! application awaits: connect calls by key or name, the accept queue for
//! peers that asked for us, the registration status and the NAT test.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use srudp_proto::rendezvous::{
    ClientConfig, ClientEvent, ErrorCode, NatBehavior, RendezvousClient, RendezvousError, RequestId,
};
use srudp_proto::stream_carrier::Carrier;
use srudp_proto::{ConnectionHandle, EndpointConfig, Event, PathKind};
use tracing::debug;

use crate::driven::DrivenEndpoint;

use crate::endpoint::Endpoint;
use crate::shared::{Shared, State};
use crate::stream::Stream;
use crate::stream_error::rendezvous_failure;

use crate::rendezvous_status::RendezvousStatus;

/// The adapter's side of the rendezvous client, in the shared state.
#[derive(Debug, Default)]
pub(crate) struct RendezvousState {
    status: Option<RendezvousStatus>,
    requests: HashMap<RequestId, Request>,
    waiters: Vec<Waker>,
}

#[derive(Debug)]
enum Request {
    Pending(Option<Waker>),
    Done(Result<ConnectionHandle, RendezvousError>),
}

impl RendezvousState {
    fn status(&self) -> RendezvousStatus {
        self.status.unwrap_or_default()
    }

    fn update(&mut self, f: impl FnOnce(&mut RendezvousStatus)) {
        let mut status = self.status();
        f(&mut status);
        self.status = Some(status);
        for w in self.waiters.drain(..) {
            w.wake();
        }
    }

    fn park(&mut self, waker: &Waker) {
        if !self.waiters.iter().any(|w| w.will_wake(waker)) {
            self.waiters.push(waker.clone());
        }
    }

    pub(crate) fn wake_all(&mut self) {
        for w in self.waiters.drain(..) {
            w.wake();
        }
        for r in self.requests.values_mut() {
            if let Request::Pending(Some(w)) = r {
                w.wake_by_ref();
            }
        }
    }

    fn finish_request(
        &mut self,
        request: RequestId,
        result: Result<ConnectionHandle, RendezvousError>,
    ) -> bool {
        match self.requests.get_mut(&request) {
            Some(r @ Request::Pending(_)) => {
                if let Request::Pending(Some(w)) = std::mem::replace(r, Request::Done(result)) {
                    w.wake();
                }
                true
            }
            _ => false,
        }
    }
}

/// Takes every event of the driven machine and hands it where it belongs:
/// connection events to the stream table, rendezvous events to the
/// application's waiting calls. Called by the driver after every round,
/// which then wakes the table's readers and writers
/// ([`StreamTable::take_woken`](crate::stream_table::StreamTable::take_woken)).
pub(crate) fn drain_events(state: &mut State, now: Instant) {
    while let Some(event) = state.machine.poll_event() {
        match event {
            ClientEvent::Connection { handle, event } => {
                if matches!(event, Event::PathChanged { .. } | Event::Closed { .. }) {
                    state.wake_path_waiters();
                }
                state
                    .table
                    .handle_event(state.machine.endpoint_mut(), now, handle, event);
            }
            ClientEvent::PeerConnected {
                handle,
                peer,
                request,
                path,
            } => on_peer_connected(state, now, handle, peer, request, path),
            ClientEvent::ConnectFailed {
                request,
                peer,
                error,
            } => {
                debug!(?peer, "connection through the rendezvous failed: {error}");
                if let (Some(r), Some(rdv)) = (request, &mut state.rendezvous) {
                    rdv.finish_request(r, Err(error));
                }
            }
            status_event @ (ClientEvent::Registered { .. }
            | ClientEvent::RegistrationRefused { .. }
            | ClientEvent::Disconnected { .. }
            | ClientEvent::NatDetected(_)) => {
                if let Some(carrier) = &mut state.carrier {
                    carrier.handle_event(now, &status_event);
                    // On the stream, UDP is blocked: relay at once (§12.5).
                    let link = if carrier.on_stream() {
                        Carrier::Stream
                    } else {
                        Carrier::Udp
                    };
                    if let Some(client) = state.machine.client_mut() {
                        client.set_link_carrier(now, link);
                    }
                }
                if let Some(rdv) = &mut state.rendezvous {
                    rdv.update(|s| {
                        s.apply(&status_event);
                    });
                }
            }
            other => debug!(?other, "rendezvous event"),
        }
    }
}

fn on_peer_connected(
    state: &mut State,
    now: Instant,
    handle: ConnectionHandle,
    peer: srudp_proto::PublicKey,
    request: Option<RequestId>,
    path: PathKind,
) {
    let remote = state
        .machine
        .endpoint()
        .remote_address(handle)
        .unwrap_or(match path {
            PathKind::Direct(a) | PathKind::Relayed { via: a } => a,
        });
    debug!(%handle, %peer, %path, "peer connected through the rendezvous");
    let connected = Event::Connected {
        incoming: request.is_none(),
        remote,
        peer: Some(peer),
    };
    let endpoint = state.machine.endpoint_mut();
    let Some(request) = request else {
        // The peer asked for us: it waits in the accept queue.
        state.table.handle_event(endpoint, now, handle, connected);
        return;
    };
    let Some(rdv) = &mut state.rendezvous else {
        return;
    };
    if !matches!(rdv.requests.get(&request), Some(Request::Pending(_))) {
        // The connect call was dropped: nobody wants the connection, unless
        // a stream already holds it.
        if state.table.peer_info(handle).is_none() {
            endpoint.close(now, handle, 0, b"connect abandoned");
        }
        return;
    }
    if state.table.peer_info(handle).is_some() {
        // A second request for a peer we already hold a stream to.
        rdv.finish_request(
            request,
            Err(RendezvousError::Refused(ErrorCode::InvalidRequest)),
        );
        return;
    }
    state.table.insert_connecting(handle);
    state.table.handle_event(endpoint, now, handle, connected);
    rdv.finish_request(request, Ok(handle));
}

/// A connection attempt through the rendezvous, started by
/// [`Endpoint::connect_by_key`] or [`Endpoint::connect_by_name`]; resolves
/// to the [`Stream`] once the server introduced us and a path (direct or
/// relayed) completed the handshake. Dropping it abandons the attempt.
pub struct RendezvousConnecting {
    shared: Arc<Shared>,
    state: ConnectingState,
}

enum ConnectingState {
    Waiting(RequestId),
    Failed(Option<io::Error>),
    Done,
}

impl std::fmt::Debug for RendezvousConnecting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            ConnectingState::Waiting(r) => format!("waiting (request {r})"),
            ConnectingState::Failed(_) => "failed".into(),
            ConnectingState::Done => "done".into(),
        };
        f.debug_struct("RendezvousConnecting")
            .field("state", &state)
            .finish()
    }
}

fn no_rendezvous() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "this endpoint was not bound with a rendezvous server (Endpoint::bind_with_rendezvous)",
    )
}

impl Future for RendezvousConnecting {
    type Output = io::Result<Stream>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<Stream>> {
        let request = match &mut self.state {
            ConnectingState::Waiting(r) => *r,
            ConnectingState::Failed(e) => {
                let e = e
                    .take()
                    .unwrap_or_else(|| io::Error::other("polled after completion"));
                self.state = ConnectingState::Done;
                return Poll::Ready(Err(e));
            }
            ConnectingState::Done => {
                return Poll::Ready(Err(io::Error::other("polled after completion")))
            }
        };
        let shared = self.shared.clone();
        let result = {
            let mut guard = shared.lock();
            let state = &mut *guard;
            let driver = state.check_driver();
            let Some(rdv) = &mut state.rendezvous else {
                return Poll::Ready(Err(no_rendezvous()));
            };
            match rdv.requests.get_mut(&request) {
                Some(Request::Pending(waker)) => {
                    if let Err(e) = driver {
                        rdv.requests.remove(&request);
                        Err(e)
                    } else {
                        *waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                }
                Some(Request::Done(Err(e))) => {
                    let e = e.clone();
                    rdv.requests.remove(&request);
                    Err(rendezvous_failure(e))
                }
                Some(Request::Done(Ok(handle))) => {
                    let handle = *handle;
                    rdv.requests.remove(&request);
                    let now = state.now();
                    match state.table.poll_connect(
                        state.machine.endpoint_mut(),
                        now,
                        handle,
                        cx.waker(),
                    ) {
                        Poll::Ready(r) => r
                            .map(|info| Stream::new(shared.clone(), handle, info))
                            .map_err(io::Error::from),
                        // Cannot happen: the connection is connected.
                        Poll::Pending => Err(io::Error::other("introduced connection not ready")),
                    }
                }
                None => Err(io::Error::other("unknown rendezvous request")),
            }
        };
        self.state = ConnectingState::Done;
        Poll::Ready(result)
    }
}

impl Drop for RendezvousConnecting {
    fn drop(&mut self) {
        if let ConnectingState::Waiting(request) = self.state {
            let mut guard = self.shared.lock();
            let state = &mut *guard;
            let Some(rdv) = &mut state.rendezvous else {
                return;
            };
            if let Some(Request::Done(Ok(handle))) = rdv.requests.remove(&request) {
                // Introduced and connected, but nobody will use it.
                let now = state.now();
                state
                    .table
                    .abandon_connect(state.machine.endpoint_mut(), now, handle);
                state.wake_driver();
            }
        }
    }
}

/// The protocol endpoint inside a rendezvous client registering at
/// `rendezvous`; empty `host_candidates` are filled with the machine's own
/// addresses ([`srudp_net::host_candidates()`]) with the bound port.
pub(crate) fn machine(
    now: Instant,
    endpoint: srudp_proto::Endpoint,
    local: SocketAddr,
    mut rendezvous: ClientConfig,
) -> io::Result<DrivenEndpoint> {
    if rendezvous.host_candidates.is_empty() {
        rendezvous.host_candidates = srudp_net::host_candidates(local);
    }
    let client = RendezvousClient::new(now, endpoint, rendezvous)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    Ok(DrivenEndpoint::rendezvous(client))
}

impl Endpoint {
    /// Binds a UDP socket to `addr` like [`bind`](Endpoint::bind) (the
    /// driver on the default runtime), and registers the endpoint at the
    /// rendezvous server named by `rendezvous` (its key and address, and the
    /// name to register under), over the same socket. The registration is
    /// kept alive and renewed by itself after the server is lost (a
    /// restart, a NAT that forgot us).
    ///
    /// When `rendezvous.host_candidates` is empty, it is filled with
    /// [`host_candidates`](crate::host_candidates()) of the bound address:
    /// the machine's own addresses with the endpoint's port, offered to
    /// peers besides the address the server observes (so peers on the same
    /// LAN connect directly).
    ///
    /// Peers that ask the server for us arrive through
    /// [`accept`](Endpoint::accept); we reach peers with
    /// [`connect_by_key`](Endpoint::connect_by_key) and
    /// [`connect_by_name`](Endpoint::connect_by_name). Plain
    /// [`connect`](Endpoint::connect) still works. To spawn the driver
    /// yourself, use [`bind_with_runtime`](Endpoint::bind_with_runtime).
    ///
    /// ```no_run
    /// # async fn example(server_key: srudp_async::PublicKey) -> std::io::Result<()> {
    /// use srudp_async::rendezvous::ClientConfig;
    /// use srudp_async::{Endpoint, EndpointConfig, Keypair};
    ///
    /// let mut rendezvous = ClientConfig::new(server_key, "192.0.2.7:4433".parse().unwrap());
    /// rendezvous.name = Some("laptop".parse().unwrap());
    /// let endpoint = Endpoint::bind_with_rendezvous(
    ///     "0.0.0.0:0".parse().unwrap(),
    ///     EndpointConfig::new(Keypair::generate_from_os()),
    ///     rendezvous,
    /// )?;
    /// let observed = endpoint.wait_registered().await?;
    /// let (stream, _, peer) = endpoint.accept().await?;
    /// # Ok(()) }
    /// ```
    pub fn bind_with_rendezvous(
        addr: SocketAddr,
        config: EndpointConfig,
        rendezvous: ClientConfig,
    ) -> io::Result<Endpoint> {
        crate::spawn::bind_on_default_runtime(addr, config, Some(rendezvous))
    }

    /// Asks the rendezvous server to introduce us to the peer registered
    /// with key `peer`; the returned future resolves to the stream once a
    /// path — direct if the NATs allow, else through the server's relay —
    /// completed the handshake (IK both ways: the peer proves its key, so a
    /// lying server cannot impersonate it).
    ///
    /// Errors: `NotFound` ("peer not registered") quickly when no such peer
    /// is registered; `HostUnreachable` when the server cannot be reached,
    /// `TimedOut` when it does not answer or no path worked; `InvalidInput`
    /// for our own key or an endpoint without rendezvous; `NotConnected`
    /// ([`StreamError::EndpointClosed`](crate::StreamError::EndpointClosed))
    /// once the endpoint is closed. The [`RendezvousError`] is the error's
    /// [`source`](std::error::Error::source), and
    /// [`rendezvous_error`](crate::rendezvous_error) reads it.
    pub fn connect_by_key(&self, peer: srudp_proto::PublicKey) -> RendezvousConnecting {
        self.rendezvous_request(|client, now| client.connect_by_key(now, peer))
    }

    /// [`connect_by_key`](Endpoint::connect_by_key) for the peer registered
    /// under `name`. Our own name is `InvalidInput`
    /// ([`RendezvousError::SelfConnect`]), as is a name that is not a
    /// [`Name`](crate::rendezvous::Name) ([`RendezvousError::InvalidName`]).
    pub fn connect_by_name(&self, name: &str) -> RendezvousConnecting {
        self.rendezvous_request(|client, now| client.connect_by_name(now, name))
    }

    fn rendezvous_request(
        &self,
        f: impl FnOnce(&mut RendezvousClient, Instant) -> Result<RequestId, RendezvousError>,
    ) -> RendezvousConnecting {
        let shared = self.shared().clone();
        let started = (|| {
            let mut guard = shared.lock();
            let state = &mut *guard;
            state.check_open()?;
            let now = state.now();
            let client = state.machine.client_mut().ok_or_else(no_rendezvous)?;
            let request = f(client, now).map_err(rendezvous_failure)?;
            if let Some(rdv) = &mut state.rendezvous {
                rdv.requests.insert(request, Request::Pending(None));
            }
            state.wake_driver();
            Ok(request)
        })();
        RendezvousConnecting {
            shared,
            state: match started {
                Ok(r) => ConnectingState::Waiting(r),
                Err(e) => ConnectingState::Failed(Some(e)),
            },
        }
    }

    /// Where the endpoint stands with its rendezvous server; `None` for an
    /// endpoint bound without one.
    pub fn rendezvous_status(&self) -> Option<RendezvousStatus> {
        self.shared().lock().rendezvous.as_ref().map(|r| r.status())
    }

    /// Waits until the rendezvous status differs from `known`, and returns
    /// the new one: registrations, re-registrations after a lost server,
    /// refusals, a new observed address, the NAT test's result.
    ///
    /// Cancellation safe. Errors: `InvalidInput` without rendezvous,
    /// `NotConnected` once the endpoint is closed.
    pub async fn rendezvous_changed(
        &self,
        known: RendezvousStatus,
    ) -> io::Result<RendezvousStatus> {
        self.wait_rendezvous(|s| (s != known).then_some(Ok(s)))
            .await
    }

    /// Waits until the rendezvous server holds our registration, and
    /// returns our address as the server observes it. There is no deadline
    /// (the client retries with backoff): wrap it in a timeout to report an
    /// unreachable server.
    ///
    /// Errors: `PermissionDenied` when the server refused the registration
    /// (for example the name is taken; the source is the [`ErrorCode`]'s
    /// description), `InvalidInput` without rendezvous, `NotConnected` once
    /// the endpoint is closed.
    pub async fn wait_registered(&self) -> io::Result<SocketAddr> {
        self.wait_rendezvous(|s| match (s.registered, s.observed, s.refused) {
            (true, Some(observed), _) => Some(Ok(observed)),
            (_, _, Some(code)) => Some(Err(rendezvous_failure(RendezvousError::Refused(code)))),
            _ => None,
        })
        .await
    }

    /// The NAT behaviour as tested through the rendezvous server (its
    /// second port, spec §11.7): runs a test if none ran yet, then waits for
    /// the result. Without a second port on the server, the mapping and
    /// filtering come back `Unknown`.
    pub async fn nat_behavior(&self) -> io::Result<NatBehavior> {
        let shared = self.shared().clone();
        self.wait_rendezvous(move |s| match s.nat {
            Some(nat) => Some(Ok(nat)),
            None => {
                if s.registered {
                    let mut guard = shared.lock();
                    let now = guard.now();
                    if let Some(c) = guard.machine.client_mut() {
                        if c.detect_nat(now) {
                            guard.wake_driver();
                        }
                    }
                }
                None
            }
        })
        .await
    }

    async fn wait_rendezvous<T>(
        &self,
        mut ready: impl FnMut(RendezvousStatus) -> Option<io::Result<T>>,
    ) -> io::Result<T> {
        poll_fn(|cx| {
            let status = {
                let mut state = self.shared().lock();
                state.check_open()?;
                let Some(rdv) = &mut state.rendezvous else {
                    return Poll::Ready(Err(no_rendezvous()));
                };
                rdv.park(cx.waker());
                rdv.status()
            };
            // Outside the lock: `ready` may lock to act.
            match ready(status) {
                Some(r) => Poll::Ready(r),
                None => Poll::Pending,
            }
        })
        .await
    }
}
