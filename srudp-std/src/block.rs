//! Blocking on the shared core's futures, with the timeouts a std user sets.
//!
//! The calling thread parks until the driver thread wakes it (or the
//! timeout passes): no reactor, no timer thread. The driver thread does all
//! the IO; a blocked call only needs to sleep until its stream changes.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::error::Error;

/// Wakes a parked thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    /// This thread's waker, made once: the streams keep the waker they were
    /// last polled with and compare it before cloning it again.
    static WAKER: RefCell<Option<Waker>> = const { RefCell::new(None) };
}

fn this_thread_waker() -> Waker {
    WAKER.with(|w| {
        w.borrow_mut()
            .get_or_insert_with(|| Waker::from(Arc::new(Unpark(thread::current()))))
            .clone()
    })
}

/// Runs `work` to completion on this thread, or gives up after `timeout`
/// with [`Error::WaitTimeout`] (`WouldBlock`). `work` must be cancellation
/// safe: on a timeout it is dropped half-way.
pub(crate) fn block_on<T>(
    timeout: Option<Duration>,
    work: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    // A timeout too far away to represent is no timeout.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let waker = this_thread_waker();
    let mut cx = Context::from_waker(&waker);
    let mut work = pin!(work);
    loop {
        if let Poll::Ready(outcome) = work.as_mut().poll(&mut cx) {
            return outcome;
        }
        // A wake-up may come before we park (then `park` returns at once)
        // or be spurious (then we poll again): either way, no wake is lost.
        match deadline {
            None => thread::park(),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::WaitTimeout.into());
                }
                thread::park_timeout(left);
            }
        }
    }
}
