//! The receiving half of a connection's byte stream: reassembly of
//! out-of-order frames, flow control with an auto-tuned window, and end of
//! stream (spec §6.3–§6.4).
//!
//! The receiver holds at most one window of bytes beyond what the
//! application has read (ready and out of order together), because the
//! peer may not send beyond `read + window`. The window starts at the
//! configured initial size and grows, never beyond the configured cap, by
//! two rules applied when the limit is raised:
//!
//! - it doubles each time the application consumes half of it in less than
//!   two round trips: then the window, not the path, limits the transfer;
//! - it is at least twice what the peer needs beyond the bytes read: the
//!   bytes the application drained over the last round trip (the data in
//!   flight at that rate) plus the largest span that holes pinned beyond
//!   the first missing byte since the last raise. Under loss, data beyond a
//!   hole waits in the reassembly buffer for a round trip or more, and it
//!   counts against the window while the application cannot read it; the
//!   first rule does not see this, because reads stall behind the hole and
//!   then come in bursts. Twice, because the limit is raised only once half
//!   a window was read, so the peer may have as little as half of it.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

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

/// Bookkeeping bytes charged against `max_buffered_bytes` for each
/// out-of-order fragment held: its map entry and allocation cost memory
/// beyond the data, and an attacker sending 1-byte fragments would otherwise
/// make the receiver hold many times the window.
pub const FRAGMENT_OVERHEAD: u64 = 64;

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
    /// Data bytes held in `pending`.
    pending_bytes: u64,
    final_size: Option<u64>,
    /// The limit we advertised: the peer may send bytes below it.
    max_data: u64,
    window: u64,
    max_window: u64,
    /// When we last raised the limit.
    last_update: Option<Instant>,
    /// `read` when we last raised the limit.
    read_at_update: u64,
    /// The largest span `[contiguous, end of the last fragment)` seen since
    /// the last raise: bytes of the window that holes kept from the application.
    pinned_peak: u64,
    /// Bytes received that we already had.
    duplicate: u64,
}

impl RecvStream {
    /// A stream created at `now` whose window starts at `window` and may
    /// grow to `max_window`.
    pub(crate) fn new(now: Instant, window: u64, max_window: u64) -> Self {
        RecvStream {
            ready: VecDeque::new(),
            read: 0,
            contiguous: 0,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            final_size: None,
            max_data: window,
            window,
            max_window: max_window.max(window),
            // The initial window counts as advertised at creation.
            last_update: Some(now),
            read_at_update: 0,
            pinned_peak: 0,
            duplicate: 0,
        }
    }

    /// Whether the out-of-order parts of these STREAM frames (`(offset, len)`)
    /// fit the resource limits (spec §6.3): none may end more than
    /// `max_reorder` bytes beyond the first missing byte, and the memory held
    /// ([`buffered_bytes`](Self::buffered_bytes)) plus theirs must stay within
    /// `max_buffered`. Data that starts at or before the first missing byte
    /// is always admitted, so the stream can always make progress — also a
    /// frame that continues, in the same packet, in-order data an earlier
    /// frame of it brings (a full packet carries two frames back to back).
    /// Frames that break flow control or the final size are left to
    /// `insert`, which reports the violation.
    pub(crate) fn admits(
        &self,
        frames: impl Iterator<Item = (u64, u64)>,
        max_reorder: u64,
        max_buffered: u64,
    ) -> bool {
        let mut added = 0u64;
        // The first missing byte once the in-order frames before are inserted.
        let mut contiguous = self.contiguous;
        for (offset, len) in frames {
            if offset <= contiguous {
                contiguous = contiguous.max(offset.saturating_add(len));
                continue;
            }
            let end = offset.saturating_add(len);
            if end > self.max_data || self.final_size.is_some_and(|f| end > f) {
                continue; // a protocol violation, which `insert` reports
            }
            if end - self.contiguous > max_reorder {
                return false;
            }
            self.for_each_missing(offset, end, |start, end| {
                added = added.saturating_add(end - start + FRAGMENT_OVERHEAD);
            });
        }
        added == 0 || self.buffered_bytes().saturating_add(added) <= max_buffered
    }

