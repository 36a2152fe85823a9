//! Received datagrams, waiting to be fed to the protocol.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use quinn_udp::RecvMeta;

use super::UdpBatch;
use crate::socket::canonical;

/// Receive buffer size when the kernel may coalesce datagrams: the largest
/// UDP payload (a coalesced buffer never exceeds 64 KiB).
const COALESCED_BUFFER: usize = 1 << 16;
/// Receive buffer size for one datagram: larger than any srudp datagram
/// (1200 bytes, relayed or not), so an oversized one arrives whole or at least
/// longer than srudp's maximum, and the parser rejects it.
const DATAGRAM_BUFFER: usize = 2048;

/// Receive buffers filled by [`UdpBatch::receive`], each holding one
/// datagram or, with receive offload, several from the same source.
///
/// With receive offload each buffer takes 64 KiB (about 2 MiB for 32
/// buffers; the OS maps the pages only once they are written); without,
/// 2 KiB.
#[derive(Debug)]
pub struct Inbox {
    buf: Box<[u8]>,
    buffer_len: usize,
    meta: Box<[RecvMeta]>,
    /// Buffers `0..filled` hold received data.
    filled: usize,
}

impl Inbox {
    /// An empty inbox of `buffers` receive buffers (at least 1, at most as
    /// many as one receive call can fill, `quinn_udp::BATCH_SIZE`), each
    /// large enough for what the kernel may coalesce on `batch`'s socket.
    pub fn new(batch: &UdpBatch, buffers: usize) -> Inbox {
        let buffers = buffers.clamp(1, quinn_udp::BATCH_SIZE);
        let buffer_len = if batch.max_coalesced() > 1 {
            COALESCED_BUFFER
        } else {
            DATAGRAM_BUFFER
        };
        Inbox {
            buf: vec![0u8; buffers * buffer_len].into_boxed_slice(),
            buffer_len,
            meta: vec![RecvMeta::default(); buffers].into_boxed_slice(),
            filled: 0,
        }
    }

    /// Whether every buffer holds received data (more may be waiting in
    /// the socket).
    pub fn is_full(&self) -> bool {
        self.filled == self.meta.len()
    }

    /// Whether nothing was received since the last [`Inbox::clear`].
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Forgets what was received (after feeding it to the protocol).
    pub fn clear(&mut self) {
        self.filled = 0;
    }

    /// Every datagram received, in order of arrival, with its source in the
    /// form the protocol compares (v4-mapped IPv6 made IPv4). A coalesced
    /// buffer is split at its stride (the last datagram may be shorter);
    /// empty datagrams are skipped.
    pub fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> + '_ {
        self.meta[..self.filled]
            .iter()
            .zip(self.buf.chunks(self.buffer_len))
            .flat_map(|(meta, buffer)| {
                let (from, len, stride) = split(meta, buffer.len());
                buffer[..len].chunks(stride).map(move |d| (from, d))
            })
    }

    /// The same datagrams as [`Inbox::datagrams`], writable: for a protocol
    /// that opens packets in place
    /// (`srudp_proto::Endpoint::handle_datagram_in_place`), saving a copy
    /// per datagram. What it writes is gone at the next receive.
    pub fn datagrams_mut(&mut self) -> impl Iterator<Item = (SocketAddr, &mut [u8])> + '_ {
        self.meta[..self.filled]
            .iter()
            .zip(self.buf.chunks_mut(self.buffer_len))
            .flat_map(|(meta, buffer)| {
                let (from, len, stride) = split(meta, buffer.len());
                buffer[..len].chunks_mut(stride).map(move |d| (from, d))
            })
    }

    /// Lets `recv` fill the free buffers (and their metadata); returns how
    /// many it filled.
    pub(super) fn receive_with(
        &mut self,
        recv: impl FnOnce(&mut [IoSliceMut<'_>], &mut [RecvMeta]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let free = self.meta.len() - self.filled;
        if free == 0 {
            return Ok(0);
        }
        let mut buffers = self.buf[self.filled * self.buffer_len..].chunks_mut(self.buffer_len);
        // A fixed-size array on the stack: no allocation per receive.
        let mut slices: [IoSliceMut<'_>; quinn_udp::BATCH_SIZE] =
            std::array::from_fn(|_| IoSliceMut::new(buffers.next().unwrap_or_default()));
        let n = recv(&mut slices[..free], &mut self.meta[self.filled..])?;
        self.filled += n.min(free);
        Ok(n)
    }
}

/// A filled buffer's source, length of contents and the stride at which it
/// splits into datagrams (the whole contents when not coalesced).
fn split(meta: &RecvMeta, buffer_len: usize) -> (SocketAddr, usize, usize) {
    let len = meta.len.min(buffer_len);
    let stride = match meta.stride {
        0 => len.max(1),
        s => s,
    };
    (canonical(meta.addr), len, stride)
}
