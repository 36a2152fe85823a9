//! The sending half of a connection's byte stream: buffering, chunking into
//! frames, acknowledgment and retransmission bookkeeping (spec §6.3).

use std::collections::VecDeque;

use crate::range_set::RangeSet;

/// A piece of the stream carried by one STREAM frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct StreamChunk {
    pub(crate) offset: u64,
    pub(crate) len: u16,
    pub(crate) fin: bool,
}

impl StreamChunk {
    pub(crate) fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }
}

/// Most STREAM frames one packet carries: a full 1024-byte frame leaves room
/// for about 130 more bytes, which small retransmitted pieces may split further.
pub(crate) const MAX_CHUNKS_PER_PACKET: usize = 4;

/// The stream pieces of one packet, without allocating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StreamChunks {
    chunks: [StreamChunk; MAX_CHUNKS_PER_PACKET],
    len: u8,
}

impl StreamChunks {
    /// Adds a chunk; returns false (and drops it) when full.
    pub(crate) fn push(&mut self, chunk: StreamChunk) -> bool {
        let Some(slot) = self.chunks.get_mut(usize::from(self.len)) else {
            return false;
        };
        *slot = chunk;
        self.len += 1;
        true
    }

    pub(crate) fn is_full(&self) -> bool {
        usize::from(self.len) == MAX_CHUNKS_PER_PACKET
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = StreamChunk> + '_ {
        self.chunks[..usize::from(self.len)].iter().copied()
    }
}

/// Why a write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The send buffer is full; wait for [`Event::Writable`](crate::Event::Writable).
    #[error("send buffer full")]
    Blocked,
    /// The stream was already finished.
    #[error("the stream was finished: no more writes")]
    Finished,
    /// The connection is closed.
    #[error("the connection is closed")]
    Closed,
    /// No such connection (never existed or already released).
    #[error("unknown connection handle")]
    UnknownConnection,
}

#[derive(Debug)]
pub(crate) struct SendStream {
    /// Bytes `[base, written)`; everything below `base` is acknowledged.
    buf: VecDeque<u8>,
    base: u64,
    written: u64,
    /// Next offset never sent before.
    next_new: u64,
    /// Acknowledged ranges at or above `base`.
    acked: RangeSet,
    /// Unacknowledged ranges to send again.
    lost: RangeSet,
    capacity: u64,
    final_offset: Option<u64>,
    fin_pending: bool,
    fin_acked: bool,
    /// A write was refused or partial: tell the app when room frees up.
    writer_blocked: bool,
}

impl SendStream {
    pub(crate) fn new(capacity: u64) -> Self {
        SendStream {
            buf: VecDeque::new(),
            base: 0,
            written: 0,
            next_new: 0,
            acked: RangeSet::new(),
            lost: RangeSet::new(),
            capacity,
            final_offset: None,
            fin_pending: false,
            fin_acked: false,
            writer_blocked: false,
        }
    }

