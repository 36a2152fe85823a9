//! The state the driver task and the application's handles share.
//!
//! The protocol endpoint and its [`StreamTable`] sit behind one mutex. The
//! driver takes it to feed inputs and drain outputs; streams take it for a
//! moment to read or write, then wake the driver if it has work. The lock
//! is never held across an await point or a system call.

use std::io;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Instant;

use srudp_proto::PublicKey;

use crate::stream_error::{DriverStopped, StreamError};
use crate::stream_table::StreamTable;

use crate::driven::DrivenEndpoint;
use srudp_net::socket::Family;

use crate::client_carrier::ClientCarrier;
use crate::rendezvous_client::RendezvousState;

/// Immutable facts about the endpoint, and the shared mutable state.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) local_addr: SocketAddr,
    pub(crate) public_key: PublicKey,
    pub(crate) family: Family,
}

/// How the driver ended.
#[derive(Debug, Clone)]
pub(crate) enum DriverEnd {
    /// It finished its work: the endpoint was closed, or nobody can use it.
    Finished,
    /// It ended before the endpoint was closed.
    Stopped(DriverStopped),
}

#[derive(Debug)]
pub(crate) struct State {
    /// The protocol endpoint, plain or inside a rendezvous client.
    pub(crate) machine: DrivenEndpoint,
    pub(crate) table: StreamTable,
    /// The rendezvous client's view for the application, when there is one.
    pub(crate) rendezvous: Option<RendezvousState>,
    /// The server's stream carrier, when the client has one (spec §12.5).
    pub(crate) carrier: Option<ClientCarrier>,
    /// Tasks waiting for a connection's path to change.
    pub(crate) path_waiters: Vec<Waker>,
    /// How many `Endpoint` handles exist; at zero nobody can accept anymore.
    pub(crate) endpoint_handles: usize,
    /// `Endpoint::close` was called.
    pub(crate) closed: bool,
    /// Set once the driver task has ended (or was dropped with its runtime).
    pub(crate) gone: Option<DriverEnd>,
    /// The driver holds datagrams it took from the endpoint but has not
    /// sent yet (as of its last round).
    pub(crate) unsent: bool,
    driver: Option<Waker>,
    idle_waiters: Vec<Waker>,
    last_now: Instant,
}

impl Shared {
    pub(crate) fn new(machine: DrivenEndpoint, local_addr: SocketAddr, family: Family) -> Shared {
        let rendezvous = machine.client().map(|_| RendezvousState::default());
        let carrier = machine.client().and_then(|c| {
            let config = c.config();
            let tcp = config.stream_carrier?;
            Some(ClientCarrier::new(
                Instant::now(),
                config.server_addr,
                tcp,
                config.stream_transport.clone(),
                config.stream_fallback.clone(),
            ))
        });
        Shared {
            public_key: machine.endpoint().public_key(),
            state: Mutex::new(State {
                machine,
                table: StreamTable::new(),
                rendezvous,
                carrier,
                path_waiters: Vec::new(),
                endpoint_handles: 1,
                closed: false,
                gone: None,
                unsent: false,
                driver: None,
                idle_waiters: Vec::new(),
                last_now: Instant::now(),
            }),
            local_addr,
            family,
        }
    }

    /// Locks the state. A panic while it was held (a bug) does not make
    /// every later call — drops included — panic too.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// The current time, never earlier than any time handed out before.
    pub(crate) fn now(&mut self) -> Instant {
        self.last_now = self.last_now.max(Instant::now());
        self.last_now
    }

    /// Moves the clock to at least `t` (a timer that fired a hair early
    /// must not leave its deadline in the future).
    pub(crate) fn advance_to(&mut self, t: Instant) {
        self.last_now = self.last_now.max(t);
    }

    /// The driver has work: an application call changed the endpoint.
    pub(crate) fn wake_driver(&self) {
        if let Some(w) = &self.driver {
            w.wake_by_ref();
        }
    }

    pub(crate) fn set_driver_waker(&mut self, waker: &Waker) {
        if !self.driver.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.driver = Some(waker.clone());
        }
    }

    /// An error when the driver is gone: nothing will be sent or received.
    pub(crate) fn check_driver(&self) -> io::Result<()> {
        match &self.gone {
            None => Ok(()),
            // The application closed it: that is why the driver ended.
            Some(_) if self.closed => Err(StreamError::EndpointClosed.into()),
            Some(DriverEnd::Finished) => Err(StreamError::EndpointClosed.into()),
            Some(DriverEnd::Stopped(why)) => Err(StreamError::DriverStopped(why.clone()).into()),
        }
    }

    /// A stream call's error as the application sees it: a stream the
    /// endpoint forgot because its driver stopped reports why the driver
    /// stopped.
    pub(crate) fn stream_error(&self, e: StreamError) -> io::Error {
        match (&e, &self.gone) {
            (StreamError::UnknownStream, Some(DriverEnd::Stopped(_))) if !self.closed => {
                self.check_driver().err().unwrap_or_else(|| e.into())
            }
            _ => e.into(),
        }
    }

    /// Errors for `connect` and `accept` on a closed endpoint.
    pub(crate) fn check_open(&self) -> io::Result<()> {
        if self.closed {
            return Err(StreamError::EndpointClosed.into());
        }
        self.check_driver()
    }

    /// The driver ended: every parked task learns it.
    pub(crate) fn set_gone(&mut self, why: DriverEnd) {
        if self.gone.is_none() {
            self.gone = Some(why);
        }
        self.driver = None;
        self.table.wake_all();
        self.wake_idle_waiters();
        self.wake_path_waiters();
        if let Some(r) = &mut self.rendezvous {
            r.wake_all();
        }
    }

    /// Whether no connection has anything left to do: every one is closed
    /// and has lingered (no timer is armed anywhere).
    pub(crate) fn is_idle(&self) -> bool {
        (self.machine.poll_timeout().is_none() && self.table.poll_timeout().is_none())
            || self.gone.is_some()
    }

    /// Whether the application's connections are all over (closed, and
    /// their peers have answered or the closing period passed), no
    /// dropped stream still delivers its data and the driver sent every
    /// datagram it took from the endpoint: what `Endpoint::wait_idle`
    /// waits for. The live rendezvous link is not the application's and
    /// does not count.
    pub(crate) fn application_idle(&self) -> bool {
        (self.machine.unfinished_application_connections() == 0
            && self.table.poll_timeout().is_none()
            && !self.unsent)
            || self.gone.is_some()
    }

    pub(crate) fn park_idle_waiter(&mut self, waker: &Waker) {
        if !self.idle_waiters.iter().any(|w| w.will_wake(waker)) {
            self.idle_waiters.push(waker.clone());
        }
    }

    pub(crate) fn park_path_waiter(&mut self, waker: &Waker) {
        if !self.path_waiters.iter().any(|w| w.will_wake(waker)) {
            self.path_waiters.push(waker.clone());
        }
    }

    pub(crate) fn wake_path_waiters(&mut self) {
        for w in self.path_waiters.drain(..) {
            w.wake();
        }
    }

    pub(crate) fn has_idle_waiters(&self) -> bool {
        !self.idle_waiters.is_empty()
    }

    pub(crate) fn wake_idle_waiters(&mut self) {
        for w in self.idle_waiters.drain(..) {
            w.wake();
        }
    }
}
