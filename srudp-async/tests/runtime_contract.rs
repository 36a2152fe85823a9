//! The core on a runtime of our own making, polled by hand: what the
//! [`Runtime`] contract promises an adapter author. The driver moves
//! datagrams through the trait's socket, a datagram the socket refuses
//! (`WouldBlock`) goes out on a later poll, spurious readiness cannot make it
//! spin, and a dropped driver fails every waiting call with the runtime's
//! reason instead of leaving it hanging.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use srudp_async::{
    driver_stopped, AsyncTimer, AsyncUdpSocket, DriverStopped, Endpoint, Inbox, Outbox, Runtime,
    UdpBatch,
};
use srudp_proto::{EndpointConfig, Keypair, Rng};

/// A runtime whose socket is the std socket itself, batched with the
/// driver's `UdpBatch`. With `SPURIOUS`, it claims readiness every time it
/// is asked; without, readiness never comes (the test polls the driver by
/// hand instead). Its first `REFUSED_SENDS` sends fail with `WouldBlock`
/// as if the socket's buffer were full.
struct Manual<const SPURIOUS: bool, const REFUSED_SENDS: usize = 0>;

struct ManualSocket<const SPURIOUS: bool, const REFUSED_SENDS: usize> {
    socket: UdpSocket,
    /// Sends still to refuse.
    refusing: AtomicUsize,
}

/// A timer that reports its deadline as passed, never wakes anyone.
struct ManualTimer(Option<Instant>);

impl<const SPURIOUS: bool, const REFUSED_SENDS: usize> Runtime for Manual<SPURIOUS, REFUSED_SENDS> {
    type UdpSocket = ManualSocket<SPURIOUS, REFUSED_SENDS>;
    type Timer = ManualTimer;

    fn wrap_udp_socket(socket: UdpSocket) -> io::Result<Self::UdpSocket> {
        Ok(ManualSocket {
            socket,
            refusing: AtomicUsize::new(REFUSED_SENDS),
        })
    }

    fn new_timer() -> io::Result<ManualTimer> {
        Ok(ManualTimer(None))
    }

    const DRIVER_DROPPED: &'static str = "the manual runtime dropped the driver";
}

impl<const SPURIOUS: bool, const REFUSED_SENDS: usize> ManualSocket<SPURIOUS, REFUSED_SENDS> {
    fn readiness(&self) -> Poll<io::Result<()>> {
        if SPURIOUS {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
}

impl<const SPURIOUS: bool, const REFUSED_SENDS: usize> AsyncUdpSocket
    for ManualSocket<SPURIOUS, REFUSED_SENDS>
{
    fn poll_recv_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.readiness()
    }

    fn poll_send_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.readiness()
    }

    fn try_receive(&self, batch: &UdpBatch, inbox: &mut Inbox) -> io::Result<usize> {
        batch.receive(&self.socket, inbox)
    }

    fn try_send(&self, batch: &UdpBatch, outbox: &mut Outbox) -> io::Result<()> {
        let refuse = self
            .refusing
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if refuse {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        batch.send(&self.socket, outbox)
    }
}

impl AsyncTimer for ManualTimer {
    fn reset(&mut self, deadline: Instant) {
        self.0 = Some(deadline);
    }

    fn disarm(&mut self) {
        self.0 = None;
    }

