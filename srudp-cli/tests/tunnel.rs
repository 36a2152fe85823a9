//! Issue 19: `srudp expose` and `srudp forward` carry TCP both ways with
//! half-close (a TCP FIN finishes the srudp direction and back), many
//! connections at once, and `--allow` refuses other keys.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use support::*;

/// A TCP service that reads until the client's FIN, then answers the bytes
/// reversed and closes: it only answers if the FIN came through.
fn reversing_service() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in listener.incoming().take(16) {
            let Ok(mut conn) = conn else { continue };
            thread::spawn(move || {
                let mut got = Vec::new();
                if conn.read_to_end(&mut got).is_ok() {
                    got.reverse();
                    let _ = conn.write_all(&got);
                }
            });
        }
    });
    port
}

fn expose(dir: &TempDir, via: &str, port: u16, extra: &[&str]) -> (Running, Lines, String) {
    let ticket_file = dir.path("ticket");
    let _ = std::fs::remove_file(&ticket_file);
    let target = format!("tcp://127.0.0.1:{port}");
    let mut args = vec![
        "expose",
        &target,
        "--via",
        via,
        "--ticket-file",
        ticket_file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut exposer = spawn(&args);
    let lines = Lines::of(&mut exposer);
    let ticket = read_ticket(&ticket_file);
    (exposer, lines, ticket)
}

fn forward(ticket: &str, extra: &[&str]) -> (Running, Lines, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["forward", "--listen", &listen, ticket];
    args.extend_from_slice(extra);
    let mut forwarder = spawn(&args);
    let lines = Lines::of(&mut forwarder);
    assert!(lines.wait_for("forwarding", WAIT), "{}", lines.all());
    (forwarder, lines, port)
}

/// Sends `data`, half-closes, reads the answer to the end.
fn exchange(port: u16, data: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.write_all(data).unwrap();
    tcp.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).unwrap();
    answer
}

#[test]
fn half_close_goes_both_ways_for_four_concurrent_connections() {
    let dir = TempDir::new("tunnel");
    let (_server, via) = rendezvous();
    let (_exposer, expose_lines, ticket) = expose(&dir, &via, reversing_service(), &[]);
    let (_forwarder, forward_lines, port) = forward(&ticket, &[]);
    let clients: Vec<_> = (0..4u64)
        .map(|i| {
            thread::spawn(move || {
                let data = payload(i, 1 << 20);
                let mut expected = data.clone();
                expected.reverse();
                assert!(
                    exchange(port, &data) == expected,
                    "connection {i}: reversed bytes"
                );
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    for n in 1..=4 {
        assert!(
            expose_lines.wait_for(
                &format!("connection {n} closed: 1048576 bytes"),
                Duration::from_secs(5)
            ),
            "{}",
            expose_lines.all()
        );
    }
    assert!(
        !forward_lines.all().contains("error"),
        "{}",
        forward_lines.all()
    );
}

#[test]
fn a_key_not_in_allow_is_refused_even_with_the_ticket() {
    let dir = TempDir::new("allow");
    let (_server, via) = rendezvous();
    let key = dir.path("friend.key");
    let out = srudp()
        .args(["keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    let friend = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let (_exposer, expose_lines, ticket) =
        expose(&dir, &via, reversing_service(), &["--allow", &friend]);
    let (_stranger, _, port) = forward(&ticket, &[]);
    assert_eq!(
        exchange(port, b"let me in"),
        b"",
        "the stranger gets nothing"
    );
    assert!(
        expose_lines.wait_for("refused (not in --allow)", WAIT),
        "{}",
        expose_lines.all()
    );
    let (_friend, _, port) = forward(&ticket, &["--key", key.to_str().unwrap()]);
    assert_eq!(exchange(port, b"friend"), b"dneirf");
}
