//! The receiving half of a connection's byte stream: reassembly of
//! out-of-order frames, flow control and end of stream (spec §6.3–§6.4).

use std::collections::{BTreeMap, VecDeque};

/// Why a read gave no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// No data yet; wait for [`Event::Readable`](crate::Event::Readable).
    #[error("no data available yet")]
    Blocked,
    /// The connection closed before the peer finished its stream: no more data will come.
    #[error("the connection was closed before the stream ended")]
    Closed,
    /// No such connection (never existed or already released).
    #[error("unknown connection handle")]
    UnknownConnection,
}

/// The peer broke a stream rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StreamViolation {
    #[error("data beyond the flow-control limit")]
    FlowControl,
    #[error("data beyond the final size, or the final size changed")]
    FinalSize,
}

#[derive(Debug)]
pub(crate) struct RecvStream {
    /// In-order bytes `[read, contiguous)` ready for the application.
    ready: VecDeque<u8>,
    read: u64,
    contiguous: u64,
    /// Disjoint chunks beyond `contiguous`, keyed by offset.
    pending: BTreeMap<u64, Vec<u8>>,
    final_size: Option<u64>,
    /// The limit we advertised: the peer may send bytes below it.
    max_data: u64,
    window: u64,
}

impl RecvStream {
    pub(crate) fn new(window: u64) -> Self {
        RecvStream {
            ready: VecDeque::new(),
            read: 0,
            contiguous: 0,
            pending: BTreeMap::new(),
            final_size: None,
            max_data: window,
            window,
        }
    }

