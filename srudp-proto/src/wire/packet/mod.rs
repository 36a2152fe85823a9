//! Datagrams: every datagram is one packet, starting with `version: u8`
//! (= [`VERSION`]) and `type: u8`.
//!
//! | type | packet |
//! |------|--------|
//! | 1 | [`HandshakeInit`] |
//! | 2 | [`HandshakeResponse`] |
//! | 3 | Data ([`DataHeader`] + sealed payload) |
//! | 4 | [`CookieReply`] |
//! | 7 | [`Knock`] |
//! | 8 | [`KnockReply`] |

use std::fmt;

use super::coding::{Reader, Writer};

pub mod knock;

use super::{
    WireError, HANDSHAKE_INIT_SIZE, MAX_DATAGRAM_SIZE, MAX_RELAYED_INNER_SIZE,
    MAX_UDP_PAYLOAD_SIZE, RELAYED_HANDSHAKE_INIT_SIZE, TAG_LEN, VERSION,
};
use crate::crypto::{Cipher, HandshakePattern, Suite};
use knock::{Knock, KnockReply, TYPE_KNOCK, TYPE_KNOCK_REPLY};

/// Packet type byte of a [`HandshakeInit`].
pub const TYPE_HANDSHAKE_INIT: u8 = 1;
/// Packet type byte of a [`HandshakeResponse`].
pub const TYPE_HANDSHAKE_RESPONSE: u8 = 2;
/// Packet type byte of a Data packet.
pub const TYPE_DATA: u8 = 3;
/// Packet type byte of a [`CookieReply`].
pub const TYPE_COOKIE_REPLY: u8 = 4;

/// Bytes before the Noise message in a HandshakeInit.
pub const HANDSHAKE_INIT_HEADER_LEN: usize = 14;
/// Length of each of the two MACs at the end of a HandshakeInit.
pub const MAC_LEN: usize = 16;
/// Offset of `mac1` in a HandshakeInit: the last 32 bytes hold `mac1, mac2`.
pub const HANDSHAKE_INIT_MAC1_OFFSET: usize = HANDSHAKE_INIT_SIZE - 2 * MAC_LEN;
/// Offset of `mac2` in a HandshakeInit.
pub const HANDSHAKE_INIT_MAC2_OFFSET: usize = HANDSHAKE_INIT_SIZE - MAC_LEN;
/// Bytes before the Noise message in a HandshakeResponse.
pub const HANDSHAKE_RESPONSE_HEADER_LEN: usize = 18;
/// The length of a Data packet's cleartext header.
pub const DATA_HEADER_LEN: usize = 18;
/// The length of the nonce in a CookieReply.
pub const COOKIE_NONCE_LEN: usize = 24;
/// Bytes before the sealed cookie in a CookieReply.
pub const COOKIE_REPLY_HEADER_LEN: usize = 2 + 8 + COOKIE_NONCE_LEN;
/// The largest plaintext (frames) one Data packet can carry:
/// `MAX_DATAGRAM_SIZE - DATA_HEADER_LEN - TAG_LEN` = 1166 bytes.
pub const MAX_DATA_PLAINTEXT: usize = MAX_DATAGRAM_SIZE - DATA_HEADER_LEN - TAG_LEN;