    /// Memory held, as counted against `max_buffered_bytes`: unread bytes,
    /// out-of-order bytes, and [`FRAGMENT_OVERHEAD`] per out-of-order fragment.
    pub(crate) fn buffered_bytes(&self) -> u64 {
        self.ready.len() as u64 + self.pending_bytes + FRAGMENT_OVERHEAD * self.pending.len() as u64
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
            self.duplicate += data.len() as u64;
            return Ok(fin && self.is_complete());
        }
        let before = self.contiguous;
        let held_before = self.contiguous + self.pending_bytes;
        self.insert_new(offset, data);
        self.pinned_peak = self.pinned_peak.max(self.pinned());
        let held_after = self.contiguous + self.pending_bytes;
        self.duplicate += data.len() as u64 - (held_after - held_before);
        Ok(self.contiguous > before || (fin && self.is_complete()))
    }

    /// Stores `data` at `offset`, whose end lies beyond `contiguous`.
    fn insert_new(&mut self, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        if offset <= self.contiguous {
            let skip = (self.contiguous - offset) as usize;
            self.ready.extend(&data[skip..]);
            self.contiguous = end;
            self.drain_pending();
        } else {
            self.store(offset, data);
        }
    }

    /// Stores the parts of `[offset, offset+len)` not already held.
    fn store(&mut self, offset: u64, data: &[u8]) {
        for (start, end) in self.missing(offset, offset + data.len() as u64) {
            let piece = &data[(start - offset) as usize..(end - offset) as usize];
            self.pending_bytes += piece.len() as u64;
            self.pending.insert(start, piece.to_vec());
        }
    }

    /// The pieces of `[offset, end)` (beyond `contiguous`) not held yet, in
    /// order: what storing that range would add, one fragment each.
    fn missing(&self, offset: u64, end: u64) -> Vec<(u64, u64)> {
        let mut pieces = Vec::new();
        self.for_each_missing(offset, end, |s, e| pieces.push((s, e)));
        pieces
    }

    /// Calls `f` for each piece [`missing`](Self::missing) would return,
    /// without allocating (admission runs for every packet).
    fn for_each_missing(&self, offset: u64, end: u64, mut f: impl FnMut(u64, u64)) {
        let mut cursor = offset.max(self.contiguous);
        if cursor >= end {
            // Nothing to add (an empty frame, say); also keeps the map range
            // below well formed.
            return;
        }
        // Chunks that may overlap: the last one starting at or before `cursor`, and those inside.
        let overlapping = self
            .pending
            .range(..=cursor)
            .next_back()
            .into_iter()
            .chain(self.pending.range(cursor.saturating_add(1)..end))
            .map(|(&k, v)| (k, k + v.len() as u64));
        for (s, e) in overlapping {
            if cursor >= end {
                break;
            }
            if e <= cursor {
                continue;
            }
            if s > cursor {
                f(cursor, s.min(end));
            }
            cursor = cursor.max(e);
        }
        if cursor < end {
            f(cursor, end);
        }
    }

    fn drain_pending(&mut self) {
        while let Some(entry) = self.pending.first_entry() {
            let start = *entry.key();
            if start > self.contiguous {
                break;
            }
            let chunk = entry.remove();
            self.pending_bytes -= chunk.len() as u64;
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
        // The emptied buffer keeps its capacity: a transfer that the
        // application reads as fast as it arrives would otherwise free and
        // grow it again on every read (copying it each time it doubles).
        // A quiet connection gives it back (`idle.rs`).
        Ok(n)
    }

    /// Every byte up to the final size arrived (not necessarily read yet).
    pub(crate) fn is_complete(&self) -> bool {
        self.final_size == Some(self.contiguous)
    }

    /// A new, larger limit to advertise, when the application has read enough
    /// that less than half a window remains for the peer. Grows the window
    /// first (up to the cap; see the module documentation): doubles it if
    /// the previous raise was less than two round trips ago, and raises it
    /// to twice the bytes drained per round trip plus the span holes pinned.
    pub(crate) fn next_max_data(&mut self, now: Instant, srtt: Duration) -> Option<u64> {
        if self.final_size.is_some() {
            return None;
        }
        let target = self.read + self.window;
        if target.saturating_sub(self.max_data) < self.window / 2 {
            return None;
        }
        let since = self
            .last_update
            .map(|last| now.saturating_duration_since(last));
        if since.is_some_and(|since| since < srtt * 2) {
            self.window = self.window.saturating_mul(2).min(self.max_window);
        }
        let needed = self
            .drained_per_round_trip(since, srtt)
            .saturating_add(self.pinned_peak)
            .saturating_mul(2);
        self.window = self.window.max(needed.min(self.max_window));
        self.last_update = Some(now);
        self.read_at_update = self.read;
        self.pinned_peak = self.pinned();
        self.max_data = self.max_data.max(self.read + self.window);
        Some(self.max_data)
    }

    /// Bytes the application read since the last raise, scaled to one round
    /// trip: the drain rate times `srtt`, measured over at least `srtt` so a
    /// burst of reads after a filled hole does not count as a faster rate.
    fn drained_per_round_trip(&self, since: Option<Duration>, srtt: Duration) -> u64 {
        let drained = self.read - self.read_at_update;
        let Some(since) = since else {
            return 0;
        };
        let over = since.max(srtt);
        if over.is_zero() {
            return drained;
        }
        (drained as u128 * srtt.as_nanos() / over.as_nanos()) as u64
    }

    /// The bytes of the window beyond the first missing byte, up to the end
    /// of the last out-of-order fragment: held, or still to be repaired.
    fn pinned(&self) -> u64 {
        self.pending.last_key_value().map_or(0, |(&start, chunk)| {
            start + chunk.len() as u64 - self.contiguous
        })
    }

    /// The current window.
    pub(crate) fn window(&self) -> u64 {
        self.window
    }

    /// Bytes received in order so far.
    pub(crate) fn received(&self) -> u64 {
        self.contiguous
    }

    /// Bytes received that had arrived before.
    pub(crate) fn duplicate_bytes(&self) -> u64 {
        self.duplicate
    }

    /// The application read everything, end of stream included.
    #[cfg(test)]
    fn is_drained(&self) -> bool {
        self.final_size == Some(self.read)
    }

    /// Data bytes held (ready and out of order).
    #[cfg(test)]
    fn buffered(&self) -> u64 {
        let held = self.pending.values().map(|v| v.len() as u64).sum::<u64>();
        assert_eq!(held, self.pending_bytes);
        self.ready.len() as u64 + held
    }

    pub(crate) fn max_data(&self) -> u64 {
        self.max_data
    }

    /// The unread in-order bytes, without consuming them.
    #[cfg(test)]
    pub(crate) fn clone_ready(&self) -> Vec<u8> {
        self.ready.iter().copied().collect()
    }

    /// Panics if the stream holds more than its limits allow.
    #[cfg(any(test, fuzzing, feature = "test-hooks"))]
    pub(crate) fn assert_invariants(&self, config: &crate::config::TransportConfig) {
        let held = self.pending.values().map(|v| v.len() as u64).sum::<u64>();
        assert_eq!(held, self.pending_bytes, "pending byte count out of step");
        assert_eq!(self.read + self.ready.len() as u64, self.contiguous);
        assert!(
            self.contiguous + held <= self.max_data,
            "more bytes held than the flow-control window"
        );
        assert!(
            held + FRAGMENT_OVERHEAD * self.pending.len() as u64 <= config.max_buffered_bytes,
            "out-of-order data beyond max_buffered_bytes"
        );
        let mut last_end = self.contiguous;
        for (&start, chunk) in &self.pending {
            assert!(
                start > self.contiguous && start >= last_end,
                "fragments overlap or lie below the contiguous prefix"
            );
            assert!(!chunk.is_empty(), "empty fragment");
            assert!(
                start + chunk.len() as u64 <= self.contiguous + config.max_reorder_distance,
                "fragment beyond max_reorder_distance"
            );
            last_end = start + chunk.len() as u64;
        }
    }
}

