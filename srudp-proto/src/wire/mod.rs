//! The wire format: datagrams (packets) and the frames inside Data packets.
//!
//! Everything here is sans-IO and zero-copy: parsers borrow from the
//! datagram, emitters write into a caller-provided buffer. No parser panics
//! on any input, and no emitter panics on any buffer; failures are reported
//! as [`WireError`]. The byte layouts are specified in `protocol-spec.md` §9
//! at the root of the workspace.
//!
//! * [`coding`]: big-endian integers and QUIC-style varints ([`Reader`],
//!   [`Writer`]).
//! * [`packet`]: the datagram types of a connection ([`Packet`]).
//! * [`packet::knock`]: the small probes sent to candidate addresses that have not
//!   answered yet ([`Knock`], [`KnockReply`]).
//! * [`frame`] and [`frame::ack`]: the frames carried in a Data packet's plaintext
//!   ([`Frame`], [`FrameIter`]).
//! * [`relay`]: the rendezvous service's datagrams ([`RelayData`], [`NatProbe`]).

pub mod coding;
pub mod frame;
pub mod packet;
pub mod relay;

pub use coding::varint::{varint_len, VARINT_MAX};
pub use coding::{Reader, Writer};
pub use frame::ack::{ack_frame_len, emit_ack, emit_ack_fields, AckFrame, AckRanges};
pub use frame::{
    AckFrequencyFrame, CloseFrame, Frame, FrameIter, StreamFrame, STREAM_FRAME_MAX_OVERHEAD,
    STREAM_FRAME_MIN_OVERHEAD,
};
pub use packet::knock::{Knock, KnockReply, KNOCK_REPLY_SIZE, KNOCK_SIZE, KNOCK_TOKEN_LEN};
pub use packet::{
    is_handshake_init_size, ConnectionId, CookieReply, DataHeader, HandshakeInit,
    HandshakeResponse, Packet, COOKIE_NONCE_LEN, COOKIE_REPLY_HEADER_LEN, DATA_HEADER_LEN,
    HANDSHAKE_INIT_HEADER_LEN, HANDSHAKE_INIT_MAC1_OFFSET, HANDSHAKE_INIT_MAC2_OFFSET,
    HANDSHAKE_RESPONSE_HEADER_LEN, MAC_LEN, MAX_DATA_PLAINTEXT,
};
pub use relay::{
    NatProbe, RelayData, MAX_RELAYED_INNER_SIZE, NAT_PROBE_SIZE, NAT_PROBE_TOKEN_LEN,
    RELAYED_HANDSHAKE_INIT_SIZE, RELAY_HEADER_LEN,
};

/// The protocol version carried in the first byte of every datagram.
pub const VERSION: u8 = 1;

/// The base datagram size, in bytes: the largest datagram of every kind
/// but a Data packet on a direct path, relay envelopes included, and the
/// largest Data packet until path MTU discovery finds that a bigger one
/// passes (spec §6.9, §9.2). Every path srudp uses must carry it.
pub const MAX_DATAGRAM_SIZE: usize = 1200;

/// The largest datagram accepted, in bytes: a Data packet on a direct path
/// whose MTU discovery found room for it (spec §6.9). 1472 is what an
/// Ethernet MTU of 1500 leaves for a UDP payload over IPv4; over IPv6 the
/// sender stops at [`MAX_UDP_PAYLOAD_SIZE_V6`].
pub const MAX_UDP_PAYLOAD_SIZE: usize = 1472;

/// The largest Data packet sent over IPv6: what an MTU of 1500 leaves
/// after the 40-byte IPv6 and the 8-byte UDP header.
pub const MAX_UDP_PAYLOAD_SIZE_V6: usize = 1452;

/// The most data bytes a sender puts in one STREAM / STREAM_FIN frame of a
/// Data packet of the base size ([`MAX_DATAGRAM_SIZE`]): a full packet
/// carries a frame of this size and a shorter second one (spec §6.3).
pub const MAX_STREAM_PAYLOAD: usize = 1024;

/// The most data bytes in any STREAM / STREAM_FIN frame a receiver accepts:
/// what a [`MAX_UDP_PAYLOAD_SIZE`] Data packet holds in one frame with the
/// shortest 2-byte-length header (1 + 1 + 2 bytes). A sender uses frames
/// longer than [`MAX_STREAM_PAYLOAD`] only in Data packets larger than the
/// base size, which go only to peers that advertised room for them
/// (spec §4.3, §6.9), so one frame fills such a packet.
pub const MAX_LARGE_STREAM_PAYLOAD: usize =
    MAX_UDP_PAYLOAD_SIZE - packet::DATA_HEADER_LEN - TAG_LEN - 4;

/// The exact size of every HandshakeInit datagram sent directly
/// (anti-amplification padding: a HandshakeResponse is never larger than the
/// init it answers). One carried in a relay envelope is
/// [`RELAYED_HANDSHAKE_INIT_SIZE`] bytes.
pub const HANDSHAKE_INIT_SIZE: usize = 1200;

/// The length of an AEAD (ChaCha20-Poly1305) authentication tag.
pub const TAG_LEN: usize = 16;

/// The largest number of ranges (first range included) in one ACK frame.
pub const MAX_ACK_RANGES: usize = 64;

/// The largest reason phrase in a CLOSE frame, in bytes.
pub const MAX_CLOSE_REASON: usize = 256;

/// Why a datagram or frame could not be parsed or emitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input ended before a field was complete.
    #[error("truncated input")]
    Truncated,
    /// The datagram's version byte is not [`VERSION`].
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// The datagram's type byte is not a known packet type.
    #[error("unknown packet type {0}")]
    UnknownPacketType(u8),
    /// A HandshakeInit names a handshake pattern we do not know.
    #[error("unknown handshake pattern {0}")]
    UnknownPattern(u8),
    /// A frame type we do not know.
    #[error("unknown frame type {0:#x}")]
    UnknownFrameType(u64),
    /// A value above `2^62 - 1` cannot be encoded as a varint.
    #[error("value too large for a varint")]
    VarintOverflow,
    /// A length field exceeds its limit or the bytes that remain (or, on
    /// emit, a field is longer than the format allows).
    #[error("invalid length field")]
    InvalidLength,
    /// A HandshakeInit datagram is not exactly the size of its path:
    /// [`HANDSHAKE_INIT_SIZE`] bytes direct, [`RELAYED_HANDSHAKE_INIT_SIZE`]
    /// inside a relay envelope.
    #[error("handshake init of {0} bytes (must be exactly {HANDSHAKE_INIT_SIZE}, or {RELAYED_HANDSHAKE_INIT_SIZE} relayed)")]
    InvalidHandshakeSize(usize),
    /// An ACK frame's ranges underflow below zero (or an ACK has no range).
    #[error("invalid ack ranges")]
    InvalidAckRanges,
    /// An ACK frame announces more ranges than [`MAX_ACK_RANGES`] allows
    /// (the value is the additional-range count read from the wire).
    #[error("too many ack ranges ({0} additional)")]
    TooManyAckRanges(u64),
    /// The output buffer cannot hold what is being emitted.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// A datagram exceeds [`MAX_DATAGRAM_SIZE`] ([`MAX_UDP_PAYLOAD_SIZE`]
    /// for a Data packet sent directly).
    #[error("datagram larger than its type allows ({MAX_DATAGRAM_SIZE} bytes, {MAX_UDP_PAYLOAD_SIZE} for direct data)")]
    TooLarge,
}