/// A connection identifier: 8 bytes, big-endian on the wire. Each side picks
/// its own; packets are addressed by the receiver's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One parsed datagram, borrowing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// First handshake message (initiator → responder).
    HandshakeInit(HandshakeInit<'a>),
    /// Second handshake message (responder → initiator).
    HandshakeResponse(HandshakeResponse<'a>),
    /// A Data packet: its cleartext header and the sealed payload
    /// (ciphertext followed by the [`TAG_LEN`]-byte tag).
    Data(DataHeader, &'a [u8]),
    /// A stateless cookie challenge (responder → initiator, spec §4.8).
    CookieReply(CookieReply<'a>),
    /// A small probe of a candidate address before any HandshakeInit goes
    /// there (initiator → responder, spec §4.4).
    Knock(Knock),
    /// The answer to a [`Knock`] (responder → initiator).
    KnockReply(KnockReply),
}

impl<'a> Packet<'a> {
    /// Parses one datagram. Never panics; any malformed input is an error.
    pub fn parse(datagram: &'a [u8]) -> Result<Packet<'a>, WireError> {
        Self::parse_sized(
            datagram,
            MAX_DATAGRAM_SIZE,
            MAX_UDP_PAYLOAD_SIZE,
            HANDSHAKE_INIT_SIZE,
        )
    }

    /// Parses the datagram a relay envelope carried (spec §11.5): at most
    /// [`MAX_RELAYED_INNER_SIZE`] bytes, and a HandshakeInit exactly
    /// [`RELAYED_HANDSHAKE_INIT_SIZE`].
    pub fn parse_relayed(inner: &'a [u8]) -> Result<Packet<'a>, WireError> {
        Self::parse_sized(
            inner,
            MAX_RELAYED_INNER_SIZE,
            MAX_RELAYED_INNER_SIZE,
            RELAYED_HANDSHAKE_INIT_SIZE,
        )
    }

    /// `max_len` bounds every packet; `max_data_len`, at least as large,
    /// bounds a Data packet (spec §9.3.1 step 2).
    fn parse_sized(
        datagram: &'a [u8],
        max_len: usize,
        max_data_len: usize,
        init_size: usize,
    ) -> Result<Packet<'a>, WireError> {
        if datagram.len() > max_data_len {
            return Err(WireError::TooLarge);
        }
        let mut r = Reader::new(datagram);
        let version = r.u8()?;
        if version != VERSION {
            return Err(WireError::UnsupportedVersion(version));
        }
        let packet_type = r.u8()?;
        if packet_type != TYPE_DATA && datagram.len() > max_len {
            return Err(WireError::TooLarge);
        }
        match packet_type {
            TYPE_HANDSHAKE_INIT => {
                if datagram.len() != init_size {
                    return Err(WireError::InvalidHandshakeSize(datagram.len()));
                }
                HandshakeInit::parse_body(datagram.len(), r).map(Self::from)
            }
            TYPE_HANDSHAKE_RESPONSE => HandshakeResponse::parse_body(r).map(Self::from),
            TYPE_DATA => {
                let header = DataHeader {
                    dcid: ConnectionId(r.u64()?),
                    packet_number: r.u64()?,
                };
                let sealed = r.rest();
                if sealed.len() < TAG_LEN {
                    return Err(WireError::Truncated);
                }
                Ok(Packet::Data(header, sealed))
            }
            TYPE_COOKIE_REPLY => CookieReply::parse_body(r).map(Self::from),
            TYPE_KNOCK => Knock::parse_body(datagram.len(), r).map(Packet::Knock),
            TYPE_KNOCK_REPLY => KnockReply::parse_body(datagram.len(), r).map(Packet::KnockReply),
            other => Err(WireError::UnknownPacketType(other)),
        }
    }
}

impl<'a> From<HandshakeInit<'a>> for Packet<'a> {
    fn from(p: HandshakeInit<'a>) -> Self {
        Packet::HandshakeInit(p)
    }
}

impl<'a> From<HandshakeResponse<'a>> for Packet<'a> {
    fn from(p: HandshakeResponse<'a>) -> Self {
        Packet::HandshakeResponse(p)
    }
}

impl<'a> From<CookieReply<'a>> for Packet<'a> {
    fn from(p: CookieReply<'a>) -> Self {
        Packet::CookieReply(p)
    }
}

/// Writes `version` and `type`.
fn put_prefix(w: &mut Writer<'_>, ty: u8) -> Result<(), WireError> {
    w.put_u8(VERSION)?;
    w.put_u8(ty)
}

/// A HandshakeInit: exactly [`HANDSHAKE_INIT_SIZE`] bytes, zero-padded, or
/// [`RELAYED_HANDSHAKE_INIT_SIZE`] inside a relay envelope (spec §11.5).
///
/// `version u8 | type u8 = 1 | pattern u8 | reserved u8 = 0 |
/// sender_cid u64 | noise_len u16 | noise[noise_len] | zero padding |
/// mac1[16] | mac2[16]` (the MACs fill the last 32 bytes, spec §4.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeInit<'a> {
    /// The Noise pattern the initiator runs.
    pub pattern: HandshakePattern,
    /// The AEAD cipher the initiator chose (same byte as the pattern).
    pub cipher: Cipher,
    /// The initiator's connection ID (the responder addresses it with this).
    pub sender_cid: ConnectionId,
    /// The first Noise handshake message.
    pub noise: &'a [u8],
    /// MAC over the bytes before it (`0..1168` direct, `0..1158` relayed),
    /// keyed by the responder's public key.
    pub mac1: [u8; MAC_LEN],
    /// MAC over the bytes before it (`0..1184` direct, `0..1174` relayed),
    /// keyed by a cookie; zeros without one.
    pub mac2: [u8; MAC_LEN],
}

impl<'a> HandshakeInit<'a> {
    /// The largest Noise message a HandshakeInit can carry (1154 bytes).
    pub const fn max_noise_len() -> usize {
        HANDSHAKE_INIT_MAC1_OFFSET - HANDSHAKE_INIT_HEADER_LEN
    }