/// Idle memory (see `idle.rs`).
impl RecvStream {
    /// Nothing buffered: every byte received was read.
    pub(crate) fn is_idle(&self) -> bool {
        self.ready.is_empty() && self.pending.is_empty()
    }

    pub(crate) fn holds_buffer(&self) -> bool {
        self.ready.capacity() > 0
    }

    /// Frees the buffers if they are empty (the next data allocates again).
    pub(crate) fn release_buffer(&mut self) {
        if self.ready.is_empty() {
            self.ready = VecDeque::new();
        }
        if self.pending.is_empty() {
            self.pending = BTreeMap::new();
        }
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
        let mut s = RecvStream::new(Instant::now(), 1 << 20, 1 << 20);
        assert!(!s.insert(5, b"fgh", false).unwrap());
        assert_eq!(s.read(&mut [0; 8]), Err(ReadError::Blocked));
        assert!(s.insert(0, b"abcde", false).unwrap());
        assert_eq!(read_all(&mut s), b"abcdefgh");
    }

    #[test]
    fn overlapping_and_duplicate_frames_are_stored_once() {
        let mut s = RecvStream::new(Instant::now(), 1 << 20, 1 << 20);
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
        let mut s = RecvStream::new(Instant::now(), 2048, 2048);
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
        let mut s = RecvStream::new(Instant::now(), 4096, 4096);
        s.insert(0, b"abc", true).unwrap();
        assert_eq!(s.insert(3, b"d", false), Err(StreamViolation::FinalSize));
        assert_eq!(s.insert(0, b"ab", true), Err(StreamViolation::FinalSize));
        assert_eq!(read_all(&mut s), b"abc");
        assert_eq!(s.read(&mut [0; 4]), Ok(0));
    }

    #[test]
    fn reading_half_the_window_raises_the_limit() {
        let t0 = Instant::now();
        let rtt = Duration::from_millis(100);
        let mut s = RecvStream::new(t0, 2048, 2048);
        s.insert(0, &[0; 1024], false).unwrap();
        assert_eq!(s.next_max_data(t0, rtt), None);
        s.read(&mut [0; 1024]).unwrap();
        assert_eq!(s.next_max_data(t0, rtt), Some(3072));
    }