    /// Takes a STREAM frame. Returns whether new in-order data became available.
    pub(crate) fn insert(
        &mut self,
        offset: u64,
        data: &[u8],
        fin: bool,
    ) -> Result<bool, StreamViolation> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(StreamViolation::FlowControl)?;
        if end > self.max_data {
            return Err(StreamViolation::FlowControl);
        }
        if let Some(final_size) = self.final_size {
            if end > final_size || (fin && end != final_size) {
                return Err(StreamViolation::FinalSize);
            }
        }
        if fin {
            if end < self.contiguous
                || self
                    .pending
                    .last_key_value()
                    .is_some_and(|(k, v)| k + v.len() as u64 > end)
            {
                return Err(StreamViolation::FinalSize);
            }
            self.final_size = Some(end);
        }
        if end <= self.contiguous {
            return Ok(fin && self.is_complete());
        }
        let before = self.contiguous;
        if offset <= self.contiguous {
            let skip = (self.contiguous - offset) as usize;
            self.ready.extend(&data[skip..]);
            self.contiguous = end;
            self.drain_pending();
        } else {
            self.store(offset, data);
        }
        Ok(self.contiguous > before || (fin && self.is_complete()))
    }

    /// Stores the parts of `[offset, offset+len)` not already held.
    fn store(&mut self, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        let mut cursor = offset;
        // Chunks that may overlap: the last one starting at or before `offset`, and those inside.
        let overlapping: Vec<(u64, u64)> = self
            .pending
            .range(..=offset)
            .next_back()
            .into_iter()
            .chain(self.pending.range(offset + 1..end))
            .map(|(&k, v)| (k, k + v.len() as u64))
            .collect();
        for (s, e) in overlapping {
            if e <= cursor {
                continue;
            }
            if s > cursor {
                let piece = &data[(cursor - offset) as usize..(s.min(end) - offset) as usize];
                self.pending.insert(cursor, piece.to_vec());
            }
            cursor = cursor.max(e);
            if cursor >= end {
                return;
            }
        }
        if cursor < end {
            self.pending
                .insert(cursor, data[(cursor - offset) as usize..].to_vec());
        }
    }

    fn drain_pending(&mut self) {
        while let Some(entry) = self.pending.first_entry() {
            let start = *entry.key();
            if start > self.contiguous {
                break;
            }
            let chunk = entry.remove();
            let end = start + chunk.len() as u64;
            if end > self.contiguous {
                let skip = (self.contiguous - start) as usize;
                self.ready.extend(&chunk[skip..]);
                self.contiguous = end;
            }
        }
    }

    /// Copies in-order data into `buf`. `Ok(0)` means end of stream (for a non-empty `buf`).
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        if self.ready.is_empty() {
            return if self.is_complete() {
                Ok(0)
            } else {
                Err(ReadError::Blocked)
            };
        }
        let n = buf.len().min(self.ready.len());
        let (a, b) = self.ready.as_slices();
        let from_a = n.min(a.len());
        buf[..from_a].copy_from_slice(&a[..from_a]);
        buf[from_a..n].copy_from_slice(&b[..n - from_a]);
        self.ready.drain(..n);
        self.read += n as u64;
        if self.ready.is_empty() && self.ready.capacity() > 64 * 1024 {
            self.ready.shrink_to(0);
        }
        Ok(n)
    }

    /// Every byte up to the final size arrived (not necessarily read yet).
    pub(crate) fn is_complete(&self) -> bool {
        self.final_size == Some(self.contiguous)
    }

    /// A new, larger limit to advertise, when the application has read enough
    /// that the peer would soon be blocked (at half the window).
    pub(crate) fn next_max_data(&mut self) -> Option<u64> {
        if self.final_size.is_some() {
            return None;
        }
        let target = self.read + self.window;
        if target - self.max_data >= self.window / 2 {
            self.max_data = target;
            Some(target)
        } else {
            None
        }
    }

    /// The application read everything, end of stream included.
    #[cfg(test)]
    fn is_drained(&self) -> bool {
        self.final_size == Some(self.read)
    }

    /// Bytes held (ready and out of order).
    #[cfg(test)]
    fn buffered(&self) -> u64 {
        self.ready.len() as u64 + self.pending.values().map(|v| v.len() as u64).sum::<u64>()
    }

    pub(crate) fn max_data(&self) -> u64 {
        self.max_data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(s: &mut RecvStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 100];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    #[test]
    fn out_of_order_frames_are_reassembled() {
        let mut s = RecvStream::new(1 << 20);
        assert!(!s.insert(5, b"fgh", false).unwrap());
        assert_eq!(s.read(&mut [0; 8]), Err(ReadError::Blocked));
        assert!(s.insert(0, b"abcde", false).unwrap());
        assert_eq!(read_all(&mut s), b"abcdefgh");
    }

    #[test]
    fn overlapping_and_duplicate_frames_are_stored_once() {
        let mut s = RecvStream::new(1 << 20);
        s.insert(10, b"KLMNO", false).unwrap();
        s.insert(8, b"IJKLMNOPQ", false).unwrap();
        s.insert(12, b"MN", false).unwrap();
        assert_eq!(s.buffered(), 9);
        s.insert(0, b"ABCDEFGHIJ", true).unwrap_err();
        s.insert(0, b"ABCDEFGHIJ", false).unwrap();
        s.insert(17, b"", true).unwrap();
        assert_eq!(read_all(&mut s), b"ABCDEFGHIJKLMNOPQ");
        assert!(s.is_drained());
    }

    #[test]
    fn data_beyond_the_window_is_a_flow_control_violation() {
        let mut s = RecvStream::new(2048);
        assert_eq!(
            s.insert(2048, b"x", false),
            Err(StreamViolation::FlowControl)
        );
        assert_eq!(
            s.insert(u64::MAX - 1, b"xyz", false),
            Err(StreamViolation::FlowControl)
        );
    }

    #[test]
    fn final_size_cannot_change() {
        let mut s = RecvStream::new(4096);
        s.insert(0, b"abc", true).unwrap();
        assert_eq!(s.insert(3, b"d", false), Err(StreamViolation::FinalSize));
        assert_eq!(s.insert(0, b"ab", true), Err(StreamViolation::FinalSize));
        assert_eq!(read_all(&mut s), b"abc");
        assert_eq!(s.read(&mut [0; 4]), Ok(0));
    }

    #[test]
    fn reading_half_the_window_raises_the_limit() {
        let mut s = RecvStream::new(2048);
        s.insert(0, &[0; 1024], false).unwrap();
        assert_eq!(s.next_max_data(), None);
        s.read(&mut [0; 1024]).unwrap();
        assert_eq!(s.next_max_data(), Some(3072));
    }
}
