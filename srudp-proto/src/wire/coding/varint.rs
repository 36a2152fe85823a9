//! QUIC-style variable-length integers (RFC 9000 §16).
//!
//! The two high bits of the first byte give the encoded length (`00` = 1,
//! `01` = 2, `10` = 4, `11` = 8 bytes); the remaining bits, big-endian, give
//! the value. Emitters always use the shortest encoding; decoders accept any
//! of them.

use super::{Reader, Writer};
use crate::wire::WireError;

/// The largest value a varint can carry: `2^62 - 1`.
pub const VARINT_MAX: u64 = (1 << 62) - 1;

/// The number of bytes the shortest encoding of `v` takes (1, 2, 4 or 8).
///
/// Values above [`VARINT_MAX`] cannot be encoded at all; for them this
/// returns 8 and emitting fails with [`WireError::VarintOverflow`].
pub fn varint_len(v: u64) -> usize {
    if v < (1 << 6) {
        1
    } else if v < (1 << 14) {
        2
    } else if v < (1 << 30) {
        4
    } else {
        8
    }
}

/// Reads one varint, accepting non-minimal encodings.
pub(super) fn read(r: &mut Reader<'_>) -> Result<u64, WireError> {
    let first = r.u8()?;
    let tail_len = match first >> 6 {
        0 => 0,
        1 => 1,
        2 => 3,
        _ => 7,
    };
    let mut value = u64::from(first & 0x3f);
    for &b in r.bytes(tail_len)? {
        value = (value << 8) | u64::from(b);
    }
    Ok(value)
}

/// Writes `v` in its shortest encoding; writes nothing on error.
pub(super) fn write(w: &mut Writer<'_>, v: u64) -> Result<(), WireError> {
    if v > VARINT_MAX {
        return Err(WireError::VarintOverflow);
    }
    match varint_len(v) {
        1 => w.put_u8(v as u8),
        2 => w.put_u16(v as u16 | 0x4000),
        4 => w.put_u32(v as u32 | 0x8000_0000),
        _ => w.put_u64(v | 0xc000_0000_0000_0000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(bytes: &[u8]) -> Result<(u64, usize), WireError> {
        let mut r = Reader::new(bytes);
        let v = r.varint()?;
        Ok((v, r.position()))
    }

    fn encode(v: u64) -> Result<Vec<u8>, WireError> {
        let mut buf = [0u8; 8];
        let mut w = Writer::new(&mut buf);
        w.put_varint(v)?;
        Ok(w.written().to_vec())
    }

    /// The examples of RFC 9000 Appendix A.1 decode to the stated values and
    /// re-encode byte for byte.
    #[test]
    fn rfc9000_examples_round_trip() {
        let cases: [(&[u8], u64); 4] = [
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
        ];
        for (bytes, value) in cases {
            assert_eq!(decode(bytes), Ok((value, bytes.len())));
            assert_eq!(encode(value).unwrap(), bytes);
            assert_eq!(varint_len(value), bytes.len());
        }
    }

    /// Non-minimal encodings are accepted (RFC 9000 A.1: `40 25` is 37).
    #[test]
    fn non_minimal_encodings_decode() {
        assert_eq!(decode(&[0x40, 0x25]), Ok((37, 2)));
        assert_eq!(decode(&[0x80, 0, 0, 0x25]), Ok((37, 4)));
        assert_eq!(decode(&[0xc0, 0, 0, 0, 0, 0, 0, 0x25]), Ok((37, 8)));
    }

    #[test]
    fn length_boundaries() {
        assert_eq!(encode(63).unwrap(), [0x3f]);
        assert_eq!(encode(64).unwrap(), [0x40, 0x40]);
        assert_eq!(encode(16_383).unwrap(), [0x7f, 0xff]);
        assert_eq!(encode(16_384).unwrap(), [0x80, 0x00, 0x40, 0x00]);
        assert_eq!(encode((1 << 30) - 1).unwrap(), [0xbf, 0xff, 0xff, 0xff]);
        assert_eq!(encode(1 << 30).unwrap(), [0xc0, 0, 0, 0, 0x40, 0, 0, 0]);
        assert_eq!(encode(VARINT_MAX).unwrap(), [0xff; 8]);
        assert_eq!(decode(&[0xff; 8]), Ok((VARINT_MAX, 8)));
    }

    #[test]
    fn too_large_values_are_refused_without_writing() {
        let mut buf = [0u8; 8];
        let mut w = Writer::new(&mut buf);
        assert_eq!(w.put_varint(VARINT_MAX + 1), Err(WireError::VarintOverflow));
        assert_eq!(w.put_varint(u64::MAX), Err(WireError::VarintOverflow));
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn truncated_varints_are_errors() {
        assert_eq!(decode(&[]), Err(WireError::Truncated));
        assert_eq!(decode(&[0x40]), Err(WireError::Truncated));
        assert_eq!(decode(&[0x80, 0, 0]), Err(WireError::Truncated));
        assert_eq!(decode(&[0xc0, 0, 0, 0, 0, 0, 0]), Err(WireError::Truncated));
    }

    #[test]
    fn short_buffer_is_refused_without_writing() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        assert_eq!(w.put_varint(16_384), Err(WireError::BufferTooSmall));
        assert_eq!(w.len(), 0);
        assert_eq!(w.put_varint(16_383), Ok(()));
        assert_eq!(w.len(), 2);
    }

    proptest! {
        #[test]
        fn round_trip(v in 0..=VARINT_MAX) {
            let bytes = encode(v).unwrap();
            prop_assert_eq!(bytes.len(), varint_len(v));
            prop_assert_eq!(decode(&bytes), Ok((v, bytes.len())));
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..10)) {
            if let Ok((v, used)) = decode(&bytes) {
                prop_assert!(v <= VARINT_MAX);
                prop_assert!(used <= bytes.len());
            }
        }
    }
}