    #[test]
    fn a_window_consumed_within_two_rtts_doubles_up_to_the_cap() {
        let t0 = Instant::now();
        let rtt = Duration::from_millis(100);
        let ms = Duration::from_millis(1);
        let mut s = RecvStream::new(t0 - 10 * rtt, 4096, 16_384);
        let mut offset = 0u64;
        let mut feed = |s: &mut RecvStream, n: u64| {
            s.insert(offset, &vec![7; n as usize], false).unwrap();
            offset += n;
            let mut buf = vec![0; n as usize];
            assert_eq!(s.read(&mut buf).unwrap() as u64, n);
        };
        // First raise, long after the stream was created: the window stays.
        feed(&mut s, 2048);
        assert_eq!(s.next_max_data(t0, rtt), Some(2048 + 4096));
        // Half a window again within 2 RTTs: double to 8192.
        feed(&mut s, 2048);
        assert_eq!(s.next_max_data(t0 + 150 * ms, rtt), Some(4096 + 8192));
        assert_eq!(s.window(), 8192);
        // Slower than 2 RTTs: keep the window.
        feed(&mut s, 4096);
        assert_eq!(s.next_max_data(t0 + 400 * ms, rtt), Some(8192 + 8192));
        // Fast again: doubles to the 16 KiB cap and no further.
        feed(&mut s, 4096);
        assert_eq!(s.next_max_data(t0 + 450 * ms, rtt), Some(12_288 + 16_384));
        feed(&mut s, 8192);
        assert_eq!(s.next_max_data(t0 + 460 * ms, rtt), Some(20_480 + 16_384));
        assert_eq!(s.window(), 16_384);
        // The peer can never have more than the cap outstanding.
        assert_eq!(
            s.insert(20_480 + 16_384, b"x", false),
            Err(StreamViolation::FlowControl)
        );
    }

    #[test]
    fn data_pinned_behind_a_hole_widens_the_window() {
        let t0 = Instant::now();
        let rtt = Duration::from_millis(100);
        let mut s = RecvStream::new(t0 - 10 * rtt, 4096, 65_536);
        // The first frame is lost: the rest of the window waits behind it,
        // and the whole window is pinned (the hole and what follows it).
        s.insert(1024, &[7; 3072], false).unwrap();
        assert_eq!(s.pinned(), 4096);
        // Repaired; the application reads it all, slowly (no doubling).
        s.insert(0, &[7; 1024], false).unwrap();
        assert_eq!(s.read(&mut [0; 4096]).unwrap(), 4096);
        let max = s.next_max_data(t0 + 3 * rtt, rtt).unwrap();
        // Twice (4096 bytes read over 1.3 s, per 100 ms RTT: 315) plus the
        // 4096 bytes pinned: 8822, instead of the 4096 that filled up.
        assert_eq!(s.window(), 2 * (4096 * 100 / 1300 + 4096));
        assert_eq!(max, 4096 + s.window());
    }

    #[test]
    fn a_peer_holding_holes_open_cannot_push_the_window_past_the_cap() {
        let t0 = Instant::now();
        let rtt = Duration::from_millis(100);
        let cap = 8192;
        let mut s = RecvStream::new(t0, 4096, cap);
        let mut now = t0;
        for _ in 0..20 {
            // Everything but the first byte, up to the limit, then the byte.
            let (start, end) = (s.received(), s.max_data());
            s.insert(start + 1, &vec![7; (end - start - 1) as usize], false)
                .unwrap();
            assert!(s.buffered_bytes() <= cap + FRAGMENT_OVERHEAD);
            s.insert(start, b"x", false).unwrap();
            assert_eq!(
                s.read(&mut vec![0; cap as usize]).unwrap() as u64,
                end - start
            );
            now += Duration::from_millis(1);
            s.next_max_data(now, rtt);
            assert!(s.window() <= cap);
            assert!(s.max_data() - s.received() <= cap);
        }
        assert_eq!(s.window(), cap);
        assert_eq!(
            s.insert(s.max_data(), b"x", false),
            Err(StreamViolation::FlowControl)
        );
    }

    #[test]
    fn duplicate_bytes_are_counted() {
        let mut s = RecvStream::new(Instant::now(), 1 << 20, 1 << 20);
        s.insert(0, b"abcd", false).unwrap();
        s.insert(2, b"cdef", false).unwrap(); // 2 duplicates
        s.insert(10, b"klmn", false).unwrap();
        s.insert(8, b"ijklmnop", false).unwrap(); // 4 duplicates
                                                  // "abcdef" was in order and "ij" out of order: 8 duplicates.
        s.insert(0, b"abcdefghij", false).unwrap();
        assert_eq!(s.received(), 16);
        assert_eq!(s.duplicate_bytes(), 2 + 4 + 8);
    }
}
