//! What every scenario of this suite runs on: the three executors (tokio,
//! smol, async-std), a macro that turns each scenario into one test per
//! executor, timers and spawning that go through the executor under test,
//! and an echo server built from that executor's own IO helpers. Keys,
//! payloads and addresses come from `srudp-testkit`.
#![allow(dead_code, unreachable_pub, unused_macros)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use srudp_async::{runtime, Endpoint, EndpointConfig, Stream};
pub use srudp_testkit::fixtures::*;

/// Generates, for each scenario `async fn name(ex: Exec)`, one test per
/// executor: `tokio_executor::name`, `smol_executor::name` and
/// `async_std_executor::name`. Each builds its executor and runs the
/// scenario on it; endpoints bound inside take that executor's driver
/// (a tokio task under tokio, async-io's reactor under the other two).
macro_rules! on_every_executor {
    ($($name:ident),* $(,)?) => {
        mod tokio_executor {
            $(#[test]
            fn $name() {
                crate::common::Exec::Tokio.block_on(super::$name(crate::common::Exec::Tokio))
            })*
        }
        mod smol_executor {
            $(#[test]
            fn $name() {
                crate::common::Exec::Smol.block_on(super::$name(crate::common::Exec::Smol))
            })*
        }
        mod async_std_executor {
            $(#[test]
            fn $name() {
                crate::common::Exec::AsyncStd.block_on(super::$name(crate::common::Exec::AsyncStd))
            })*
        }
    };
}

/// The executor a scenario runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exec {
    /// A multi-threaded tokio runtime with two workers; endpoints bound in
    /// it drive their sockets as tokio tasks.
    Tokio,
    Smol,
    AsyncStd,
}

impl Exec {
    /// Every executor, in the order the suite names them.
    pub const ALL: [Exec; 3] = [Exec::Tokio, Exec::Smol, Exec::AsyncStd];

    /// Runs `f` to completion on this executor.
    pub fn block_on<T>(self, f: impl Future<Output = T>) -> T {
        match self {
            Exec::Tokio => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(f),
            Exec::Smol => smol::block_on(f),
            Exec::AsyncStd => async_std::task::block_on(f),
        }
    }

    /// Spawns `f` as a task of this executor (from inside [`block_on`](Self::block_on)).
    pub fn spawn<T: Send + 'static>(self, f: impl Future<Output = T> + Send + 'static) -> Task<T> {
        match self {
            Exec::Tokio => Task::Tokio(tokio::spawn(f)),
            Exec::Smol => Task::Smol(smol::spawn(f)),
            Exec::AsyncStd => Task::AsyncStd(async_std::task::spawn(f)),
        }
    }

    pub fn spawn_detached(self, f: impl Future<Output = ()> + Send + 'static) {
        self.spawn(f).detach();
    }

    /// Sleeps on this executor's own timer.
    pub async fn sleep(self, d: Duration) {
        match self {
            Exec::Tokio => tokio::time::sleep(d).await,
            Exec::Smol => drop(smol::Timer::after(d).await),
            Exec::AsyncStd => async_std::task::sleep(d).await,
        }
    }

    /// Binds an endpoint whose driver is a task of this executor, made for
    /// its runtime (`runtime::Tokio` under tokio, `runtime::AsyncIo` under
    /// smol and async-std); awaiting the task waits for the driver to end,
    /// cancelling it stops the driver without a word, like a crashed process.
    pub fn bind_with_driver_task(
        self,
        addr: SocketAddr,
        config: EndpointConfig,
    ) -> io::Result<(Endpoint, Task<()>)> {
        Ok(match self {
            Exec::Tokio => {
                let (endpoint, driver) =
                    Endpoint::bind_with_runtime::<runtime::Tokio>(addr, config, None)?;
                (endpoint, self.spawn(driver))
            }
            Exec::Smol | Exec::AsyncStd => {
                let (endpoint, driver) = Endpoint::bind_with_driver(addr, config)?;
                (endpoint, self.spawn(driver))
            }
        })
    }

    /// Under tokio, how many tasks of the current runtime are alive (drivers
    /// included); the other executors do not tell.
    pub fn alive_tasks(self) -> Option<usize> {
        match self {
            Exec::Tokio => Some(
                tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks(),
            ),
            Exec::Smol | Exec::AsyncStd => None,
        }
    }
}

/// A spawned task: await it for its output (a panic in it fails the test),
/// or cancel it.
pub enum Task<T> {
    Tokio(tokio::task::JoinHandle<T>),
    Smol(smol::Task<T>),
    AsyncStd(async_std::task::JoinHandle<T>),
}

impl<T> Future for Task<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.get_mut() {
            Task::Tokio(t) => Pin::new(t).poll(cx).map(|r| r.expect("the task panicked")),
            Task::Smol(t) => Pin::new(t).poll(cx),
            Task::AsyncStd(t) => Pin::new(t).poll(cx),
        }
    }
}

impl<T> Task<T> {
    /// Stops the task (dropping its future) and waits until it is gone.
    pub async fn cancel(self) {
        match self {
            Task::Tokio(t) => {
                t.abort();
                let _ = t.await;
            }
            Task::Smol(t) => drop(t.cancel().await),
            Task::AsyncStd(t) => drop(t.cancel().await),
        }
    }

