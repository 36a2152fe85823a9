//! ACK frame layout and range semantics, as the spec states them.

// One-range sets are written as `[a..b]` on purpose.
#![allow(clippy::single_range_in_vec_init)]

use super::*;
use crate::wire::frame::{Frame, FrameIter};
use proptest::prelude::*;

fn parse_ack(bytes: &[u8]) -> Result<AckFrame<'_>, WireError> {
    let mut it = FrameIter::new(bytes);
    match it.next() {
        Some(Ok(Frame::Ack(ack))) => {
            assert_eq!(it.next(), None, "trailing bytes");
            Ok(ack)
        }
        Some(Err(e)) => Err(e),
        other => panic!("not an ACK: {other:?}"),
    }
}

fn reemit(ack: &AckFrame<'_>) -> Vec<u8> {
    let mut buf = [0u8; 1200];
    let mut w = Writer::new(&mut buf);
    ack.emit(&mut w).unwrap();
    assert_eq!(w.len(), ack.encoded_len());
    w.written().to_vec()
}

fn set_of(ranges: &[std::ops::Range<u64>]) -> RangeSet {
    let mut set = RangeSet::new();
    for r in ranges {
        set.insert(r.clone());
    }
    set
}

fn emit(set: &RangeSet, delay: u64, max_ranges: usize) -> Result<Vec<u8>, WireError> {
    let mut buf = [0u8; 1200];
    let mut w = Writer::new(&mut buf);
    emit_ack(&mut w, set, delay, max_ranges)?;
    assert_eq!(Ok(w.len()), ack_frame_len(set, delay, max_ranges));
    Ok(w.written().to_vec())
}

/// largest 100, first range 2 → [98, 100]; gap 1, len 3 → [92, 95];
/// gap 0, len 0 → [90, 90].
const THREE_RANGES: [u8; 10] = [
    0x02, // ACK
    0x40, 0x64, // largest = 100
    0x19, // ack_delay = 25 µs
    0x02, // range_count = 2 additional ranges
    0x02, // first_range = 2
    0x01, 0x03, // gap = 1, range_len = 3
    0x00, 0x00, // gap = 0, range_len = 0
];

#[test]
fn ack_ranges_follow_rfc9000() {
    let ack = parse_ack(&THREE_RANGES).unwrap();
    assert_eq!(ack.largest, 100);
    assert_eq!(ack.ack_delay_micros, 25);
    assert_eq!(ack.range_count(), 3);
    assert_eq!(ack.ranges().len(), 3);
    assert_eq!(
        ack.ranges().collect::<Vec<_>>(),
        [98..=100, 92..=95, 90..=90]
    );
    assert_eq!(reemit(&ack), THREE_RANGES);
}

#[test]
fn emit_ack_writes_the_same_bytes_from_a_range_set() {
    let set = set_of(&[90..91, 92..96, 98..101]);
    assert_eq!(emit(&set, 25, 64).unwrap(), THREE_RANGES);
}

#[test]
fn a_single_range_reaching_zero() {
    let bytes = [0x02, 0x05, 0x00, 0x00, 0x05]; // [0, 5]
    let ack = parse_ack(&bytes).unwrap();
    assert_eq!(ack.ranges().collect::<Vec<_>>(), [0..=5]);
    assert_eq!(emit(&set_of(&[0..6]), 0, 1).unwrap(), bytes);
}

#[test]
fn underflowing_ranges_are_rejected() {
    // first_range 6 > largest 5
    assert_eq!(
        parse_ack(&[0x02, 0x05, 0x00, 0x00, 0x06]),
        Err(WireError::InvalidAckRanges)
    );
    // [5, 5], then gap 4: 5 - 4 - 2 < 0
    assert_eq!(
        parse_ack(&[0x02, 0x05, 0x00, 0x01, 0x00, 0x04, 0x00]),
        Err(WireError::InvalidAckRanges)
    );
    // [5, 5], gap 3 → [0, 0] is fine ...
    let ok = parse_ack(&[0x02, 0x05, 0x00, 0x01, 0x00, 0x03, 0x00]).unwrap();
    assert_eq!(ok.ranges().collect::<Vec<_>>(), [5..=5, 0..=0]);
    // ... but range_len 1 below it is not.
    assert_eq!(
        parse_ack(&[0x02, 0x05, 0x00, 0x01, 0x00, 0x03, 0x01]),
        Err(WireError::InvalidAckRanges)
    );
}