    fn parse_body(datagram_len: usize, mut r: Reader<'a>) -> Result<Self, WireError> {
        if !is_handshake_init_size(datagram_len) {
            return Err(WireError::InvalidHandshakeSize(datagram_len));
        }
        // The Noise message and its padding fill what the MACs leave.
        let room = datagram_len - HANDSHAKE_INIT_HEADER_LEN - 2 * MAC_LEN;
        let code = r.u8()?;
        let Suite { pattern, cipher } =
            Suite::from_wire(code).ok_or(WireError::UnknownPattern(code))?;
        let _reserved = r.u8()?;
        let sender_cid = ConnectionId(r.u64()?);
        let noise_len = usize::from(r.u16()?);
        if noise_len > room {
            return Err(WireError::InvalidLength);
        }
        let noise = r.bytes(noise_len)?;
        // Then padding, whose content is deliberately not checked (mac1
        // covers it), up to the two MACs.
        let _padding = r.bytes(room - noise_len)?;
        Ok(HandshakeInit {
            pattern,
            cipher,
            sender_cid,
            noise,
            mac1: r.array()?,
            mac2: r.array()?,
        })
    }

    /// Writes the whole datagram, padded with zeros to
    /// [`HANDSHAKE_INIT_SIZE`], and returns its length (always 1200).
    ///
    /// Fails with [`WireError::InvalidLength`] if the Noise message exceeds
    /// [`max_noise_len`](Self::max_noise_len), or
    /// [`WireError::BufferTooSmall`] if `buf` is shorter than 1200 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        self.emit_sized(buf, HANDSHAKE_INIT_SIZE)
    }

    /// Writes the whole datagram padded to `size`, which is
    /// [`HANDSHAKE_INIT_SIZE`] or, for a relay envelope,
    /// [`RELAYED_HANDSHAKE_INIT_SIZE`] ([`WireError::InvalidLength`]
    /// otherwise, or if the Noise message does not fit).
    pub fn emit_sized(&self, buf: &mut [u8], size: usize) -> Result<usize, WireError> {
        let noise_len = u16::try_from(self.noise.len()).map_err(|_| WireError::InvalidLength)?;
        if !is_handshake_init_size(size)
            || self.noise.len() > size - HANDSHAKE_INIT_HEADER_LEN - 2 * MAC_LEN
        {
            return Err(WireError::InvalidLength);
        }
        let mut w = Writer::new(buf);
        w.ensure(size)?;
        put_prefix(&mut w, TYPE_HANDSHAKE_INIT)?;
        w.put_u8(
            Suite {
                pattern: self.pattern,
                cipher: self.cipher,
            }
            .to_wire(),
        )?;
        w.put_u8(0)?;
        w.put_u64(self.sender_cid.0)?;
        w.put_u16(noise_len)?;
        w.put_bytes(self.noise)?;
        w.put_zeros((size - 2 * MAC_LEN).saturating_sub(w.len()))?;
        w.put_bytes(&self.mac1)?;
        w.put_bytes(&self.mac2)?;
        Ok(w.len())
    }
}

/// Whether `len` is one of the two sizes a HandshakeInit comes in: direct
/// or inside a relay envelope.
pub fn is_handshake_init_size(len: usize) -> bool {
    len == HANDSHAKE_INIT_SIZE || len == RELAYED_HANDSHAKE_INIT_SIZE
}

/// A HandshakeResponse.
///
/// `version u8 | type u8 = 2 | initiator_cid u64 | responder_cid u64 |
/// noise[rest of datagram, non-empty]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeResponse<'a> {
    /// The initiator's connection ID, echoed from the HandshakeInit.
    pub initiator_cid: ConnectionId,
    /// The responder's connection ID (the initiator addresses it with this).
    pub responder_cid: ConnectionId,
    /// The second Noise handshake message.
    pub noise: &'a [u8],
}

impl<'a> HandshakeResponse<'a> {
    /// The largest Noise message a HandshakeResponse can carry (1182 bytes).
    pub const fn max_noise_len() -> usize {
        MAX_DATAGRAM_SIZE - HANDSHAKE_RESPONSE_HEADER_LEN
    }

    fn parse_body(mut r: Reader<'a>) -> Result<Self, WireError> {
        let initiator_cid = ConnectionId(r.u64()?);
        let responder_cid = ConnectionId(r.u64()?);
        let noise = r.rest();
        if noise.is_empty() {
            return Err(WireError::Truncated);
        }
        Ok(HandshakeResponse {
            initiator_cid,
            responder_cid,
            noise,
        })
    }