    /// Buffers as much of `data` as fits; returns how much.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        if self.final_offset.is_some() {
            return Err(WriteError::Finished);
        }
        let room = self.capacity.saturating_sub(self.written - self.base);
        let n = (data.len() as u64).min(room) as usize;
        if n < data.len() {
            self.writer_blocked = true;
        }
        if n == 0 {
            return if data.is_empty() {
                Ok(0)
            } else {
                Err(WriteError::Blocked)
            };
        }
        self.buf.extend(&data[..n]);
        self.written += n as u64;
        Ok(n)
    }

    pub(crate) fn finish(&mut self) -> Result<(), WriteError> {
        if self.final_offset.is_some() {
            return Err(WriteError::Finished);
        }
        self.final_offset = Some(self.written);
        self.fin_pending = true;
        Ok(())
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.final_offset.is_some()
    }

    /// Everything written, including the end of stream, was acknowledged.
    pub(crate) fn is_fully_acked(&self) -> bool {
        self.fin_acked && self.base == self.written
    }

    /// Whether there is something to send (new data up to `flow_limit`, a
    /// retransmission, or the FIN).
    pub(crate) fn has_data(&self, flow_limit: u64) -> bool {
        !self.lost.is_empty()
            || (self.next_new < self.written && self.next_new < flow_limit)
            || (self.fin_pending && self.next_new == self.written)
    }

    /// Whether unsent new data is waiting on the peer's flow-control limit.
    pub(crate) fn flow_blocked(&self, flow_limit: u64) -> bool {
        self.next_new < self.written && self.next_new >= flow_limit
    }

    /// The end of what was written: no frame starts beyond it.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Bytes acknowledged in order from the start of the stream.
    pub(crate) fn acked_prefix(&self) -> u64 {
        self.base
    }

    /// Picks the next chunk to send, at most `max_len` bytes, retransmissions
    /// first. The flag tells whether the chunk is a retransmission.
    pub(crate) fn next_chunk(
        &mut self,
        max_len: usize,
        flow_limit: u64,
    ) -> Option<(StreamChunk, bool)> {
        let max_len = max_len.min(usize::from(u16::MAX)) as u64;
        let first_lost = self.lost.iter().next();
        if let Some(range) = first_lost {
            let end = range.end.min(range.start + max_len);
            self.lost.remove(range.start..end);
            let fin = self.final_offset == Some(end) && self.fin_pending;
            if fin {
                self.fin_pending = false;
            }
            return Some((
                StreamChunk {
                    offset: range.start,
                    len: (end - range.start) as u16,
                    fin,
                },
                true,
            ));
        }
        let limit = self.written.min(flow_limit);
        if self.next_new < limit {
            let end = limit.min(self.next_new + max_len);
            let offset = self.next_new;
            self.next_new = end;
            let fin = self.fin_pending && self.final_offset == Some(end);
            if fin {
                self.fin_pending = false;
            }
            return Some((
                StreamChunk {
                    offset,
                    len: (end - offset) as u16,
                    fin,
                },
                false,
            ));
        }
        if self.fin_pending && self.next_new == self.written {
            self.fin_pending = false;
            return Some((
                StreamChunk {
                    offset: self.written,
                    len: 0,
                    fin: true,
                },
                false,
            ));
        }
        None
    }

    /// Redundant bundling for thin streams (spec §6.3): extends a chunk of new
    /// data `chunk` (just returned by [`next_chunk`](Self::next_chunk)) back to
    /// the lowest unacknowledged offset, when the bytes in between are at most
    /// `limit`, nothing is queued for retransmission, and the whole fits in
    /// `max_len`. A lost packet's bytes then also ride in the next one, which
    /// repairs the loss without waiting for its detection.
    pub(crate) fn bundle(&self, chunk: StreamChunk, max_len: usize, limit: u64) -> StreamChunk {
        let unacked = chunk.offset.saturating_sub(self.base);
        let total = unacked + u64::from(chunk.len);
        if limit == 0
            || unacked == 0
            || unacked > limit
            || total > max_len.min(usize::from(u16::MAX)) as u64
            || !self.lost.is_empty()
            || chunk.end() > self.written
        {
            return chunk;
        }
        StreamChunk {
            offset: self.base,
            len: total as u16,
            fin: chunk.fin,
        }
    }

    /// Copies the bytes of `chunk` into `out` (which is `chunk.len` long).
    pub(crate) fn copy(&self, chunk: StreamChunk, out: &mut [u8]) {
        // Two slice copies (the ring buffer's halves), not a byte loop: this
        // runs for every packet sent and was a fifth of a bulk transfer's
        // instructions.
        let start = (chunk.offset - self.base) as usize;
        let len = usize::from(chunk.len).min(out.len());
        let (a, b) = self.buf.as_slices();
        let from_a = a.len().saturating_sub(start).min(len);
        out[..from_a].copy_from_slice(&a[start.min(a.len())..][..from_a]);
        let b_start = (start + from_a) - a.len().min(start + from_a);
        out[from_a..len].copy_from_slice(&b[b_start..][..len - from_a]);
    }

    /// Whether every byte of `chunk` is still buffered (not yet acknowledged
    /// and dropped), so it can be copied.
    pub(crate) fn holds(&self, chunk: StreamChunk) -> bool {
        chunk.offset >= self.base && chunk.end() <= self.written
    }

    /// A packet carrying `chunk` was acknowledged. Returns true if the writer
    /// was blocked and room was freed.
    pub(crate) fn on_acked(&mut self, chunk: StreamChunk) -> bool {
        if chunk.fin {
            self.fin_acked = true;
            self.fin_pending = false;
        }
        let start = chunk.offset.max(self.base);
        if start >= chunk.end() {
            return false;
        }
        if !self.lost.is_empty() {
            self.lost.remove(start..chunk.end());
        }
        let new_base = if start == self.base && self.acked.is_empty() {
            // In order, nothing acknowledged ahead (bulk transfer without
            // loss): the acknowledged prefix just grows, no range work.
            chunk.end()
        } else {
            self.acked.insert(start..chunk.end());
            let new_base = self.acked.contiguous_prefix_end(self.base);
            self.acked.remove(self.base..new_base);
            new_base
        };
        if new_base > self.base {
            let n = (new_base - self.base) as usize;
            self.buf.drain(..n);
            self.base = new_base;
            if self.buf.is_empty() {
                // Give memory back once the stream is idle.
                self.buf.shrink_to(0);
            }
            if self.writer_blocked {
                self.writer_blocked = false;
                return true;
            }
        }
        false
    }

    /// A packet carrying `chunk` was declared lost: queue what is still unacknowledged.
    pub(crate) fn on_lost(&mut self, chunk: StreamChunk) {
        if chunk.fin && !self.fin_acked {
            self.fin_pending = true;
        }
        let start = chunk.offset.max(self.base);
        if start >= chunk.end() {
            return;
        }
        self.lost.insert(start..chunk.end());
        for acked in self.acked.iter() {
            if acked.start < chunk.end() && acked.end > start {
                self.lost.remove(acked);
            }
        }
    }

    /// Queues for retransmission the first unacknowledged bytes that were
    /// sent (at most `max_len`): on a probe timeout they are the likeliest
    /// to be missing at the peer, and the ones it needs to make progress.
    pub(crate) fn requeue_first_unacked(&mut self, max_len: u64) {
        let end = self.next_new.min(self.base.saturating_add(max_len));
        if end > self.base {
            self.on_lost(StreamChunk {
                offset: self.base,
                len: (end - self.base) as u16,
                fin: false,
            });
        }
    }

    /// The peer closed with NO_ERROR, which it does only after receiving our
    /// whole stream: treat everything as acknowledged.
    pub(crate) fn on_peer_closed_gracefully(&mut self) {
        if self.final_offset == Some(self.written) && self.next_new == self.written {
            self.fin_acked = true;
            self.fin_pending = false;
            self.buf.clear();
            self.buf.shrink_to(0);
            self.base = self.written;
            self.acked = RangeSet::new();
            self.lost = RangeSet::new();
        }
    }
}

