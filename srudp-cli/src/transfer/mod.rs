//! `srudp send PATH...` and `srudp receive TICKET [--out DIR]`: files and
//! folders over one connection, resumable.
//!
//! On the stream: the sender's [`Manifest`]; the
//! receiver answers, per file in order, how many bytes it already holds
//! (u64, big-endian) and the SHA-256 of them (32); the sender checks that
//! hash against its own file and, per file, sends where it starts (u64:
//! what the receiver holds if the hash matched, else 0) and the rest of
//! the bytes. The receiver writes each file to `NAME.srudp-partial`,
//! renames it once its size and SHA-256 match, answers one byte (1) and
//! finishes. A receiver that stopped halfway (killed, lost its network)
//! runs `receive` again with the same ticket: the sender waits for it.

mod destination;
mod manifest;
mod source_tree;

use std::io::Seek;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use sha2::Digest;
use srudp_tokio::{PathKind, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::{ReceiveArgs, SendArgs};
use crate::endpoint_setup::{announce, connect_ticket, fail_and_linger, linger, Announcement};
use crate::exit_status::ExitStatus;
use crate::failure::Failure;
use crate::progress::Progress;
use crate::reports::stream_path_line;
use destination::{Destination, Held};
use manifest::{Manifest, ManifestError};
use source_tree::{hash_prefix, SourceTree};

const CHUNK: usize = 256 << 10;

fn lost(e: std::io::Error) -> Failure {
    Failure::connection("transfer failed", &e)
}

fn kind(path: PathKind) -> &'static str {
    if path.is_relayed() {
        "relayed"
    } else {
        "direct"
    }
}

fn rate(bytes: u64, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64().max(1e-6);
    format!("in {secs:.2} s ({:.1} MB/s)", bytes as f64 / secs / 1e6)
}

fn files_and_bytes(manifest: &Manifest) -> String {
    let files = manifest.files().count();
    format!(
        "{files} file{}, {} bytes",
        if files == 1 { "" } else { "s" },
        manifest.total_bytes()
    )
}

/// `srudp send PATH... --via RDV`.
pub(crate) async fn send(args: SendArgs) -> Result<(), Failure> {
    let paths = args.paths.clone();
    let tree = tokio::task::spawn_blocking(move || SourceTree::walk(&paths))
        .await
        .map_err(|e| Failure::msg(format!("reading the files failed: {e}")))??;
    let tree = Arc::new(tree);
    eprintln!("offering {}", files_and_bytes(&tree.manifest));
    let endpoint = announce(
        &args.registration.via,
        Announcement {
            key: args.identity.key.as_deref(),
            name: None,
            ticket_file: args.registration.ticket_file.as_deref(),
            bind: args.identity.bind,
        },
    )
    .await?;
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
    let mut receivers = 0u32;
    loop {
        tokio::select! {
            accepted = endpoint.accept() => {
                let (stream, _, _) = accepted?;
                receivers += 1;
                let (n, tree, done_tx) = (receivers, tree.clone(), done_tx.clone());
                eprintln!("receiver {n}: {}", stream_path_line(&stream));
                tokio::spawn(async move {
                    let mut stream = stream;
                    let result = serve_receiver(&mut stream, &tree).await;
                    let _ = done_tx.send((n, stream, result));
                });
            }
            Some((n, stream, result)) = done.recv() => match result {
                Ok(line) => {
                    drop(stream);
                    linger(&endpoint).await;
                    eprintln!("{line}, checksum verified by the receiver");
                    return Ok(());
                }
                Err(e) if e.status() == ExitStatus::PeerClosed => {
                    return Err(fail_and_linger(&endpoint, &stream, e).await);
                }
                Err(e) => {
                    eprintln!("receiver {n}: {e}; waiting for a receiver with the same ticket (it resumes)");
                }
            },
        }
    }
}

/// One receiver: the manifest, its resume points, the bytes it lacks.
async fn serve_receiver(stream: &mut Stream, tree: &SourceTree) -> Result<String, Failure> {
    let started = Instant::now();
    stream
        .write_all(&tree.manifest.encode())
        .await
        .map_err(lost)?;
    let mut starts = Vec::new();
    for ((_, size, _), here) in tree.manifest.files().zip(&tree.files) {
        let have = stream.read_u64().await.map_err(lost)?;
        let mut prefix = [0u8; 32];
        stream.read_exact(&mut prefix).await.map_err(lost)?;
        let start = if have == 0 || have > size {
            0
        } else {
            let here = here.clone();
            let ours = tokio::task::spawn_blocking(move || {
                let mut file = std::fs::File::open(&here)?;
                hash_prefix(&mut file, have)
            })
            .await
            .map_err(|e| Failure::msg(format!("hashing failed: {e}")))?
            .map_err(|e| Failure::msg(format!("cannot read a file to send: {e}")))?;
            if ours == prefix {
                have
            } else {
                0
            }
        };
        starts.push(start);
    }
    let skipped: u64 = starts.iter().sum();
    let mut progress = Progress::new("sending", tree.manifest.total_bytes());
    progress.skip(skipped);
    let mut buf = vec![0u8; CHUNK];
    let total_files = starts.len() as u64;
    for (i, (((path, size, _), here), start)) in tree
        .manifest
        .files()
        .zip(&tree.files)
        .zip(starts)
        .enumerate()
    {
        progress.set_files(i as u64, total_files);
        stream.write_u64(start).await.map_err(lost)?;
        let fail = |e: std::io::Error| Failure::msg(format!("cannot read {}: {e}", here.display()));
        let mut file = std::fs::File::open(here).map_err(fail)?;
        file.seek(std::io::SeekFrom::Start(start)).map_err(fail)?;
        let mut file = tokio::fs::File::from_std(file);
        let mut left = size - start;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = file.read(&mut buf[..want]).await.map_err(fail)?;
            if n == 0 {
                return Err(Failure::msg(format!("{path} shrank while sending")));
            }
            stream.write_all(&buf[..n]).await.map_err(lost)?;
            left -= n as u64;
            progress.add(n as u64);
        }
    }
    stream.shutdown().await.map_err(lost)?;
    progress.finish();
    let mut verdict = Vec::new();
    stream.read_to_end(&mut verdict).await.map_err(lost)?;
    if verdict != [1] {
        return Err(Failure::msg("the receiver did not confirm the transfer"));
    }
    let sent = tree.manifest.total_bytes() - skipped;
    Ok(format!(
        "sent {} ({skipped} already there) {}, {}",
        files_and_bytes(&tree.manifest),
        rate(sent, started),
        kind(stream.path())
    ))
}

