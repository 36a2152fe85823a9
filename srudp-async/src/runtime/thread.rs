//! A driver on a thread of its own, waiting in an OS poller of its own
//! (mio: epoll, kqueue, IOCP): what srudp-std runs, and
//! [`Endpoint::bind_on_thread`](crate::Endpoint::bind_on_thread).
//!
//! The thread does nothing but drive one endpoint, so it needs no executor
//! and no shared reactor: it polls the driver, and when the driver has
//! nothing to do it waits in its poller until the socket is readable (or
//! writable, when the driver is blocked on a full socket buffer), the
//! driver's deadline passes, or the application wakes it. A reactor shared
//! by several threads (async-io's) would often hand one driver's readiness
//! to another thread first, which then wakes it: a futex hop per wake-up.
//!
//! Waking costs a system call only when the thread is waiting: a wake while
//! the driver runs just marks it to go round again (the driver calls back
//! after every write and read of a stream, so that matters).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use mio::net::UdpSocket;
use mio::{Events, Interest, Token};
use srudp_net::batch::{Inbox, Outbox, UdpBatch};
use tracing::warn;

use super::{AsyncTimer, AsyncUdpSocket, Runtime};
use crate::driver::Driver;

/// The socket's token in the poller.
const SOCKET: Token = Token(0);
/// The application's wake-ups.
const WAKE: Token = Token(1);

/// The driver polls, and nobody woke it meanwhile.
const RUNNING: u8 = 0;
/// Woken while polling: it goes round again before waiting.
const WOKEN: u8 = 1;
/// Waiting in the poller: a wake-up must go through the poller.
const WAITING: u8 = 2;

/// The runtime of a driver thread with a poller of its own. Its socket and
/// timer only record what the driver waits for; [`spawn`]'s loop does the
/// waiting, so a `Driver<OwnThread>` runs on that loop only (never spawn
/// it on an executor).
#[derive(Debug)]
pub(crate) struct OwnThread;

impl Runtime for OwnThread {
    type UdpSocket = Socket;
    type Timer = Timer;

    fn wrap_udp_socket(socket: std::net::UdpSocket) -> io::Result<Socket> {
        Socket::new(socket)
    }

    fn new_timer() -> io::Result<Timer> {
        Ok(Timer { deadline: None })
    }

    const DRIVER_DROPPED: &'static str =
        "the endpoint's driver thread stopped before the endpoint shut down";

    /// The thread waits on the endpoint's socket alone: no spare sockets.
    const SPARE_SOCKETS: bool = false;
}

/// The socket, registered with the thread's poller.
#[derive(Debug)]
pub(crate) struct Socket {
    socket: UdpSocket,
    poll: mio::Poll,
    events: Events,
    wake: Arc<ThreadWake>,
    /// The driver found the socket buffer full since the last wait.
    wants_writable: AtomicBool,
    /// The socket is registered for writability too.
    registered_writable: bool,
}

impl Socket {
    fn new(socket: std::net::UdpSocket) -> io::Result<Socket> {
        let mut socket = UdpSocket::from_std(socket);
        let poll = mio::Poll::new()?;
        poll.registry()
            .register(&mut socket, SOCKET, Interest::READABLE)?;
        let waker = mio::Waker::new(poll.registry(), WAKE)?;
        Ok(Socket {
            socket,
            poll,
            events: Events::with_capacity(4),
            wake: Arc::new(ThreadWake {
                state: AtomicU8::new(RUNNING),
                waker,
            }),
            wants_writable: AtomicBool::new(false),
            registered_writable: false,
        })
    }

    /// Waits until the socket is readable (or writable, if the driver asked
    /// since the last wait), `deadline` passes, or the thread is woken.
    /// Readiness is edge-triggered: the driver reads until `WouldBlock`
    /// before it lets the thread wait, so new data always wakes it.
    fn wait(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let writable = self.wants_writable.swap(false, Ordering::Relaxed);
        if writable != self.registered_writable {
            let interest = if writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            self.poll
                .registry()
                .reregister(&mut self.socket, SOCKET, interest)?;
            self.registered_writable = writable;
        }
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match self.poll.poll(&mut self.events, timeout) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => Err(e),
            _ => Ok(()),
        }
    }
}

impl AsyncUdpSocket for Socket {
    fn poll_recv_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The thread waits for readability whenever it waits.
        Poll::Pending
    }

    fn poll_send_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.wants_writable.store(true, Ordering::Relaxed);
        Poll::Pending
    }

    fn try_receive(&self, batch: &UdpBatch, inbox: &mut Inbox) -> io::Result<usize> {
        batch.receive(&self.socket, inbox)
    }

    fn try_send(&self, batch: &UdpBatch, outbox: &mut Outbox) -> io::Result<()> {
        batch.send(&self.socket, outbox)
    }
}

