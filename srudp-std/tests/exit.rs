//! A program that exits with connections open tells its peers at once: the
//! driver thread is stopped by the process-exit hook, which sends what the
//! streams still had queued and a CLOSE for every connection. The other
//! program is this test binary run again as a child process.

use std::io::{ErrorKind, Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use srudp_std::{Endpoint, EndpointConfig, Keypair, PublicKey};

/// The child's instructions: the listener's key and address.
const CHILD: &str = "SRUDP_STD_EXIT_CHILD";

/// In the child: connect, write, and exit the process, the stream dropped
/// (finishing in the background) or still held, as `mode` says.
fn child(spec: &str) -> ! {
    let mut parts = spec.split(' ');
    let (Some(key), Some(addr), Some(mode)) = (parts.next(), parts.next(), parts.next()) else {
        std::process::exit(3)
    };
    let key: PublicKey = key.parse().unwrap();
    let endpoint = Endpoint::bind(
        "127.0.0.1:0",
        EndpointConfig::new(Keypair::generate_from_os()),
    )
    .unwrap();
    let mut stream = endpoint.connect(key, &[addr.parse().unwrap()]).unwrap();
    stream.write_all(b"bye").unwrap();
    if mode == "dropped" {
        drop(stream);
        std::process::exit(0)
    }
    // Held: exits with the stream unfinished (no destructor runs).
    let _held = stream;
    std::process::exit(0)
}

/// Runs this test again as the child, with `mode`, against `listener`.
fn run_child(test: &str, listener: &Endpoint, mode: &str) {
    let spec = format!(
        "{} {} {mode}",
        listener.public_key(),
        listener.local_addr().unwrap()
    );
    let status = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, spec)
        .status()
        .unwrap();
    assert!(status.success(), "the child failed: {status}");
}

fn listener() -> Endpoint {
    // The default idle timeout is 30 s: only the child's CLOSE can end the
    // connection within the few seconds the tests wait.
    Endpoint::bind(
        "127.0.0.1:0",
        EndpointConfig::new(Keypair::generate_from_os()),
    )
    .unwrap()
}

#[test]
fn a_process_that_exits_after_dropping_its_stream_ends_the_peers_stream_at_once() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
    }
    let listener = listener();
    run_child(
        "a_process_that_exits_after_dropping_its_stream_ends_the_peers_stream_at_once",
        &listener,
        "dropped",
    );
    let (mut stream, _, _) = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"bye");
    // And the connection is over: our own finish fails at once instead of
    // waiting for an acknowledgment that cannot come.
    let started = Instant::now();
    let err = stream.close().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the peer's CLOSE ended it"
    );
}

#[test]
fn a_process_that_exits_holding_its_stream_resets_the_peers_stream_at_once() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
    }
    let listener = listener();
    run_child(
        "a_process_that_exits_holding_its_stream_resets_the_peers_stream_at_once",
        &listener,
        "held",
    );
    let (mut stream, _, _) = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let err = stream.read_to_end(&mut got).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert_eq!(
        stream.close_reason(),
        Some(srudp_std::CloseReason::PeerClose {
            code: 0,
            reason: "endpoint closed".into()
        })
    );
}