#[test]
fn range_count_is_limited() {
    // 63 additional ranges of one packet each, 2 apart, below largest 1000.
    let mut bytes = vec![0x02, 0x43, 0xe8, 0x00, 0x3f, 0x00];
    for _ in 0..63 {
        bytes.extend([0x00, 0x00]);
    }
    let ack = parse_ack(&bytes).unwrap();
    assert_eq!(ack.range_count(), MAX_ACK_RANGES);
    assert_eq!(ack.ranges().last(), Some(874..=874));
    assert_eq!(reemit(&ack), bytes);

    // range_count = 64 (two-byte varint 0x40 0x40)
    let mut bytes = vec![0x02, 0x43, 0xe8, 0x00, 0x40, 0x40, 0x00];
    for _ in 0..64 {
        bytes.extend([0x00, 0x00]);
    }
    assert_eq!(parse_ack(&bytes), Err(WireError::TooManyAckRanges(64)));
    let huge = [
        0x02, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];
    assert_eq!(
        parse_ack(&huge),
        Err(WireError::TooManyAckRanges(VARINT_MAX))
    );
}

#[test]
fn truncated_acks() {
    for n in 1..THREE_RANGES.len() {
        assert_eq!(
            parse_ack(&THREE_RANGES[..n]),
            Err(WireError::Truncated),
            "{n}"
        );
    }
}

#[test]
fn emit_ack_keeps_the_highest_ranges() {
    let set = set_of(&[0..1, 10..11, 20..21, 30..31]);
    let bytes = emit(&set, 0, 2).unwrap();
    let ack = parse_ack(&bytes).unwrap();
    assert_eq!(ack.ranges().collect::<Vec<_>>(), [30..=30, 20..=20]);
    // max_ranges 0 counts as 1; above MAX_ACK_RANGES counts as MAX_ACK_RANGES.
    let one = emit(&set, 0, 0).unwrap();
    assert_eq!(parse_ack(&one).unwrap().range_count(), 1);
    let mut many = RangeSet::new();
    for i in 0..100 {
        many.insert_one(i * 3);
    }
    let bytes = emit(&many, 0, usize::MAX).unwrap();
    let ack = parse_ack(&bytes).unwrap();
    assert_eq!(ack.range_count(), MAX_ACK_RANGES);
    assert_eq!(ack.ranges().last(), Some(108..=108));
}

#[test]
fn emit_ack_errors() {
    let mut buf = [0u8; 4];
    let mut w = Writer::new(&mut buf);
    assert_eq!(
        emit_ack(&mut w, &RangeSet::new(), 0, 1),
        Err(WireError::InvalidAckRanges)
    );
    let big = set_of(&[VARINT_MAX..VARINT_MAX + 2]);
    assert_eq!(emit_ack(&mut w, &big, 0, 1), Err(WireError::VarintOverflow));
    let small = set_of(&[1..2]);
    assert_eq!(
        emit_ack(&mut w, &small, VARINT_MAX + 1, 1),
        Err(WireError::VarintOverflow)
    );
    let wide = set_of(&[0..1, 1000..1001]);
    assert_eq!(
        emit_ack(&mut w, &wide, 0, 2),
        Err(WireError::BufferTooSmall)
    );
    assert_eq!(w.len(), 0, "nothing written on error");
}

#[test]
fn re_emit_checks_a_modified_largest() {
    let mut ack = parse_ack(&THREE_RANGES).unwrap();
    ack.largest = 5; // [3, 5], [0, 0], then -3: underflow
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf);
    assert_eq!(ack.emit(&mut w), Err(WireError::InvalidAckRanges));
    ack.largest = VARINT_MAX + 1;
    assert_eq!(ack.emit(&mut w), Err(WireError::VarintOverflow));
    assert_eq!(w.len(), 0);
}

