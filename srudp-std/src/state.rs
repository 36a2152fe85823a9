//! State shared by the driver thread and the application's threads: the
//! srudp-proto endpoint, what the adapter knows of each connection, the
//! accept queue, and the condition variables blocked callers wait on.
//!
//! One mutex guards it all. The driver holds it while it feeds datagrams or
//! a timeout to srudp-proto and drains the outputs; an application thread
//! holds it while it issues a command, then wakes the driver through a
//! [`mio::Waker`] (the driver drains that command's outputs) and, if it must
//! wait, sleeps on its connection's condition variable, which the driver
//! signals on every event of that connection.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use srudp_proto::rendezvous::ClientEvent;
use srudp_proto::{CloseReason, ConnectOptions, ConnectionHandle, Event, PublicKey};

use crate::error::Error;
use crate::rendezvous_client::RendezvousState;
use crate::socket::Family;
use srudp_proto::rendezvous::DrivenEndpoint;

/// Most accepted connections waiting for `accept`; beyond it new ones are
/// closed at once (like a listen backlog).
pub(crate) const ACCEPT_BACKLOG: usize = 1024;

/// How long `Stream::close` and a dropped stream wait for the peer to
/// acknowledge our data, unless set otherwise.
pub(crate) const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the endpoint is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    Running,
    /// No handle is left: finish the dropped streams' deliveries, then stop.
    Draining,
    /// `Endpoint::close` was called: stop now.
    Closed,
    /// The socket failed; the driver stopped.
    Failed(String),
}

/// What the adapter knows of one connection the application holds (or will
/// get from `accept`).
#[derive(Debug)]
pub(crate) struct Conn {
    /// Signalled on every event of this connection and when it is released.
    pub(crate) signal: Arc<Condvar>,
    pub(crate) established: bool,
    pub(crate) closed: Option<CloseReason>,
    pub(crate) remote: SocketAddr,
    pub(crate) peer: Option<PublicKey>,
    /// We finished our direction.
    pub(crate) write_shutdown: bool,
    /// The peer acknowledged every byte of our finished direction.
    pub(crate) all_acked: bool,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
    /// The application let go of the stream (closed or dropped it); the
    /// connection lingers in the background (see [`State::linger`]).
    pub(crate) detached: bool,
    /// Data arrived on a detached stream that nobody will read.
    pub(crate) discarded_data: bool,
}

impl Conn {
    pub(crate) fn new(remote: SocketAddr, peer: Option<PublicKey>) -> Conn {
        Conn {
            signal: Arc::new(Condvar::new()),
            established: false,
            closed: None,
            remote,
            peer,
            write_shutdown: false,
            all_acked: false,
            read_timeout: None,
            write_timeout: None,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            detached: false,
            discarded_data: false,
        }
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Connected { remote, peer, .. } => {
                self.established = true;
                self.remote = remote;
                if peer.is_some() {
                    self.peer = peer;
                }
            }
            Event::PathChanged { remote } => self.remote = remote,
            Event::AllDataAcked => self.all_acked = true,
            Event::Closed { reason } => self.closed = Some(reason),
            Event::Readable | Event::Writable | Event::PeerFinished => {}
        }
    }

    /// The error for an operation on this connection after srudp-proto
    /// reported it closed.
    pub(crate) fn closed_error(&self) -> Error {
        match &self.closed {
            Some(reason) => Error::Closed(reason.clone()),
            None => Error::StreamClosed,
        }
    }
}

/// Everything behind the mutex.
#[derive(Debug)]
pub(crate) struct State {
    /// The protocol endpoint, plain or inside a rendezvous client.
    pub(crate) proto: DrivenEndpoint,
    /// The rendezvous client's view for the application, when there is one.
    pub(crate) rendezvous: Option<RendezvousState>,
    pub(crate) conns: HashMap<ConnectionHandle, Conn>,
    pub(crate) accept_queue: VecDeque<ConnectionHandle>,
    /// Some `Endpoint` handle is alive: incoming connections are queued.
    pub(crate) accepting: bool,
    /// Streams the application closed or dropped, lingering in the
    /// background until their deadline at most (see [`State::linger`]).
    pub(crate) lingering: Vec<(ConnectionHandle, Instant)>,
    pub(crate) lifecycle: Lifecycle,
    /// The driver is (about to be) blocked waiting for the socket.
    pub(crate) driver_sleeping: bool,
    /// The driver was woken since it last took the lock.
    pub(crate) wake_sent: bool,
}

