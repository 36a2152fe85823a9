//! Frames: the plaintext of a Data packet is a sequence of frames, each
//! starting with a varint type.
//!
//! | type | frame | body |
//! |------|-------|------|
//! | 0x00 | PADDING | none (a run of zero bytes is one [`Frame::Padding`]) |
//! | 0x01 | PING | none |
//! | 0x02 | ACK | see [`AckFrame`] |
//! | 0x03 | STREAM | `offset varint, length varint, data[length]` |
//! | 0x04 | STREAM_FIN | as STREAM; the stream ends at `offset + length` |
//! | 0x05 | MAX_DATA | `max varint` |
//! | 0x06 | CLOSE | `code varint, reason_len varint, reason[reason_len]` |
//! | 0x07 | PATH_CHALLENGE | `data[8]` |
//! | 0x08 | PATH_RESPONSE | `data[8]` |
//! | 0x09 | ACK_FREQUENCY | `sequence varint, threshold varint, max_delay_us varint` |
//!
//! Every emitter here is atomic: on error it writes nothing.

use std::iter::FusedIterator;

use super::coding::varint::{varint_len, VARINT_MAX};
use super::coding::{Reader, Writer};
use super::{
    WireError, MAX_CLOSE_REASON, MAX_DATAGRAM_SIZE, MAX_LARGE_STREAM_PAYLOAD, MAX_STREAM_PAYLOAD,
};

pub mod ack;

use ack::AckFrame;

/// Frame type of PADDING.
pub const FRAME_TYPE_PADDING: u64 = 0x00;
/// Frame type of PING.
pub const FRAME_TYPE_PING: u64 = 0x01;
/// Frame type of ACK.
pub const FRAME_TYPE_ACK: u64 = 0x02;
/// Frame type of STREAM.
pub const FRAME_TYPE_STREAM: u64 = 0x03;
/// Frame type of STREAM_FIN.
pub const FRAME_TYPE_STREAM_FIN: u64 = 0x04;
/// Frame type of MAX_DATA.
pub const FRAME_TYPE_MAX_DATA: u64 = 0x05;
/// Frame type of CLOSE.
pub const FRAME_TYPE_CLOSE: u64 = 0x06;
/// Frame type of PATH_CHALLENGE.
pub const FRAME_TYPE_PATH_CHALLENGE: u64 = 0x07;
/// Frame type of PATH_RESPONSE.
pub const FRAME_TYPE_PATH_RESPONSE: u64 = 0x08;
/// Frame type of ACK_FREQUENCY.
pub const FRAME_TYPE_ACK_FREQUENCY: u64 = 0x09;

/// The most bytes a STREAM frame adds around its data: type (1), offset
/// (up to 8) and length (up to 2, since length ≤
/// [`MAX_LARGE_STREAM_PAYLOAD`]).
pub const STREAM_FRAME_MAX_OVERHEAD: usize = 1 + 8 + 2;

/// The fewest bytes a STREAM frame adds around its data (offset < 64 and
/// length < 64).
pub const STREAM_FRAME_MIN_OVERHEAD: usize = 3;

