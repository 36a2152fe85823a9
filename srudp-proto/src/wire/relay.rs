//! The two datagrams of the rendezvous service (spec §9.3.6, §9.3.7):
//! [`RelayData`], an envelope a rendezvous server forwards between two peers
//! without being able to read it, and [`NatProbe`], the tiny packet of NAT
//! behaviour detection.
//!
//! Parsers borrow from the datagram and never panic; emitters write into a
//! caller's buffer and fail with [`WireError::BufferTooSmall`] rather than
//! write a partial datagram.

use super::coding::{Reader, Writer};
use super::{WireError, MAX_DATAGRAM_SIZE, VERSION};

/// Packet type byte of a [`RelayData`] envelope.
pub const TYPE_RELAY_DATA: u8 = 5;
/// Packet type byte of a [`NatProbe`].
pub const TYPE_NAT_PROBE: u8 = 6;

/// Bytes a [`RelayData`] envelope adds in front of the datagram it carries.
pub const RELAY_HEADER_LEN: usize = 10;
/// The largest datagram a relay envelope carries (1190 bytes): a connection
/// builds its packets toward its relay no larger than this (spec §11.5).
pub const MAX_RELAYED_INNER_SIZE: usize = MAX_DATAGRAM_SIZE - RELAY_HEADER_LEN;
/// The exact size of a HandshakeInit carried in a relay envelope (1190
/// bytes, padded like a direct one to fill its envelope to 1200).
pub const RELAYED_HANDSHAKE_INIT_SIZE: usize = MAX_RELAYED_INNER_SIZE;
/// Length of a [`NatProbe`] token.
pub const NAT_PROBE_TOKEN_LEN: usize = 16;
/// The exact size of a [`NatProbe`] datagram.
pub const NAT_PROBE_SIZE: usize = 2 + NAT_PROBE_TOKEN_LEN;

/// Whether `datagram` claims to be a [`RelayData`] envelope (version and type
/// bytes only; [`RelayData::parse`] does the checks).
pub fn is_relay_data(datagram: &[u8]) -> bool {
    datagram.starts_with(&[VERSION, TYPE_RELAY_DATA])
}

/// Whether `datagram` claims to be a [`NatProbe`].
pub fn is_nat_probe(datagram: &[u8]) -> bool {
    datagram.starts_with(&[VERSION, TYPE_NAT_PROBE])
}

/// A relay envelope: `version u8 | type u8 = 5 | session u64 | inner[rest]`.
///
/// `inner` is a complete srudp datagram (HandshakeInit, HandshakeResponse or
/// Data) of 1–[`MAX_RELAYED_INNER_SIZE`] (1190) bytes, so the envelope is at
/// most [`MAX_DATAGRAM_SIZE`]; end-to-end protected by the two peers; the server
/// only reads `session`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayData<'a> {
    /// The relay session the rendezvous server allotted to the two peers.
    pub session: u64,
    /// The datagram being relayed.
    pub inner: &'a [u8],
}

impl<'a> RelayData<'a> {
    /// Parses an envelope. Checks, in order: size ≤
    /// [`MAX_DATAGRAM_SIZE`] (`TooLarge`: a relay envelope is no larger than any other datagram, spec §11.5), version, type, a full
    /// header and a non-empty `inner` (`Truncated`).
    pub fn parse(datagram: &'a [u8]) -> Result<RelayData<'a>, WireError> {
        if datagram.len() > MAX_DATAGRAM_SIZE {
            return Err(WireError::TooLarge);
        }
        let mut r = Reader::new(datagram);
        let version = r.u8()?;
        if version != VERSION {
            return Err(WireError::UnsupportedVersion(version));
        }
        let ty = r.u8()?;
        if ty != TYPE_RELAY_DATA {
            return Err(WireError::UnknownPacketType(ty));
        }
        let session = r.u64()?;
        let inner = r.rest();
        if inner.is_empty() {
            return Err(WireError::Truncated);
        }
        Ok(RelayData { session, inner })
    }

    /// Writes the envelope; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        if self.inner.is_empty() || self.inner.len() > MAX_RELAYED_INNER_SIZE {
            return Err(WireError::InvalidLength);
        }
        let mut w = Writer::new(buf);
        w.put_u8(VERSION)?;
        w.put_u8(TYPE_RELAY_DATA)?;
        w.put_u64(self.session)?;
        w.put_bytes(self.inner)?;
        Ok(w.len())
    }

    /// Wraps, in place, the `inner_len`-byte datagram at the start of `buf` in
    /// an envelope for `session`; returns the envelope's length. Fails (and
    /// changes nothing) if `buf` cannot hold the envelope.
    pub fn wrap_in_place(
        session: u64,
        buf: &mut [u8],
        inner_len: usize,
    ) -> Result<usize, WireError> {
        if inner_len == 0 || inner_len > MAX_RELAYED_INNER_SIZE {
            return Err(WireError::InvalidLength);
        }
        let total = inner_len + RELAY_HEADER_LEN;
        if buf.len() < total {
            return Err(WireError::BufferTooSmall);
        }
        buf.copy_within(..inner_len, RELAY_HEADER_LEN);
        buf[0] = VERSION;
        buf[1] = TYPE_RELAY_DATA;
        buf[2..RELAY_HEADER_LEN].copy_from_slice(&session.to_be_bytes());
        Ok(total)
    }
}

/// A NAT probe: `version u8 | type u8 = 6 | token[16]`, exactly 18 bytes.
///
/// The token is a secret the rendezvous server announced over the client's
/// authenticated connection, so a probe carrying it can only come from the
/// server (or, in the other direction, from the client it told).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatProbe {
    /// The secret token.
    pub token: [u8; NAT_PROBE_TOKEN_LEN],
}

