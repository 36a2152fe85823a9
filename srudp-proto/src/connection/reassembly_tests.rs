//! The receive stream's reassembly under the resource limits of spec §6.3:
//! limits hold against hostile fragment patterns, and whatever is admitted
//! is delivered exactly once, in order.

use proptest::prelude::*;

use super::recv_stream::{RecvStream, FRAGMENT_OVERHEAD};
use crate::config::TransportConfig;

/// The stream byte at `offset`: every frame carries consistent data.
fn byte_at(offset: u64) -> u8 {
    (offset.wrapping_mul(31) >> 3) as u8
}

fn frame(offset: u64, len: u64) -> Vec<u8> {
    (offset..offset + len).map(byte_at).collect()
}

fn config(window: u64, reorder: u64, buffered: u64) -> TransportConfig {
    TransportConfig {
        receive_window: window,
        max_reorder_distance: reorder,
        max_buffered_bytes: buffered,
        ..TransportConfig::default()
    }
}

/// Inserts the frame if the limits admit it, as the connection does.
fn offer(s: &mut RecvStream, c: &TransportConfig, offset: u64, len: u64) -> bool {
    let admitted = s.admits(
        [(offset, len)].into_iter(),
        c.max_reorder_distance,
        c.max_buffered_bytes,
    );
    if admitted {
        s.insert(offset, &frame(offset, len), false).unwrap();
    }
    s.assert_invariants(c);
    admitted
}

fn read_all(s: &mut RecvStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 777];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn data_beyond_the_reorder_distance_is_not_admitted() {
    let c = config(1 << 20, 4096, 2 << 20);
    let mut s = RecvStream::new(
        std::time::Instant::now(),
        c.receive_window,
        c.receive_window,
    );
    assert!(
        offer(&mut s, &c, 1000, 3096),
        "ends exactly 4096 past the gap"
    );
    assert!(!offer(&mut s, &c, 4000, 97), "ends 4097 past the gap");
    // In-order data is always admitted, and moves the gap forward.
    assert!(offer(&mut s, &c, 0, 1000));
    assert!(offer(&mut s, &c, 4000, 97), "now within the distance");
    assert_eq!(read_all(&mut s), frame(0, 4097));
}

#[test]
fn one_byte_fragments_are_charged_their_bookkeeping() {
    let window = 64 * 1024;
    let c = config(window, window, window);
    let mut s = RecvStream::new(std::time::Instant::now(), window, window);
    // A hostile peer sends single bytes at every other offset: without the
    // per-fragment charge it could make us keep 32768 map entries.
    let admitted = (0..window / 2)
        .filter(|i| offer(&mut s, &c, 1 + 2 * i, 1))
        .count() as u64;
    assert_eq!(admitted, window / (1 + FRAGMENT_OVERHEAD));
    assert!(s.buffered_bytes() <= window);
    // Filling the gaps in order still works and delivers everything admitted.
    for offset in 0..window {
        if !offer(&mut s, &c, offset, 1) {
            assert!(offset % 2 == 1, "in-order byte {offset} refused");
        }
    }
    assert_eq!(read_all(&mut s), frame(0, window));
}

#[test]
fn a_frame_spanning_fragments_is_charged_for_every_piece_it_adds() {
    let c = config(1 << 20, 1 << 20, 1 << 20);
    let mut s = RecvStream::new(
        std::time::Instant::now(),
        c.receive_window,
        c.receive_window,
    );
    for offset in [10, 12, 14] {
        assert!(offer(&mut s, &c, offset, 1));
    }
    let before = s.buffered_bytes();
    // [9, 16) adds the pieces 9, 11, 13 and 15: four fragments of one byte.
    assert!(offer(&mut s, &c, 9, 7));
    assert_eq!(s.buffered_bytes() - before, 4 * (1 + FRAGMENT_OVERHEAD));
}

#[test]
fn an_empty_frame_beyond_the_gap_is_harmless() {
    // Regression: an empty STREAM frame past the first missing byte used to
    // build an inverted map range and panic.
    let c = config(1 << 20, 1 << 20, 2 << 20);
    let mut s = RecvStream::new(
        std::time::Instant::now(),
        c.receive_window,
        c.receive_window,
    );
    assert!(offer(&mut s, &c, 500, 0));
    assert!(offer(&mut s, &c, 100, 10));
    assert!(offer(&mut s, &c, 105, 0));
    assert_eq!(s.insert(700, b"", false), Ok(false));
    assert!(offer(&mut s, &c, 0, 100));
    assert_eq!(read_all(&mut s), frame(0, 110));
}

#[derive(Debug, Clone)]
enum Op {
    Frame(u64, u64),
    Read(usize),
}

fn arb_ops(window: u64) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => (0..window, 0u64..1100).prop_map(|(o, l)| Op::Frame(o, l)),
        1 => (1usize..5000).prop_map(Op::Read),
    ];
    proptest::collection::vec(op, 0..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Arbitrary (offset, length) frames, offered under tight limits, against
    /// a model that remembers which bytes arrived: the reader gets exactly the
    /// model's contiguous prefix, every bound holds after every step, and
    /// offering everything in order afterwards completes the stream.
    #[test]
    fn reassembly_matches_a_model_under_limits(
        ops in arb_ops(16_384),
        reorder in 1024u64..20_000,
        slack in 0u64..8192,
    ) {
        let window = 16_384;
        let c = config(window, reorder, window + slack);
        let mut s = RecvStream::new(std::time::Instant::now(), window, window);
        let mut have = vec![false; window as usize];
        let mut delivered = Vec::new();
        for op in ops {
            match op {
                Op::Frame(offset, len) => {
                    let len = len.min(window - offset);
                    if offer(&mut s, &c, offset, len) {
                        for b in offset..offset + len {
                            have[b as usize] = true;
                        }
                    }
                }
                Op::Read(n) => {
                    let mut buf = vec![0u8; n];
                    if let Ok(k) = s.read(&mut buf) {
                        delivered.extend_from_slice(&buf[..k]);
                    }
                }
            }
            let prefix = have.iter().take_while(|h| **h).count() as u64;
            let mut all = delivered.clone();
            let mut probe = s.clone_ready();
            all.append(&mut probe);
            prop_assert_eq!(all, frame(0, prefix));
        }
        // The rest, in order, in 1000-byte frames: always admitted.
        for offset in (0..window).step_by(1000) {
            let len = 1000.min(window - offset);
            prop_assert!(offer(&mut s, &c, offset, len));
        }
        delivered.extend(read_all(&mut s));
        prop_assert_eq!(delivered, frame(0, window));
    }
}
