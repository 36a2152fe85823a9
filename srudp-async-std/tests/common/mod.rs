//! Shared scaffolding for the loopback tests: the two executors every
//! scenario runs under (smol and async-std), configurations with fixed
//! keys and deterministic payloads (from `srudp-testkit`), an echo server.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use srudp_async_std::{Endpoint, Stream};
pub use srudp_testkit::fixtures::*;

/// Generates, for each scenario `async fn name(ex: Exec)`, one test running
/// it under smol (`smol_executor::name`) and one under async-std
/// (`async_std_executor::name`).
#[allow(unused_macros)]
macro_rules! on_both_executors {
    ($($name:ident),* $(,)?) => {
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
    Smol,
    AsyncStd,
}

/// A spawned task: await it for its output, or cancel it.
pub enum Task<T> {
    Smol(smol::Task<T>),
    AsyncStd(async_std::task::JoinHandle<T>),
}

impl<T> Future for Task<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.get_mut() {
            Task::Smol(t) => Pin::new(t).poll(cx),
            Task::AsyncStd(t) => Pin::new(t).poll(cx),
        }
    }
}

impl<T> Task<T> {
    /// Stops the task (dropping its future) and waits until it is gone.
    pub async fn cancel(self) {
        match self {
            Task::Smol(t) => drop(t.cancel().await),
            Task::AsyncStd(t) => drop(t.cancel().await),
        }
    }
}

impl Exec {
    pub fn block_on<T>(self, f: impl Future<Output = T>) -> T {
        match self {
            Exec::Smol => smol::block_on(f),
            Exec::AsyncStd => async_std::task::block_on(f),
        }
    }

    pub fn spawn<T: Send + 'static>(self, f: impl Future<Output = T> + Send + 'static) -> Task<T> {
        match self {
            Exec::Smol => Task::Smol(smol::spawn(f)),
            Exec::AsyncStd => Task::AsyncStd(async_std::task::spawn(f)),
        }
    }

    pub fn spawn_detached(self, f: impl Future<Output = ()> + Send + 'static) {
        match self {
            Exec::Smol => smol::spawn(f).detach(),
            Exec::AsyncStd => drop(async_std::task::spawn(f)),
        }
    }
}

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

/// Accepts connections forever and echoes each one back until the peer
/// finishes, then finishes too. Under async-std it copies with
/// `async_std::io::copy`, under smol with `futures_lite::io::copy`: the
/// stream serves both ecosystems' IO helpers.
pub fn spawn_echo_server(ex: Exec, endpoint: Endpoint) {
    ex.spawn_detached(async move {
        while let Ok((stream, _, _)) = endpoint.accept().await {
            ex.spawn_detached(async move {
                let (mut reader, mut writer) = futures_lite::io::split(stream);
                let copied = match ex {
                    Exec::Smol => futures_lite::io::copy(&mut reader, &mut writer).await,
                    Exec::AsyncStd => async_std::io::copy(&mut reader, &mut writer).await,
                };
                if copied.is_ok() {
                    let _ = writer.close().await;
                }
            });
        }
    });
}

/// Sends `data` through an echoing stream while reading the echo back;
/// returns what came back.
pub async fn echo_through(stream: Stream, data: &[u8]) -> io::Result<Vec<u8>> {
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