/// One frame, borrowing from the packet plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// `len` bytes of padding (a run of zero bytes, coalesced).
    Padding {
        /// The number of bytes in the run.
        len: usize,
    },
    /// Elicits an acknowledgement; no body.
    Ping,
    /// Acknowledges packet numbers.
    Ack(AckFrame<'a>),
    /// Stream data (and possibly its end).
    Stream(StreamFrame<'a>),
    /// The absolute stream offset up to which the peer may send.
    MaxData(u64),
    /// Closes the connection.
    Close(CloseFrame<'a>),
    /// Asks the peer to echo these bytes in a PATH_RESPONSE.
    PathChallenge([u8; 8]),
    /// Echoes a PATH_CHALLENGE's bytes.
    PathResponse([u8; 8]),
    /// Tells the receiver how often to acknowledge (spec §6.2).
    AckFrequency(AckFrequencyFrame),
}

/// An ACK_FREQUENCY frame: the sender of ack-eliciting packets asks its peer
/// to acknowledge after `threshold` of them, or `max_delay_micros` after the
/// first unacknowledged one, whichever comes first (spec §6.2, §9.4.8).
///
/// `type varint (0x09) | sequence varint | threshold varint | max_delay_us varint`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckFrequencyFrame {
    /// Grows with every new request; a receiver ignores a frame whose
    /// sequence is not above the highest it has seen (a reordered old one).
    pub sequence: u64,
    /// Ack-eliciting packets after which an ACK goes out at once.
    pub threshold: u64,
    /// Longest the receiver should delay an ACK, in microseconds (it never
    /// waits longer than its own `max_ack_delay`).
    pub max_delay_micros: u64,
}

impl AckFrequencyFrame {
    fn parse(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(AckFrequencyFrame {
            sequence: r.varint()?,
            threshold: r.varint()?,
            max_delay_micros: r.varint()?,
        })
    }

    fn encoded_len(&self) -> usize {
        1 + varint_len(self.sequence)
            + varint_len(self.threshold)
            + varint_len(self.max_delay_micros)
    }
}

impl<'a> Frame<'a> {
    /// Whether receiving this frame obliges the receiver to send an ACK
    /// (everything except PADDING, ACK and CLOSE).
    pub fn is_ack_eliciting(&self) -> bool {
        !matches!(
            self,
            Frame::Padding { .. } | Frame::Ack(_) | Frame::Close(_)
        )
    }

    /// Parses one frame from `r`.
    pub fn parse(r: &mut Reader<'a>) -> Result<Frame<'a>, WireError> {
        let start = r.position();
        match r.varint()? {
            FRAME_TYPE_PADDING => {
                let zeros = r.peek_rest().iter().take_while(|&&b| b == 0).count();
                r.bytes(zeros)?;
                Ok(Frame::Padding {
                    len: r.position().saturating_sub(start),
                })
            }
            FRAME_TYPE_PING => Ok(Frame::Ping),
            FRAME_TYPE_ACK => AckFrame::parse(r).map(Frame::Ack),
            FRAME_TYPE_STREAM => StreamFrame::parse(r, false).map(Frame::Stream),
            FRAME_TYPE_STREAM_FIN => StreamFrame::parse(r, true).map(Frame::Stream),
            FRAME_TYPE_MAX_DATA => r.varint().map(Frame::MaxData),
            FRAME_TYPE_CLOSE => CloseFrame::parse(r).map(Frame::Close),
            FRAME_TYPE_PATH_CHALLENGE => r.array().map(Frame::PathChallenge),
            FRAME_TYPE_PATH_RESPONSE => r.array().map(Frame::PathResponse),
            FRAME_TYPE_ACK_FREQUENCY => AckFrequencyFrame::parse(r).map(Frame::AckFrequency),
            other => Err(WireError::UnknownFrameType(other)),
        }
    }

    /// The number of bytes [`emit`](Self::emit) writes for this frame.
    pub fn encoded_len(&self) -> usize {
        match self {
            Frame::Padding { len } => *len,
            Frame::Ping => 1,
            Frame::Ack(ack) => ack.encoded_len(),
            Frame::Stream(s) => StreamFrame::encoded_len(s.offset, s.data.len()),
            Frame::MaxData(max) => 1 + varint_len(*max),
            Frame::Close(c) => c.encoded_len(),
            Frame::PathChallenge(_) | Frame::PathResponse(_) => 9,
            Frame::AckFrequency(f) => f.encoded_len(),
        }
    }

    /// Writes this frame; on error nothing is written.
    ///
    /// `Padding { len }` writes `len` zero bytes. Values above `2^62 - 1`
    /// fail with [`WireError::VarintOverflow`].
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        match self {
            Frame::Ack(ack) => return ack.emit(w),
            Frame::Stream(s) => return s.emit(w),
            Frame::Close(c) => return c.emit(w),
            Frame::MaxData(max) if *max > VARINT_MAX => return Err(WireError::VarintOverflow),
            Frame::AckFrequency(f)
                if f.sequence.max(f.threshold).max(f.max_delay_micros) > VARINT_MAX =>
            {
                return Err(WireError::VarintOverflow)
            }
            _ => {}
        }
        w.ensure(self.encoded_len())?;
        match self {
            Frame::Padding { len } => w.put_zeros(*len),
            Frame::Ping => w.put_varint(FRAME_TYPE_PING),
            Frame::MaxData(max) => {
                w.put_varint(FRAME_TYPE_MAX_DATA)?;
                w.put_varint(*max)
            }
            Frame::PathChallenge(data) => {
                w.put_varint(FRAME_TYPE_PATH_CHALLENGE)?;
                w.put_bytes(data)
            }
            Frame::PathResponse(data) => {
                w.put_varint(FRAME_TYPE_PATH_RESPONSE)?;
                w.put_bytes(data)
            }
            Frame::AckFrequency(f) => {
                w.put_varint(FRAME_TYPE_ACK_FREQUENCY)?;
                w.put_varint(f.sequence)?;
                w.put_varint(f.threshold)?;
                w.put_varint(f.max_delay_micros)
            }
            Frame::Ack(_) | Frame::Stream(_) | Frame::Close(_) => Ok(()),
        }
    }
}

/// Iterates over the frames of a Data packet's plaintext. Yields each frame
/// in order; after the first error it yields that error and then stops.
#[derive(Debug, Clone)]
pub struct FrameIter<'a> {
    r: Reader<'a>,
    failed: bool,
}

