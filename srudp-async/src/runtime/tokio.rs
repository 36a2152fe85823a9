//! tokio's socket and timer for the driver (see [`Runtime`]).

use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use super::{AsyncTimer, AsyncUdpSocket, Runtime};
use ::tokio::io::Interest;
use ::tokio::net::UdpSocket;
use ::tokio::time::Sleep;
use srudp_net::batch::{Inbox, Outbox, UdpBatch};

/// The tokio runtime. Binding with it needs a runtime entered
/// ([`Handle::enter`](::tokio::runtime::Handle::enter)) with IO and time
/// enabled; spawn the driver on that runtime.
#[derive(Debug)]
pub struct Tokio;

impl Runtime for Tokio {
    type UdpSocket = Socket;
    type Timer = Timer;

    fn wrap_udp_socket(socket: std::net::UdpSocket) -> io::Result<Socket> {
        without_panic(|| UdpSocket::from_std(socket).map(Socket))?
    }

    fn new_timer() -> io::Result<Timer> {
        without_panic(|| {
            Timer(Box::pin(::tokio::time::sleep_until(
                ::tokio::time::Instant::now(),
            )))
        })
    }

    const DRIVER_DROPPED: &'static str = "the endpoint's driver stopped (its runtime shut down)";
}

/// tokio panics when the runtime lacks the IO or time driver; that is a
/// configuration error to report, not a reason to take the caller down.
fn without_panic<T>(f: impl FnOnce() -> T) -> io::Result<T> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|_| {
        io::Error::other(
            "binding a srudp endpoint on tokio needs a runtime with IO and time enabled \
             (Builder::enable_all)",
        )
    })
}

/// A tokio UDP socket. The batched calls run inside `try_io`, which clears
/// tokio's readiness when they find the socket not ready (`WouldBlock`).
#[derive(Debug)]
pub struct Socket(UdpSocket);

impl AsyncUdpSocket for Socket {
    fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_recv_ready(cx)
    }

    fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_send_ready(cx)
    }

    fn try_receive(&self, batch: &UdpBatch, inbox: &mut Inbox) -> io::Result<usize> {
        self.0
            .try_io(Interest::READABLE, || batch.receive(&self.0, inbox))
    }

    fn try_send(&self, batch: &UdpBatch, outbox: &mut Outbox) -> io::Result<()> {
        self.0
            .try_io(Interest::WRITABLE, || batch.send(&self.0, outbox))
    }

    fn send_on_drop(&self, batch: &UdpBatch, outbox: &mut Outbox) -> io::Result<()> {
        // The OS socket is non-blocking and still open: it lives as long as
        // this wrapper, whatever state the runtime's IO driver is in.
        batch.send(&self.0, outbox)
    }
}

/// One `Sleep`, reset to each new deadline.
#[derive(Debug)]
pub struct Timer(Pin<Box<Sleep>>);

impl AsyncTimer for Timer {
    fn reset(&mut self, deadline: Instant) {
        self.0
            .as_mut()
            .reset(::tokio::time::Instant::from_std(deadline));
    }

    fn disarm(&mut self) {
        // A `Sleep` cannot be disarmed; the driver stops polling it, and it
        // wakes the driver at most once more.
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}