/// `srudp receive TICKET [--out DIR]`.
pub(crate) async fn receive(args: ReceiveArgs) -> Result<(), Failure> {
    let (endpoint, mut stream) = connect_ticket(
        &args.ticket,
        args.identity.key.as_deref(),
        args.identity.bind,
    )
    .await?;
    eprintln!("{}", stream_path_line(&stream));
    match receive_tree(&mut stream, &args.out).await {
        Ok(line) => {
            let wire = stream.stats().map_or(0, |s| s.bytes_received);
            drop(stream);
            linger(&endpoint).await;
            eprintln!("{line}, {wire} bytes on the wire");
            Ok(())
        }
        Err(failure) => Err(fail_and_linger(&endpoint, &stream, failure).await),
    }
}

async fn receive_tree(stream: &mut Stream, out: &Path) -> Result<String, Failure> {
    let started = Instant::now();
    let manifest = Manifest::read(stream).await.map_err(|e| match e {
        ManifestError::Io(e) => lost(e),
        other => Failure::msg(other.to_string()),
    })?;
    let dest = Destination::open(out)?;
    let mut held = Vec::new();
    for entry in &manifest.entries {
        match entry {
            manifest::Entry::Folder(path) => {
                dest.make_folder(path.components())?;
            }
            manifest::Entry::File { path, size, sha256 } => {
                held.push(dest.held(path, *size, sha256)?);
            }
        }
    }
    let mut answer = Vec::with_capacity(held.len() * 40);
    for h in &held {
        answer.extend_from_slice(&h.have.to_be_bytes());
        answer.extend_from_slice(&h.prefix_sha256);
    }
    stream.write_all(&answer).await.map_err(lost)?;
    let mut progress = Progress::new("receiving", manifest.total_bytes());
    let total_files = held.len() as u64;
    let mut resumed = 0;
    let mut buf = vec![0u8; CHUNK];
    for (i, ((path, size, sha256), Held { have, complete, .. })) in
        manifest.files().zip(held.iter().copied()).enumerate()
    {
        progress.set_files(i as u64, total_files);
        let start = stream.read_u64().await.map_err(lost)?;
        if start != 0 && start != have {
            return Err(Failure::msg(format!(
                "the sender starts {path} at byte {start}, but we hold {have}"
            )));
        }
        resumed += start;
        progress.skip(start);
        let complete = complete && start == size;
        let Some((file, mut hash, partial, target)) = dest.partial(path, start, complete)? else {
            continue;
        };
        let mut file_out = tokio::fs::File::from_std(
            file.try_clone()
                .map_err(|e| Failure::msg(format!("cannot write {}: {e}", partial.display())))?,
        );
        let disk =
            |e: std::io::Error| Failure::msg(format!("cannot write {}: {e}", partial.display()));
        let mut left = size - start;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = stream.read(&mut buf[..want]).await.map_err(lost)?;
            if n == 0 {
                return Err(Failure::msg(format!(
                    "the sender stopped {left} bytes before the end of {path}"
                )));
            }
            hash.update(&buf[..n]);
            file_out.write_all(&buf[..n]).await.map_err(disk)?;
            left -= n as u64;
            progress.add(n as u64);
        }
        file_out.flush().await.map_err(disk)?;
        if <[u8; 32]>::from(hash.finalize()) != *sha256 {
            let _ = std::fs::remove_file(&partial);
            return Err(Failure::msg(format!(
                "checksum mismatch for {path}: it was not saved"
            )));
        }
        file.sync_all().map_err(disk)?;
        std::fs::rename(&partial, &target)
            .map_err(|e| Failure::msg(format!("cannot move {path} into place: {e}")))?;
    }
    progress.finish();
    // Nothing more may come: the sender finished.
    let mut rest = [0u8; 1];
    if stream.read(&mut rest).await.map_err(lost)? != 0 {
        return Err(Failure::msg("the sender sent more than it announced"));
    }
    stream.write_all(&[1]).await.map_err(lost)?;
    stream.shutdown().await.map_err(lost)?;
    let got = manifest.total_bytes() - resumed;
    Ok(format!(
        "received {} ({resumed} resumed) {}, {}, sha256 ok, into {}",
        files_and_bytes(&manifest),
        rate(got, started),
        kind(stream.path()),
        out.display()
    ))
}