/// Idle memory (see `idle.rs`).
impl SendStream {
    /// Nothing buffered: every byte written was acknowledged.
    pub(crate) fn is_idle(&self) -> bool {
        self.buf.is_empty() && self.lost.is_empty()
    }

    pub(crate) fn holds_buffer(&self) -> bool {
        self.buf.capacity() > 0
    }

    /// Frees the buffer and the range sets if they are empty (the next
    /// write allocates again).
    pub(crate) fn release_buffer(&mut self) {
        if self.buf.is_empty() {
            self.buf = VecDeque::new();
        }
        if self.acked.is_empty() {
            self.acked = RangeSet::new();
        }
        if self.lost.is_empty() {
            self.lost = RangeSet::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_limited_by_capacity_and_freed_by_acks() {
        let mut s = SendStream::new(2048);
        assert_eq!(s.write(&[1; 3000]).unwrap(), 2048);
        assert_eq!(s.write(&[1; 10]), Err(WriteError::Blocked));
        let c = s.next_chunk(1024, u64::MAX).unwrap().0;
        assert_eq!(
            c,
            StreamChunk {
                offset: 0,
                len: 1024,
                fin: false
            }
        );
        assert!(s.on_acked(c), "room freed for a blocked writer");
        assert_eq!(s.write(&[2; 2000]).unwrap(), 1024);
    }

    #[test]
    fn acknowledgments_in_any_order_advance_the_acknowledged_prefix() {
        let mut s = SendStream::new(1 << 20);
        s.write(&[0; 5000]).unwrap();
        let c: Vec<StreamChunk> = (0..5)
            .map(|_| s.next_chunk(1000, u64::MAX).unwrap().0)
            .collect();
        s.on_acked(c[0]);
        assert_eq!(s.acked_prefix(), 1000, "in order");
        s.on_acked(c[2]);
        s.on_acked(c[4]);
        assert_eq!(s.acked_prefix(), 1000, "gaps before them");
        s.on_acked(c[1]);
        assert_eq!(s.acked_prefix(), 3000, "the gap filled: up to the next one");
        s.on_acked(c[1]);
        assert_eq!(s.acked_prefix(), 3000, "a duplicate changes nothing");
        s.on_acked(c[3]);
        assert_eq!(s.acked_prefix(), 5000);
    }

    #[test]
    fn lost_chunks_are_resent_before_new_data() {
        let mut s = SendStream::new(1 << 20);
        s.write(&[0; 4096]).unwrap();
        let a = s.next_chunk(1024, u64::MAX).unwrap().0;
        let b = s.next_chunk(1024, u64::MAX).unwrap().0;
        s.on_lost(a);
        s.on_acked(b);
        assert_eq!(s.next_chunk(1024, u64::MAX).unwrap().0, a);
        assert_eq!(s.next_chunk(1024, u64::MAX).unwrap().0.offset, 2048);
    }

    #[test]
    fn flow_control_limit_stops_new_data() {
        let mut s = SendStream::new(1 << 20);
        s.write(&[0; 4096]).unwrap();
        assert_eq!(s.next_chunk(1024, 1500).unwrap().0.len, 1024);
        assert_eq!(s.next_chunk(1024, 1500).unwrap().0.len, 476);
        assert!(s.next_chunk(1024, 1500).is_none());
        assert!(s.flow_blocked(1500));
    }

    #[test]
    fn fin_rides_on_the_last_chunk_and_is_resent_when_lost() {
        let mut s = SendStream::new(1 << 20);
        s.write(b"hello").unwrap();
        s.finish().unwrap();
        assert_eq!(s.write(b"x"), Err(WriteError::Finished));
        let c = s.next_chunk(1024, u64::MAX).unwrap().0;
        assert_eq!(
            c,
            StreamChunk {
                offset: 0,
                len: 5,
                fin: true
            }
        );
        assert!(s.next_chunk(1024, u64::MAX).is_none());
        s.on_lost(c);
        assert_eq!(s.next_chunk(1024, u64::MAX).unwrap().0, c);
        s.on_acked(c);
        assert!(s.is_fully_acked());
    }

    #[test]
    fn bundling_resends_the_unacknowledged_tail_with_new_data() {
        let mut s = SendStream::new(1 << 20);
        s.write(b"aaaabbbb").unwrap();
        let a = s.next_chunk(4, u64::MAX).unwrap().0;
        assert_eq!(s.bundle(a, 1024, 64), a, "nothing unacknowledged before it");
        let b = s.next_chunk(4, u64::MAX).unwrap().0;
        let ab = s.bundle(b, 1024, 64);
        assert_eq!((ab.offset, ab.len), (0, 8));
        // Too much unacknowledged, or no room: unchanged.
        assert_eq!(s.bundle(b, 1024, 3), b);
        assert_eq!(s.bundle(b, 7, 64), b);
        assert_eq!(s.bundle(b, 1024, 0), b, "0 turns it off");
        // Acknowledged bytes are not resent; lost ones wait for their retransmission.
        s.on_acked(a);
        assert_eq!(s.bundle(b, 1024, 64), b);
        s.write(b"cccc").unwrap();
        let c = s.next_chunk(4, u64::MAX).unwrap().0;
        s.on_lost(b);
        assert_eq!(s.bundle(c, 1024, 64), c);
    }

    #[test]
    fn copy_reads_chunks_that_straddle_the_ring_buffer_wrap() {
        let mut s = SendStream::new(4096);
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut written = 0;
        let mut checked = 0;
        // Write, send, check and acknowledge in steps that do not divide
        // the buffer's capacity, so chunks start and end all over the ring.
        for _ in 0..1000 {
            written += s.write(&data[written..]).unwrap();
            let Some((chunk, _)) = s.next_chunk(700, u64::MAX) else {
                break;
            };
            let mut out = vec![0; usize::from(chunk.len)];
            s.copy(chunk, &mut out);
            let at = chunk.offset as usize;
            assert_eq!(out, &data[at..at + out.len()], "chunk at {at}");
            checked += out.len();
            s.on_acked(chunk);
        }
        assert!(checked >= 15_000, "checked {checked} bytes");
    }

    #[test]
    fn copy_reads_the_right_bytes_after_partial_acks() {
        let mut s = SendStream::new(1 << 20);
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        s.write(&data).unwrap();
        let a = s.next_chunk(1000, u64::MAX).unwrap().0;
        let b = s.next_chunk(1000, u64::MAX).unwrap().0;
        s.on_acked(a);
        let mut out = vec![0; 1000];
        s.copy(b, &mut out);
        assert_eq!(out, &data[1000..2000]);
    }
}
