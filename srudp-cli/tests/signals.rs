//! Issue 19: SIGINT, SIGTERM and SIGHUP to either side of a connection
//! close it with a reason; the other side prints "peer closed the
//! connection: interrupted" and exits 3 within 2 s. The signalled side
//! exits 130.

mod support;

use std::time::Duration;

use support::*;

const WITHIN: Duration = Duration::from_secs(2);

/// The one line the peer prints.
const PEER_LINE: &str = "peer closed the connection: interrupted";

fn connected_pair(dir: &TempDir, via: &str) -> (Running, Lines, Running, Lines) {
    let ticket_file = dir.path("ticket");
    let _ = std::fs::remove_file(&ticket_file);
    let mut listener = spawn(&[
        "listen",
        "--via",
        via,
        "--ticket-file",
        ticket_file.to_str().unwrap(),
    ]);
    let listener_lines = Lines::of(&mut listener);
    let ticket = read_ticket(&ticket_file);
    let mut connector = spawn(&["connect", &ticket]);
    let connector_lines = Lines::of(&mut connector);
    assert!(
        connector_lines.wait_for("path:", WAIT),
        "{}",
        connector_lines.all()
    );
    assert!(
        listener_lines.wait_for("path:", WAIT),
        "{}",
        listener_lines.all()
    );
    (listener, listener_lines, connector, connector_lines)
}

fn assert_told(signalled: &mut Running, peer: &mut Running, peer_lines: &Lines, what: &str) {
    let status = exit_within(peer, WITHIN).unwrap_or_else(|| {
        panic!(
            "{what}: the peer still runs 2 s later: {}",
            peer_lines.all()
        )
    });
    assert_eq!(status.code(), Some(3), "{what}: {}", peer_lines.all());
    assert!(
        peer_lines.wait_for(PEER_LINE, WITHIN),
        "{what}: {}",
        peer_lines.all()
    );
    let status = exit_within(signalled, WITHIN).expect("the signalled side exits");
    assert_eq!(status.code(), Some(130), "{what}");
}

#[test]
fn a_signal_to_either_side_of_a_pipe_tells_the_other_which_exits_within_2_s() {
    let dir = TempDir::new("signals-pipe");
    let (_server, via) = rendezvous();
    for (signal, name) in [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
    ] {
        let (mut listener, listener_lines, mut connector, _connector_lines) =
            connected_pair(&dir, &via);
        connector.signal(signal);
        assert_told(
            &mut connector,
            &mut listener,
            &listener_lines,
            &format!("{name} to connect"),
        );
        let (mut listener, _, mut connector, connector_lines) = connected_pair(&dir, &via);
        listener.signal(signal);
        assert_told(
            &mut listener,
            &mut connector,
            &connector_lines,
            &format!("{name} to listen"),
        );
    }
}

/// A sender and a receiver in the middle of a 1 GiB transfer (a sparse
/// file: quick to make, long enough to be interrupted).
fn transferring(dir: &TempDir, via: &str) -> (Running, Lines, Running, Lines) {
    let source = dir.path("big.bin");
    let file = std::fs::File::create(&source).unwrap();
    file.set_len(1 << 30).unwrap();
    let ticket_file = dir.path("send-ticket");
    let _ = std::fs::remove_file(&ticket_file);
    let mut sender = spawn(&[
        "send",
        source.to_str().unwrap(),
        "--via",
        via,
        "--ticket-file",
        ticket_file.to_str().unwrap(),
    ]);
    let sender_lines = Lines::of(&mut sender);
    let ticket = read_ticket(&ticket_file);
    let out = dir.path("received");
    let mut receiver = spawn(&["receive", &ticket, "--out", out.to_str().unwrap()]);
    let receiver_lines = Lines::of(&mut receiver);
    assert!(
        receiver_lines.wait_for("path:", WAIT),
        "{}",
        receiver_lines.all()
    );
    // Bytes are flowing.
    let partial = out.join("big.bin.srudp-partial");
    let started = std::time::Instant::now();
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) == 0 {
        assert!(started.elapsed() < WAIT, "no bytes arrive");
        std::thread::sleep(Duration::from_millis(5));
    }
    (sender, sender_lines, receiver, receiver_lines)
}

#[test]
fn a_signal_to_either_side_of_a_transfer_tells_the_other_which_exits_within_2_s() {
    let dir = TempDir::new("signals-transfer");
    let (_server, via) = rendezvous();
    let (mut sender, sender_lines, mut receiver, _) = transferring(&dir, &via);
    receiver.signal(libc::SIGINT);
    assert_told(
        &mut receiver,
        &mut sender,
        &sender_lines,
        "SIGINT to receive",
    );
    let (mut sender, _, mut receiver, receiver_lines) = transferring(&dir, &via);
    sender.signal(libc::SIGTERM);
    assert_told(
        &mut sender,
        &mut receiver,
        &receiver_lines,
        "SIGTERM to send",
    );
}
