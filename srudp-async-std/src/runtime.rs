//! async-io's socket and timer for the driver (see [`srudp_async::Runtime`]):
//! the reactor async-std and smol both run on.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::Async;
use srudp_async::{AsyncTimer, AsyncUdpSocket, Runtime};

/// The async-io reactor, for [`srudp_async::Endpoint::bind`].
#[derive(Debug)]
pub(crate) struct AsyncIo;

impl Runtime for AsyncIo {
    type UdpSocket = Socket;
    type Timer = Timer;

    fn wrap_udp_socket(socket: UdpSocket) -> io::Result<Socket> {
        Async::new(socket).map(Socket)
    }

    fn new_timer() -> io::Result<Timer> {
        Ok(Timer(async_io::Timer::never()))
    }

    const DRIVER_DROPPED: &'static str =
        "the endpoint's driver stopped before the endpoint shut down";
}

/// A std socket registered with the async-io reactor: tried directly, and
/// polled for readiness after a `WouldBlock`.
#[derive(Debug)]
pub(crate) struct Socket(Async<UdpSocket>);

impl AsyncUdpSocket for Socket {
    fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_readable(cx)
    }

    fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_writable(cx)
    }

    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.get_ref().recv_from(buf)
    }

    fn try_send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.0.get_ref().send_to(datagram, to)
    }
}

/// One `async_io::Timer`, set to each new deadline. It fires once, then
/// stays silent until set again.
#[derive(Debug)]
pub(crate) struct Timer(async_io::Timer);

impl AsyncTimer for Timer {
    fn reset(&mut self, deadline: Instant) {
        self.0.set_at(deadline);
    }

    fn disarm(&mut self) {
        self.0 = async_io::Timer::never();
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(drop)
    }
}
