//! The application side of an endpoint's connections, for runtime adapters.
//!
//! Every adapter (tokio, async-io, a blocking driver thread) turns the
//! endpoint's [`Event`]s into the same things: a connect call that completes
//! or fails, an accept queue, readers and writers that sleep until their
//! stream can move, a graceful finish that waits for the peer's
//! acknowledgment, and streams the application dropped that still finish in
//! the background. [`StreamTable`] is that bookkeeping, once, without IO,
//! clocks or threads: tasks are parked as [`Waker`]s (a blocking adapter can
//! wake a thread through one), and time comes in as `now`.
//!
//! ## How an adapter uses it
//!
//! Keep the [`Endpoint`] and its `StreamTable` together behind one lock.
//!
//! * The driver, after feeding the endpoint its inputs and draining
//!   `poll_transmit`, calls [`StreamTable::drain_events`]; it also calls
//!   [`StreamTable::handle_timeout`] when [`StreamTable::poll_timeout`]
//!   passes (take the earlier of it and [`Endpoint::poll_timeout`]).
//! * The application's operations go through the table's `poll_*` methods,
//!   which call the endpoint and park the caller's waker when it must wait.
//!   After any of them made progress (bytes written or read, a finish, a
//!   connect, a drop), wake the driver: the endpoint may have something to send.
//! * A `poll_*` method takes nothing out of the table unless it returns
//!   `Ready`, so a future built on one can be dropped at any await point
//!   without losing a connection or data (cancellation safety).
//!
//! ## Which connection is whose
//!
//! A connection the application opened ([`StreamTable::insert_connecting`])
//! completes its connect call when it connects — even when a simultaneous
//! open made us the handshake's responder (spec §4.5). Any other connection
//! that connects was accepted by the endpoint's policy and waits in the
//! accept queue for [`StreamTable::poll_accept`] — unless the application
//! connects to that same peer before accepting it
//! ([`StreamTable::claim_incoming`]): then it is the connect call's.
//!
//! ## Dropped streams
//!
//! [`StreamTable::drop_stream`] finishes the stream, discards whatever the
//! peer still sends, and releases the connection once it closes — or, at the
//! latest, after the transport's idle timeout (then abruptly), so an endpoint
//! whose application has gone away always winds down.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::task::{Poll, Waker};
use std::time::Instant;

use srudp_proto::{
    CloseReason, ConnectionHandle, Endpoint, Event, PublicKey, ReadError, WriteError,
};

use crate::stream_error::StreamError;

/// Most tasks parked in `poll_accept` that are remembered individually; past
/// it, all are woken (a spurious wake is harmless) and the list starts over.
const MAX_ACCEPT_WAITERS: usize = 64;

/// Who is at the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerInfo {
    /// The peer's address on the path in use.
    pub remote: SocketAddr,
    /// The peer's authenticated static key, when the handshake revealed it
    /// (see [`Event::Connected`]).
    pub peer: Option<PublicKey>,
}

/// What the application does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Opened with connect; a connect call waits for the handshake.
    Connecting,
    /// Accepted by the endpoint; waiting in the accept queue.
    Queued,
    /// The application holds a stream.
    Stream,
    /// The application dropped its stream; it finishes in the background
    /// and is released when it closes or at this deadline.
    Dropped { deadline: Instant },
}

#[derive(Debug)]
struct Entry {
    owner: Owner,
    peer: Option<PeerInfo>,
    closed: Option<CloseReason>,
    finish_requested: bool,
    all_acked: bool,
    /// Data arrived for a dropped stream, which nobody will read.
    discarded_data: bool,
    connector: Option<Waker>,
    reader: Option<Waker>,
    writer: Option<Waker>,
    finisher: Option<Waker>,
}

impl Entry {
    fn new(owner: Owner, peer: Option<PeerInfo>) -> Entry {
        Entry {
            owner,
            peer,
            closed: None,
            finish_requested: false,
            all_acked: false,
            discarded_data: false,
            connector: None,
            reader: None,
            writer: None,
            finisher: None,
        }
    }

    fn wake_all(&mut self) {
        for waker in [
            self.connector.take(),
            self.reader.take(),
            self.writer.take(),
            self.finisher.take(),
        ]
        .into_iter()
        .flatten()
        {
            waker.wake();
        }
    }

    fn closed_error(&self) -> StreamError {
        self.closed
            .clone()
            .map_or(StreamError::UnknownStream, StreamError::Closed)
    }
}