impl<'a> FrameIter<'a> {
    /// Frames of `payload` (the decrypted plaintext of a Data packet).
    pub fn new(payload: &'a [u8]) -> Self {
        FrameIter {
            r: Reader::new(payload),
            failed: false,
        }
    }
}

impl<'a> Iterator for FrameIter<'a> {
    type Item = Result<Frame<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.is_empty() {
            return None;
        }
        let item = Frame::parse(&mut self.r);
        self.failed = item.is_err();
        Some(item)
    }
}

impl FusedIterator for FrameIter<'_> {}

/// A STREAM (or, with `fin`, STREAM_FIN) frame.
///
/// `type varint (0x03 | 0x04) | offset varint | length varint | data[length]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamFrame<'a> {
    /// The stream offset of the first data byte.
    pub offset: u64,
    /// Whether the stream ends at `offset + data.len()` (STREAM_FIN).
    pub fin: bool,
    /// The data, at most [`MAX_LARGE_STREAM_PAYLOAD`] bytes (a sender's
    /// limit is [`StreamFrame::max_payload_in`]).
    pub data: &'a [u8],
}

impl<'a> StreamFrame<'a> {
    fn parse(r: &mut Reader<'a>, fin: bool) -> Result<Self, WireError> {
        let offset = r.varint()?;
        let len = r.varint()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= MAX_LARGE_STREAM_PAYLOAD)
            .ok_or(WireError::InvalidLength)?;
        let frame = StreamFrame {
            offset,
            fin,
            data: r.bytes(len).map_err(|_| WireError::InvalidLength)?,
        };
        frame.checked_end().ok_or(WireError::InvalidLength)?;
        Ok(frame)
    }

    /// `offset + data.len()` if it is at most `2^62 - 1`.
    fn checked_end(&self) -> Option<u64> {
        let len = u64::try_from(self.data.len()).ok()?;
        self.offset
            .checked_add(len)
            .filter(|&end| end <= VARINT_MAX)
    }

    /// The stream offset just past the last data byte (`offset + len`,
    /// saturating; exact for every parsed frame).
    pub fn end(&self) -> u64 {
        self.checked_end().unwrap_or(u64::MAX)
    }

    /// The encoded size of a STREAM frame at `offset` carrying `len` bytes.
    pub fn encoded_len(offset: u64, len: usize) -> usize {
        let len_field = varint_len(u64::try_from(len).unwrap_or(u64::MAX));
        (1 + varint_len(offset) + len_field).saturating_add(len)
    }

    /// The most data bytes a sender puts in one STREAM frame of a Data
    /// packet of `datagram_size` bytes (spec §6.3): [`MAX_STREAM_PAYLOAD`]
    /// in a packet of the base size, so that every receiver takes it;
    /// [`MAX_LARGE_STREAM_PAYLOAD`] in a larger one, which only a peer that
    /// advertised room for it receives (spec §6.9).
    pub fn max_payload_in(datagram_size: usize) -> usize {
        if datagram_size > MAX_DATAGRAM_SIZE {
            MAX_LARGE_STREAM_PAYLOAD
        } else {
            MAX_STREAM_PAYLOAD
        }
    }

    /// The most data bytes a STREAM frame at `offset` can carry within
    /// `space` bytes (capped at [`MAX_STREAM_PAYLOAD`]), or `None` if not
    /// even an empty frame fits.
    pub fn max_data_len(offset: u64, space: usize) -> Option<usize> {
        let avail = space.checked_sub(1 + varint_len(offset))?;
        // Try a 2-byte length field first, then a 1-byte one for < 64 bytes.
        let two = avail.saturating_sub(2).min(MAX_STREAM_PAYLOAD);
        if two >= 64 {
            return Some(two);
        }
        avail.checked_sub(1).map(|n| n.min(63))
    }

    /// Writes this frame; on error nothing is written.
    ///
    /// Fails with [`WireError::InvalidLength`] if the data exceeds
    /// [`MAX_LARGE_STREAM_PAYLOAD`] or `offset + len` exceeds `2^62 - 1`.
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        Self::emit_filled(self.offset, self.data.len(), self.fin, w, |out| {
            out.copy_from_slice(self.data)
        })
    }

    /// Writes a STREAM frame at `offset` carrying `len` bytes that `fill`
    /// writes straight into the output (it gets exactly `len` bytes), so a
    /// sender copies its data once, from its buffer into the packet. Same
    /// checks as [`emit`](Self::emit); on error nothing is written and
    /// `fill` is not called.
    pub fn emit_filled(
        offset: u64,
        len: usize,
        fin: bool,
        w: &mut Writer<'_>,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), WireError> {
        let len_u64 = u64::try_from(len).map_err(|_| WireError::InvalidLength)?;
        if len > MAX_LARGE_STREAM_PAYLOAD
            || offset.checked_add(len_u64).is_none_or(|e| e > VARINT_MAX)
        {
            return Err(WireError::InvalidLength);
        }
        w.ensure(Self::encoded_len(offset, len))?;
        let ty = if fin {
            FRAME_TYPE_STREAM_FIN
        } else {
            FRAME_TYPE_STREAM
        };
        w.put_varint(ty)?;
        w.put_varint(offset)?;
        w.put_varint(len_u64)?;
        w.put_with(len, fill)
    }
}

