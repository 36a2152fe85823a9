//! `srudp send` and `srudp receive`: one file over one connection.
//!
//! On the stream: the file name's length (u16, big-endian) and name, the
//! size (u64), the bytes, then the SHA-256 of the bytes (32). The receiver
//! writes to a temporary name beside the target and renames it only after
//! the size and checksum matched; it then answers one byte (1: ok, 0: bad)
//! and finishes, so the sender's summary says whether the file arrived.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};
use srudp_tokio::rendezvous::Ticket;
use srudp_tokio::{PathKind, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{registered_endpoint, resolve_rendezvous, Failure};
use crate::pipe::{announce, connect_within, fail_and_linger, linger};

const CHUNK: usize = 256 << 10;
/// Longest file name accepted from a sender.
const MAX_NAME: usize = 255;

/// Progress on stderr: a bar on a terminal, a line every few seconds
/// otherwise.
pub(crate) struct Progress {
    bar: ProgressBar,
    plain: Option<(String, Instant)>,
    total: u64,
    done: u64,
}

impl Progress {
    pub(crate) fn new(what: &str, total: u64) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(what.to_string());
            Progress {
                bar,
                plain: None,
                total,
                done: 0,
            }
        } else {
            Progress {
                bar: ProgressBar::hidden(),
                plain: Some((what.to_string(), Instant::now())),
                total,
                done: 0,
            }
        }
    }

    pub(crate) fn add(&mut self, n: u64) {
        self.done += n;
        self.bar.inc(n);
        if let Some((what, last)) = &mut self.plain {
            if last.elapsed() >= Duration::from_secs(2) {
                *last = Instant::now();
                eprintln!(
                    "{what}: {} / {} bytes ({}%)",
                    self.done,
                    self.total,
                    self.done * 100 / self.total.max(1)
                );
            }
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn kind(path: PathKind) -> &'static str {
    if path.is_relayed() {
        "relayed"
    } else {
        "direct"
    }
}

fn summary(verb: &str, bytes: u64, started: Instant, path: PathKind) -> String {
    let secs = started.elapsed().as_secs_f64().max(1e-6);
    format!(
        "{verb} {bytes} bytes in {secs:.2} s ({:.1} MB/s), {}",
        bytes as f64 / secs / 1e6,
        kind(path)
    )
}

/// `srudp send FILE --via RDV`.
pub(crate) async fn send(
    file: &Path,
    via: &str,
    key: Option<&Path>,
    ticket_file: Option<&Path>,
    bind: Option<SocketAddr>,
) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::msg(format!("cannot read {}: {e}", file.display()));
    let mut input = tokio::fs::File::open(file).await.map_err(fail)?;
    let size = input.metadata().await.map_err(fail)?.len();
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| n.len() <= MAX_NAME)
        .ok_or_else(|| Failure::msg(format!("{}: unusable file name", file.display())))?
        .to_string();
    let endpoint = announce(via, key, None, ticket_file, bind).await?;
    let (mut stream, _, _) = endpoint.accept().await?;
    // One receiver per ticket: nobody else gets in from now on.
    endpoint.set_accept_policy(srudp_tokio::AcceptPolicy::RefuseAll);
    let path = stream.path();
    eprintln!("{}", crate::common::path_line(path));
    let result = send_file(&mut stream, &mut input, file, &name, size).await;
    let path = stream.path();
    let (verdict, started) = match result {
        Ok(sent) => sent,
        Err(failure) => return Err(fail_and_linger(&endpoint, &stream, failure).await),
    };
    drop(stream);
    linger(&endpoint).await;
    if verdict != [1] {
        return Err(Failure::msg("the receiver reports a checksum mismatch"));
    }
    eprintln!(
        "{}, checksum verified by the receiver",
        summary("sent", size, started, path)
    );
    Ok(())
}

/// Sends the header, the file and its checksum, finishes, and reads the
/// receiver's verdict; returns it and when the bytes started to flow.
async fn send_file(
    stream: &mut Stream,
    input: &mut tokio::fs::File,
    file: &Path,
    name: &str,
    size: u64,
) -> Result<(Vec<u8>, Instant), Failure> {
    let fail = |e: std::io::Error| Failure::msg(format!("cannot read {}: {e}", file.display()));
    let lost = |e: std::io::Error| Failure::msg(format!("transfer failed: {e}"));
    let mut header = Vec::with_capacity(10 + name.len());
    header.extend_from_slice(&(name.len() as u16).to_be_bytes());
    header.extend_from_slice(name.as_bytes());
    header.extend_from_slice(&size.to_be_bytes());
    stream.write_all(&header).await.map_err(lost)?;
    let started = Instant::now();
    let mut progress = Progress::new(&format!("sending {name}"), size);
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    while sent < size {
        let n = input.read(&mut buf).await.map_err(fail)?;
        if n == 0 {
            return Err(Failure::msg(format!(
                "{} shrank while sending",
                file.display()
            )));
        }
        let n = n.min((size - sent) as usize);
        hash.update(&buf[..n]);
        stream.write_all(&buf[..n]).await.map_err(lost)?;
        sent += n as u64;
        progress.add(n as u64);
    }
    stream.write_all(&hash.finalize()).await.map_err(lost)?;
    stream.shutdown().await.map_err(lost)?;
    progress.finish();
    let mut verdict = Vec::new();
    stream.read_to_end(&mut verdict).await.map_err(lost)?;
    Ok((verdict, started))
}