/// The application side of one endpoint's connections. See the module docs.
#[derive(Debug)]
pub(crate) struct StreamTable {
    entries: HashMap<ConnectionHandle, Entry>,
    /// The deadlines of the dropped streams, earliest first (ties by
    /// handle): `poll_timeout` and `handle_timeout` cost nothing per live
    /// stream.
    dropped: BTreeSet<(Instant, ConnectionHandle)>,
    /// Connected, accepted connections nobody has taken yet, oldest first.
    incoming: VecDeque<ConnectionHandle>,
    accept_waiters: Vec<Waker>,
    accepting: bool,
    /// Readers and writers that can make progress, woken once the lock is
    /// let go (see [`take_woken`](Self::take_woken)): woken under it, they
    /// would only wait for it.
    woken: Vec<Waker>,
}

impl Default for StreamTable {
    fn default() -> Self {
        StreamTable::new()
    }
}

impl StreamTable {
    /// An empty table that queues incoming connections for accept.
    pub(crate) fn new() -> StreamTable {
        StreamTable {
            entries: HashMap::new(),
            dropped: BTreeSet::new(),
            incoming: VecDeque::new(),
            accept_waiters: Vec::new(),
            accepting: true,
            woken: Vec::new(),
        }
    }

    // ----- getters -------------------------------------------------------

