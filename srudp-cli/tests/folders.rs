//! Issue 19: `srudp send PATH...` and `srudp receive TICKET --out DIR` move
//! folders as they are, refuse what a hostile sender announces, and resume.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::*;

fn start_send(dir: &TempDir, via: &str, paths: &[&Path]) -> (Running, Lines, String) {
    let ticket_file = dir.path("ticket");
    let _ = std::fs::remove_file(&ticket_file);
    let mut args: Vec<String> = vec!["send".into()];
    args.extend(paths.iter().map(|p| p.to_str().unwrap().to_string()));
    args.extend([
        "--via".into(),
        via.into(),
        "--ticket-file".into(),
        ticket_file.to_str().unwrap().into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut sender = spawn(&args);
    let lines = Lines::of(&mut sender);
    let ticket = read_ticket(&ticket_file);
    (sender, lines, ticket)
}

/// Every file below `root`, as (relative path, bytes), and every folder.
fn tree(root: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                out.push((rel, None));
                stack.push(path);
            } else {
                out.push((rel, Some(std::fs::read(&path).unwrap())));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn nested_folders_empty_files_non_ascii_names_and_100_mb_arrive_identical() {
    let dir = TempDir::new("folders");
    let (_server, via) = rendezvous();
    let src = dir.path("album");
    std::fs::create_dir_all(src.join("été/日本/深い")).unwrap();
    std::fs::create_dir_all(src.join("empty folder")).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    std::fs::write(src.join("été/notes ü.txt"), payload(1, 1234)).unwrap();
    std::fs::write(src.join("été/日本/深い/big.bin"), payload(2, 100 << 20)).unwrap();
    let single = dir.path("single.txt");
    std::fs::write(&single, payload(3, 99)).unwrap();
    let (mut sender, sender_lines, ticket) = start_send(&dir, &via, &[&src, &single]);
    let out = dir.path("out");
    let mut receiver = spawn(&["receive", &ticket, "--out", out.to_str().unwrap()]);
    let receiver_lines = Lines::of(&mut receiver);
    let status = exit_within(&mut receiver, WAIT).expect("the receiver finishes");
    assert!(status.success(), "{}", receiver_lines.all());
    assert!(
        receiver_lines.wait_for("received 4 files", WAIT),
        "{}",
        receiver_lines.all()
    );
    let status = exit_within(&mut sender, WAIT).expect("the sender finishes");
    assert!(status.success(), "{}", sender_lines.all());
    let (got, sent) = (tree(&out.join("album")), tree(&src));
    let names = |t: &[(String, Option<Vec<u8>>)]| t.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
    assert!(
        got == sent,
        "trees differ: {:?} vs {:?}",
        names(&got),
        names(&sent)
    );
    assert_eq!(
        std::fs::read(out.join("single.txt")).unwrap(),
        payload(3, 99)
    );
}

/// A sender written with the library: registered at `via` with a ticket,
/// it writes `bytes` to whoever connects with the ticket.
fn hostile_sender(via: &str, bytes: Vec<u8>) -> (tokio::runtime::Runtime, String) {
    use srudp_tokio::rendezvous::{ClientConfig, RendezvousAddr, Ticket};
    use srudp_tokio::{AcceptPolicy, Endpoint, EndpointConfig, Keypair, TicketSecret};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let via: RendezvousAddr = via.parse().unwrap();
    let secret = TicketSecret::generate_from_os();
    let mut config = EndpointConfig::new(Keypair::generate_from_os());
    config.accept = AcceptPolicy::Ticket(secret.clone());
    let mut client = ClientConfig::new(via.key(), via.socket_addr().unwrap());
    client.ticket = Some(secret.clone());
    let endpoint = rt
        .block_on(async {
            let e = Endpoint::bind_with_rendezvous("127.0.0.1:0".parse().unwrap(), config, client)?;
            e.wait_registered().await?;
            Ok::<_, std::io::Error>(e)
        })
        .unwrap();
    let ticket = Ticket {
        peer: endpoint.public_key(),
        secret: Some(secret),
        name: None,
        rendezvous: via,
    };
    rt.spawn(async move {
        use tokio::io::AsyncWriteExt;
        let (mut stream, _, _) = endpoint.accept().await.unwrap();
        let _ = stream.write_all(&bytes).await;
        let mut buf = [0u8; 64];
        use tokio::io::AsyncReadExt;
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
    (rt, ticket.to_string())
}

/// A manifest of one file at `components` (the wire format of
/// srudp-cli's transfer/manifest.rs), then its bytes.
fn manifest_of_one_file(components: &[&str]) -> Vec<u8> {
    let mut out = b"srudp-f1".to_vec();
    out.extend_from_slice(&1u32.to_be_bytes());
    out.push(1);
    out.extend_from_slice(&(components.len() as u16).to_be_bytes());
    for c in components {
        out.extend_from_slice(&(c.len() as u16).to_be_bytes());
        out.extend_from_slice(c.as_bytes());
    }
    out.extend_from_slice(&4u64.to_be_bytes());
    out.extend_from_slice(&[0u8; 32]);
    // Where the file starts, and its bytes (never reached).
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(b"evil");
    out
}

#[test]
fn a_hostile_sender_is_refused_with_one_line_and_nothing_is_written_outside_out() {
    let dir = TempDir::new("hostile");
    let (_server, via) = rendezvous();
    let out = dir.path("out");
    std::fs::create_dir_all(&out).unwrap();
    // A link in the destination that points out of the tree.
    let outside = dir.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("link")).unwrap();
    for (components, expected) in [
        (&["..", "x"][..], "a path through \"..\""),
        (&["", "etc", "passwd"], "an empty name (an absolute path?)"),
        (&["/etc/passwd"], "a name with '/' in it"),
        (&["a\0b"], "a name with NUL in it"),
        (&["link", "x"], "is not a folder"),
    ] {
        let (_rt, ticket) = hostile_sender(&via, manifest_of_one_file(components));
        let started = Instant::now();
        let mut receiver = spawn(&["receive", &ticket, "--out", out.to_str().unwrap()]);
        let status = exit_within(&mut receiver, Duration::from_secs(30)).expect("it ends");
        let (_, err) = receiver.wait_for(Duration::from_secs(1)).unwrap();
        assert!(!status.success(), "{components:?}: {err}");
        let last = err.trim_end().lines().last().unwrap_or_default();
        assert!(
            last.starts_with("srudp: error: refused") && last.contains(expected),
            "{components:?}: {err}"
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing outside"
    );
    assert!(!dir.path("x").exists() && !out.join("a\0b".replace('\0', "")).exists());
    let inside: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(inside.len(), 1, "only the link the test made: {inside:?}");
}

/// The "N bytes on the wire" of the receiver's last line.
fn wire_bytes(lines: &str) -> u64 {
    let line = lines
        .lines()
        .find(|l| l.contains("bytes on the wire"))
        .unwrap_or_else(|| panic!("no summary: {lines}"));
    let before = line.split(" bytes on the wire").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_receiver_killed_halfway_resumes_and_moves_less_than_60_percent_of_the_tree() {
    let dir = TempDir::new("resume");
    let (_server, via) = rendezvous();
    let src = dir.path("tree");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let size = 80usize << 20;
    std::fs::write(src.join("sub/a.bin"), payload(4, size)).unwrap();
    std::fs::write(src.join("b.txt"), payload(5, 1000)).unwrap();
    let total = (size + 1000) as u64;
    let (mut sender, sender_lines, ticket) = start_send(&dir, &via, &[&src]);
    let out = dir.path("out");
    let receive = || spawn(&["receive", &ticket, "--out", out.to_str().unwrap()]);
    let mut first = receive();
    let partial = out.join("tree/sub/a.bin.srudp-partial");
    let started = Instant::now();
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < total / 2 {
        assert!(started.elapsed() < WAIT, "the transfer does not progress");
        if first.0.try_wait().unwrap().is_some() {
            panic!("the receiver finished before it could be killed");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    first.signal(libc::SIGKILL);
    let _ = first.0.wait();
    let mut second = receive();
    let lines = Lines::of(&mut second);
    let status = exit_within(&mut second, WAIT).expect("the second receiver finishes");
    assert!(status.success(), "{}", lines.all());
    assert_eq!(
        std::fs::read(out.join("tree/sub/a.bin")).unwrap(),
        payload(4, size)
    );
    let wire = wire_bytes(&lines.all());
    eprintln!(
        "resumed: {wire} bytes on the wire for a {total}-byte tree ({:.1} %)",
        wire as f64 * 100.0 / total as f64
    );
    assert!(
        wire * 100 < total * 60,
        "{wire} bytes on the wire for a {total}-byte tree: {}",
        lines.all()
    );
    let status = exit_within(&mut sender, WAIT).expect("the sender finishes");
    assert!(status.success(), "{}", sender_lines.all());
}
