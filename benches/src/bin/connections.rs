//! Many concurrent connections on one srudp-tokio endpoint over loopback:
//! handshake rate and memory per idle connection.
//!
//! ```text
//! cargo run --release -p srudp-benches --bin connections -- [--connections N] [--clients C]
//! ```
//!
//! One server endpoint accepts `N` connections (default 10 000) from `C`
//! client endpoints (default 4) in the same process, all on 127.0.0.1. The
//! clients start every connect at once; the endpoint's handshake limits and
//! retransmissions pace them (client handshake timeout raised to 120 s, as
//! the last of 10 000 queued handshakes waits longer than the default 10 s).
//!
//! * `handshakes_per_s` — N / wall-clock time from the first connect to the
//!   last stream on both sides; `handshakes_per_cpu_s` — N / process CPU time
//!   (user + system, `getrusage`) over the same span, i.e. per core used.
//!   Both sides of every handshake run in this process, so this charges the
//!   server with the clients' work too.
//! * `bytes_per_idle_connection` — from a counting global allocator: bytes
//!   held once every connection is established and has been idle for a
//!   while, minus the bytes held before, divided by 2N (each connection
//!   exists twice: once on the server, once on a client; the application's
//!   `Stream` handles are included).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;
use srudp_benches::args::Args;
use srudp_benches::counting_alloc::{held_bytes, CountingAlloc};
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

async fn run(connections: usize, clients: usize) -> std::io::Result<serde_json::Value> {
    // All connects start at once and queue behind each other on a shared
    // machine: give each more than the default 10 s to complete, on both
    // sides (a responder that gave up would never hand the stream over).
    let transport = std::sync::Arc::new(TransportConfig {
        handshake_timeout: Duration::from_secs(120),
        ..TransportConfig::default()
    });
    let mut config = EndpointConfig::new(Keypair::generate_from_os());
    config.max_pending_handshakes = config.max_pending_handshakes.max(connections);
    config.transport = transport.clone();
    let server = Endpoint::bind("127.0.0.1:0".parse().unwrap(), config)?;
    let mut client_endpoints = Vec::new();
    for _ in 0..clients {
        let mut config = EndpointConfig::new(Keypair::generate_from_os());
        config.transport = transport.clone();
        client_endpoints.push(Endpoint::bind("127.0.0.1:0".parse().unwrap(), config)?);
    }
    // Let the runtime settle so the baseline holds only the endpoints.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let baseline = held_bytes();
    let (cpu0, start) = (cpu_time(), Instant::now());

    let accepting = {
        let server = server.clone();
        tokio::spawn(async move {
            let mut streams = Vec::with_capacity(connections);
            while streams.len() < connections {
                let (stream, _, _) = server.accept().await?;
                streams.push(stream);
            }
            Ok::<_, std::io::Error>(streams)
        })
    };
    let mut connecting = tokio::task::JoinSet::new();
    for i in 0..connections {
        let c = client_endpoints[i % clients].connect(server.public_key(), &[server.local_addr()]);
        connecting.spawn(c);
    }
    let mut client_streams = Vec::with_capacity(connections);
    while let Some(r) = connecting.join_next().await {
        client_streams.push(r.expect("connect task")?);
    }
    let server_streams = accepting.await.expect("accept task")?;
    let (elapsed, cpu) = (start.elapsed(), cpu_time() - cpu0);

    tokio::time::sleep(IDLE_WAIT).await;
    let held = held_bytes().saturating_sub(baseline);
    let per_connection = held as f64 / (2 * connections) as f64;
    let result = json!({
        "connections": connections,
        "client_endpoints": clients,
        "handshake_s": elapsed.as_secs_f64(),
        "cpu_s": cpu.as_secs_f64(),
        "handshakes_per_s": connections as f64 / elapsed.as_secs_f64(),
        "handshakes_per_cpu_s": connections as f64 / cpu.as_secs_f64(),
        "held_bytes": held,
        "bytes_per_idle_connection": per_connection,
    });
    drop((client_streams, server_streams));
    Ok(result)
}

fn main() -> ExitCode {
    let usage = "usage: connections [--connections N] [--clients C]";
    let args = match Args::parse(std::env::args().skip(1), &["connections", "clients"], &[]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    let (connections, clients) = match (
        args.number("connections", 10_000usize),
        args.number("clients", 4usize),
    ) {
        (Ok(n), Ok(c)) if n > 0 && c > 0 => (n, c),
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(async { tokio::time::timeout(LIMIT, run(connections, clients)).await }) {
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