impl State {
    pub(crate) fn new(proto: DrivenEndpoint) -> State {
        State {
            rendezvous: proto.client().map(|_| RendezvousState::default()),
            proto,
            conns: HashMap::new(),
            accept_queue: VecDeque::new(),
            accepting: true,
            lingering: Vec::new(),
            lifecycle: Lifecycle::Running,
            driver_sleeping: false,
            wake_sent: false,
        }
    }

    /// The error every blocked or new operation gets once the endpoint stopped.
    pub(crate) fn stopped_error(&self) -> Option<Error> {
        match &self.lifecycle {
            Lifecycle::Running | Lifecycle::Draining => None,
            Lifecycle::Closed => Some(Error::EndpointClosed),
            Lifecycle::Failed(why) => Some(Error::SocketFailed(why.clone())),
        }
    }

    /// Applies srudp-proto's pending events: updates connections, wakes their
    /// waiters, queues accepted connections, and releases connections that
    /// are done with (refused by the backlog, or dropped streams that
    /// finished). Returns whether it released any, whose CLOSE the caller
    /// must then send.
    pub(crate) fn dispatch_events(&mut self, now: Instant, signals: &Signals) -> bool {
        let mut released = false;
        while let Some(event) = self.proto.poll_event() {
            let (handle, event) = match event {
                ClientEvent::Connection { handle, event } => (handle, event),
                ClientEvent::PeerConnected {
                    handle,
                    peer,
                    request,
                    path,
                } => {
                    released |= self.on_peer_connected(now, handle, peer, request, path, signals);
                    continue;
                }
                other => {
                    self.on_rendezvous_event(other, signals);
                    continue;
                }
            };
            if let Some(conn) = self.conns.get_mut(&handle) {
                let readable = event == Event::Readable;
                conn.apply(event);
                conn.signal.notify_all();
                if readable && conn.detached {
                    self.discard_unread(handle);
                }
                continue;
            }
            // A Connected event for a handle we don't track is a new incoming
            // connection (ours are tracked from `connect`, including those that
            // became the responder of a simultaneous open).
            if let Event::Connected {
                incoming: true,
                remote,
                peer,
            } = event
            {
                released |= self.queue_incoming(now, handle, remote, peer, &signals.accept);
            }
        }
        released | self.reap_lingering(now)
    }

    /// Puts a new incoming connection in the accept queue, or releases it
    /// (nobody accepts, or the backlog is full); `true` when released.
    pub(crate) fn queue_incoming(
        &mut self,
        now: Instant,
        handle: ConnectionHandle,
        remote: SocketAddr,
        peer: Option<PublicKey>,
        accept_ready: &Condvar,
    ) -> bool {
        if self.accepting && self.accept_queue.len() < ACCEPT_BACKLOG {
            let mut conn = Conn::new(remote, peer);
            conn.established = true;
            self.conns.insert(handle, conn);
            self.accept_queue.push_back(handle);
            accept_ready.notify_one();
            false
        } else {
            self.proto.endpoint_mut().release(now, handle);
            true
        }
    }

    /// Takes from the accept queue a connection that `options.peer` opened to
    /// us before we called `connect` toward it: only one whose initiator
    /// authenticated (IK) as the peer — an anonymous (NK) initiator is never
    /// taken for a key, whatever its address (spec §4.5).
    pub(crate) fn claim_incoming(&mut self, options: &ConnectOptions) -> Option<ConnectionHandle> {
        let position = self.accept_queue.iter().position(|h| {
            self.conns
                .get(h)
                .is_some_and(|c| c.closed.is_none() && c.peer == Some(options.peer))
        })?;
        self.accept_queue.remove(position)
    }

    /// The connection behind a stream the application still holds.
    pub(crate) fn app_conn(&self, handle: ConnectionHandle) -> Option<&Conn> {
        self.conns.get(&handle).filter(|c| !c.detached)
    }

    pub(crate) fn app_conn_mut(&mut self, handle: ConnectionHandle) -> Option<&mut Conn> {
        self.conns.get_mut(&handle).filter(|c| !c.detached)
    }

    /// Hands a stream the application let go of (its direction already
    /// finished) to the background until `deadline` at most. Like a TCP
    /// socket after `close`, it first delivers what was written, then waits
    /// for the peer to finish too, so that the connection ends gracefully on
    /// both sides; data that arrives meanwhile is read and dropped, and once
    /// our data is delivered, such data aborts the connection so the peer
    /// learns it was not read. [`reap_lingering`](Self::reap_lingering) ends it.
    pub(crate) fn linger(&mut self, handle: ConnectionHandle, deadline: Instant) {
        let Some(conn) = self.conns.get_mut(&handle) else {
            return;
        };
        conn.detached = true;
        conn.signal.notify_all();
        self.lingering.push((handle, deadline));
        self.discard_unread(handle);
    }

