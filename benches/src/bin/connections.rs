//! Many concurrent connections on one srudp-tokio endpoint over loopback:
//! handshake rate and memory per idle connection.
//!
//! ```text
//! cargo run --release -p srudp-benches --bin connections -- [--connections N] [--clients C] [--handshake-rate R]
//! ```
//!
//! One server endpoint accepts `N` connections (default 10 000) from `C`
//! client endpoints (default 4) in the same process, all on 127.0.0.1. The
//! clients start every connect at once; the endpoint's handshake limits and
//! retransmissions pace them (client handshake timeout raised to 120 s, as
//! the last of 10 000 queued handshakes waits longer than the default 10 s).
//! `--handshake-rate` sets the server's handshake capacity
//! (`EndpointConfig::handshake_rate`, default 1000 per second): beyond it
//! the server answers with cookies and drops initiations, which the
//! clients retransmit.
//!
//! The server endpoint runs alone on its own OS thread, on a
//! current-thread tokio runtime: its driver task (socket IO, timers, the
//! protocol), and the task accepting its streams, all run there, so that
//! thread's CPU time is the server's whole cost. The clients run on a
//! separate multi-threaded runtime.
//!
//! * `server_handshakes_per_cpu_s` — **the goal's figure**: N / the server
//!   thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, user + system, read on
//!   that thread) from the first connect until it accepted the N-th stream
//!   (`server_cpu_s`). The handshakes one core running the server completes
//!   per second of its time; includes every cookie answered and every
//!   retransmitted initiation dropped or answered again.
//! * `handshakes_per_s` — N / wall-clock time from the first connect to the
//!   last stream on both sides; `handshakes_per_cpu_s` — N / process CPU time
//!   (user + system, `getrusage`) over the same span (`cpu_s`). Both sides
//!   of every handshake run in this process, so this charges the server
//!   with the clients' work too (a client's half of a handshake costs about
//!   as much as the server's).
//! * `bytes_per_idle_connection` — from a counting global allocator: bytes
//!   held once every connection is established and has been idle for a
//!   while, minus the bytes held before, divided by 2N (each connection
//!   exists twice: once on the server, once on a client; the application's
//!   `Stream` handles are included); `idle_connection_end_by_block_size`
//!   splits it by allocation size (power-of-two classes), to see what holds it.
//! * `initiations_per_connection` — handshake initiations the clients sent
//!   per connection: above 1 when a slow responder made them retransmit.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;
use srudp_benches::args::Args;
use srudp_benches::counting_alloc::{held_by_size_class, held_bytes, CountingAlloc};
use srudp_tokio::{Endpoint, EndpointConfig, Keypair, TransportConfig};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The whole run's bound.
const LIMIT: Duration = Duration::from_secs(300);
const IDLE_WAIT: Duration = Duration::from_secs(2);

fn cpu_time() -> Duration {
    // SAFETY: `getrusage` writes a `rusage` we own; zeroed is a valid start.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a `rusage`, RUSAGE_SELF is a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU time (user + system) of the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a `timespec` we own; CLOCK_THREAD_CPUTIME_ID
    // is a valid clock on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The server endpoint, running on its own thread (see the crate docs).
struct Server {
    addr: std::net::SocketAddr,
    public_key: srudp_tokio::PublicKey,
    /// Starts the clock on the server thread: send just before the first connect.
    go: tokio::sync::oneshot::Sender<()>,
    /// The server thread's CPU time from `go` to its N-th accepted stream.
    accepted: tokio::sync::oneshot::Receiver<std::io::Result<Duration>>,
    /// Drops the server's streams and endpoint, ending the thread.
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Server {
    fn start(config: EndpointConfig, connections: usize) -> std::io::Result<Server> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (go, go_rx) = tokio::sync::oneshot::channel::<()>();
        let (accepted_tx, accepted) = tokio::sync::oneshot::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("srudp-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(async move {
                    let server = match Endpoint::bind("127.0.0.1:0".parse().unwrap(), config) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok((server.local_addr(), server.public_key())));
                    if go_rx.await.is_err() {
                        return;
                    }
                    let cpu0 = thread_cpu_time();
                    let mut streams = Vec::with_capacity(connections);
                    let mut result = Ok(());
                    while streams.len() < connections {
                        match server.accept().await {
                            Ok((stream, _, _)) => streams.push(stream),
                            Err(e) => {
                                result = Err(e);
                                break;
                            }
                        }
                    }
                    let _ = accepted_tx.send(result.map(|()| thread_cpu_time() - cpu0));
                    // Hold the streams (memory is measured with them) until told.
                    let _ = stop_rx.await;
                    drop(streams);
                });
            })?;
        let (addr, public_key) = ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("server thread ended"))??;
        Ok(Server {
            addr,
            public_key,
            go,
            accepted,
            stop,
            thread,
        })
    }
}

