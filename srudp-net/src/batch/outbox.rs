//! Datagrams taken from the protocol, waiting to be sent.

use std::net::SocketAddr;

use srudp_proto::MAX_UDP_PAYLOAD_SIZE;

/// Room for one datagram: the largest srudp datagram, 1472 bytes (a Data
/// packet on a direct path whose MTU discovery found room, spec §6.9;
/// every other datagram is at most 1200).
pub const MAX_DATAGRAM: usize = MAX_UDP_PAYLOAD_SIZE;

/// A queue of datagrams to send, packed back to back in one buffer so that a
/// run of same-size datagrams to one destination is one contiguous slice: the
/// layout UDP segmentation offload sends in one call.
///
/// Fill it with [`Outbox::free_slot`] then [`Outbox::push`]; send it with
/// [`super::UdpBatch::send`]. Datagrams go out in the order pushed; the
/// outbox empties itself once everything is sent.
#[derive(Debug)]
pub struct Outbox {
    buf: Box<[u8]>,
    queued: Vec<Queued>,
    capacity: usize,
    /// Where the next pushed datagram starts in `buf`.
    end: usize,
    /// `queued[..sent]` are sent (or lost); the first unsent starts at
    /// `sent_offset` in `buf`.
    sent: usize,
    sent_offset: usize,
    /// `queued[..unsegmented_until]` go one per send call: a segmented send
    /// of them failed.
    unsegmented_until: usize,
}

#[derive(Debug, Clone, Copy)]
struct Queued {
    to: SocketAddr,
    len: usize,
    hop_limit: Option<u8>,
}

/// Queued datagrams that one send call can carry.
#[derive(Debug)]
pub(super) struct Run<'a> {
    pub(super) destination: SocketAddr,
    /// The hop limit every datagram of the run goes with (`None`: the
    /// socket's own).
    pub(super) hop_limit: Option<u8>,
    /// The datagrams back to back.
    pub(super) contents: &'a [u8],
    /// The size of each but the last, which may be shorter.
    pub(super) segment_size: usize,
    pub(super) datagrams: usize,
}

impl Outbox {
    /// An empty outbox for up to `capacity` datagrams (at least 1).
    pub fn new(capacity: usize) -> Outbox {
        let capacity = capacity.max(1);
        Outbox {
            buf: vec![0u8; capacity * MAX_DATAGRAM].into_boxed_slice(),
            queued: Vec::with_capacity(capacity),
            capacity,
            end: 0,
            sent: 0,
            sent_offset: 0,
            unsegmented_until: 0,
        }
    }

    /// Room for the next datagram ([`MAX_DATAGRAM`] bytes), or `None` when
    /// the outbox is full. Write the datagram at its start, then
    /// [`Outbox::push`] it.
    pub fn free_slot(&mut self) -> Option<&mut [u8]> {
        if self.is_full() {
            return None;
        }
        Some(&mut self.buf[self.end..self.end + MAX_DATAGRAM])
    }

    /// Queues the `len` bytes just written into [`Outbox::free_slot`] for
    /// `to`. Ignored when there was no free slot; `len` is capped at
    /// [`MAX_DATAGRAM`].
    pub fn push(&mut self, to: SocketAddr, len: usize) {
        self.push_with_hop_limit(to, len, None);
    }

    /// Like [`Outbox::push`], for a datagram that must leave with IP hop
    /// limit `hop_limit` (IPv4 TTL, IPv6 hop limit) when it is `Some`: the
    /// [`Transmit::hop_limit`](srudp_proto::Transmit::hop_limit) of a
    /// hole-punching opening knock.
    pub fn push_with_hop_limit(&mut self, to: SocketAddr, len: usize, hop_limit: Option<u8>) {
        debug_assert!(
            !self.is_full() && len <= MAX_DATAGRAM,
            "push without a free slot"
        );
        if self.is_full() {
            return;
        }
        let len = len.min(MAX_DATAGRAM);
        self.queued.push(Queued { to, len, hop_limit });
        self.end += len;
    }

    /// Datagrams queued and not sent yet.
    pub fn len(&self) -> usize {
        self.queued.len() - self.sent
    }

    /// Whether everything queued has been sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether no further datagram fits (until the queued ones are sent).
    pub fn is_full(&self) -> bool {
        self.queued.len() >= self.capacity
    }

    /// Drops every datagram not sent yet.
    pub fn clear(&mut self) {
        self.queued.clear();
        self.end = 0;
        self.sent = 0;
        self.sent_offset = 0;
        self.unsegmented_until = 0;
    }

    /// The longest run of unsent datagrams one send call can carry: same
    /// destination, same size (the last may be shorter), at most
    /// `max_segments` datagrams and `max_bytes` bytes in all.
    pub(super) fn next_run(&self, max_segments: usize, max_bytes: usize) -> Option<Run<'_>> {
        let first = *self.queued.get(self.sent)?;
        let max_segments = if self.sent < self.unsegmented_until {
            1
        } else {
            max_segments
        };
        let (mut datagrams, mut bytes) = (1, first.len);
        if first.len > 0 {
            for next in &self.queued[self.sent + 1..] {
                if datagrams >= max_segments
                    || next.to != first.to
                    || next.hop_limit != first.hop_limit
                    || next.len > first.len
                    || bytes + next.len > max_bytes
                {
                    break;
                }
                datagrams += 1;
                bytes += next.len;
                if next.len < first.len {
                    break;
                }
            }
        }
        Some(Run {
            destination: first.to,
            hop_limit: first.hop_limit,
            contents: &self.buf[self.sent_offset..self.sent_offset + bytes],
            segment_size: first.len,
            datagrams,
        })
    }

    /// The next `datagrams` unsent datagrams are gone (sent or lost).
    pub(super) fn mark_sent(&mut self, datagrams: usize) {
        let until = (self.sent + datagrams).min(self.queued.len());
        for q in &self.queued[self.sent..until] {
            self.sent_offset += q.len;
        }
        self.sent = until;
        if self.sent == self.queued.len() {
            self.clear();
        }
    }

    /// The next `datagrams` unsent datagrams go one per send call.
    pub(super) fn send_unsegmented(&mut self, datagrams: usize) {
        self.unsegmented_until = self.sent + datagrams;
    }
}