    fn poll_expired(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        match self.0 {
            Some(d) if d <= Instant::now() => Poll::Ready(()),
            _ => Poll::Pending,
        }
    }
}

/// Counts how often the task was woken.
#[derive(Default)]
struct WakeCount(AtomicUsize);

impl Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn config(seed: u64) -> EndpointConfig {
    let mut config = EndpointConfig::new(Keypair::generate(&mut Rng::from_seed(seed)));
    config.rng_seed = Some(seed);
    config
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn stranger() -> srudp_proto::PublicKey {
    Keypair::generate(&mut Rng::from_seed(99)).public()
}

/// Waits (at most 5 s) for `endpoint`'s initiation to reach `peer`.
fn expect_initiation(peer: &UdpSocket, endpoint: &Endpoint) {
    peer.set_nonblocking(false).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 2048];
    let (len, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(from, endpoint.local_addr());
    assert!(
        len >= 1200,
        "an initiation is padded to 1200 bytes, got {len}"
    );
}

#[test]
fn the_driver_sends_through_the_runtimes_socket_and_then_sleeps() {
    let (endpoint, driver) =
        Endpoint::bind_with_runtime::<Manual<false>>(loopback(), config(1), None).unwrap();
    let peer = UdpSocket::bind(loopback()).unwrap();
    let _connecting = endpoint.connect(stranger(), &[peer.local_addr().unwrap()]);

    let mut driver = pin!(driver);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(driver.as_mut().poll(&mut cx).is_pending());
    expect_initiation(&peer, &endpoint);
}

#[test]
fn a_datagram_the_socket_refused_goes_out_on_the_next_poll() {
    let (endpoint, driver) =
        Endpoint::bind_with_runtime::<Manual<false, 1>>(loopback(), config(4), None).unwrap();
    let peer = UdpSocket::bind(loopback()).unwrap();
    let _connecting = endpoint.connect(stranger(), &[peer.local_addr().unwrap()]);

    // The socket refuses the initiation as if its buffer were full.
    let mut driver = pin!(driver);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(driver.as_mut().poll(&mut cx).is_pending());
    let mut buf = [0u8; 2048];
    peer.set_nonblocking(true).unwrap();
    let early = peer.recv_from(&mut buf);
    assert!(
        matches!(&early, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
        "the refused send went out anyway: {early:?}"
    );

    // The runtime wakes the driver once the socket is writable: the
    // initiation was kept and goes out now.
    assert!(driver.as_mut().poll(&mut cx).is_pending());
    expect_initiation(&peer, &endpoint);
}

#[test]
fn spurious_readiness_makes_the_driver_yield_instead_of_spinning() {
    let (_endpoint, driver) =
        Endpoint::bind_with_runtime::<Manual<true>>(loopback(), config(2), None).unwrap();
    let wakes = Arc::new(WakeCount::default());
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    let mut driver = pin!(driver);
    // Nothing ever arrives, yet the socket keeps claiming readiness: each
    // poll gives up after a bounded number of tries and asks to be polled
    // again later.
    for round in 0..3 {
        let before = wakes.0.load(Ordering::Relaxed);
        assert!(driver.as_mut().poll(&mut cx).is_pending());
        let after = wakes.0.load(Ordering::Relaxed);
        assert!(
            after > before,
            "poll {round} did not ask to be polled again"
        );
    }
}

#[test]
fn a_dropped_driver_fails_waiting_calls_with_not_connected_and_the_runtimes_reason() {
    let (endpoint, driver) =
        Endpoint::bind_with_runtime::<Manual<false>>(loopback(), config(3), None).unwrap();
    let silent = UdpSocket::bind(loopback()).unwrap();
    let connecting = endpoint.connect(stranger(), &[silent.local_addr().unwrap()]);
    let mut cx = Context::from_waker(Waker::noop());
    drop(driver);

    let Poll::Ready(Err(err)) = pin!(connecting).poll(&mut cx) else {
        panic!("connect did not fail at once");
    };
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
    assert_eq!(err.to_string(), Manual::<false>::DRIVER_DROPPED);
    let expected = DriverStopped::Dropped(Manual::<false>::DRIVER_DROPPED);
    assert_eq!(driver_stopped(&err), Some(&expected));
    let source = std::error::Error::source(&err).expect("the cause is the source");
    assert_eq!(source.downcast_ref::<DriverStopped>(), Some(&expected));
    let Poll::Ready(Err(err)) = pin!(endpoint.accept()).poll(&mut cx) else {
        panic!("accept did not fail at once");
    };
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
}

/// A runtime whose socket fails every receive with `PermissionDenied`, as a
/// socket taken away by the system would: not a transient error.
struct Failing;

struct FailingSocket;

impl Runtime for Failing {
    type UdpSocket = FailingSocket;
    type Timer = ManualTimer;

    fn wrap_udp_socket(_socket: UdpSocket) -> io::Result<FailingSocket> {
        Ok(FailingSocket)
    }

    fn new_timer() -> io::Result<ManualTimer> {
        Ok(ManualTimer(None))
    }

    const DRIVER_DROPPED: &'static str = "the failing runtime dropped the driver";
}

impl AsyncUdpSocket for FailingSocket {
    fn poll_recv_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Pending
    }

    fn poll_send_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Pending
    }

    fn try_receive(&self, _batch: &UdpBatch, _inbox: &mut Inbox) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the socket was revoked",
        ))
    }

    fn try_send(&self, _batch: &UdpBatch, outbox: &mut Outbox) -> io::Result<()> {
        outbox.clear();
        Ok(())
    }
}

