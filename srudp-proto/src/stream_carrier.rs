//! The stream carrier (spec §12): srudp datagrams over a byte stream (a TCP
//! connection) where UDP does not pass. Each datagram travels as a frame,
//! its length as a 2-byte big-endian integer followed by its bytes, unchanged:
//! the same packets and Noise sessions as on UDP, so the carrier adds no
//! security and takes none away.
//!
//! The carrier is a property of a path: the adapter that owns the stream
//! encodes what the protocol would have sent to the path's address and feeds
//! every decoded datagram to the protocol as if it had arrived from that
//! address. No protocol logic lives here.
//!
//! Robustness: [`StreamFrameDecoder`] takes the stream's bytes in chunks of
//! any size, holds at most one partial frame ([`MAX_STREAM_FRAME_LEN`]
//! bytes) and never panics; a zero or oversized length is a
//! [`StreamFrameError`], after which the stream carries nothing more and
//! must be closed (a reader cannot find the next frame boundary).
//!
//! [`CarrierFallback`] decides when a client's server link moves to the
//! stream and back (spec §12.5); [`StreamTransport`] says how the adapter
//! opens the stream: TLS, an HTTP proxy (spec §12.6).

mod fallback;
mod transport;

pub use fallback::{Carrier, CarrierFallback, FallbackConfig, ServerRoute};
pub use transport::{authority, no_proxy_matches, HttpProxy, HttpProxyError, StreamTransport};

use crate::wire::MAX_UDP_PAYLOAD_SIZE;

/// Bytes of a frame's length prefix.
pub const STREAM_FRAME_HEADER_LEN: usize = 2;

/// The longest frame: a [`MAX_UDP_PAYLOAD_SIZE`] datagram (a Data packet
/// as large as path MTU discovery lets it be, spec §6.9) and its prefix.
pub const MAX_STREAM_FRAME_LEN: usize = STREAM_FRAME_HEADER_LEN + MAX_UDP_PAYLOAD_SIZE;

/// Why a stream carries no more frames. Both are fatal: the reader closes
/// the stream (spec §12.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamFrameError {
    /// A frame of length zero: no srudp datagram is empty.
    #[error("stream carrier: a frame of length 0")]
    Empty,
    /// A frame longer than [`MAX_UDP_PAYLOAD_SIZE`].
    #[error("stream carrier: a frame of {0} bytes, at most {MAX_UDP_PAYLOAD_SIZE}")]
    TooLong(usize),
}

/// The length prefix of a frame carrying a datagram of `datagram_len`
/// bytes: for writers that send the prefix and the datagram separately.
pub fn stream_frame_header(
    datagram_len: usize,
) -> Result<[u8; STREAM_FRAME_HEADER_LEN], StreamFrameError> {
    match datagram_len {
        0 => Err(StreamFrameError::Empty),
        n if n > MAX_UDP_PAYLOAD_SIZE => Err(StreamFrameError::TooLong(n)),
        // MAX_UDP_PAYLOAD_SIZE fits 16 bits.
        n => Ok((n as u16).to_be_bytes()),
    }
}

