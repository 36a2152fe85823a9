//! A tokio echo server that shuts down gracefully: the recipe for a
//! long-running srudp service.
//!
//! * `select!` on [`Endpoint::accept`] (cancellation safe) and the shutdown
//!   signal: Ctrl+C, SIGTERM here.
//! * One task per connection in a `JoinSet`; each connection's error is
//!   reported with its srudp cause ([`close_reason`]) and never stops the
//!   server.
//! * On shutdown: refuse new connections, give the ones in progress
//!   [`GRACE`] to finish, close the rest with a code and reason their peers
//!   read, then [`Endpoint::wait_idle`] so every peer has heard the end
//!   before the program exits.
//!
//! ```text
//! cargo run -p srudp-async --features tokio,async-io --example server -- 127.0.0.1:4433
//! echo "hello, srudp" | cargo run -p srudp-async --features tokio,async-io --example echo -- tokio client <KEY> 127.0.0.1:4433
//! ```
//!
//! where `<KEY>` is the key the server printed. The tests run [`serve`]
//! (tests/examples.rs).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use srudp_async::{close_reason, AcceptPolicy, Endpoint, EndpointConfig, Keypair, Stream};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

/// How long connections in progress may take to finish after a shutdown
/// signal before they are closed.
pub const GRACE: Duration = Duration::from_secs(5);

/// The application close code peers read when the grace period ran out.
pub const SHUTDOWN_CODE: u32 = 1;
/// The close reason that comes with [`SHUTDOWN_CODE`].
pub const SHUTDOWN_REASON: &[u8] = b"server shutting down";

/// What a server did, for its log and for the tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// Connections echoed to their end.
    pub finished: usize,
    /// Connections that ended with an error (the peer aborted, timed out…).
    pub failed: usize,
    /// Connections still open when the grace period ran out.
    pub cut: usize,
}

/// Echoes every connection of `endpoint` until `shutdown` completes, then
/// winds down as described in the module docs.
pub async fn serve(endpoint: Endpoint, shutdown: impl Future<Output = ()>) -> io::Result<Served> {
    let mut served = Served::default();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = endpoint.accept() => {
                // An accept error means the endpoint itself is gone.
                let (stream, addr, key) = accepted?;
                eprintln!("{addr}: connected ({})", key.map_or("NK".into(), |k| k.to_string()));
                connections.spawn(async move { (addr, echo(stream).await) });
            }
            Some(done) = connections.join_next() => record(&mut served, done),
        }
    }
    // Shutting down: nobody new gets in; the connections in progress have
    // `GRACE` to finish.
    endpoint.set_accept_policy(AcceptPolicy::RefuseAll);
    let deadline = tokio::time::sleep(GRACE);
    tokio::pin!(deadline);
    while !connections.is_empty() {
        tokio::select! {
            () = &mut deadline => break,
            Some(done) = connections.join_next() => record(&mut served, done),
        }
    }
    served.cut = connections.len();
    // Every peer still connected (cut by the deadline, or accepted by the
    // endpoint but not yet by us) reads this code and reason; connections
    // that finished are over already.
    endpoint.close_with(SHUTDOWN_CODE, SHUTDOWN_REASON);
    connections.shutdown().await;
    // Before exiting: until every peer has heard the end.
    endpoint.wait_idle().await;
    Ok(served)
}

/// Echoes `stream` until the peer finishes, then finishes too.
async fn echo(stream: Stream) -> io::Result<u64> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let bytes = tokio::io::copy(&mut reader, &mut writer).await?;
    writer.shutdown().await?;
    Ok(bytes)
}

fn record(
    served: &mut Served,
    done: Result<(SocketAddr, io::Result<u64>), tokio::task::JoinError>,
) {
    match done {
        Ok((addr, Ok(bytes))) => {
            served.finished += 1;
            eprintln!("{addr}: echoed {bytes} bytes");
        }
        Ok((addr, Err(e))) => {
            served.failed += 1;
            // The io::Error's kind says what happened; its srudp cause, when
            // the connection closed, says why (the peer's code and reason, a
            // timeout…).
            match close_reason(&e) {
                Some(reason) => eprintln!("{addr}: {:?}: {reason}", e.kind()),
                None => eprintln!("{addr}: {e}"),
            }
        }
        Err(e) => {
            served.failed += 1;
            eprintln!("a connection task failed: {e}");
        }
    }
}

/// Ctrl+C, or SIGTERM where there is one.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[allow(dead_code)] // The tests include this file for `serve` alone.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    let Some(addr) = std::env::args().nth(1) else {
        eprintln!("usage: server <bind address>, for example 127.0.0.1:4433");
        return std::process::ExitCode::from(2);
    };
    let addr: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("server: bad address {addr:?}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let endpoint = match Endpoint::bind(addr, EndpointConfig::new(Keypair::generate_from_os())) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("server: cannot bind {addr}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("{}", endpoint.public_key());
    eprintln!("echoing on {} until Ctrl+C", endpoint.local_addr());
    match serve(endpoint, shutdown_signal()).await {
        Ok(served) => {
            eprintln!("stopped: {served:?}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