#[test]
fn a_failed_socket_ends_the_driver_and_every_call_says_so_with_the_sockets_error() {
    let (endpoint, driver) =
        Endpoint::bind_with_runtime::<Failing>(loopback(), config(4), None).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    assert!(
        pin!(driver).poll(&mut cx).is_ready(),
        "a socket that only fails ends the driver"
    );

    let Poll::Ready(Err(err)) = pin!(endpoint.accept()).poll(&mut cx) else {
        panic!("accept did not fail at once");
    };
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    assert_eq!(
        err.to_string(),
        "the endpoint's UDP socket failed: the socket was revoked"
    );
    let Some(DriverStopped::SocketFailed { kind, .. }) = driver_stopped(&err) else {
        panic!("not a socket failure: {err:?}");
    };
    assert_eq!(*kind, io::ErrorKind::PermissionDenied);
    let source = std::error::Error::source(&err).expect("the cause is the source");
    assert!(source.downcast_ref::<DriverStopped>().is_some());
    let Poll::Ready(Err(err)) = pin!(endpoint.connect(stranger(), &[loopback()])).poll(&mut cx)
    else {
        panic!("connect did not fail at once");
    };
    assert!(driver_stopped(&err).is_some(), "{err:?}");
}

/// While set, the [`Gated`] runtime's socket refuses every send as if its
/// buffer were full. Only one test uses it.
static GATE_SHUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A runtime whose socket sends only while [`GATE_SHUT`] is clear, and
/// whose readiness never comes (the test polls the driver by hand).
struct Gated;

struct GatedSocket(UdpSocket);

impl Runtime for Gated {
    type UdpSocket = GatedSocket;
    type Timer = ManualTimer;

    fn wrap_udp_socket(socket: UdpSocket) -> io::Result<GatedSocket> {
        Ok(GatedSocket(socket))
    }

    fn new_timer() -> io::Result<ManualTimer> {
        Ok(ManualTimer(None))
    }

    const DRIVER_DROPPED: &'static str = "the gated runtime dropped the driver";
}

impl AsyncUdpSocket for GatedSocket {
    fn poll_recv_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Pending
    }

    fn poll_send_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Pending
    }

    fn try_receive(&self, batch: &UdpBatch, inbox: &mut Inbox) -> io::Result<usize> {
        batch.receive(&self.0, inbox)
    }

    fn try_send(&self, batch: &UdpBatch, outbox: &mut Outbox) -> io::Result<()> {
        if GATE_SHUT.load(Ordering::SeqCst) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        batch.send(&self.0, outbox)
    }
}

/// Polls `driver` and `until` by hand (1 ms apart) until `until` is ready;
/// at most 5 s.
fn drive_until<T>(
    driver: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    until: impl Future<Output = T>,
) -> T {
    let mut cx = Context::from_waker(Waker::noop());
    let mut until = pin!(until);
    let give_up = Instant::now() + Duration::from_secs(5);
    while Instant::now() < give_up {
        let _ = driver.as_mut().poll(&mut cx);
        if let Poll::Ready(v) = until.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("not ready within 5 s");
}

#[test]
fn wait_idle_returns_only_once_the_answering_close_left_through_the_socket() {
    // The peer runs on a driver thread of its own.
    let peer = Endpoint::bind(loopback(), config(20)).unwrap();
    let (endpoint, driver) =
        Endpoint::bind_with_runtime::<Gated>(loopback(), config(21), None).unwrap();
    let mut driver = pin!(driver);
    let connecting = endpoint.connect(peer.public_key(), &[peer.local_addr()]);
    let _ours = drive_until(&mut driver, connecting).unwrap();
    let (_theirs, _, _) = futures_lite::future::block_on(peer.accept()).unwrap();

    // The peer closes; our socket is full when its CLOSE arrives, so our
    // answer is taken from the endpoint but cannot leave. A program that
    // returned from main now would leave the peer lingering in its closing
    // period (12 s) for an answer that never comes.
    GATE_SHUT.store(true, Ordering::SeqCst);
    peer.close();
    let mut cx = Context::from_waker(Waker::noop());
    let mut idle = pin!(endpoint.wait_idle());
    let watch_until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < watch_until {
        let _ = driver.as_mut().poll(&mut cx);
        assert!(
            idle.as_mut().poll(&mut cx).is_pending(),
            "wait_idle returned with the answering CLOSE still unsent"
        );
        std::thread::sleep(Duration::from_millis(1));
    }

    // Once the socket takes it, wait_idle returns, and the peer, answered,
    // is idle at once too.
    GATE_SHUT.store(false, Ordering::SeqCst);
    drive_until(&mut driver, idle);
    let peer_idle = futures_lite::future::block_on(futures_lite::future::or(
        async {
            peer.wait_idle().await;
            true
        },
        async {
            async_io::Timer::after(Duration::from_secs(1)).await;
            false
        },
    ));
    assert!(peer_idle, "the peer did not hear our answering CLOSE");
}
