//! Fuzz target bodies, compiled only under `cfg(fuzzing)` (cargo-fuzz sets
//! it) and for this crate's own tests; never part of the public API.
//!
//! Each `fuzz/fuzz_targets/*.rs` is a one-line call into this module, so
//! the targets reach internals without making them public, and `cargo test`
//! replays every committed seed (`fuzz/corpus/<target>/seed-*`) through the
//! same code (see `seeds.rs`). Every target asserts more than "no panic":
//!
//! * [`packet`] — any datagram parses or fails cleanly; what parses re-emits
//!   to bytes that parse to the same packet.
//! * [`frames`] — the same for a Data packet's plaintext.
//! * [`endpoint`] — an endpoint with one established connection, fed
//!   arbitrary datagrams from arbitrary addresses (and, separately,
//!   authenticated packets with arbitrary frames, and with hostile ACK
//!   frames aimed at the packet numbers it sent): its state stays within
//!   every limit, and unless an input authenticated the connection still
//!   carries data intact.
//! * [`reassembler`] — the receive stream fed arbitrary (offset, bytes)
//!   frames and reads, checked against a model.
//! * [`rendezvous`] — a rendezvous connection's byte stream, cut into
//!   arbitrary pieces, through the message reader and parser; every message
//!   that parses re-emits to the same frame.
//! * [`ticket`] — a ticket (spec §11.10) as text, and the bytes under its
//!   base32: it parses or fails with a typed error; one that parses writes
//!   back to a ticket that parses to the same.
//! * [`stream_carrier`] — a stream carrier's bytes (spec §12), cut into
//!   arbitrary chunks: the decoder yields exactly what a one-pass reading
//!   of the whole stream yields, never holds more than one frame, and stops
//!   for good at the first malformed length.

mod endpoint_target;
mod reassembler_target;
#[cfg(test)]
mod seeds;

pub use endpoint_target::{endpoint, ConnectedPair, EndpointOp, CLIENT, SERVER};
pub use reassembler_target::reassembler;

use crate::rendezvous::message::{Message, MessageError, MessageReader, MAX_FRAME_LEN};
use crate::wire::{Frame, FrameIter, Packet, Writer, MAX_UDP_PAYLOAD_SIZE};

/// The ticket parser: the input as a ticket's text, and as the bytes its
/// base32 would carry; and the rendezvous address parser (`KEY@HOST:PORT`,
/// which tickets carry) on the same text.
pub fn ticket(data: &[u8]) {
    use crate::rendezvous::{RendezvousAddr, Ticket};
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(addr) = text.parse::<RendezvousAddr>() {
            let again = addr.to_string();
            assert_eq!(
                again.parse::<RendezvousAddr>().as_ref(),
                Ok(&addr),
                "{again}"
            );
        }
    }
    let round_trip = |t: Ticket| {
        let text = t.to_string();
        assert_eq!(text.parse::<Ticket>().as_ref(), Ok(&t), "{text}");
    };
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(t) = text.parse::<Ticket>() {
            round_trip(t);
        }
    }
    if let Ok(t) = Ticket::from_bytes_for_fuzzing(data) {
        round_trip(t);
    }
}

/// The stream carrier's decoder: the input's first byte picks chunk sizes,
/// the rest is the stream. What the decoder yields, chunk by chunk, must be
/// what a one-pass reading of the whole stream yields (the same datagrams,
/// the same error at the same place); each datagram re-encodes to the bytes
/// it came from; the decoder never buffers more than one frame.
pub fn stream_carrier(data: &[u8]) {
    use crate::stream_carrier::{
        encode_stream_frame, StreamFrameDecoder, StreamFrameError, MAX_STREAM_FRAME_LEN,
    };
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    // The model: read the whole stream in one pass.
    let mut expected = Vec::new();
    let mut expected_error = None;
    let mut at = 0;
    while stream.len() - at >= 2 {
        let len = usize::from(u16::from_be_bytes([stream[at], stream[at + 1]]));
        if len == 0 {
            expected_error = Some(StreamFrameError::Empty);
            break;
        }
        if len > MAX_UDP_PAYLOAD_SIZE {
            expected_error = Some(StreamFrameError::TooLong(len));
            break;
        }
        if stream.len() - at - 2 < len {
            break;
        }
        expected.push(&stream[at..at + 2 + len]);
        at += 2 + len;
    }
    // The decoder, fed chunks of 1 to 2 * MAX_STREAM_FRAME_LEN bytes.
    let mut decoder = StreamFrameDecoder::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut error = None;
    let mut rest = stream;
    let mut size = usize::from(seed) + 1;
    'chunks: while !rest.is_empty() {
        size = (size * 7 + usize::from(seed)) % (2 * MAX_STREAM_FRAME_LEN) + 1;
        let (mut chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        loop {
            match decoder.decode(&mut chunk) {
                Ok(Some(datagram)) => {
                    let mut frame = Vec::new();
                    encode_stream_frame(datagram, &mut frame).expect("a decoded datagram encodes");
                    got.push(frame);
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    assert_eq!(decoder.decode(&mut chunk), Err(e), "errors are sticky");
                    break 'chunks;
                }
            }
            assert!(decoder.buffered() <= MAX_STREAM_FRAME_LEN);
        }
    }
    assert_eq!(got, expected, "chunked decoding differs from one pass");
    assert_eq!(error, expected_error);
}