    /// Whether no connection is owned by the application, waiting to be
    /// accepted, or finishing after a drop. (The endpoint may still hold
    /// closing connections: see [`Endpoint::connection_count`].)
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Connections accepted by the endpoint and not yet taken by `poll_accept`.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.incoming.len()
    }

    /// Who the connection is connected to, once it is.
    pub(crate) fn peer_info(&self, handle: ConnectionHandle) -> Option<PeerInfo> {
        self.entries.get(&handle).and_then(|e| e.peer)
    }

    /// Why the connection closed, once it has.
    pub(crate) fn close_reason(&self, handle: ConnectionHandle) -> Option<&CloseReason> {
        self.entries.get(&handle).and_then(|e| e.closed.as_ref())
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout)
    /// must be called: the earliest deadline of a dropped stream.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.dropped.first().map(|&(deadline, _)| deadline)
    }

    // ----- driver side ---------------------------------------------------

    /// Takes every pending event from `endpoint`, updates the streams and
    /// wakes the tasks that can make progress. Call after every input to the
    /// endpoint and after draining `poll_transmit`.
    pub(crate) fn drain_events(&mut self, endpoint: &mut Endpoint, now: Instant) {
        while let Some((handle, event)) = endpoint.poll_event() {
            self.handle_event(endpoint, now, handle, event);
        }
        for w in self.woken.drain(..) {
            w.wake();
        }
    }

    /// Moves the readers and writers [`handle_event`](Self::handle_event)
    /// found able to make progress to `into`: the caller wakes them once it
    /// has let go of the lock, and must wake them.
    pub(crate) fn take_woken(&mut self, into: &mut Vec<Waker>) {
        into.append(&mut self.woken);
    }

    /// Handles one event of `endpoint`'s, for adapters that take the events
    /// from elsewhere than [`Endpoint::poll_event`] (a
    /// [`RendezvousClient`](srudp_proto::rendezvous::RendezvousClient) hands them
    /// out as `ClientEvent::Connection`). A connection the table does not
    /// know that reports `Connected` is queued for accept, as in
    /// [`drain_events`](Self::drain_events). The readers and writers it
    /// finds able to make progress wait in [`take_woken`](Self::take_woken).
    pub(crate) fn handle_event(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        handle: ConnectionHandle,
        event: Event,
    ) {
        if let Event::Connected { remote, peer, .. } = event {
            let info = PeerInfo { remote, peer };
            if let Some(entry) = self.entries.get_mut(&handle) {
                // Our own connect completed (as initiator, or as the
                // responder of a crossing handshake).
                entry.peer = Some(info);
                if let Some(w) = entry.connector.take() {
                    w.wake();
                }
            } else if self.accepting {
                self.entries
                    .insert(handle, Entry::new(Owner::Queued, Some(info)));
                self.incoming.push_back(handle);
                for w in self.accept_waiters.drain(..) {
                    w.wake();
                }
            } else {
                // Nobody will accept it: close it at once.
                endpoint.release(now, handle);
            }
            return;
        }
        let Some(entry) = self.entries.get_mut(&handle) else {
            return;
        };
        match event {
            // Handled above; a second one cannot happen.
            Event::Connected { .. } => {}
            Event::Readable | Event::PeerFinished => {
                if let Owner::Dropped { .. } = entry.owner {
                    entry.discarded_data |= discard_readable(endpoint, handle);
                    self.release_if_unread(endpoint, now, handle);
                } else if let Some(w) = entry.reader.take() {
                    self.woken.push(w);
                }
            }
            Event::Writable => {
                if let Some(w) = entry.writer.take() {
                    self.woken.push(w);
                }
            }
            Event::AllDataAcked => {
                entry.all_acked = true;
                if let Some(w) = entry.finisher.take() {
                    w.wake();
                }
                self.release_if_unread(endpoint, now, handle);
            }
            Event::PathChanged { remote } => {
                if let Some(info) = &mut entry.peer {
                    info.remote = remote;
                }
            }
            Event::Closed { reason } => {
                entry.closed = Some(reason);
                entry.wake_all();
                if let Owner::Dropped { .. } = entry.owner {
                    self.remove_entry(handle);
                    endpoint.release(now, handle);
                }
            }
        }
    }

    /// Releases dropped streams whose deadline passed (closing them abruptly
    /// if they have not finished by then).
    pub(crate) fn handle_timeout(&mut self, endpoint: &mut Endpoint, now: Instant) {
        while let Some(&(deadline, handle)) = self.dropped.first() {
            if deadline > now {
                break;
            }
            self.remove_entry(handle);
            endpoint.release(now, handle);
        }
    }

    /// Wakes every parked task, for example because the driver is gone; the
    /// adapter then reports its own error to them.
    pub(crate) fn wake_all(&mut self) {
        for w in self.woken.drain(..) {
            w.wake();
        }
        for entry in self.entries.values_mut() {
            entry.wake_all();
        }
        for w in self.accept_waiters.drain(..) {
            w.wake();
        }
    }

    // ----- application side ------------------------------------------------

    /// Records a connection the application opened with
    /// [`Endpoint::connect`]; wait for it with [`poll_connect`](Self::poll_connect).
    pub(crate) fn insert_connecting(&mut self, handle: ConnectionHandle) {
        self.entries
            .insert(handle, Entry::new(Owner::Connecting, None));
    }

    /// Takes over, for a connect call toward `peer`, a connection that
    /// `peer` opened toward us and that waits in the accept queue: a
    /// simultaneous open where our side called connect a little late (spec
    /// §4.5). It matches only when the initiator authenticated as `peer`
    /// (IK): an anonymous (NK) initiator is never taken for `peer`, whatever
    /// address it came from. Returns the handle to wait on with
    /// [`poll_connect`](Self::poll_connect), which completes at once. Call it
    /// before [`Endpoint::connect`]; `None` means connect as usual.
    pub(crate) fn claim_incoming(&mut self, peer: PublicKey) -> Option<ConnectionHandle> {
        let position = self.incoming.iter().position(|h| {
            self.entries
                .get(h)
                .and_then(|e| e.peer)
                .is_some_and(|info| info.peer == Some(peer))
        })?;
        let handle = self.incoming.remove(position)?;
        let entry = self.entries.get_mut(&handle)?;
        entry.owner = Owner::Connecting;
        Some(handle)
    }

    /// Completes when the connection opened with `insert_connecting` is
    /// established (the application now owns it as a stream) or has failed
    /// (then it is released and forgotten).
    pub(crate) fn poll_connect(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        handle: ConnectionHandle,
        waker: &Waker,
    ) -> Poll<Result<PeerInfo, StreamError>> {
        let Some(entry) = self.entries.get_mut(&handle) else {
            return Poll::Ready(Err(StreamError::UnknownStream));
        };
        if let Some(info) = entry.peer {
            // Connected, even if it closed since: the stream reports that.
            entry.owner = Owner::Stream;
            return Poll::Ready(Ok(info));
        }
        if let Some(reason) = entry.closed.clone() {
            self.remove_entry(handle);
            endpoint.release(now, handle);
            return Poll::Ready(Err(StreamError::Closed(reason)));
        }
        entry.connector = Some(waker.clone());
        Poll::Pending
    }

    /// The connect call was abandoned before it completed: the connection
    /// is closed and forgotten.
    pub(crate) fn abandon_connect(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        handle: ConnectionHandle,
    ) {
        if self
            .entries
            .get(&handle)
            .is_some_and(|e| e.owner == Owner::Connecting)
        {
            self.remove_entry(handle);
            endpoint.release(now, handle);
        }
    }

    /// Takes the oldest accepted connection; the application owns it as a
    /// stream from now on. Parks `waker` when the queue is empty.
    pub(crate) fn poll_accept(&mut self, waker: &Waker) -> Poll<(ConnectionHandle, PeerInfo)> {
        while let Some(handle) = self.incoming.pop_front() {
            if let Some(entry) = self.entries.get_mut(&handle) {
                if let (Owner::Queued, Some(info)) = (entry.owner, entry.peer) {
                    entry.owner = Owner::Stream;
                    return Poll::Ready((handle, info));
                }
            }
        }
        if !self.accept_waiters.iter().any(|w| w.will_wake(waker)) {
            if self.accept_waiters.len() >= MAX_ACCEPT_WAITERS {
                for w in self.accept_waiters.drain(..) {
                    w.wake();
                }
            }
            self.accept_waiters.push(waker.clone());
        }
        Poll::Pending
    }

    /// From now on, connections the endpoint accepts are closed at once;
    /// those waiting in the queue are closed now. (Set the endpoint's
    /// [`AcceptPolicy`](srudp_proto::AcceptPolicy) to `RefuseAll` as well, so
    /// initiators get a refusal rather than a connection that closes.)
    pub(crate) fn stop_accepting(&mut self, endpoint: &mut Endpoint, now: Instant) {
        self.accepting = false;
        for handle in std::mem::take(&mut self.incoming) {
            self.remove_entry(handle);
            endpoint.release(now, handle);
        }
        for w in self.accept_waiters.drain(..) {
            w.wake();
        }
    }

    /// Closes every connection abruptly with `code` and `reason` (for
    /// shutting the endpoint down) and stops accepting. Streams the
    /// application still holds report [`CloseReason::LocalClose`].
    pub(crate) fn close_all(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        code: u32,
        reason: &[u8],
    ) {
        self.close_on_the_wire(endpoint, now, code, reason);
        self.drain_events(endpoint, now);
    }

    /// Closes every connection in the protocol (the CLOSEs are queued) and
    /// stops accepting, but leaves the entries as they are: for a driver
    /// being dropped, whose tasks must see why the driver went away rather
    /// than a local close.
    pub(crate) fn close_on_the_wire(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        code: u32,
        reason: &[u8],
    ) {
        self.stop_accepting(endpoint, now);
        for &handle in self.entries.keys() {
            endpoint.close(now, handle, code, reason);
        }
    }

    /// Reads in-order bytes of the stream. `Ok(0)` for a non-empty `buf` is
    /// the end of the peer's stream. Parks `waker` until data arrives.
    pub(crate) fn poll_read(
        &mut self,
        endpoint: &mut Endpoint,
        handle: ConnectionHandle,
        waker: &Waker,
        buf: &mut [u8],
    ) -> Poll<Result<usize, StreamError>> {
        let Some(entry) = self.entries.get_mut(&handle) else {
            return Poll::Ready(Err(StreamError::UnknownStream));
        };
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match endpoint.read(handle, buf) {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(ReadError::Blocked) => {
                entry.reader = Some(waker.clone());
                Poll::Pending
            }
            Err(ReadError::Closed) => Poll::Ready(Err(entry.closed_error())),
            Err(ReadError::UnknownConnection) => Poll::Ready(Err(StreamError::UnknownStream)),
        }
    }

    /// Queues bytes on the stream; returns how many were taken. Parks
    /// `waker` while the send buffer is full (backpressure).
    pub(crate) fn poll_write(
        &mut self,
        endpoint: &mut Endpoint,
        handle: ConnectionHandle,
        waker: &Waker,
        data: &[u8],
    ) -> Poll<Result<usize, StreamError>> {
        let Some(entry) = self.entries.get_mut(&handle) else {
            return Poll::Ready(Err(StreamError::UnknownStream));
        };
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match endpoint.write(handle, data) {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(WriteError::Blocked) => {
                entry.writer = Some(waker.clone());
                Poll::Pending
            }
            Err(WriteError::Finished) => Poll::Ready(Err(StreamError::Finished)),
            Err(WriteError::Closed) => Poll::Ready(Err(entry.closed_error())),
            Err(WriteError::UnknownConnection) => Poll::Ready(Err(StreamError::UnknownStream)),
        }
    }

    /// Finishes our direction of the stream (once) and completes when the
    /// peer has acknowledged every byte and the end of the stream. Parks
    /// `waker` until then.
    pub(crate) fn poll_finish(
        &mut self,
        endpoint: &mut Endpoint,
        handle: ConnectionHandle,
        waker: &Waker,
    ) -> Poll<Result<(), StreamError>> {
        let Some(entry) = self.entries.get_mut(&handle) else {
            return Poll::Ready(Err(StreamError::UnknownStream));
        };
        if !entry.finish_requested {
            match endpoint.finish(handle) {
                Ok(()) | Err(WriteError::Finished) => entry.finish_requested = true,
                Err(WriteError::Closed) => {}
                Err(WriteError::Blocked) | Err(WriteError::UnknownConnection) => {
                    return Poll::Ready(Err(StreamError::UnknownStream));
                }
            }
        }
        if entry.all_acked {
            return Poll::Ready(Ok(()));
        }
        match &entry.closed {
            Some(CloseReason::Finished) => Poll::Ready(Ok(())),
            Some(reason) => Poll::Ready(Err(StreamError::Closed(reason.clone()))),
            None => {
                entry.finisher = Some(waker.clone());
                Poll::Pending
            }
        }
    }

    /// Closes the stream's connection abruptly with an application `code`
    /// and `reason`, which the peer receives. The application still owns the
    /// stream: reads return what had arrived, then an error.
    pub(crate) fn close_stream(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        handle: ConnectionHandle,
        code: u32,
        reason: &[u8],
    ) {
        if self.entries.contains_key(&handle) {
            endpoint.close(now, handle, code, reason);
            self.drain_events(endpoint, now);
        }
    }

    /// The application dropped its stream: finish it gracefully in the
    /// background, discard what the peer still sends (aborting once our data
    /// is delivered if that was data, see `release_if_unread`), and release
    /// it when it closes, or after the transport's idle timeout at the latest.
    pub(crate) fn drop_stream(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        handle: ConnectionHandle,
    ) {
        let Some(entry) = self.entries.get_mut(&handle) else {
            return;
        };
        if entry.closed.is_some() {
            self.remove_entry(handle);
            endpoint.release(now, handle);
            return;
        }
        // An error here means the stream was already finished: fine.
        let _ = endpoint.finish(handle);
        entry.discarded_data |= discard_readable(endpoint, handle);
        if let Owner::Dropped { deadline } = entry.owner {
            self.dropped.remove(&(deadline, handle));
        }
        let deadline = now + endpoint.config().transport.idle_timeout;
        entry.owner = Owner::Dropped { deadline };
        self.dropped.insert((deadline, handle));
        // Nobody holds the stream anymore; a `PathWatcher` or a blocked
        // call of an adapter's other handle finds out on its next poll.
        entry.wake_all();
        self.release_if_unread(endpoint, now, handle);
    }
}