/// `srudp receive TICKET [--out PATH]`.
pub(crate) async fn receive(
    ticket: &str,
    out: Option<PathBuf>,
    key: Option<&Path>,
    bind: Option<SocketAddr>,
) -> Result<(), Failure> {
    let ticket: Ticket = ticket.parse().map_err(|e| Failure::msg(format!("{e}")))?;
    let rdv = resolve_rendezvous(&ticket.rendezvous).await?;
    let endpoint = registered_endpoint(
        &rdv,
        key,
        None,
        crate::common::Admission::holding(&ticket),
        bind,
    )
    .await?;
    let mut stream = connect_within(endpoint.connect_by_key(ticket.peer)).await?;
    eprintln!("{}", crate::common::path_line(stream.path()));
    let result = receive_file(&mut stream, out).await;
    let ok = result.is_ok();
    let _ = stream.write_all(&[u8::from(ok)]).await;
    let _ = stream.shutdown().await;
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
    drop(stream);
    linger(&endpoint).await;
    let line = result?;
    eprintln!("{line}");
    Ok(())
}

async fn receive_file(stream: &mut Stream, out: Option<PathBuf>) -> Result<String, Failure> {
    let lost = |e: std::io::Error| Failure::msg(format!("transfer failed: {e}"));
    let name_len = usize::from(stream.read_u16().await.map_err(lost)?);
    if name_len == 0 || name_len > MAX_NAME {
        return Err(Failure::msg("the sender sent an invalid file name"));
    }
    let mut name = vec![0u8; name_len];
    stream.read_exact(&mut name).await.map_err(lost)?;
    let name = String::from_utf8(name)
        .ok()
        .filter(|n| !n.contains(['/', '\\', '\0']) && n != "." && n != "..")
        .ok_or_else(|| Failure::msg("the sender sent an invalid file name"))?;
    let size = stream.read_u64().await.map_err(lost)?;
    let target = out.unwrap_or_else(|| PathBuf::from(&name));
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = target
        .file_name()
        .ok_or_else(|| Failure::msg(format!("{}: not a file path", target.display())))?;
    let temp = dir.join(format!(".{}.srudp-partial", file_name.to_string_lossy()));
    let result = write_verified(stream, &temp, &name, size).await;
    match result {
        Ok(started_path) => {
            tokio::fs::rename(&temp, &target).await.map_err(|e| {
                Failure::msg(format!("cannot move the file to {}: {e}", target.display()))
            })?;
            let (started, path) = started_path;
            Ok(format!(
                "{}, saved as {}, sha256 ok",
                summary(&format!("received {name}:"), size, started, path),
                target.display()
            ))
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&temp).await;
            Err(e)
        }
    }
}

async fn write_verified(
    stream: &mut Stream,
    temp: &Path,
    name: &str,
    size: u64,
) -> Result<(Instant, PathKind), Failure> {
    let lost = |e: std::io::Error| Failure::msg(format!("transfer failed: {e}"));
    let disk = |e: std::io::Error| Failure::msg(format!("cannot write {}: {e}", temp.display()));
    let mut file = tokio::fs::File::create(temp).await.map_err(disk)?;
    let started = Instant::now();
    let mut progress = Progress::new(&format!("receiving {name}"), size);
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    while got < size {
        let want = (size - got).min(CHUNK as u64) as usize;
        let n = stream.read(&mut buf[..want]).await.map_err(lost)?;
        if n == 0 {
            return Err(Failure::msg(format!(
                "the sender stopped after {got} of {size} bytes"
            )));
        }
        hash.update(&buf[..n]);
        file.write_all(&buf[..n]).await.map_err(disk)?;
        got += n as u64;
        progress.add(n as u64);
    }
    progress.finish();
    let mut expected = [0u8; 32];
    stream.read_exact(&mut expected).await.map_err(lost)?;
    if hash.finalize().as_slice() != expected {
        return Err(Failure::msg("checksum mismatch: the file was not saved"));
    }
    file.sync_all().await.map_err(disk)?;
    Ok((started, stream.path()))
}