/// Appends the frame carrying `datagram` to `out`. A datagram the decoder
/// would refuse is refused here too, and `out` is left as it was.
pub fn encode_stream_frame(datagram: &[u8], out: &mut Vec<u8>) -> Result<(), StreamFrameError> {
    let header = stream_frame_header(datagram.len())?;
    out.reserve(header.len() + datagram.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(datagram);
    Ok(())
}

/// Cuts a stream's bytes back into datagrams, whatever the chunks the
/// stream delivers them in.
///
/// ```
/// use srudp_proto::stream_carrier::{encode_stream_frame, StreamFrameDecoder};
///
/// let mut stream = Vec::new();
/// encode_stream_frame(b"first", &mut stream).unwrap();
/// encode_stream_frame(b"second", &mut stream).unwrap();
///
/// let mut decoder = StreamFrameDecoder::new();
/// let mut datagrams = Vec::new();
/// for chunk in stream.chunks(3) {
///     let mut rest = chunk;
///     while let Some(datagram) = decoder.decode(&mut rest).unwrap() {
///         datagrams.push(datagram.to_vec());
///     }
/// }
/// assert_eq!(datagrams, [b"first".to_vec(), b"second".to_vec()]);
/// ```
#[derive(Debug, Clone)]
pub struct StreamFrameDecoder {
    /// The frame being read: its prefix, then its datagram.
    partial: Box<[u8; MAX_STREAM_FRAME_LEN]>,
    /// Bytes of `partial` filled.
    filled: usize,
    /// Set by the first malformed frame, and returned ever after.
    failed: Option<StreamFrameError>,
}

impl Default for StreamFrameDecoder {
    fn default() -> Self {
        StreamFrameDecoder::new()
    }
}

impl StreamFrameDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> StreamFrameDecoder {
        StreamFrameDecoder {
            partial: Box::new([0; MAX_STREAM_FRAME_LEN]),
            filled: 0,
            failed: None,
        }
    }

    /// Takes bytes from the front of `input` up to the end of the next
    /// complete frame and returns its datagram; `Ok(None)` once `input` is
    /// empty and no frame is complete (the bytes taken are kept for the
    /// next call). Call again with the rest of `input` until `Ok(None)`.
    ///
    /// A frame that lies whole in `input` is returned from it without a
    /// copy. After an error nothing more is taken and the same error is
    /// returned on every call: the stream must be closed.
    pub fn decode<'s, 'i: 's>(
        &'s mut self,
        input: &mut &'i [u8],
    ) -> Result<Option<&'s [u8]>, StreamFrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.filled == 0 {
            if let Some(datagram) = self.whole_frame_in(input)? {
                return Ok(Some(datagram));
            }
        }
        // Fill the prefix, then the datagram it announces.
        if self.filled < STREAM_FRAME_HEADER_LEN {
            self.take(input, STREAM_FRAME_HEADER_LEN);
            if self.filled < STREAM_FRAME_HEADER_LEN {
                return Ok(None);
            }
        }
        let len = self.fail_on(frame_len(&self.partial[..STREAM_FRAME_HEADER_LEN]))?;
        let end = STREAM_FRAME_HEADER_LEN + len;
        self.take(input, end);
        if self.filled < end {
            return Ok(None);
        }
        self.filled = 0;
        Ok(Some(&self.partial[STREAM_FRAME_HEADER_LEN..end]))
    }

    /// Bytes held of a frame not yet complete (at most
    /// [`MAX_STREAM_FRAME_LEN`]).
    pub fn buffered(&self) -> usize {
        self.filled
    }

    /// Whether the stream ended cleanly if it ends now: between frames, with
    /// no error (a stream that ends inside a frame was cut).
    pub fn at_frame_boundary(&self) -> bool {
        self.filled == 0 && self.failed.is_none()
    }

    /// The datagram of a frame that starts at the front of `input` and lies
    /// whole in it, taken from `input`.
    fn whole_frame_in<'a>(
        &mut self,
        input: &mut &'a [u8],
    ) -> Result<Option<&'a [u8]>, StreamFrameError> {
        let Some(header) = input.get(..STREAM_FRAME_HEADER_LEN) else {
            return Ok(None);
        };
        let len = self.fail_on(frame_len(header))?;
        let end = STREAM_FRAME_HEADER_LEN + len;
        if input.len() < end {
            return Ok(None);
        }
        let (frame, rest) = input.split_at(end);
        *input = rest;
        Ok(Some(&frame[STREAM_FRAME_HEADER_LEN..]))
    }

    /// Moves bytes from `input` into `partial` until it holds `upto`.
    fn take(&mut self, input: &mut &[u8], upto: usize) {
        let n = (upto - self.filled).min(input.len());
        self.partial[self.filled..self.filled + n].copy_from_slice(&input[..n]);
        self.filled += n;
        *input = &input[n..];
    }

    fn fail_on<T>(&mut self, r: Result<T, StreamFrameError>) -> Result<T, StreamFrameError> {
        if let Err(e) = r {
            self.failed = Some(e);
        }
        r
    }
}

