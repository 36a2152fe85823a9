//! Shared scaffolding for srudp-std's tests: blocking endpoints on loopback,
//! an echo server and a checked echo round trip. Seeded configurations,
//! payloads and the impaired path are srudp-testkit's, as for every adapter.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::thread::JoinHandle;
use std::time::Duration;

use srudp_std::{Endpoint, Stream, TransportConfig};
pub use srudp_testkit::fixtures::{bad_path, config, config_with, payload};

pub const V4: &str = "127.0.0.1:0";
pub const V6: &str = "[::1]:0";

pub fn bind(addr: &str, seed: u64) -> Endpoint {
    Endpoint::bind(addr, config(seed)).unwrap()
}

/// Whether the IPv6 loopback can be bound here; prints why a test skips if not.
pub fn ipv6_available(test: &str) -> bool {
    if UdpSocket::bind("[::1]:0").is_ok() {
        true
    } else {
        println!("{test}: skipped, [::1] cannot be bound on this machine");
        false
    }
}

/// Echoes one stream until the peer finishes, then closes gracefully.
pub fn echo(stream: Stream) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = (&stream).read(&mut buf)?;
        if n == 0 {
            break;
        }
        (&stream).write_all(&buf[..n])?;
        total += n as u64;
    }
    stream.close()?;
    Ok(total)
}

/// Accepts `count` connections on `endpoint` and echoes each on its own
/// thread; returns the bytes echoed per connection.
pub fn echo_server(endpoint: Endpoint, count: usize) -> JoinHandle<io::Result<Vec<u64>>> {
    std::thread::spawn(move || {
        let mut workers = Vec::new();
        for _ in 0..count {
            let (stream, _, _) = endpoint.accept()?;
            workers.push(std::thread::spawn(move || echo(stream)));
        }
        workers
            .into_iter()
            .map(|w| w.join().expect("echo thread panicked"))
            .collect()
    })
}

/// Sends `payload` on `stream` from a second thread while reading the echo
/// back; returns what came back (up to the echo's end of stream).
pub fn round_trip(stream: &Stream, payload: &[u8]) -> io::Result<Vec<u8>> {
    std::thread::scope(|s| {
        let writer = s.spawn(|| -> io::Result<()> {
            for chunk in payload.chunks(256 * 1024) {
                stream.send_all(chunk)?;
            }
            stream.shutdown()
        });
        let mut back = Vec::with_capacity(payload.len());
        let read = (&*stream).read_to_end(&mut back);
        writer.join().expect("writer panicked")?;
        read.map(|_| back)
    })
}

/// Asserts two byte strings are equal without printing megabytes.
#[track_caller]
pub fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {}; first difference at {first:?}",
            got.len(),
            want.len()
        );
    }
}

/// A transport for tests that must notice a dead peer quickly.
pub fn short_idle(idle: Duration) -> TransportConfig {
    TransportConfig {
        idle_timeout: idle,
        keepalive_interval: Some(idle / 4),
        handshake_timeout: Duration::from_secs(2),
        ..TransportConfig::default()
    }
}

pub fn addr_of(endpoint: &Endpoint) -> SocketAddr {
    endpoint.local_addr().unwrap()
}
