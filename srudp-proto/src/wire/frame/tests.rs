//! Frame layouts, as the spec states them.

use super::*;
use crate::range_set::RangeSet;
use crate::wire::frame::ack::emit_ack;
use crate::wire::MAX_ACK_RANGES;
use proptest::prelude::*;

/// Parses every frame of `payload`, panicking on error.
fn parse_all(payload: &[u8]) -> Vec<Frame<'_>> {
    FrameIter::new(payload).map(|f| f.unwrap()).collect()
}

/// Emits `frames` back to back.
fn emit_all(frames: &[Frame<'_>]) -> Vec<u8> {
    let mut buf = vec![0u8; 65_536];
    let mut w = Writer::new(&mut buf);
    for f in frames {
        let before = w.len();
        f.emit(&mut w).unwrap();
        assert_eq!(w.len() - before, f.encoded_len(), "{f:?}");
    }
    w.written().to_vec()
}

/// Parses `bytes` to exactly `expected`, and emits them back byte for byte.
fn assert_round_trip(bytes: &[u8], expected: &[Frame<'_>]) {
    let frames = parse_all(bytes);
    assert_eq!(frames, expected);
    assert_eq!(emit_all(&frames), bytes);
}

fn first_error(payload: &[u8]) -> WireError {
    FrameIter::new(payload)
        .find_map(Result::err)
        .expect("payload should fail to parse")
}

#[test]
fn padding_runs_coalesce_into_one_frame() {
    assert_round_trip(&[0x00], &[Frame::Padding { len: 1 }]);
    assert_round_trip(
        &[0x00, 0x00, 0x00, 0x01, 0x00, 0x00],
        &[
            Frame::Padding { len: 3 },
            Frame::Ping,
            Frame::Padding { len: 2 },
        ],
    );
}

#[test]
fn ping_has_no_body() {
    assert_round_trip(&[0x01, 0x01], &[Frame::Ping, Frame::Ping]);
}

#[test]
fn stream_frame_layout() {
    assert_round_trip(
        &[
            0x03, // STREAM
            0x40, 0x64, // offset = 100
            0x05, // length = 5
            b'h', b'e', b'l', b'l', b'o',
        ],
        &[Frame::Stream(StreamFrame {
            offset: 100,
            fin: false,
            data: b"hello",
        })],
    );
}

#[test]
fn stream_fin_may_be_empty() {
    let bytes = [
        0x04, // STREAM_FIN
        0x00, // offset = 0
        0x00, // length = 0
    ];
    assert_round_trip(
        &bytes,
        &[Frame::Stream(StreamFrame {
            offset: 0,
            fin: true,
            data: &[],
        })],
    );
    let Frame::Stream(s) = parse_all(&bytes)[0] else {
        unreachable!()
    };
    assert_eq!(s.end(), 0);
}

#[test]
fn a_filled_stream_frame_is_the_same_bytes_as_an_emitted_one() {
    let data: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
    let mut a = vec![0xeeu8; 1100];
    let mut b = vec![0x11u8; 1100];
    let (mut wa, mut wb) = (Writer::new(&mut a), Writer::new(&mut b));
    StreamFrame {
        offset: 70_000,
        fin: true,
        data: &data,
    }
    .emit(&mut wa)
    .unwrap();
    StreamFrame::emit_filled(70_000, 1024, true, &mut wb, |out| {
        out.copy_from_slice(&data)
    })
    .unwrap();
    assert_eq!(wa.written(), wb.written());
    // Too long, or too small a buffer: nothing written, `fill` not called.
    let mut small = [0u8; 100];
    let mut w = Writer::new(&mut small);
    let never = |_: &mut [u8]| panic!("fill called for a frame that does not fit");
    assert_eq!(
        StreamFrame::emit_filled(0, MAX_LARGE_STREAM_PAYLOAD + 1, false, &mut w, never),
        Err(WireError::InvalidLength)
    );
    assert_eq!(
        StreamFrame::emit_filled(0, 200, false, &mut w, never),
        Err(WireError::BufferTooSmall)
    );
    assert!(w.is_empty());
}

#[test]
fn stream_length_is_limited() {
    // length = 1435 > MAX_LARGE_STREAM_PAYLOAD (what one frame of a
    // 1472-byte Data packet holds)
    assert_eq!(MAX_LARGE_STREAM_PAYLOAD, 1434);
    let mut bytes = vec![0x03, 0x00, 0x45, 0x9b];
    bytes.resize(4 + 1435, 0xaa);
    assert_eq!(first_error(&bytes), WireError::InvalidLength);
    // length = 1434 is fine.
    bytes[3] = 0x9a;
    bytes.pop();
    assert!(matches!(&parse_all(&bytes)[..], [Frame::Stream(s)] if s.data.len() == 1434));
    // length exceeding the remaining bytes.
    assert_eq!(
        first_error(&[0x03, 0x00, 0x05, b'a']),
        WireError::InvalidLength
    );
}

#[test]
fn stream_end_must_fit_in_62_bits() {
    let max = [0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    // offset = 2^62 - 1 with no data ends exactly at the limit.
    assert!(matches!(
        &parse_all(&[&max[..], &[0x00]].concat())[..],
        [Frame::Stream(s)] if s.end() == VARINT_MAX
    ));
    // One more byte would end past it.
    assert_eq!(
        first_error(&[&max[..], &[0x01, b'a']].concat()),
        WireError::InvalidLength
    );
    let mut buf = [0u8; 32];
    let frame = StreamFrame {
        offset: VARINT_MAX,
        fin: false,
        data: b"a",
    };
    assert_eq!(
        frame.emit(&mut Writer::new(&mut buf)),
        Err(WireError::InvalidLength)
    );
}

#[test]
fn max_data_layout() {
    assert_round_trip(
        &[0x05, 0x80, 0x01, 0x00, 0x00], // MAX_DATA 65536
        &[Frame::MaxData(65_536)],
    );
}

#[test]
fn close_frame_layout() {
    let bytes = [
        0x06, // CLOSE
        0x00, // code 0
        0x03, // reason_len = 3
        b'b', b'y', b'e',
    ];
    assert_round_trip(
        &bytes,
        &[Frame::Close(CloseFrame {
            code: 0,
            reason: b"bye",
        })],
    );
    let Frame::Close(c) = parse_all(&bytes)[0] else {
        unreachable!()
    };
    assert_eq!(c.reason_str(), Some("bye"));
}

#[test]
fn close_reason_is_limited() {
    // reason_len = 257
    let mut bytes = vec![0x06, 0x00, 0x41, 0x01];
    bytes.resize(4 + 257, b'x');
    assert_eq!(first_error(&bytes), WireError::InvalidLength);
    assert_eq!(
        first_error(&[0x06, 0x00, 0x04, b'a']),
        WireError::InvalidLength
    );
    // Invalid UTF-8 is carried, not rejected.
    let odd = [0x06, 0x01, 0x01, 0xff];
    assert_round_trip(
        &odd,
        &[Frame::Close(CloseFrame {
            code: 1,
            reason: &[0xff],
        })],
    );
}

#[test]
fn close_emit_truncates_long_reasons_on_a_character_boundary() {
    let long = [b'a'; 300];
    let mut buf = [0u8; 512];
    let mut w = Writer::new(&mut buf);
    let close = CloseFrame {
        code: 7,
        reason: &long,
    };
    close.emit(&mut w).unwrap();
    let written = w.written().to_vec();
    assert_eq!(&written[..4], [0x06, 0x07, 0x41, 0x00]); // reason_len 256
    assert_eq!(written.len(), 4 + 256);
    assert_eq!(close.encoded_len(), written.len());

    // 255 ASCII bytes then "é" (2 bytes): cutting at 256 would split it.
    let text = format!("{}é", "a".repeat(255));
    let close = CloseFrame {
        code: 7,
        reason: text.as_bytes(),
    };
    assert_eq!(close.wire_reason().len(), 255);
    let mut w = Writer::new(&mut buf);
    close.emit(&mut w).unwrap();
    let frames = parse_all(w.written());
    assert!(matches!(&frames[..], [Frame::Close(c)] if c.reason_str() == Some(&text[..255])));
}

#[test]
fn a_close_reason_that_fits_is_sent_as_it_is() {
    // Regression (found by the frame_parser fuzz target): a 256-byte reason
    // ending in the first byte of a UTF-8 character was cut to 255 bytes on
    // re-emission, though nothing had to be cut.
    let mut reason = [b'a'; MAX_CLOSE_REASON];
    reason[MAX_CLOSE_REASON - 1] = 0xeb;
    let close = CloseFrame {
        code: 43,
        reason: &reason,
    };
    assert_eq!(close.wire_reason(), &reason[..]);
    let bytes = emit_all(&[Frame::Close(close)]);
    assert_eq!(parse_all(&bytes), [Frame::Close(close)]);
}

#[test]
fn path_challenge_and_response_carry_8_bytes() {
    assert_round_trip(
        &[
            0x07, 1, 2, 3, 4, 5, 6, 7, 8, // PATH_CHALLENGE
            0x08, 1, 2, 3, 4, 5, 6, 7, 8, // PATH_RESPONSE
        ],
        &[
            Frame::PathChallenge([1, 2, 3, 4, 5, 6, 7, 8]),
            Frame::PathResponse([1, 2, 3, 4, 5, 6, 7, 8]),
        ],
    );
    assert_eq!(first_error(&[0x07, 1, 2, 3]), WireError::Truncated);
}

#[test]
fn ack_frequency_layout() {
    // sequence 5, threshold 10, max delay 6250 µs (two-byte varint).
    assert_round_trip(
        &[0x09, 0x05, 0x0a, 0x58, 0x6a],
        &[Frame::AckFrequency(AckFrequencyFrame {
            sequence: 5,
            threshold: 10,
            max_delay_micros: 6250,
        })],
    );
    assert!(parse_all(&[0x09, 0, 1, 0])[0].is_ack_eliciting());
    assert_eq!(first_error(&[0x09, 0x05, 0x0a]), WireError::Truncated);
    let too_big = Frame::AckFrequency(AckFrequencyFrame {
        sequence: VARINT_MAX + 1,
        threshold: 1,
        max_delay_micros: 0,
    });
    let mut buf = [0u8; 32];
    let mut w = Writer::new(&mut buf);
    assert_eq!(too_big.emit(&mut w), Err(WireError::VarintOverflow));
    assert!(w.is_empty());
}

#[test]
fn unknown_and_truncated_frames() {
    assert_eq!(first_error(&[0x0a]), WireError::UnknownFrameType(10));
    assert_eq!(
        first_error(&[0x7f, 0xff]),
        WireError::UnknownFrameType(16_383)
    );
    assert_eq!(first_error(&[0x40]), WireError::Truncated);
    assert_eq!(first_error(&[0x05]), WireError::Truncated);
    assert_eq!(first_error(&[0x03, 0x00]), WireError::Truncated);
    assert_eq!(first_error(&[0x06, 0x00]), WireError::Truncated);
}

#[test]
fn frame_types_may_use_non_minimal_varints() {
    // 0x40 0x01 is PING in two bytes; 0x40 0x00 is two bytes of padding.
    let frames = parse_all(&[0x40, 0x01, 0x40, 0x00, 0x00]);
    assert_eq!(frames, [Frame::Ping, Frame::Padding { len: 3 }]);
}

#[test]
fn iteration_stops_after_the_first_error() {
    let mut it = FrameIter::new(&[0x01, 0x0a, 0x01]);
    assert_eq!(it.next(), Some(Ok(Frame::Ping)));
    assert_eq!(it.next(), Some(Err(WireError::UnknownFrameType(10))));
    assert_eq!(it.next(), None);
    assert_eq!(it.next(), None);
    assert_eq!(FrameIter::new(&[]).next(), None);
}

#[test]
fn ack_eliciting_frames() {
    let close = Frame::Close(CloseFrame {
        code: 0,
        reason: &[],
    });
    assert!(!Frame::Padding { len: 1 }.is_ack_eliciting());
    assert!(!close.is_ack_eliciting());
    let ack = parse_all(&[0x02, 0x00, 0x00, 0x00, 0x00])[0];
    assert!(matches!(ack, Frame::Ack(_)));
    assert!(!ack.is_ack_eliciting());
    for f in [
        Frame::Ping,
        Frame::MaxData(1),
        Frame::PathChallenge([0; 8]),
        Frame::PathResponse([0; 8]),
        Frame::Stream(StreamFrame {
            offset: 0,
            fin: true,
            data: &[],
        }),
    ] {
        assert!(f.is_ack_eliciting(), "{f:?}");
    }
}

#[test]
fn emitters_are_atomic() {
    let mut buf = [0u8; 8];
    let mut w = Writer::new(&mut buf);
    w.put_u8(0xee).unwrap();
    let stream = StreamFrame {
        offset: 0,
        fin: false,
        data: b"12345",
    };
    assert_eq!(
        Frame::Stream(stream).emit(&mut w),
        Err(WireError::BufferTooSmall)
    );
    assert_eq!(
        Frame::PathChallenge([0; 8]).emit(&mut w),
        Err(WireError::BufferTooSmall)
    );
    assert_eq!(
        Frame::Padding { len: 8 }.emit(&mut w),
        Err(WireError::BufferTooSmall)
    );
    assert_eq!(
        Frame::MaxData(u64::MAX).emit(&mut w),
        Err(WireError::VarintOverflow)
    );
    let close = CloseFrame {
        code: 0,
        reason: b"too long",
    };
    assert_eq!(close.emit(&mut w), Err(WireError::BufferTooSmall));
    assert_eq!(w.len(), 1);
    let fits = StreamFrame {
        data: b"1234",
        ..stream
    };
    assert_eq!(Frame::Stream(fits).emit(&mut w), Ok(()));
    assert_eq!(w.remaining(), 0);
}

#[test]
fn stream_frame_sizing() {
    assert_eq!(StreamFrame::encoded_len(0, 0), STREAM_FRAME_MIN_OVERHEAD);
    assert_eq!(
        StreamFrame::encoded_len(VARINT_MAX - 1024, 1024),
        STREAM_FRAME_MAX_OVERHEAD + 1024
    );
    assert_eq!(StreamFrame::max_data_len(0, 1), None);
    assert_eq!(StreamFrame::max_data_len(0, 2), None);
    assert_eq!(StreamFrame::max_data_len(0, 3), Some(0));
    assert_eq!(StreamFrame::max_data_len(0, 66), Some(63));
    assert_eq!(StreamFrame::max_data_len(0, 67), Some(63));
    assert_eq!(StreamFrame::max_data_len(0, 68), Some(64));
    assert_eq!(StreamFrame::max_data_len(1 << 40, 1166), Some(1024));
    // A sender fills a larger packet with one frame, a base-size one with
    // frames every receiver takes.
    assert_eq!(StreamFrame::max_payload_in(1200), MAX_STREAM_PAYLOAD);
    assert_eq!(StreamFrame::max_payload_in(1201), MAX_LARGE_STREAM_PAYLOAD);
    assert_eq!(StreamFrame::max_payload_in(1472), MAX_LARGE_STREAM_PAYLOAD);
    for offset in [0, 63, 64, 1 << 20, 1 << 40] {
        for space in 0..1100 {
            if let Some(n) = StreamFrame::max_data_len(offset, space) {
                assert!(StreamFrame::encoded_len(offset, n) <= space);
                if n < MAX_STREAM_PAYLOAD {
                    assert!(StreamFrame::encoded_len(offset, n + 1) > space);
                }
            } else {
                assert!(StreamFrame::encoded_len(offset, 0) > space);
            }
        }
    }
}

/// An owned description of a frame, for generating frame sequences.
#[derive(Debug, Clone)]
enum Spec {
    Padding(usize),
    Ping,
    Ack(Vec<(u64, u64)>, u64, usize),
    Stream(u64, bool, Vec<u8>),
    MaxData(u64),
    Close(u64, Vec<u8>),
    Challenge([u8; 8]),
    Response([u8; 8]),
    AckFrequency(u64, u64, u64),
}

fn arb_spec() -> impl Strategy<Value = Spec> {
    let data = |max| proptest::collection::vec(any::<u8>(), 0..=max);
    prop_oneof![
        (1usize..40).prop_map(Spec::Padding),
        Just(Spec::Ping),
        (
            proptest::collection::vec((0u64..1 << 20, 1u64..50), 1..80),
            0..=VARINT_MAX,
            0usize..80
        )
            .prop_map(|(r, d, m)| Spec::Ack(r, d, m)),
        (
            0..=VARINT_MAX - MAX_LARGE_STREAM_PAYLOAD as u64,
            any::<bool>(),
            data(MAX_LARGE_STREAM_PAYLOAD)
        )
            .prop_map(|(o, f, d)| Spec::Stream(o, f, d)),
        (0..=VARINT_MAX).prop_map(Spec::MaxData),
        (0..=VARINT_MAX, data(MAX_CLOSE_REASON)).prop_map(|(c, r)| Spec::Close(c, r)),
        any::<[u8; 8]>().prop_map(Spec::Challenge),
        any::<[u8; 8]>().prop_map(Spec::Response),
        (0..=VARINT_MAX, 0..=VARINT_MAX, 0..=VARINT_MAX)
            .prop_map(|(s, t, d)| Spec::AckFrequency(s, t, d)),
    ]
}

fn range_set(ranges: &[(u64, u64)]) -> RangeSet {
    let mut set = RangeSet::new();
    for &(start, len) in ranges {
        set.insert(start..start + len);
    }
    set
}

/// Emits `spec`; ACKs come from [`emit_ack`].
fn emit_spec(spec: &Spec, w: &mut Writer<'_>) -> Result<(), WireError> {
    let frame = match spec {
        Spec::Padding(len) => Frame::Padding { len: *len },
        Spec::Ping => Frame::Ping,
        Spec::Ack(r, delay, max) => return emit_ack(w, &range_set(r), *delay, *max),
        Spec::Stream(offset, fin, data) => Frame::Stream(StreamFrame {
            offset: *offset,
            fin: *fin,
            data,
        }),
        Spec::MaxData(m) => Frame::MaxData(*m),
        Spec::Close(code, reason) => Frame::Close(CloseFrame {
            code: *code,
            reason,
        }),
        Spec::Challenge(d) => Frame::PathChallenge(*d),
        Spec::Response(d) => Frame::PathResponse(*d),
        Spec::AckFrequency(sequence, threshold, max_delay_micros) => {
            Frame::AckFrequency(AckFrequencyFrame {
                sequence: *sequence,
                threshold: *threshold,
                max_delay_micros: *max_delay_micros,
            })
        }
    };
    frame.emit(w)
}

/// Whether `frame` is what `spec` describes.
fn matches_spec(frame: &Frame<'_>, spec: &Spec) -> bool {
    match (frame, spec) {
        (Frame::Padding { len }, Spec::Padding(n)) => len == n,
        (Frame::Ping, Spec::Ping) => true,
        (Frame::Ack(a), Spec::Ack(r, delay, max)) => {
            let expected: Vec<_> = range_set(r)
                .iter()
                .rev()
                .take((*max).clamp(1, MAX_ACK_RANGES))
                .map(|r| r.start..=r.end - 1)
                .collect();
            a.ack_delay_micros == *delay && a.ranges().collect::<Vec<_>>() == expected
        }
        (Frame::Stream(s), Spec::Stream(o, f, d)) => s.offset == *o && s.fin == *f && s.data == d,
        (Frame::MaxData(m), Spec::MaxData(n)) => m == n,
        (Frame::Close(c), Spec::Close(code, r)) => c.code == *code && c.reason == r,
        (Frame::PathChallenge(a), Spec::Challenge(b)) => a == b,
        (Frame::PathResponse(a), Spec::Response(b)) => a == b,
        (Frame::AckFrequency(f), Spec::AckFrequency(s, t, d)) => {
            (f.sequence, f.threshold, f.max_delay_micros) == (*s, *t, *d)
        }
        _ => false,
    }
}

/// Merges adjacent padding, as the parser does.
fn normalise(specs: Vec<Spec>) -> Vec<Spec> {
    let mut out: Vec<Spec> = Vec::new();
    for s in specs {
        match (out.last_mut(), &s) {
            (Some(Spec::Padding(a)), Spec::Padding(b)) => *a += b,
            _ => out.push(s),
        }
    }
    out
}

proptest! {
    /// Any sequence of frames emitted back to back parses to the same
    /// sequence, and re-emitting the parsed frames gives the same bytes.
    #[test]
    fn frame_sequences_round_trip(specs in proptest::collection::vec(arb_spec(), 0..12)) {
        let specs = normalise(specs);
        let mut buf = vec![0u8; 16_384];
        let mut w = Writer::new(&mut buf);
        for s in &specs {
            emit_spec(s, &mut w).unwrap();
        }
        let bytes = w.written().to_vec();
        let frames = parse_all(&bytes);
        prop_assert_eq!(frames.len(), specs.len());
        for (f, s) in frames.iter().zip(&specs) {
            prop_assert!(matches_spec(f, s), "{:?} vs {:?}", f, s);
        }
        prop_assert_eq!(emit_all(&frames), bytes);
    }

    /// Arbitrary payloads never panic the parser; whatever parses re-emits
    /// to bytes that parse to the same frames.
    #[test]
    fn arbitrary_payloads_parse_or_fail_cleanly(
        bytes in proptest::collection::vec(
            prop_oneof![4 => 0u8..10, 1 => any::<u8>()], 0..200)
    ) {
        let parsed: Result<Vec<_>, _> = FrameIter::new(&bytes).collect();
        if let Ok(frames) = parsed {
            let again = emit_all(&frames);
            prop_assert_eq!(parse_all(&again), frames);
        }
    }
}