/// The datagram length a 2-byte prefix announces, checked.
fn frame_len(header: &[u8]) -> Result<usize, StreamFrameError> {
    let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
    match len {
        0 => Err(StreamFrameError::Empty),
        n if n > MAX_UDP_PAYLOAD_SIZE => Err(StreamFrameError::TooLong(n)),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Everything `decoder` yields for `stream` fed in chunks of `sizes`
    /// (cycled), and the error that ended it, if any.
    fn decode_in_chunks(
        stream: &[u8],
        sizes: &[usize],
    ) -> (Vec<Vec<u8>>, Option<StreamFrameError>, StreamFrameDecoder) {
        let mut decoder = StreamFrameDecoder::new();
        let mut out = Vec::new();
        let mut rest = stream;
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (mut chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
            rest = tail;
            loop {
                match decoder.decode(&mut chunk) {
                    Ok(Some(d)) => out.push(d.to_vec()),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e), decoder),
                }
            }
            assert!(chunk.is_empty(), "Ok(None) only once the chunk is used up");
        }
        (out, None, decoder)
    }

    #[test]
    fn a_frame_is_a_big_endian_length_and_the_datagram() {
        let mut out = Vec::new();
        encode_stream_frame(&[0xaa; 300], &mut out).unwrap();
        assert_eq!(&out[..2], &[0x01, 0x2c]);
        assert_eq!(&out[2..], &[0xaa; 300][..]);
        assert_eq!(stream_frame_header(1200), Ok([0x04, 0xb0]));
    }

    #[test]
    fn the_encoder_refuses_what_the_decoder_would_refuse_and_writes_nothing() {
        let mut out = vec![7];
        assert_eq!(
            encode_stream_frame(&[], &mut out),
            Err(StreamFrameError::Empty)
        );
        assert_eq!(
            encode_stream_frame(&[0; MAX_UDP_PAYLOAD_SIZE + 1], &mut out),
            Err(StreamFrameError::TooLong(MAX_UDP_PAYLOAD_SIZE + 1))
        );
        assert_eq!(out, [7]);
        encode_stream_frame(&[1; MAX_UDP_PAYLOAD_SIZE], &mut out).unwrap();
        assert_eq!(out.len(), 1 + MAX_STREAM_FRAME_LEN);
    }

    #[test]
    fn datagrams_come_back_whole_whatever_the_chunking() {
        let datagrams: Vec<Vec<u8>> = [1, 2, 1200, 57, 1199, 3]
            .iter()
            .enumerate()
            .map(|(i, &n)| vec![i as u8 + 1; n])
            .collect();
        let mut stream = Vec::new();
        for d in &datagrams {
            encode_stream_frame(d, &mut stream).unwrap();
        }
        for sizes in [&[1][..], &[2], &[3, 1], &[1201, 5], &[4096], &[1202]] {
            let (out, err, decoder) = decode_in_chunks(&stream, sizes);
            assert_eq!(err, None);
            assert_eq!(out, datagrams, "chunks of {sizes:?}");
            assert!(decoder.at_frame_boundary());
        }
    }

    #[test]
    fn a_zero_length_closes_the_stream_and_stays_an_error() {
        let mut stream = Vec::new();
        encode_stream_frame(b"ok", &mut stream).unwrap();
        stream.extend_from_slice(&[0, 0]);
        encode_stream_frame(b"never read", &mut stream).unwrap();
        let (out, err, mut decoder) = decode_in_chunks(&stream, &[1]);
        assert_eq!(out, [b"ok".to_vec()]);
        assert_eq!(err, Some(StreamFrameError::Empty));
        let mut more: &[u8] = &[0, 1, 9];
        assert_eq!(decoder.decode(&mut more), Err(StreamFrameError::Empty));
        assert_eq!(more, [0, 1, 9], "nothing is taken after an error");
        assert!(!decoder.at_frame_boundary());
    }

    #[test]
    fn an_oversized_length_is_refused_before_any_of_its_bytes_are_buffered() {
        // 0x05c1 = 1473: the attacker announces one byte too many.
        for sizes in [&[1][..], &[64 * 1024]] {
            let mut stream = vec![0x05, 0xc1];
            stream.extend_from_slice(&[0; 1473]);
            let (out, err, decoder) = decode_in_chunks(&stream, sizes);
            assert!(out.is_empty());
            assert_eq!(err, Some(StreamFrameError::TooLong(1473)));
            assert!(decoder.buffered() <= STREAM_FRAME_HEADER_LEN);
        }
        let (_, err, _) = decode_in_chunks(&[0xff, 0xff], &[2]);
        assert_eq!(err, Some(StreamFrameError::TooLong(65535)));
    }

    #[test]
    fn a_stream_cut_inside_a_frame_is_not_at_a_boundary() {
        let mut stream = Vec::new();
        encode_stream_frame(&[5; 100], &mut stream).unwrap();
        for cut in [1, 2, 50, 101] {
            let (out, err, decoder) = decode_in_chunks(&stream[..cut], &[7]);
            assert!(out.is_empty() && err.is_none());
            assert_eq!(decoder.buffered(), cut);
            assert!(!decoder.at_frame_boundary());
        }
    }

    proptest! {
        #[test]
        fn any_datagrams_round_trip_through_any_chunking(
            lens in proptest::collection::vec(1usize..=MAX_UDP_PAYLOAD_SIZE, 0..12),
            sizes in proptest::collection::vec(1usize..3000, 1..8),
        ) {
            let datagrams: Vec<Vec<u8>> = lens
                .iter()
                .enumerate()
                .map(|(i, &n)| (0..n).map(|j| (i * 31 + j) as u8).collect())
                .collect();
            let mut stream = Vec::new();
            for d in &datagrams {
                encode_stream_frame(d, &mut stream).unwrap();
            }
            let (out, err, decoder) = decode_in_chunks(&stream, &sizes);
            prop_assert_eq!(err, None);
            prop_assert_eq!(out, datagrams);
            prop_assert!(decoder.at_frame_boundary());
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly_within_the_buffer_bound(
            stream in proptest::collection::vec(any::<u8>(), 0..5000),
            sizes in proptest::collection::vec(1usize..2000, 1..8),
        ) {
            let (out, _, decoder) = decode_in_chunks(&stream, &sizes);
            prop_assert!(decoder.buffered() <= MAX_STREAM_FRAME_LEN);
            for d in out {
                prop_assert!(!d.is_empty() && d.len() <= MAX_UDP_PAYLOAD_SIZE);
            }
        }
    }
}