/// A CLOSE frame.
///
/// `type varint (0x06) | code varint | reason_len varint | reason[reason_len]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The application or protocol error code.
    pub code: u64,
    /// A human-readable reason (UTF-8 expected, not enforced), at most
    /// [`MAX_CLOSE_REASON`] bytes on the wire.
    pub reason: &'a [u8],
}

impl<'a> CloseFrame<'a> {
    fn parse(r: &mut Reader<'a>) -> Result<Self, WireError> {
        let code = r.varint()?;
        let len = usize::try_from(r.varint()?)
            .ok()
            .filter(|&len| len <= MAX_CLOSE_REASON)
            .ok_or(WireError::InvalidLength)?;
        let reason = r.bytes(len).map_err(|_| WireError::InvalidLength)?;
        Ok(CloseFrame { code, reason })
    }

    /// The reason as text, if it is valid UTF-8.
    pub fn reason_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.reason).ok()
    }

    /// The reason as it goes on the wire: cut to [`MAX_CLOSE_REASON`] bytes,
    /// and if that cut splits a UTF-8 character, cut before that character.
    pub fn wire_reason(&self) -> &'a [u8] {
        if self.reason.len() <= MAX_CLOSE_REASON {
            // Fits: sent as it is, whatever its bytes (only a cut is
            // moved to a character boundary).
            return self.reason;
        }
        let Some(cut) = self.reason.get(..MAX_CLOSE_REASON) else {
            return self.reason;
        };
        match std::str::from_utf8(cut) {
            Err(e) if e.error_len().is_none() => cut.get(..e.valid_up_to()).unwrap_or(cut),
            _ => cut,
        }
    }

    /// The number of bytes [`emit`](Self::emit) writes.
    pub fn encoded_len(&self) -> usize {
        let reason = self.wire_reason().len();
        1 + varint_len(self.code) + varint_len(reason as u64) + reason
    }

    /// Writes this frame with its reason truncated as by
    /// [`wire_reason`](Self::wire_reason); on error nothing is written.
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        if self.code > VARINT_MAX {
            return Err(WireError::VarintOverflow);
        }
        let reason = self.wire_reason();
        w.ensure(self.encoded_len())?;
        w.put_varint(FRAME_TYPE_CLOSE)?;
        w.put_varint(self.code)?;
        w.put_varint(reason.len() as u64)?;
        w.put_bytes(reason)
    }
}

#[cfg(test)]
mod tests;
