//! Driver threads tell their peers when the process exits.
//!
//! A driver that runs on a thread of its own ([`Driver::spawn_thread`]:
//! `Endpoint::bind` outside tokio; [`Endpoint::bind_on_thread`]: every
//! srudp-std endpoint) is not dropped when the program returns from `main`
//! or calls `std::process::exit`: the OS just stops its thread, and its
//! peers would wait for their idle timeout. So the first such thread
//! installs a hook that runs at process exit (`atexit`, on Unix): it tells
//! every driver thread to stop, which drops the driver — sending what its
//! streams still had queued and a CLOSE for every connection (see
//! `Driver`'s `Drop`) — and waits for them, at most [`EXIT_WAIT`].
//!
//! [`Driver::spawn_thread`]: crate::Driver::spawn_thread
//! [`Endpoint::bind_on_thread`]: crate::Endpoint::bind_on_thread

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How long the process's exit waits for its driver threads to have told
/// their peers.
pub(crate) const EXIT_WAIT: Duration = Duration::from_millis(500);

/// The driver threads alive, and whether the process is exiting.
struct DriverThreads {
    exiting: bool,
    next_id: u64,
    /// The waker of each live driver thread, by id.
    live: BTreeMap<u64, Option<Waker>>,
}

static THREADS: Mutex<DriverThreads> = Mutex::new(DriverThreads {
    exiting: false,
    next_id: 0,
    live: BTreeMap::new(),
});
static ENDED: Condvar = Condvar::new();
static INSTALL: Once = Once::new();

fn threads() -> MutexGuard<'static, DriverThreads> {
    // Nothing panics while holding it; a poisoned lock's data is sound.
    THREADS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Set, with `DriverThreads::exiting`, when the process exits: read on every
/// poll of a driver thread without taking the lock.
static EXITING: AtomicBool = AtomicBool::new(false);

/// Runs `driver` on this thread until it ends or the process exits; then
/// drops it (which tells its peers). For the body of a driver thread:
/// `run` polls the driver and the given `exiting` on this thread's own
/// executor until either is ready.
pub(crate) fn run_until_exit<D>(
    driver: D,
    run: impl FnOnce(&mut D, &mut dyn FnMut(&mut Context<'_>) -> Poll<()>),
) {
    INSTALL.call_once(install);
    let id = {
        let mut t = threads();
        let id = t.next_id;
        t.next_id += 1;
        t.live.insert(id, None);
        id
    };
    {
        let mut driver = driver;
        // The waker this thread registered: the executor keeps one, so the
        // lock is taken on the first poll only.
        let mut registered: Option<Waker> = None;
        run(&mut driver, &mut |cx| poll_exiting(id, cx, &mut registered));
        // `driver` is dropped here, before this thread counts as ended.
    }
    threads().live.remove(&id);
    ENDED.notify_all();
}

/// Ready once the process is exiting; otherwise makes sure `cx`'s waker is
/// the one the exit hook wakes.
fn poll_exiting(id: u64, cx: &mut Context<'_>, registered: &mut Option<Waker>) -> Poll<()> {
    if EXITING.load(Ordering::Acquire) {
        return Poll::Ready(());
    }
    if registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        return Poll::Pending;
    }
    let mut t = threads();
    // Checked under the lock too: an exit that began after the load above
    // either sees this waker or is seen here.
    if t.exiting {
        return Poll::Ready(());
    }
    if let Some(waker) = t.live.get_mut(&id) {
        *waker = Some(cx.waker().clone());
        *registered = Some(cx.waker().clone());
    }
    Poll::Pending
}

/// At process exit: stop every driver thread and wait for them, bounded.
extern "C" fn on_process_exit() {
    let deadline = Instant::now() + EXIT_WAIT;
    let mut t = threads();
    t.exiting = true;
    EXITING.store(true, Ordering::Release);
    for waker in t.live.values_mut().filter_map(Option::take) {
        waker.wake();
    }
    while !t.live.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        t = match ENDED.wait_timeout(t, left) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}

#[cfg(unix)]
fn install() {
    // SAFETY: `atexit` only records the function pointer. The function is
    // `extern "C"`, takes nothing, touches only statics that live as long as
    // the process, and cannot unwind: it makes no call that panics (poisoned
    // locks are taken as they are, waking a waker does not panic).
    // Checked by srudp-std's tests/exit.rs: a child process that exits with
    // a connection open, whose peer hears it at once.
    let status = unsafe { libc::atexit(on_process_exit) };
    if status != 0 {
        tracing::warn!(
            "cannot install the exit hook: peers of driver threads will not hear a process exit"
        );
    }
}

#[cfg(not(unix))]
fn install() {
    // No exit hook here: a peer hears a process exit at its idle timeout
    // unless the program waits with `Endpoint::wait_idle`.
}