fn arb_set() -> impl Strategy<Value = RangeSet> {
    let base = prop_oneof![Just(0u64), Just(VARINT_MAX - 100_000), 0..VARINT_MAX / 2];
    let ranges = proptest::collection::vec((0u64..90_000, 1u64..20), 1..100);
    (base, ranges).prop_map(|(base, ranges)| {
        let mut set = RangeSet::new();
        for (start, len) in ranges {
            set.insert(base + start..base + start + len);
        }
        set
    })
}

proptest! {
    /// emit_ack → parse gives the highest ranges of the set, as inclusive
    /// ranges, highest first; re-emitting the parsed frame is byte-exact.
    #[test]
    fn ack_round_trips(set in arb_set(), delay in 0..=VARINT_MAX, max in 0usize..100) {
        let bytes = emit(&set, delay, max).unwrap();
        let ack = parse_ack(&bytes).unwrap();
        let expected: Vec<_> = set
            .iter()
            .rev()
            .take(max.clamp(1, MAX_ACK_RANGES))
            .map(|r| r.start..=r.end - 1)
            .collect();
        prop_assert_eq!(ack.largest, set.max().unwrap());
        prop_assert_eq!(ack.ack_delay_micros, delay);
        prop_assert_eq!(ack.range_count(), expected.len());
        prop_assert_eq!(ack.ranges().collect::<Vec<_>>(), expected);
        prop_assert_eq!(reemit(&ack), bytes);
    }

    /// Random ACK bodies either fail cleanly or yield well-formed ranges.
    #[test]
    fn arbitrary_acks_are_validated(body in proptest::collection::vec(0u8..80, 0..40)) {
        let bytes = [&[0x02][..], &body].concat();
        if let Ok(ack) = parse_ack_prefix(&bytes) {
            let ranges: Vec<_> = ack.ranges().collect();
            prop_assert_eq!(ranges.len(), ack.range_count());
            prop_assert_eq!(ranges.first().map(|r| *r.end()), Some(ack.largest));
            for pair in ranges.windows(2) {
                // Descending, disjoint and non-adjacent.
                prop_assert!(*pair[1].end() + 1 < *pair[0].start());
            }
        }
    }
}

/// Parses the ACK at the start of `bytes`, ignoring what follows.
fn parse_ack_prefix(bytes: &[u8]) -> Result<AckFrame<'_>, WireError> {
    match FrameIter::new(bytes).next() {
        Some(Ok(Frame::Ack(ack))) => Ok(ack),
        Some(Err(e)) => Err(e),
        _ => Err(WireError::Truncated),
    }
}

#[test]
fn raw_fields_are_written_as_given_even_when_a_receiver_must_refuse_them() {
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf);
    emit_ack_fields(&mut w, 100, 0, 9, &[(0, 4)]).unwrap();
    let n = w.len();
    // type, largest 100 (2 bytes), delay, count, first range, gap, len
    assert_eq!(&buf[..n], &[0x02, 0x40, 100, 0, 1, 9, 0, 4]);
    let mut r = Reader::new(&buf[..n]);
    let Ok(crate::wire::Frame::Ack(ack)) = crate::wire::Frame::parse(&mut r) else {
        panic!("parses");
    };
    assert_eq!(ack.ranges().collect::<Vec<_>>(), vec![91..=100, 85..=89]);
    // Ranges below 0: written as asked, refused when parsed.
    let mut w = Writer::new(&mut buf);
    emit_ack_fields(&mut w, 3, 0, 2, &[(5, 5)]).unwrap();
    let n = w.len();
    assert!(crate::wire::Frame::parse(&mut Reader::new(&buf[..n])).is_err());
    // Too little room: nothing written.
    let mut small = [0u8; 3];
    let mut w = Writer::new(&mut small);
    assert_eq!(
        emit_ack_fields(&mut w, 100, 0, 9, &[(0, 4)]),
        Err(WireError::BufferTooSmall)
    );
    assert_eq!(w.len(), 0);
}
