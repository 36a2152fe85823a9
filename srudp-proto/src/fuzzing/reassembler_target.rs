//! The stream reassembler fed arbitrary frames and reads, against a model
//! that knows which bytes arrived and what the final size is.

use crate::config::TransportConfig;
use crate::connection::recv_stream::{RecvStream, StreamViolation};
use crate::connection::ReadError;

/// The byte at stream offset `o`: frames always carry consistent data.
fn byte_at(o: u64) -> u8 {
    (o ^ (o >> 7) ^ (o >> 13)) as u8
}

/// Input: 4 bytes of limits, then 5-byte operations:
/// `kind u8 | offset u16 | len u16` — kind even: a frame (fin if kind & 2),
/// kind odd: a read of `len` bytes. Offsets are scaled by `kind >> 2`.
pub fn reassembler(data: &[u8]) {
    let Some((head, ops)) = data.split_first_chunk::<4>() else {
        return;
    };
    let window = 1024 * (1 + u64::from(head[0] % 64));
    let config = TransportConfig {
        receive_window: window,
        max_receive_window: window,
        max_reorder_distance: 1024 * (1 + u64::from(head[1] % 64)),
        max_buffered_bytes: window + 64 * u64::from(head[2]),
        ..TransportConfig::default()
    };
    // A fixed window (no auto-tuning) keeps the model simple.
    let t0 = std::time::Instant::now();
    let mut s = RecvStream::new(t0, window, window);
    let mut model = Model::default();
    for op in ops.chunks_exact(5) {
        let kind = op[0];
        let a = u64::from(u16::from_be_bytes([op[1], op[2]]));
        let b = usize::from(u16::from_be_bytes([op[3], op[4]]));
        if kind & 1 == 1 {
            let mut buf = vec![0u8; b % 5000];
            match s.read(&mut buf) {
                Ok(n) => {
                    if n == 0 && !buf.is_empty() {
                        assert!(model.complete(), "end of stream reported early");
                    }
                    for (i, &byte) in buf[..n].iter().enumerate() {
                        assert_eq!(byte, byte_at(model.read + i as u64), "wrong byte read");
                    }
                    model.read += n as u64;
                    assert!(model.read <= model.contiguous());
                    let _ = s.next_max_data(t0, std::time::Duration::ZERO);
                }
                Err(ReadError::Blocked) => {
                    assert_eq!(model.read, model.contiguous(), "data withheld");
                    assert!(!model.complete());
                }
                Err(e) => panic!("unexpected read error {e:?}"),
            }
        } else {
            let offset = a * u64::from(1 + (kind >> 2) % 16);
            let len = (b % 1100) as u64;
            let fin = kind & 2 != 0;
            let frame: Vec<u8> = (offset..offset + len).map(byte_at).collect();
            let frames = [(offset, len)].into_iter();
            if !s.admits(
                frames,
                config.max_reorder_distance,
                config.max_buffered_bytes,
            ) {
                continue;
            }
            let expected = model.judge(offset, len, fin, s.max_data());
            let got = s.insert(offset, &frame, fin).map(|_| ());
            assert_eq!(got, expected, "insert({offset}, {len}, fin {fin})");
            if got.is_ok() {
                model.accept(offset, len, fin);
            }
        }
        s.assert_invariants(&config);
        assert_eq!(s.is_complete(), model.complete());
    }
}

/// Which bytes arrived, as a sorted list of disjoint ranges.
#[derive(Default)]
struct Model {
    ranges: std::collections::BTreeMap<u64, u64>,
    read: u64,
    final_size: Option<u64>,
}

impl Model {
    /// End of the contiguous prefix from 0.
    fn contiguous(&self) -> u64 {
        let mut end = 0;
        for (&s, &e) in &self.ranges {
            if s > end {
                break;
            }
            end = end.max(e);
        }
        end
    }

    fn highest(&self) -> u64 {
        self.ranges.values().copied().max().unwrap_or(0)
    }

    fn complete(&self) -> bool {
        self.final_size == Some(self.contiguous())
    }

    /// What the stream must answer to this frame (spec §6.3, §6.4).
    fn judge(
        &self,
        offset: u64,
        len: u64,
        fin: bool,
        max_data: u64,
    ) -> Result<(), StreamViolation> {
        let end = offset + len;
        if end > max_data {
            return Err(StreamViolation::FlowControl);
        }
        if let Some(f) = self.final_size {
            if end > f || (fin && end != f) {
                return Err(StreamViolation::FinalSize);
            }
        }
        if fin && end < self.highest() {
            return Err(StreamViolation::FinalSize);
        }
        Ok(())
    }

    fn accept(&mut self, offset: u64, len: u64, fin: bool) {
        if fin {
            self.final_size = Some(offset + len);
        }
        if len == 0 {
            return;
        }
        let (mut s, mut e) = (offset, offset + len);
        // Merge with every overlapping or adjacent range.
        let touching: Vec<(u64, u64)> = self
            .ranges
            .range(..=e)
            .filter(|(_, &re)| re >= s)
            .map(|(&rs, &re)| (rs, re))
            .collect();
        for (rs, re) in touching {
            self.ranges.remove(&rs);
            s = s.min(rs);
            e = e.max(re);
        }
        self.ranges.insert(s, e);
    }
}