/// The rendezvous message parser, as a connection's stream delivers it: the
/// input is cut into pieces (sizes taken from the data itself) and fed to a
/// [`MessageReader`]; each complete message either fails with a typed error
/// or re-emits to the frame it was read from (less ignored trailing bytes).
pub fn rendezvous(data: &[u8]) {
    let mut reader = MessageReader::default();
    let mut rest = data;
    let mut frame = Vec::new();
    while let Some(&first) = rest.first() {
        let want = reader.want();
        let n = want.len().min(rest.len()).min(1 + usize::from(first % 61));
        want[..n].copy_from_slice(&rest[..n]);
        frame.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        match reader.advance(n) {
            Ok(None) => {}
            Ok(Some(message)) => {
                let mut out = [0u8; MAX_FRAME_LEN];
                let len = message.emit(&mut out).expect("a parsed message re-emits");
                assert_eq!(
                    Message::parse(&out[2..len]),
                    Ok(message.clone()),
                    "re-parse differs"
                );
                // Bytes after a message's last field are ignored (spec §11):
                // the re-emitted body is the original's, less such bytes —
                // and less the unknown bits of a trailing `flags` byte
                // (Register, Introduce), which is re-emitted with the known
                // bits alone.
                let body = &out[2..len];
                let original = &frame[2..];
                let flagged = matches!(
                    message,
                    Message::Register {
                        stream_only: true,
                        ..
                    } | Message::Introduce {
                        peer_stream_only: true,
                        ..
                    }
                );
                let same = original.starts_with(body)
                    || (flagged && {
                        let (head, flags) = body.split_at(body.len() - 1);
                        original.starts_with(head)
                            && original
                                .get(head.len())
                                .is_some_and(|&f| f & flags[0] == flags[0])
                    });
                assert!(same, "re-emitted body differs");
                frame.clear();
            }
            Err(MessageError::InvalidLength(_)) | Err(_) => frame.clear(),
        }
    }
}

/// The packet parser: parse, re-emit, parse again.
pub fn packet(data: &[u8]) {
    let Ok(p) = Packet::parse(data) else { return };
    let mut out = [0u8; MAX_UDP_PAYLOAD_SIZE];
    let n = match &p {
        Packet::HandshakeInit(h) => h.emit(&mut out),
        Packet::HandshakeResponse(h) => h.emit(&mut out),
        Packet::CookieReply(c) => c.emit(&mut out),
        Packet::Knock(k) => k.emit(&mut out),
        Packet::KnockReply(r) => r.emit(&mut out),
        Packet::Data(h, sealed) => h.emit(&mut out).map(|n| {
            out[n..n + sealed.len()].copy_from_slice(sealed);
            n + sealed.len()
        }),
    }
    .expect("a parsed packet re-emits");
    assert_eq!(Packet::parse(&out[..n]), Ok(p), "re-emitted packet differs");
    if !matches!(p, Packet::HandshakeInit(_)) {
        // Only an init's ignored bytes (reserved, padding) may change.
        assert_eq!(&out[..n], data);
    }
}

/// The frame parser: a plaintext is all valid frames or an error; valid
/// frames re-emit to bytes that parse to the same frames.
pub fn frames(data: &[u8]) {
    let parsed: Result<Vec<Frame<'_>>, _> = FrameIter::new(data).collect();
    let Ok(frames) = parsed else { return };
    let mut out = vec![0u8; data.len() + 64];
    let mut w = Writer::new(&mut out);
    for f in &frames {
        f.emit(&mut w).expect("a parsed frame re-emits");
    }
    let bytes = w.written().to_vec();
    let again: Vec<Frame<'_>> = FrameIter::new(&bytes)
        .collect::<Result<_, _>>()
        .expect("re-emitted frames parse");
    // Adjacent PADDING frames (a non-minimally encoded padding type before a
    // run of zeros) re-emit as one run of zeros, which parses as one frame.
    assert_eq!(merge_padding(again), merge_padding(frames));
    assert!(
        bytes.len() <= data.len(),
        "re-emission is never longer (minimal varints)"
    );
}

fn merge_padding(frames: Vec<Frame<'_>>) -> Vec<Frame<'_>> {
    let mut out: Vec<Frame<'_>> = Vec::with_capacity(frames.len());
    for f in frames {
        match (out.last_mut(), f) {
            (Some(Frame::Padding { len }), Frame::Padding { len: more }) => *len += more,
            (_, f) => out.push(f),
        }
    }
    out
}
