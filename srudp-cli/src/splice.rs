//! One TCP connection and one srudp stream joined both ways, each
//! direction half-closed on its own: a TCP FIN finishes our srudp
//! direction, the peer finishing its srudp direction sends a TCP FIN.

use std::io;

use srudp_tokio::Stream;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::endpoint_setup::FAILURE_CODE;
use crate::failure::Failure;

/// Bytes moved by a splice: from TCP to the srudp peer and back.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Moved {
    pub(crate) to_peer: u64,
    pub(crate) from_peer: u64,
}

/// Which side of the splice failed.
enum Broken {
    Tcp(io::Error),
    Srudp(io::Error),
}

/// Pipes `tcp` and `stream` until both directions are finished (and ours
/// acknowledged by the peer). A TCP error aborts the srudp connection with
/// the reason; an srudp error (the peer aborted, timed out) drops the TCP
/// connection. Returns the stream so its endpoint can linger.
pub(crate) async fn splice(stream: Stream, tcp: TcpStream) -> (Stream, Result<Moved, Failure>) {
    let (mut tcp_in, mut tcp_out) = tcp.into_split();
    let (mut from_peer, mut to_peer) = tokio::io::split(stream);
    let up = async {
        let n = tokio::io::copy(&mut tcp_in, &mut to_peer)
            .await
            .map_err(classify)?;
        // TCP FIN: finish our direction (returns once acknowledged).
        to_peer.shutdown().await.map_err(Broken::Srudp)?;
        Ok::<u64, Broken>(n)
    };
    let down = async {
        let n = tokio::io::copy(&mut from_peer, &mut tcp_out)
            .await
            .map_err(classify)?;
        // The peer finished: a FIN toward the TCP side.
        tcp_out.shutdown().await.map_err(Broken::Tcp)?;
        Ok::<u64, Broken>(n)
    };
    let result = tokio::try_join!(up, down);
    let stream = from_peer.unsplit(to_peer);
    let result = match result {
        Ok((to_peer, from_peer)) => Ok(Moved { to_peer, from_peer }),
        Err(Broken::Srudp(e)) => Err(Failure::connection("connection failed", &e)),
        Err(Broken::Tcp(e)) => {
            let failure = Failure::msg(format!("the TCP connection failed: {e}"));
            if stream.close_reason().is_none() {
                stream.abort(FAILURE_CODE, failure.to_string().as_bytes());
            }
            Err(failure)
        }
    };
    (stream, result)
}

/// `tokio::io::copy` does not say which side failed: srudp streams fail
/// with a [`StreamError`](srudp_tokio::StreamError) inside, TCP never does.
fn classify(e: io::Error) -> Broken {
    if e.get_ref()
        .is_some_and(|inner| inner.is::<srudp_tokio::StreamError>())
    {
        Broken::Srudp(e)
    } else {
        Broken::Tcp(e)
    }
}
