//! Cross-adapter interoperation on loopback: an endpoint driven by tokio
//! talks to a blocking srudp-std endpoint and to an endpoint driven by
//! async-io (what async-std and smol run on), each side initiating in turn. Both directions carry a few MiB at once, arrive
//! byte-identical, and both sides see the connection end gracefully.
//!
//! The std side runs on plain threads and the async-io side under
//! `async_io::block_on` on a thread of its own (its driver too), as their
//! users would run them; results come back over oneshot channels so that
//! every wait on the tokio side is bounded.

mod common;

use std::future::{poll_fn, Future};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use common::{config, payload, v4, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

const MIB: usize = 1 << 20;
/// Bytes each side sends.
const EACH_WAY: usize = 3 * MIB;
/// Bound of every blocking call and every wait in these tests.
const LIMIT: Duration = Duration::from_secs(30);

/// Sends `out` on a tokio stream while reading to end of stream, finishes,
/// then waits until the connection is closed and checks it closed
/// gracefully (`CloseReason::Finished`: both directions finished and
/// acknowledged).
async fn tokio_side(stream: srudp_async::Stream, out: Vec<u8>, what: &str) -> Vec<u8> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let send = async {
        writer.write_all(&out).await?;
        writer.shutdown().await
    };
    let receive = async {
        let mut received = Vec::with_capacity(out.len());
        reader.read_to_end(&mut received).await?;
        Ok::<_, io::Error>(received)
    };
    let ((), received) = within(LIMIT, &format!("{what}: tokio side transfer"), async {
        tokio::try_join!(send, receive)
    })
    .await
    .unwrap_or_else(|e| panic!("{what}: tokio side transfer failed: {e}"));
    let stream = reader.unsplit(writer);
    let reason = within(LIMIT, &format!("{what}: tokio side close"), async {
        loop {
            if let Some(reason) = stream.close_reason() {
                return reason;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(
        reason,
        srudp_async::CloseReason::Finished,
        "{what}: the tokio side saw a graceful close"
    );
    received
}

/// Sends `out` on a blocking std stream from a second thread while reading
/// to end of stream, then closes; `close` returning `Ok` means the peer
/// acknowledged every byte, and the read ending means the peer finished.
fn std_side(stream: srudp_std::Stream, out: &[u8]) -> io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(LIMIT))?;
    stream.set_write_timeout(Some(LIMIT))?;
    stream.set_close_timeout(LIMIT)?;
    let received = std::thread::scope(|s| {
        let writer = s.spawn(|| -> io::Result<()> {
            for chunk in out.chunks(256 * 1024) {
                stream.send_all(chunk)?;
            }
            stream.shutdown()
        });
        let mut received = Vec::with_capacity(out.len());
        let read = (&stream).read_to_end(&mut received);
        writer.join().expect("std writer panicked")?;
        read.map(|_| received)
    })?;
    stream.close()?;
    Ok(received)
}

/// Sends `out` on an async-std stream while reading to end of stream, in one
/// task (the stream is polled for both directions with the same waker),
/// closes, then checks the connection closed gracefully.
async fn async_std_side(mut stream: srudp_async::Stream, out: &[u8]) -> io::Result<Vec<u8>> {
    use futures_io::{AsyncRead, AsyncWrite};
    let mut received = Vec::with_capacity(out.len());
    let mut buf = vec![0u8; 64 * 1024];
    let (mut sent, mut finished, mut at_end) = (0, false, false);
    poll_fn(|cx| {
        while !finished {
            let mut s = Pin::new(&mut stream);
            let step = if sent < out.len() {
                let end = out.len().min(sent + 64 * 1024);
                s.as_mut()
                    .poll_write(cx, &out[sent..end])
                    .map_ok(|n| sent += n)
            } else {
                s.as_mut().poll_close(cx).map_ok(|()| finished = true)
            };
            match step {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        while !at_end {
            match Pin::new(&mut stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(0)) => at_end = true,
                Poll::Ready(Ok(n)) => received.extend_from_slice(&buf[..n]),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        if finished && at_end {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await?;
    // Both directions are finished; the connection closes once the last
    // acknowledgments are through.
    for _ in 0..(LIMIT.as_millis() / 10) {
        if let Some(reason) = stream.close_reason() {
            return if reason == srudp_async::CloseReason::Finished {
                Ok(received)
            } else {
                Err(io::Error::other(format!(
                    "closed with {reason:?}, not gracefully"
                )))
            };
        }
        async_io::Timer::after(Duration::from_millis(10)).await;
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "the connection never closed",
    ))
}

/// Runs `f` on a thread of its own; the returned future yields its result.
fn on_thread<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> impl Future<Output = T> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap();
    async move { rx.await.expect("the peer's thread panicked") }
}

/// Checks both directions of an exchange: `got` at each side is what the
/// other sent.
#[track_caller]
fn assert_exchanged(
    what: &str,
    at_tokio: &[u8],
    at_peer: &[u8],
    sent_by_tokio: &[u8],
    sent_by_peer: &[u8],
) {
    assert_eq!(
        at_tokio.len(),
        sent_by_peer.len(),
        "{what}: bytes arrived at the tokio side"
    );
    assert!(
        at_tokio == sent_by_peer,
        "{what}: bytes at the tokio side differ"
    );
    assert_eq!(
        at_peer.len(),
        sent_by_tokio.len(),
        "{what}: bytes arrived at the peer"
    );
    assert!(at_peer == sent_by_tokio, "{what}: bytes at the peer differ");
}

/// A std endpoint on its own thread that accepts one connection from
/// `expect_from` and exchanges `out` on it.
fn std_acceptor(
    endpoint: srudp_std::Endpoint,
    expect_from: SocketAddr,
    out: Vec<u8>,
) -> impl Future<Output = io::Result<Vec<u8>>> {
    on_thread("std acceptor", move || {
        let (stream, from, _) = endpoint.accept_timeout(LIMIT)?;
        assert_eq!(from, expect_from, "the std side sees the tokio endpoint");
        std_side(stream, &out)
    })
}

/// A std endpoint on its own thread that opens a connection to `peer` at
/// `addr` and exchanges `out` on it.
fn std_initiator(
    endpoint: srudp_std::Endpoint,
    peer: srudp_std::PublicKey,
    addr: SocketAddr,
    out: Vec<u8>,
) -> impl Future<Output = io::Result<Vec<u8>>> {
    on_thread("std initiator", move || {
        let stream = endpoint.connect(peer, &[addr])?;
        assert_eq!(stream.peer_public_key(), Some(peer));
        std_side(stream, &out)
    })
}

/// An async-std endpoint (driver on its own thread) whose task, run by
/// `async_io::block_on` on another thread, accepts one connection from
/// `expect_from` and exchanges `out` on it.
fn async_std_acceptor(
    endpoint: srudp_async::Endpoint,
    expect_from: SocketAddr,
    out: Vec<u8>,
) -> impl Future<Output = io::Result<Vec<u8>>> {
    on_thread("async-std acceptor", move || {
        async_io::block_on(async {
            let (stream, from, _) = endpoint.accept().await?;
            assert_eq!(
                from, expect_from,
                "the async-std side sees the tokio endpoint"
            );
            async_std_side(stream, &out).await
        })
    })
}

/// Like [`async_std_acceptor`], opening the connection to `peer` at `addr`.
fn async_std_initiator(
    endpoint: srudp_async::Endpoint,
    peer: srudp_async::PublicKey,
    addr: SocketAddr,
    out: Vec<u8>,
) -> impl Future<Output = io::Result<Vec<u8>>> {
    on_thread("async-std initiator", move || {
        async_io::block_on(async {
            let stream = endpoint.connect(peer, &[addr]).await?;
            assert_eq!(stream.peer_public_key(), Some(peer));
            async_std_side(stream, &out).await
        })
    })
}

/// An endpoint driven by async-io's reactor on a thread of its own, as
/// outside tokio (here inside a tokio test, which would otherwise take it).
fn async_io_endpoint(seed: u64) -> srudp_async::Endpoint {
    let (endpoint, driver) = srudp_async::Endpoint::bind_with_driver(v4(), config(seed)).unwrap();
    driver.spawn_thread().unwrap();
    endpoint
}

/// Payloads of one scenario: what the tokio side sends and what its peer sends.
fn payloads(seed: u64) -> (Vec<u8>, Vec<u8>) {
    (payload(seed, EACH_WAY), payload(seed + 1, EACH_WAY))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokio_endpoint_opens_a_connection_to_a_std_endpoint_both_ways_byte_identical_and_closed_gracefully(
) {
    let what = "tokio opens to std";
    let tokio_ep = srudp_async::Endpoint::bind(v4(), config(500)).unwrap();
    let std_ep = srudp_std::Endpoint::bind("127.0.0.1:0", config(501)).unwrap();
    let (from_tokio, from_peer) = payloads(502);
    let (key, addr) = (std_ep.public_key(), std_ep.local_addr().unwrap());
    let peer = std_acceptor(std_ep, tokio_ep.local_addr(), from_peer.clone());

    let stream = within(LIMIT, "connect", tokio_ep.connect(key, &[addr]))
        .await
        .unwrap();
    let at_tokio = tokio_side(stream, from_tokio.clone(), what).await;
    let at_peer = within(LIMIT, what, peer).await.unwrap();
    assert_exchanged(what, &at_tokio, &at_peer, &from_tokio, &from_peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_std_endpoint_opens_a_connection_to_a_tokio_endpoint_both_ways_byte_identical_and_closed_gracefully(
) {
    let what = "std opens to tokio";
    let tokio_ep = srudp_async::Endpoint::bind(v4(), config(510)).unwrap();
    let std_ep = srudp_std::Endpoint::bind("127.0.0.1:0", config(511)).unwrap();
    let (from_tokio, from_peer) = payloads(512);
    let std_addr = std_ep.local_addr().unwrap();
    let peer = std_initiator(
        std_ep,
        tokio_ep.public_key(),
        tokio_ep.local_addr(),
        from_peer.clone(),
    );

    let (stream, from, _) = within(LIMIT, "accept", tokio_ep.accept()).await.unwrap();
    assert_eq!(from, std_addr, "the tokio side sees the std endpoint");
    let at_tokio = tokio_side(stream, from_tokio.clone(), what).await;
    let at_peer = within(LIMIT, what, peer).await.unwrap();
    assert_exchanged(what, &at_tokio, &at_peer, &from_tokio, &from_peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokio_endpoint_opens_a_connection_to_an_async_std_endpoint_both_ways_byte_identical_and_closed_gracefully(
) {
    let what = "tokio opens to async-std";
    let tokio_ep = srudp_async::Endpoint::bind(v4(), config(520)).unwrap();
    let peer_ep = async_io_endpoint(521);
    let (from_tokio, from_peer) = payloads(522);
    let (key, addr) = (peer_ep.public_key(), peer_ep.local_addr());
    let peer = async_std_acceptor(peer_ep, tokio_ep.local_addr(), from_peer.clone());

    let stream = within(LIMIT, "connect", tokio_ep.connect(key, &[addr]))
        .await
        .unwrap();
    let at_tokio = tokio_side(stream, from_tokio.clone(), what).await;
    let at_peer = within(LIMIT, what, peer).await.unwrap();
    assert_exchanged(what, &at_tokio, &at_peer, &from_tokio, &from_peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_std_endpoint_opens_a_connection_to_a_tokio_endpoint_both_ways_byte_identical_and_closed_gracefully(
) {
    let what = "async-std opens to tokio";
    let tokio_ep = srudp_async::Endpoint::bind(v4(), config(530)).unwrap();
    let peer_ep = async_io_endpoint(531);
    let (from_tokio, from_peer) = payloads(532);
    let peer_addr = peer_ep.local_addr();
    let peer = async_std_initiator(
        peer_ep,
        tokio_ep.public_key(),
        tokio_ep.local_addr(),
        from_peer.clone(),
    );

    let (stream, from, _) = within(LIMIT, "accept", tokio_ep.accept()).await.unwrap();
    assert_eq!(
        from, peer_addr,
        "the tokio side sees the async-std endpoint"
    );
    let at_tokio = tokio_side(stream, from_tokio.clone(), what).await;
    let at_peer = within(LIMIT, what, peer).await.unwrap();
    assert_exchanged(what, &at_tokio, &at_peer, &from_tokio, &from_peer);
}