impl StreamTable {
    /// The lingering policy of a dropped stream, like a TCP socket after
    /// `close`: it first delivers what was written; data that arrives for it
    /// meanwhile is read and thrown away, and once our data is delivered,
    /// such data aborts the connection, so the peer learns nobody reads it.
    /// A peer that only finishes its direction gets a graceful end.
    fn release_if_unread(
        &mut self,
        endpoint: &mut Endpoint,
        now: Instant,
        handle: ConnectionHandle,
    ) {
        let Some(entry) = self.entries.get(&handle) else {
            return;
        };
        if matches!(entry.owner, Owner::Dropped { .. }) && entry.all_acked && entry.discarded_data {
            self.remove_entry(handle);
            endpoint.release(now, handle);
        }
    }
}

impl StreamTable {
    /// Forgets a connection's entry (and its deadline, if dropped).
    fn remove_entry(&mut self, handle: ConnectionHandle) {
        if let Some(Entry {
            owner: Owner::Dropped { deadline },
            ..
        }) = self.entries.remove(&handle)
        {
            self.dropped.remove(&(deadline, handle));
        }
    }
}

/// Reads and throws away everything readable, so a peer still sending to a
/// dropped stream is not blocked by flow control; whether there was any
/// data (not just the peer's finish).
fn discard_readable(endpoint: &mut Endpoint, handle: ConnectionHandle) -> bool {
    let mut sink = [0u8; 4096];
    let mut discarded = false;
    // Bounded by the receive window.
    while let Ok(n) = endpoint.read(handle, &mut sink) {
        if n == 0 {
            break;
        }
        discarded = true;
    }
    discarded
}

#[cfg(test)]
#[path = "stream_table_tests.rs"]
mod tests;