async fn run(
    connections: usize,
    clients: usize,
    handshake_rate: Option<u32>,
) -> std::io::Result<serde_json::Value> {
    // All connects start at once and queue behind each other on a shared
    // machine: give each more than the default 10 s to complete, on both
    // sides (a responder that gave up would never hand the stream over).
    let transport = std::sync::Arc::new(TransportConfig {
        handshake_timeout: Duration::from_secs(120),
        ..TransportConfig::default()
    });
    let mut config = EndpointConfig::new(Keypair::generate_from_os());
    config.max_pending_handshakes = config.max_pending_handshakes.max(connections);
    if let Some(rate) = handshake_rate {
        config.handshake_rate = rate;
    }
    let rate = config.handshake_rate;
    config.transport = transport.clone();
    let server = Server::start(config, connections)?;
    let mut client_endpoints = Vec::new();
    for _ in 0..clients {
        let mut config = EndpointConfig::new(Keypair::generate_from_os());
        config.transport = transport.clone();
        client_endpoints.push(Endpoint::bind("127.0.0.1:0".parse().unwrap(), config)?);
    }
    // Let the runtimes settle so the baseline holds only the endpoints.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let baseline = held_bytes();
    let baseline_classes = held_by_size_class();
    let (cpu0, start) = (cpu_time(), Instant::now());
    let _ = server.go.send(());

    let mut connecting = tokio::task::JoinSet::new();
    for i in 0..connections {
        let c = client_endpoints[i % clients].connect(server.public_key, &[server.addr]);
        connecting.spawn(c);
    }
    let mut client_streams = Vec::with_capacity(connections);
    while let Some(r) = connecting.join_next().await {
        client_streams.push(r.expect("connect task")?);
    }
    let server_cpu = server
        .accepted
        .await
        .map_err(|_| std::io::Error::other("server thread ended"))??;
    let (elapsed, cpu) = (start.elapsed(), cpu_time() - cpu0);
    // Initiations sent per connection: 1 when no initiation had to be
    // retransmitted (a slow responder makes initiators send theirs again).
    let probes: u64 = client_streams
        .iter()
        .filter_map(|s: &srudp_tokio::Stream| s.stats())
        .map(|s| s.handshake_probes_sent)
        .sum();

    tokio::time::sleep(IDLE_WAIT).await;
    let held = held_bytes().saturating_sub(baseline);
    let per_connection = held as f64 / (2 * connections) as f64;
    // What an idle connection end holds, by block size: bytes and blocks
    // per connection end, for each size class that grew.
    let ends = (2 * connections) as f64;
    let by_size: serde_json::Map<String, serde_json::Value> = held_by_size_class()
        .into_iter()
        .filter_map(|(max, bytes, blocks)| {
            let (b0, n0) = baseline_classes
                .iter()
                .find(|c| c.0 == max)
                .map_or((0, 0), |c| (c.1, c.2));
            let (bytes, blocks) = (bytes.saturating_sub(b0), blocks.saturating_sub(n0));
            (bytes as f64 / ends >= 1.0).then(|| {
                let key = format!("<={max}");
                let value = json!({
                    "bytes": (bytes as f64 / ends * 10.0).round() / 10.0,
                    "blocks": (blocks as f64 / ends * 100.0).round() / 100.0,
                });
                (key, value)
            })
        })
        .collect();
    let result = json!({
        "connections": connections,
        "client_endpoints": clients,
        "handshake_rate": rate,
        "handshake_s": elapsed.as_secs_f64(),
        "cpu_s": cpu.as_secs_f64(),
        "server_cpu_s": server_cpu.as_secs_f64(),
        "server_handshakes_per_cpu_s": connections as f64 / server_cpu.as_secs_f64(),
        "handshakes_per_s": connections as f64 / elapsed.as_secs_f64(),
        "handshakes_per_cpu_s": connections as f64 / cpu.as_secs_f64(),
        "initiations_per_connection": probes as f64 / connections as f64,
        "held_bytes": held,
        "bytes_per_idle_connection": per_connection,
        "idle_connection_end_by_block_size": by_size,
    });
    drop(client_streams);
    let _ = server.stop.send(());
    server
        .thread
        .join()
        .map_err(|_| std::io::Error::other("server thread panicked"))?;
    Ok(result)
}

fn main() -> ExitCode {
    let usage = "usage: connections [--connections N] [--clients C] [--handshake-rate R]";
    let args = match Args::parse(
        std::env::args().skip(1),
        &["connections", "clients", "handshake-rate"],
        &[],
    ) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    let (connections, clients, handshake_rate) = match (
        args.number("connections", 10_000usize),
        args.number("clients", 4usize),
        args.number("handshake-rate", 0u32),
    ) {
        (Ok(n), Ok(c), Ok(r)) if n > 0 && c > 0 => (n, c, (r > 0).then_some(r)),
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(async {
        tokio::time::timeout(LIMIT, run(connections, clients, handshake_rate)).await
    }) {
        Ok(Ok(result)) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("connections: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("connections: gave up after {LIMIT:?}");
            ExitCode::FAILURE
        }
    }
}