    /// Reads and drops whatever arrived on a detached stream.
    fn discard_unread(&mut self, handle: ConnectionHandle) {
        let mut scratch = [0u8; 16 * 1024];
        let mut discarded = false;
        // Bounded by the receive window.
        while let Ok(n) = self.proto.endpoint_mut().read(handle, &mut scratch) {
            if n == 0 {
                break;
            }
            discarded = true;
        }
        if discarded {
            if let Some(conn) = self.conns.get_mut(&handle) {
                conn.discarded_data = true;
            }
        }
    }

    /// Ends lingering streams that are done: the connection ended, the
    /// deadline passed, or our data was delivered and either data nobody
    /// reads arrived or the endpoint is shutting down (so nobody waits for
    /// the peer's end of stream). Releasing aborts a connection still open.
    /// Returns whether it released any.
    pub(crate) fn reap_lingering(&mut self, now: Instant) -> bool {
        let conns = &self.conns;
        let draining = self.lifecycle != Lifecycle::Running;
        let done: Vec<ConnectionHandle> = self
            .lingering
            .iter()
            .filter(|(h, deadline)| {
                *deadline <= now
                    || conns.get(h).is_none_or(|c| {
                        c.closed.is_some() || (c.all_acked && (c.discarded_data || draining))
                    })
            })
            .map(|(h, _)| *h)
            .collect();
        for &handle in &done {
            self.release(now, handle);
        }
        !done.is_empty()
    }

    /// Forgets a connection: srudp-proto closes it abruptly if it is still
    /// open; its waiters wake up and find it gone.
    pub(crate) fn release(&mut self, now: Instant, handle: ConnectionHandle) {
        self.proto.endpoint_mut().release(now, handle);
        if let Some(conn) = self.conns.remove(&handle) {
            conn.signal.notify_all();
        }
        self.lingering.retain(|(h, _)| *h != handle);
        self.accept_queue.retain(|h| *h != handle);
    }

    /// The earliest instant at which the driver has work without input.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let lingering = self.lingering.iter().map(|(_, d)| *d).min();
        match (self.proto.poll_timeout(), lingering) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Wakes every blocked caller (the endpoint stopped).
    pub(crate) fn wake_all(&self, signals: &Signals) {
        for conn in self.conns.values() {
            conn.signal.notify_all();
        }
        signals.accept.notify_all();
        signals.rendezvous.notify_all();
    }
}

/// The condition variables that callers not tied to one connection wait on.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    /// Signalled when a connection joins the accept queue or the endpoint stops.
    pub(crate) accept: Condvar,
    /// Signalled on every change of the rendezvous status or of a
    /// connect-by-key/name request, and when the endpoint stops.
    pub(crate) rendezvous: Condvar,
}

/// The state and what is needed to reach the driver; shared by the driver
/// thread, the endpoint handles and the streams.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) signals: Signals,
    waker: mio::Waker,
    pub(crate) local_addr: SocketAddr,
    pub(crate) public_key: PublicKey,
    pub(crate) family: Family,
}

impl Shared {
    pub(crate) fn new(
        state: State,
        waker: mio::Waker,
        local_addr: SocketAddr,
        family: Family,
    ) -> Shared {
        Shared {
            public_key: state.proto.endpoint().public_key(),
            state: Mutex::new(state),
            signals: Signals::default(),
            waker,
            local_addr,
            family,
        }
    }

    /// Locks the state. A panic elsewhere while holding the lock does not
    /// make every later call panic too.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the driver look at the state again after a command: wakes it if
    /// it is asleep and not already woken. Call with the lock held, after
    /// the command.
    pub(crate) fn wake_driver(&self, state: &mut State) {
        if state.driver_sleeping && !state.wake_sent {
            state.wake_sent = true;
            // Fails only if the poller is gone, that is the driver stopped.
            let _ = self.waker.wake();
        }
    }

    /// Waits on `signal` until notified or `deadline`; returns the guard and
    /// whether the deadline passed.
    pub(crate) fn wait<'a>(
        &self,
        signal: &Condvar,
        guard: MutexGuard<'a, State>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, State>, bool) {
        match deadline {
            None => (
                signal.wait(guard).unwrap_or_else(PoisonError::into_inner),
                false,
            ),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return (guard, true);
                }
                let (guard, _) = signal
                    .wait_timeout(guard, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner);
                (guard, false)
            }
        }
    }
}
