//! Blocking on the shared core's futures, with the timeouts a std user sets.

use std::future::Future;
use std::io;
use std::time::Duration;

use futures_lite::FutureExt;

use crate::error::Error;

/// Runs `work` to completion on this thread, or gives up after `timeout`
/// with [`Error::WaitTimeout`] (`WouldBlock`). `work` must be cancellation
/// safe: on a timeout it is dropped half-way.
pub(crate) fn block_on<T>(
    timeout: Option<Duration>,
    work: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match timeout {
        None => async_io::block_on(work),
        Some(timeout) => async_io::block_on(work.or(async move {
            async_io::Timer::after(timeout).await;
            Err(Error::WaitTimeout.into())
        })),
    }
}