/// The driver's deadline, which the thread waits for: `None` once it fired.
#[derive(Debug)]
pub(crate) struct Timer {
    deadline: Option<Instant>,
}

impl AsyncTimer for Timer {
    fn reset(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }

    fn disarm(&mut self) {
        self.deadline = None;
    }

    fn poll_expired(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        match self.deadline {
            Some(d) if d <= Instant::now() => {
                // It fires once, then stays silent until set again (the
                // driver does not disarm a timer that fired).
                self.deadline = None;
                Poll::Ready(())
            }
            // The thread waits until `deadline` whenever it waits.
            _ => Poll::Pending,
        }
    }
}

/// The waker of a driver thread.
#[derive(Debug)]
struct ThreadWake {
    /// [`RUNNING`], [`WOKEN`] or [`WAITING`].
    state: AtomicU8,
    waker: mio::Waker,
}

impl Wake for ThreadWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.state.swap(WOKEN, Ordering::AcqRel) == WAITING {
            // Fails only if the poller is gone: the thread has ended.
            let _ = self.waker.wake();
        }
    }
}

/// Runs `driver` on a thread of its own, named `srudp-driver`, until it
/// ends or the process exits (see `exit_hook`).
pub(crate) fn spawn(driver: Driver<OwnThread>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("srudp-driver".into())
        .spawn(move || crate::exit_hook::run_until_exit(driver, run))?;
    Ok(())
}

/// The thread's loop: poll `driver` (and `exiting`) until either is ready,
/// waiting in the socket's poller in between.
fn run(driver: &mut Driver<OwnThread>, exiting: &mut dyn FnMut(&mut Context<'_>) -> Poll<()>) {
    let wake = driver.io_mut().0.wake.clone();
    let waker = Waker::from(wake.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        // A wake from here on makes the driver go round again.
        wake.state.store(RUNNING, Ordering::Release);
        if exiting(&mut cx).is_ready() || Pin::new(&mut *driver).poll(&mut cx).is_ready() {
            return;
        }
        if wake
            .state
            .compare_exchange(RUNNING, WAITING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Woken while polling: more to do.
            continue;
        }
        let (socket, timer) = driver.io_mut();
        let deadline = timer.deadline;
        if let Err(e) = socket.wait(deadline) {
            warn!("waiting for the UDP socket failed, shutting the endpoint down: {e}");
            driver.fail(&e);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn socket() -> Socket {
        let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        std_socket.set_nonblocking(true).unwrap();
        Socket::new(std_socket).unwrap()
    }

    fn woken_through_the_poller(socket: &Socket) -> bool {
        socket.events.iter().any(|e| e.token() == WAKE)
    }

    #[test]
    fn a_wake_while_the_driver_runs_only_marks_it_and_a_wake_while_it_waits_ends_the_wait() {
        let mut socket = socket();
        let waker = Waker::from(socket.wake.clone());

        // Running: the wake is a mark the loop reads before waiting.
        waker.wake_by_ref();
        assert_eq!(socket.wake.state.load(Ordering::Acquire), WOKEN);
        socket.wait(Some(Instant::now())).unwrap();
        assert!(
            !woken_through_the_poller(&socket),
            "no system call for a running driver"
        );

        // Waiting: the wake goes through the poller and ends the wait.
        socket.wake.state.store(WAITING, Ordering::Release);
        let wake = std::thread::spawn(move || waker.wake());
        socket
            .wait(Some(Instant::now() + Duration::from_secs(10)))
            .unwrap();
        wake.join().unwrap();
        assert!(woken_through_the_poller(&socket));
        assert_eq!(socket.wake.state.load(Ordering::Acquire), WOKEN);
    }

    #[test]
    fn a_datagram_ends_the_wait() {
        let mut socket = socket();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"hello", socket.socket.local_addr().unwrap())
            .unwrap();
        socket
            .wait(Some(Instant::now() + Duration::from_secs(10)))
            .unwrap();
        assert!(socket.events.iter().any(|e| e.token() == SOCKET));
    }

    #[test]
    fn the_timer_fires_once_at_its_deadline_then_stays_silent_until_set_again() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut timer = OwnThread::new_timer().unwrap();
        assert!(timer.poll_expired(&mut cx).is_pending(), "not armed");
        let now = Instant::now();
        timer.reset(now + Duration::from_secs(3600));
        assert!(timer.poll_expired(&mut cx).is_pending());
        assert_eq!(timer.deadline, Some(now + Duration::from_secs(3600)));
        timer.reset(now);
        assert!(timer.poll_expired(&mut cx).is_ready());
        assert!(timer.poll_expired(&mut cx).is_pending(), "fired already");
        assert_eq!(timer.deadline, None, "the thread waits for no deadline");
        timer.reset(now);
        timer.disarm();
        assert!(timer.poll_expired(&mut cx).is_pending());
    }
}