    /// Lets the task run on by itself.
    pub fn detach(self) {
        match self {
            Task::Tokio(t) => drop(t),
            Task::Smol(t) => t.detach(),
            Task::AsyncStd(t) => drop(t),
        }
    }
}

/// Sleeps on async-io's timer, which works under every executor.
pub async fn sleep(d: Duration) {
    async_io::Timer::after(d).await;
}

/// Fails the test instead of hanging when `f` takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, f: impl Future<Output = T>) -> T {
    futures_lite::future::or(f, async {
        sleep(limit).await;
        panic!("{what}: did not finish within {limit:?}")
    })
    .await
}

/// `Some(output)` if `f` finishes within `limit`, else `None` (and `f` is dropped).
pub async fn timeout<T>(limit: Duration, f: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(f.await) }, async {
        sleep(limit).await;
        None
    })
    .await
}

/// Accepts connections until the endpoint closes and echoes each one back
/// until the peer finishes, then finishes too, with the executor's own IO
/// helpers: `tokio::io::split` and `tokio::io::copy` (tokio's `AsyncRead`
/// and `AsyncWrite` on the stream) under tokio, `async_std::io::copy`
/// under async-std, `futures_lite::io::copy` under smol (futures-io's).
pub fn spawn_echo_server(ex: Exec, endpoint: Endpoint) {
    ex.spawn_detached(async move {
        while let Ok((stream, _, _)) = endpoint.accept().await {
            ex.spawn_detached(echo(ex, stream));
        }
    });
}

/// Echoes `stream` until the peer finishes, then finishes too.
pub async fn echo(ex: Exec, stream: Stream) {
    if ex == Exec::Tokio {
        use tokio::io::AsyncWriteExt as _;
        let (mut reader, mut writer) = tokio::io::split(stream);
        if tokio::io::copy(&mut reader, &mut writer).await.is_ok() {
            let _ = writer.shutdown().await;
        }
        return;
    }
    let (mut reader, mut writer) = futures_lite::io::split(stream);
    let copied = match ex {
        Exec::AsyncStd => async_std::io::copy(&mut reader, &mut writer).await,
        _ => futures_lite::io::copy(&mut reader, &mut writer).await,
    };
    if copied.is_ok() {
        let _ = writer.close().await;
    }
}

/// Sends `data` through an echoing stream while reading the echo back, with
/// the executor's own IO traits (tokio's under tokio, futures-io's under
/// the others); returns what came back.
pub async fn echo_through(ex: Exec, stream: Stream, data: &[u8]) -> io::Result<Vec<u8>> {
    if ex == Exec::Tokio {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (mut reader, mut writer) = tokio::io::split(stream);
        let send = async {
            writer.write_all(data).await?;
            writer.shutdown().await
        };
        let receive = async {
            let mut back = Vec::with_capacity(data.len());
            reader.read_to_end(&mut back).await?;
            Ok(back)
        };
        let ((), back) = tokio::try_join!(send, receive)?;
        return Ok(back);
    }
    let (mut reader, mut writer) = futures_lite::io::split(stream);
    let send = async {
        writer.write_all(data).await?;
        writer.close().await
    };
    let receive = async {
        let mut back = Vec::with_capacity(data.len());
        reader.read_to_end(&mut back).await?;
        Ok(back)
    };
    let ((), back) = futures_lite::future::try_zip(send, receive).await?;
    Ok(back)
}

/// Waits until each address can be bound again: the driver that owned the
/// socket is gone.
pub async fn wait_until_ports_are_free(addrs: &[SocketAddr], limit: Duration) {
    let started = std::time::Instant::now();
    while !addrs.iter().all(|a| std::net::UdpSocket::bind(a).is_ok()) {
        assert!(
            started.elapsed() < limit,
            "a driver still holds its socket after {limit:?}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// A rendezvous server on loopback, on a small tokio runtime of its own
/// (so any executor, or none, can use it). Dropped from inside an
/// executor, even tokio's, the runtime shuts down in the background.
pub struct LoopbackRendezvous {
    pub server: srudp_async::RendezvousServer,
    runtime: Option<tokio::runtime::Runtime>,
}

impl LoopbackRendezvous {
    /// A server with key seed `seed` and the default server config.
    pub fn start(seed: u64) -> LoopbackRendezvous {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = {
            let _enter = runtime.enter();
            srudp_async::RendezvousServer::bind(
                v4(),
                config(seed),
                srudp_async::rendezvous::ServerConfig::default(),
                None,
            )
            .unwrap()
        };
        LoopbackRendezvous {
            server,
            runtime: Some(runtime),
        }
    }

    /// A client config for this server, registering under `name`.
    pub fn client(&self, name: Option<&str>) -> srudp_async::rendezvous::ClientConfig {
        let mut c = srudp_async::rendezvous::ClientConfig::new(
            self.server.public_key(),
            self.server.local_addr(),
        );
        c.name = name.map(|n| n.parse().unwrap());
        c
    }
}

impl Drop for LoopbackRendezvous {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