    /// Writes the whole datagram and returns its length.
    ///
    /// Fails with [`WireError::InvalidLength`] if the Noise message is empty,
    /// [`WireError::TooLarge`] if the datagram would exceed
    /// [`MAX_DATAGRAM_SIZE`], or [`WireError::BufferTooSmall`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        if self.noise.is_empty() {
            return Err(WireError::InvalidLength);
        }
        if self.noise.len() > Self::max_noise_len() {
            return Err(WireError::TooLarge);
        }
        let mut w = Writer::new(buf);
        w.ensure(HANDSHAKE_RESPONSE_HEADER_LEN + self.noise.len())?;
        put_prefix(&mut w, TYPE_HANDSHAKE_RESPONSE)?;
        w.put_u64(self.initiator_cid.0)?;
        w.put_u64(self.responder_cid.0)?;
        w.put_bytes(self.noise)?;
        Ok(w.len())
    }
}

/// The cleartext header of a Data packet; the sealed payload follows it.
///
/// `version u8 | type u8 = 3 | dcid u64 | packet_number u64 |
/// sealed[rest, ≥ TAG_LEN]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataHeader {
    /// The receiver's connection ID.
    pub dcid: ConnectionId,
    /// The packet number (also the AEAD nonce counter).
    pub packet_number: u64,
}

impl DataHeader {
    /// The header's [`DATA_HEADER_LEN`] bytes (also usable as AEAD
    /// associated data).
    pub fn to_bytes(&self) -> [u8; DATA_HEADER_LEN] {
        let mut out = [0u8; DATA_HEADER_LEN];
        let mut w = Writer::new(&mut out);
        // Cannot fail: exactly DATA_HEADER_LEN bytes into a buffer that size.
        let _ = put_prefix(&mut w, TYPE_DATA)
            .and_then(|()| w.put_u64(self.dcid.0))
            .and_then(|()| w.put_u64(self.packet_number));
        out
    }

    /// Writes only the header and returns [`DATA_HEADER_LEN`]; the caller
    /// appends the sealed payload (at least [`TAG_LEN`] bytes, and at most
    /// `MAX_UDP_PAYLOAD_SIZE - DATA_HEADER_LEN` on a direct path whose MTU
    /// discovery found room, `MAX_DATAGRAM_SIZE - DATA_HEADER_LEN` otherwise).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(buf);
        w.put_bytes(&self.to_bytes())?;
        Ok(w.len())
    }
}

/// A CookieReply: the responder's answer to a HandshakeInit while under
/// load (spec §4.8); the initiator resends its init with `mac2`.
///
/// `version u8 | type u8 = 4 | initiator_cid u64 | nonce[24] |
/// sealed_cookie[rest, ≥ TAG_LEN]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieReply<'a> {
    /// The connection ID from the HandshakeInit this answers.
    pub initiator_cid: ConnectionId,
    /// The nonce the cookie was sealed with.
    pub nonce: [u8; COOKIE_NONCE_LEN],
    /// The sealed cookie (ciphertext followed by the tag).
    pub sealed_cookie: &'a [u8],
}

impl<'a> CookieReply<'a> {
    fn parse_body(mut r: Reader<'a>) -> Result<Self, WireError> {
        let initiator_cid = ConnectionId(r.u64()?);
        let nonce = r.array()?;
        let sealed_cookie = r.rest();
        if sealed_cookie.len() < TAG_LEN {
            return Err(WireError::Truncated);
        }
        Ok(CookieReply {
            initiator_cid,
            nonce,
            sealed_cookie,
        })
    }

    /// Writes the whole datagram and returns its length.
    ///
    /// Fails with [`WireError::InvalidLength`] if the sealed cookie is shorter
    /// than [`TAG_LEN`], [`WireError::TooLarge`] if the datagram would exceed
    /// [`MAX_DATAGRAM_SIZE`], or [`WireError::BufferTooSmall`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        if self.sealed_cookie.len() < TAG_LEN {
            return Err(WireError::InvalidLength);
        }
        if self.sealed_cookie.len() > MAX_DATAGRAM_SIZE - COOKIE_REPLY_HEADER_LEN {
            return Err(WireError::TooLarge);
        }
        let mut w = Writer::new(buf);
        w.ensure(COOKIE_REPLY_HEADER_LEN + self.sealed_cookie.len())?;
        put_prefix(&mut w, TYPE_COOKIE_REPLY)?;
        w.put_u64(self.initiator_cid.0)?;
        w.put_bytes(&self.nonce)?;
        w.put_bytes(self.sealed_cookie)?;
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests;