impl NatProbe {
    /// Parses a probe. Anything but exactly [`NAT_PROBE_SIZE`] bytes of the
    /// right version and type is an error.
    pub fn parse(datagram: &[u8]) -> Result<NatProbe, WireError> {
        if datagram.len() > NAT_PROBE_SIZE {
            return Err(WireError::TooLarge);
        }
        let mut r = Reader::new(datagram);
        let version = r.u8()?;
        if version != VERSION {
            return Err(WireError::UnsupportedVersion(version));
        }
        let ty = r.u8()?;
        if ty != TYPE_NAT_PROBE {
            return Err(WireError::UnknownPacketType(ty));
        }
        Ok(NatProbe { token: r.array()? })
    }

    /// Writes the probe; returns its length ([`NAT_PROBE_SIZE`]).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(buf);
        if w.remaining() < NAT_PROBE_SIZE {
            return Err(WireError::BufferTooSmall);
        }
        w.put_u8(VERSION)?;
        w.put_u8(TYPE_NAT_PROBE)?;
        w.put_bytes(&self.token)?;
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_data_literal_bytes_round_trip() {
        let bytes = [
            0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0xca, 0xfe, 0xba, 0xbe, 0x01, 0x03, 0xaa,
        ];
        let r = RelayData::parse(&bytes).unwrap();
        assert_eq!(r.session, 0xcafe_babe);
        assert_eq!(r.inner, &[0x01, 0x03, 0xaa]);
        let mut out = [0u8; 32];
        let n = r.emit(&mut out).unwrap();
        assert_eq!(&out[..n], &bytes);
    }

    #[test]
    fn relay_data_rejects_bad_input() {
        assert_eq!(RelayData::parse(&[]), Err(WireError::Truncated));
        assert_eq!(
            RelayData::parse(&[2, 5, 0, 0, 0, 0, 0, 0, 0, 1, 1]),
            Err(WireError::UnsupportedVersion(2))
        );
        assert_eq!(
            RelayData::parse(&[1, 3, 0, 0, 0, 0, 0, 0, 0, 1, 1]),
            Err(WireError::UnknownPacketType(3))
        );
        // Header only: nothing to relay.
        assert_eq!(
            RelayData::parse(&[1, 5, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(WireError::Truncated)
        );
        assert_eq!(
            RelayData::parse(&[1, 5, 0, 0, 0]),
            Err(WireError::Truncated)
        );
        // An envelope is a datagram like any other: 1200 bytes at most.
        let mut big = vec![0u8; 1201];
        big[..2].copy_from_slice(&[1, 5]);
        assert_eq!(RelayData::parse(&big), Err(WireError::TooLarge));
        big.pop();
        assert_eq!(RelayData::parse(&big).unwrap().inner.len(), 1190);
    }

    #[test]
    fn wrapping_in_place_equals_emitting() {
        let inner: Vec<u8> = (0..1190u32).map(|i| i as u8).collect();
        let mut emitted = [0u8; MAX_DATAGRAM_SIZE];
        let n = RelayData {
            session: 7,
            inner: &inner,
        }
        .emit(&mut emitted)
        .unwrap();
        let mut buf = [0u8; MAX_DATAGRAM_SIZE];
        buf[..1190].copy_from_slice(&inner);
        let m = RelayData::wrap_in_place(7, &mut buf, 1190).unwrap();
        assert_eq!((n, m), (1200, 1200));
        assert_eq!(emitted, buf);
        // A buffer one byte short is refused and left alone.
        let mut short = [9u8; MAX_DATAGRAM_SIZE - 1];
        assert_eq!(
            RelayData::wrap_in_place(7, &mut short, 1190),
            Err(WireError::BufferTooSmall)
        );
        assert!(short.iter().all(|&b| b == 9));
        // An inner datagram of more than 1190 bytes would make an envelope
        // over 1200: never emitted.
        let long = [1u8; 1191];
        let r = RelayData {
            session: 7,
            inner: &long,
        };
        assert_eq!(r.emit(&mut [0u8; 1300]), Err(WireError::InvalidLength));
        let mut room = [0u8; 1300];
        assert_eq!(
            RelayData::wrap_in_place(7, &mut room, 1191),
            Err(WireError::InvalidLength)
        );
    }

    #[test]
    fn nat_probe_literal_bytes_round_trip() {
        let mut bytes = [0u8; NAT_PROBE_SIZE];
        bytes[0] = 1;
        bytes[1] = 6;
        for (i, b) in bytes[2..].iter_mut().enumerate() {
            *b = 0xa0 + i as u8;
        }
        let p = NatProbe::parse(&bytes).unwrap();
        assert_eq!(p.token[0], 0xa0);
        assert_eq!(p.token[15], 0xaf);
        let mut out = [0u8; 64];
        assert_eq!(p.emit(&mut out), Ok(NAT_PROBE_SIZE));
        assert_eq!(&out[..NAT_PROBE_SIZE], &bytes);
        assert_eq!(
            NatProbe::parse(&bytes[..17]),
            Err(WireError::Truncated),
            "one byte short"
        );
        let mut long = bytes.to_vec();
        long.push(0);
        assert_eq!(NatProbe::parse(&long), Err(WireError::TooLarge));
        assert_eq!(
            p.emit(&mut [0u8; 17]),
            Err(WireError::BufferTooSmall),
            "never a partial probe"
        );
    }
}
