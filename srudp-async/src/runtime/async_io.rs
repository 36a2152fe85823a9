//! async-io's socket and timer for the driver (see [`Runtime`]):
//! the reactor async-std and smol both run on.

use std::future::Future;
use std::io;
use std::net::UdpSocket;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use ::async_io::Async;
use srudp_net::batch::{Inbox, Outbox, UdpBatch};

use super::{AsyncTimer, AsyncUdpSocket, Runtime};

/// The async-io reactor (async-std's and smol's): its driver can be polled
/// by any executor, or by a thread of its own
/// ([`Endpoint::bind`](crate::Endpoint::bind) outside a tokio runtime).
#[derive(Debug)]
pub struct AsyncIo;

impl Runtime for AsyncIo {
    type UdpSocket = Socket;
    type Timer = Timer;

    fn wrap_udp_socket(socket: UdpSocket) -> io::Result<Socket> {
        Async::new(socket).map(Socket)
    }

    fn new_timer() -> io::Result<Timer> {
        Ok(Timer(::async_io::Timer::never()))
    }

    const DRIVER_DROPPED: &'static str =
        "the endpoint's driver stopped before the endpoint shut down";
}

/// A std socket registered with the async-io reactor: the batched calls
/// run on it directly, and it is polled for readiness after a `WouldBlock`.
#[derive(Debug)]
pub struct Socket(Async<UdpSocket>);

impl AsyncUdpSocket for Socket {
    fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_readable(cx)
    }

    fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_writable(cx)
    }

    fn try_receive(&self, batch: &UdpBatch, inbox: &mut Inbox) -> io::Result<usize> {
        batch.receive(self.0.get_ref(), inbox)
    }

    fn try_send(&self, batch: &UdpBatch, outbox: &mut Outbox) -> io::Result<()> {
        batch.send(self.0.get_ref(), outbox)
    }

    fn send_on_drop(&self, batch: &UdpBatch, outbox: &mut Outbox) -> io::Result<()> {
        batch.send(self.0.get_ref(), outbox)
    }
}

/// One `async_io::Timer`, set to each new deadline. It fires once, then
/// stays silent until set again.
#[derive(Debug)]
pub struct Timer(::async_io::Timer);

impl AsyncTimer for Timer {
    fn reset(&mut self, deadline: Instant) {
        self.0.set_at(deadline);
    }

    fn disarm(&mut self) {
        self.0 = ::async_io::Timer::never();
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(drop)
    }
}
