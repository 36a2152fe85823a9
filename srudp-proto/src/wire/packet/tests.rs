//! Packet layouts, as the spec states them.

use super::*;
use crate::wire::RELAYED_HANDSHAKE_INIT_SIZE;
use proptest::prelude::*;

/// A HandshakeInit datagram: the given prefix, zero-padded to 1200 bytes.
fn padded(prefix: &[u8]) -> Vec<u8> {
    let mut dg = prefix.to_vec();
    dg.resize(HANDSHAKE_INIT_SIZE, 0);
    dg
}

const INIT_PREFIX: [u8; 17] = [
    0x01, // version 1
    0x01, // type 1 = HandshakeInit
    0x01, // pattern 1 = IK
    0x00, // reserved
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // sender_cid
    0x00, 0x03, // noise_len = 3
    0xaa, 0xbb, 0xcc, // noise
];

#[test]
fn handshake_init_layout() {
    let dg = padded(&INIT_PREFIX);
    let expected = HandshakeInit {
        pattern: HandshakePattern::IK,
        cipher: Cipher::ChaChaPoly,
        sender_cid: ConnectionId(0x0102_0304_0506_0708),
        noise: &[0xaa, 0xbb, 0xcc],
        mac1: [0; MAC_LEN],
        mac2: [0; MAC_LEN],
    };
    assert_eq!(Packet::parse(&dg), Ok(Packet::HandshakeInit(expected)));

    let mut out = [0xffu8; 1500];
    assert_eq!(expected.emit(&mut out), Ok(HANDSHAKE_INIT_SIZE));
    assert_eq!(&out[..HANDSHAKE_INIT_SIZE], &dg[..]);
}

#[test]
fn a_relayed_handshake_init_is_1190_bytes_and_a_direct_one_1200() {
    // The same fields, 10 fewer bytes of padding, the MACs still last.
    let mut dg = INIT_PREFIX.to_vec();
    dg.resize(RELAYED_HANDSHAKE_INIT_SIZE, 0);
    dg[1158..1174].copy_from_slice(&[0x11; 16]);
    dg[1174..1190].copy_from_slice(&[0x22; 16]);
    let Ok(Packet::HandshakeInit(init)) = Packet::parse_relayed(&dg) else {
        panic!("a 1190-byte init parses inside an envelope");
    };
    assert_eq!(init.noise, &[0xaa, 0xbb, 0xcc]);
    assert_eq!((init.mac1, init.mac2), ([0x11; 16], [0x22; 16]));
    let mut out = [0xffu8; 1500];
    assert_eq!(
        init.emit_sized(&mut out, RELAYED_HANDSHAKE_INIT_SIZE),
        Ok(1190)
    );
    assert_eq!(&out[..1190], &dg[..], "re-emitted byte for byte");
    // Each size belongs to its path.
    assert_eq!(
        Packet::parse(&dg),
        Err(WireError::InvalidHandshakeSize(1190)),
        "a direct init of 1190 bytes"
    );
    let direct = padded(&INIT_PREFIX);
    assert_eq!(
        Packet::parse_relayed(&direct),
        Err(WireError::TooLarge),
        "nothing over 1190 bytes inside an envelope"
    );
    let mut short = dg.clone();
    short.pop();
    assert_eq!(
        Packet::parse_relayed(&short),
        Err(WireError::InvalidHandshakeSize(1189))
    );
    // noise_len 1145 is one more than a relayed init holds.
    let mut overlong = dg.clone();
    overlong[12..14].copy_from_slice(&1145u16.to_be_bytes());
    assert_eq!(
        Packet::parse_relayed(&overlong),
        Err(WireError::InvalidLength)
    );
    let big = [0u8; 1145];
    let too_big = HandshakeInit {
        noise: &big,
        ..init
    };
    assert_eq!(
        too_big.emit_sized(&mut out, RELAYED_HANDSHAKE_INIT_SIZE),
        Err(WireError::InvalidLength)
    );
    assert_eq!(
        init.emit_sized(&mut out, 1199),
        Err(WireError::InvalidLength)
    );
    // Other packets inside an envelope: up to 1190 bytes.
    let mut data = vec![0u8; 1191];
    data[..2].copy_from_slice(&[0x01, 0x03]);
    assert_eq!(Packet::parse_relayed(&data), Err(WireError::TooLarge));
    data.pop();
    assert!(matches!(Packet::parse_relayed(&data), Ok(Packet::Data(..))));
}

#[test]
fn handshake_init_macs_fill_the_last_32_bytes() {
    let mut dg = padded(&INIT_PREFIX);
    dg[1167] = 0xee; // last padding byte
    dg[1168..1184].copy_from_slice(&[0x11; 16]);
    dg[1184..1200].copy_from_slice(&[0x22; 16]);
    let Ok(Packet::HandshakeInit(init)) = Packet::parse(&dg) else {
        panic!("should parse");
    };
    assert_eq!(init.mac1, [0x11; 16]);
    assert_eq!(init.mac2, [0x22; 16]);
    assert_eq!(HANDSHAKE_INIT_MAC1_OFFSET, 1168);
    assert_eq!(HANDSHAKE_INIT_MAC2_OFFSET, 1184);
    let mut out = [0u8; HANDSHAKE_INIT_SIZE];
    init.emit(&mut out).unwrap();
    dg[1167] = 0;
    assert_eq!(&out[..], &dg[..], "re-emitted with zero padding, same MACs");
}

#[test]
fn handshake_init_must_be_exactly_1200_bytes() {
    let short = &padded(&INIT_PREFIX)[..1199];
    assert_eq!(
        Packet::parse(short),
        Err(WireError::InvalidHandshakeSize(1199))
    );
    assert_eq!(
        Packet::parse(&INIT_PREFIX),
        Err(WireError::InvalidHandshakeSize(17))
    );
    assert_eq!(
        Packet::parse(&[0x01, 0x01]),
        Err(WireError::InvalidHandshakeSize(2))
    );
    let mut long = padded(&INIT_PREFIX);
    long.push(0);
    assert_eq!(Packet::parse(&long), Err(WireError::TooLarge));
}

#[test]
fn handshake_init_ignores_reserved_byte_and_padding_content() {
    let mut dg = padded(&INIT_PREFIX);
    dg[3] = 0x7f;
    dg[1100] = 0x55;
    let Ok(Packet::HandshakeInit(init)) = Packet::parse(&dg) else {
        panic!("should parse");
    };
    assert_eq!(init.noise, &[0xaa, 0xbb, 0xcc]);
    // Re-emitting normalises both to zero.
    let mut out = [0u8; HANDSHAKE_INIT_SIZE];
    init.emit(&mut out).unwrap();
    assert_eq!(&out[..], &padded(&INIT_PREFIX)[..]);
}

#[test]
fn handshake_init_rejects_unknown_pattern_and_overlong_noise() {
    let mut dg = padded(&INIT_PREFIX);
    dg[2] = 0x04;
    assert_eq!(Packet::parse(&dg), Err(WireError::UnknownPattern(4)));
    // 2 and 3 are NK and IK with AES-GCM.
    dg[2] = 0x03;
    let Ok(Packet::HandshakeInit(init)) = Packet::parse(&dg) else {
        panic!("code 3 parses");
    };
    assert_eq!(
        (init.pattern, init.cipher),
        (HandshakePattern::IK, Cipher::AesGcm)
    );
    let mut out = [0u8; HANDSHAKE_INIT_SIZE];
    init.emit(&mut out).unwrap();
    assert_eq!(out[2], 0x03, "emitted with the same code");

    // noise_len = 1155: one more than fits between the 14-byte header and
    // the MACs.
    let mut dg = padded(&INIT_PREFIX);
    dg[12..14].copy_from_slice(&[0x04, 0x83]);
    assert_eq!(Packet::parse(&dg), Err(WireError::InvalidLength));
    // noise_len = 1154 fills the space exactly.
    dg[12..14].copy_from_slice(&[0x04, 0x82]);
    let Ok(Packet::HandshakeInit(init)) = Packet::parse(&dg) else {
        panic!("should parse");
    };
    assert_eq!(init.noise.len(), HandshakeInit::max_noise_len());
}

#[test]
fn handshake_init_emit_errors() {
    let big = [0u8; 1155];
    let init = HandshakeInit {
        pattern: HandshakePattern::NK,
        cipher: Cipher::ChaChaPoly,
        sender_cid: ConnectionId(1),
        noise: &big,
        mac1: [1; MAC_LEN],
        mac2: [2; MAC_LEN],
    };
    let mut out = [0u8; 1200];
    assert_eq!(init.emit(&mut out), Err(WireError::InvalidLength));
    let init = HandshakeInit {
        noise: &big[..1154],
        ..init
    };
    assert_eq!(init.emit(&mut out), Ok(1200));
    assert_eq!(init.emit(&mut out[..1199]), Err(WireError::BufferTooSmall));
}

const RESPONSE: [u8; 21] = [
    0x01, // version 1
    0x02, // type 2 = HandshakeResponse
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // initiator_cid
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, // responder_cid
    0xde, 0xad, 0x01, // noise
];

#[test]
fn handshake_response_layout() {
    let expected = HandshakeResponse {
        initiator_cid: ConnectionId(0x0102_0304_0506_0708),
        responder_cid: ConnectionId(0x1112_1314_1516_1718),
        noise: &[0xde, 0xad, 0x01],
    };
    assert_eq!(
        Packet::parse(&RESPONSE),
        Ok(Packet::HandshakeResponse(expected))
    );
    let mut out = [0u8; 64];
    assert_eq!(expected.emit(&mut out), Ok(RESPONSE.len()));
    assert_eq!(&out[..RESPONSE.len()], &RESPONSE);
}

#[test]
fn handshake_response_needs_noise_and_fits_a_datagram() {
    assert_eq!(Packet::parse(&RESPONSE[..18]), Err(WireError::Truncated));
    assert_eq!(Packet::parse(&RESPONSE[..17]), Err(WireError::Truncated));
    let empty = HandshakeResponse {
        initiator_cid: ConnectionId(1),
        responder_cid: ConnectionId(2),
        noise: &[],
    };
    let mut out = [0u8; 1500];
    assert_eq!(empty.emit(&mut out), Err(WireError::InvalidLength));
    let big = [7u8; 1183];
    let too_big = HandshakeResponse {
        noise: &big,
        ..empty
    };
    assert_eq!(too_big.emit(&mut out), Err(WireError::TooLarge));
    let max = HandshakeResponse {
        noise: &big[..1182],
        ..empty
    };
    assert_eq!(max.emit(&mut out), Ok(1200));
    assert_eq!(max.emit(&mut out[..1199]), Err(WireError::BufferTooSmall));
}

const DATA: [u8; 34] = [
    0x01, // version 1
    0x03, // type 3 = Data
    0xca, 0xfe, 0xba, 0xbe, 0x00, 0x00, 0x00, 0x01, // dcid
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // packet_number = 256
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, // sealed: 16-byte tag only
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];

#[test]
fn data_layout() {
    let header = DataHeader {
        dcid: ConnectionId(0xcafe_babe_0000_0001),
        packet_number: 256,
    };
    assert_eq!(Packet::parse(&DATA), Ok(Packet::Data(header, &DATA[18..])));
    assert_eq!(header.to_bytes(), DATA[..DATA_HEADER_LEN]);
    let mut out = [0u8; 34];
    assert_eq!(header.emit(&mut out), Ok(DATA_HEADER_LEN));
    out[DATA_HEADER_LEN..].copy_from_slice(&DATA[DATA_HEADER_LEN..]);
    assert_eq!(out, DATA);
    assert_eq!(header.emit(&mut out[..17]), Err(WireError::BufferTooSmall));
}

#[test]
fn data_needs_a_full_tag() {
    assert_eq!(Packet::parse(&DATA[..33]), Err(WireError::Truncated));
    assert_eq!(Packet::parse(&DATA[..18]), Err(WireError::Truncated));
    assert_eq!(Packet::parse(&DATA[..10]), Err(WireError::Truncated));
    let mut max = vec![0u8; MAX_DATAGRAM_SIZE];
    max[..DATA_HEADER_LEN].copy_from_slice(&DATA[..DATA_HEADER_LEN]);
    assert!(matches!(Packet::parse(&max), Ok(Packet::Data(_, sealed)) if sealed.len() == 1182));
    assert_eq!(MAX_DATA_PLAINTEXT, 1166);
    // A Data packet may be larger, up to what path MTU discovery can reach
    // (spec §6.9, §9.3.1 step 2); one byte more is too large.
    max.resize(MAX_UDP_PAYLOAD_SIZE, 0);
    assert!(matches!(Packet::parse(&max), Ok(Packet::Data(_, sealed)) if sealed.len() == 1454));
    max.push(0);
    assert_eq!(Packet::parse(&max), Err(WireError::TooLarge));
    // Relayed, it stays within the envelope's 1190 bytes.
    max.truncate(MAX_RELAYED_INNER_SIZE + 1);
    assert_eq!(Packet::parse_relayed(&max), Err(WireError::TooLarge));
}

#[test]
fn cookie_reply_layout() {
    let mut dg = vec![
        0x01, // version 1
        0x04, // type 4 = CookieReply
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // initiator_cid
    ];
    dg.extend(0x20..0x38u8); // nonce: 24 bytes
    dg.extend(0x40..0x51u8); // sealed cookie: 17 bytes
    let expected = CookieReply {
        initiator_cid: ConnectionId(0x0102_0304_0506_0708),
        nonce: core::array::from_fn(|i| 0x20 + i as u8),
        sealed_cookie: &dg[34..],
    };
    assert_eq!(Packet::parse(&dg), Ok(Packet::CookieReply(expected)));
    let mut out = [0u8; 51];
    assert_eq!(expected.emit(&mut out), Ok(51));
    assert_eq!(&out[..], &dg[..]);

    assert_eq!(Packet::parse(&dg[..49]), Err(WireError::Truncated));
    assert_eq!(Packet::parse(&dg[..20]), Err(WireError::Truncated));
    let short = CookieReply {
        sealed_cookie: &dg[..15],
        ..expected
    };
    assert_eq!(short.emit(&mut out), Err(WireError::InvalidLength));
    assert_eq!(
        expected.emit(&mut out[..50]),
        Err(WireError::BufferTooSmall)
    );
    let big = [0u8; 1167];
    let too_big = CookieReply {
        sealed_cookie: &big,
        ..expected
    };
    assert_eq!(too_big.emit(&mut [0u8; 1500]), Err(WireError::TooLarge));
}

#[test]
fn version_and_type_are_checked_first() {
    assert_eq!(Packet::parse(&[]), Err(WireError::Truncated));
    assert_eq!(Packet::parse(&[0x01]), Err(WireError::Truncated));
    assert_eq!(
        Packet::parse(&[0x02, 0x03]),
        Err(WireError::UnsupportedVersion(2))
    );
    assert_eq!(
        Packet::parse(&[0x00, 0x01]),
        Err(WireError::UnsupportedVersion(0))
    );
    assert_eq!(
        Packet::parse(&[0x01, 0x00]),
        Err(WireError::UnknownPacketType(0))
    );
    assert_eq!(
        Packet::parse(&[0x01, 0x05, 0, 0]),
        Err(WireError::UnknownPacketType(5))
    );
    assert_eq!(
        Packet::parse(&[0x01, 0x09, 0, 0]),
        Err(WireError::UnknownPacketType(9))
    );
    assert_eq!(Packet::parse(&[0u8; 1473]), Err(WireError::TooLarge));
    // Only a Data packet may exceed 1200 bytes: any other type is too
    // large at 1201, and its version is checked first.
    let mut big = vec![0u8; 1201];
    assert_eq!(Packet::parse(&big), Err(WireError::UnsupportedVersion(0)));
    big[0] = 0x01;
    for t in [1u8, 2, 4, 7, 8, 9] {
        big[1] = t;
        assert_eq!(Packet::parse(&big), Err(WireError::TooLarge), "type {t}");
    }
}

#[test]
fn connection_id_displays_as_16_hex_digits() {
    assert_eq!(ConnectionId(0xab).to_string(), "00000000000000ab");
    assert_eq!(ConnectionId(u64::MAX).to_string(), "ffffffffffffffff");
}

/// Re-emits a parsed packet into a fresh datagram (a Data packet may be
/// up to 1472 bytes, spec §6.9).
fn reemit(p: &Packet<'_>) -> Vec<u8> {
    let mut out = vec![0u8; crate::wire::MAX_UDP_PAYLOAD_SIZE];
    let n = match p {
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
    .unwrap();
    out.truncate(n);
    out
}

fn arb_packet_bytes() -> impl Strategy<Value = Vec<u8>> {
    let tail = proptest::collection::vec(any::<u8>(), 0..1500);
    prop_oneof![
        (0u8..6, tail.clone()).prop_map(|(ty, t)| [&[1, ty][..], &t].concat()),
        (0u8..3, any::<u64>(), 0u16..1300, tail.clone()).prop_map(|(pat, cid, n, t)| {
            let mut dg = [
                &[1, 1, pat, 0][..],
                &cid.to_be_bytes(),
                &n.to_be_bytes(),
                &t,
            ]
            .concat();
            dg.resize(HANDSHAKE_INIT_SIZE, 0);
            dg
        }),
        tail,
    ]
}

proptest! {
    /// Any datagram either fails to parse or parses to something whose
    /// emission parses back to the same packet.
    #[test]
    fn parse_never_panics_and_reemits(dg in arb_packet_bytes()) {
        if let Ok(p) = Packet::parse(&dg) {
            let again = reemit(&p);
            prop_assert_eq!(Packet::parse(&again), Ok(p));
            if !matches!(p, Packet::HandshakeInit(_)) {
                prop_assert_eq!(again, dg);
            }
        }
    }

    #[test]
    fn handshake_init_round_trips(
        ik: bool,
        aes: bool,
        cid: u64,
        noise in proptest::collection::vec(any::<u8>(), 0..=HandshakeInit::max_noise_len()),
        mac1: [u8; 16],
        mac2: [u8; 16],
    ) {
        let pattern = if ik { HandshakePattern::IK } else { HandshakePattern::NK };
        let cipher = if aes { Cipher::AesGcm } else { Cipher::ChaChaPoly };
        let init = HandshakeInit { pattern, cipher, sender_cid: ConnectionId(cid), noise: &noise, mac1, mac2 };
        let mut out = [0u8; HANDSHAKE_INIT_SIZE];
        prop_assert_eq!(init.emit(&mut out), Ok(HANDSHAKE_INIT_SIZE));
        prop_assert_eq!(Packet::parse(&out), Ok(Packet::HandshakeInit(init)));
    }

    #[test]
    fn handshake_response_round_trips(
        a: u64,
        b: u64,
        noise in proptest::collection::vec(any::<u8>(), 1..=HandshakeResponse::max_noise_len()),
    ) {
        let resp = HandshakeResponse {
            initiator_cid: ConnectionId(a),
            responder_cid: ConnectionId(b),
            noise: &noise,
        };
        let mut out = [0u8; MAX_DATAGRAM_SIZE];
        let n = resp.emit(&mut out).unwrap();
        prop_assert_eq!(Packet::parse(&out[..n]), Ok(Packet::HandshakeResponse(resp)));
    }

    #[test]
    fn data_and_cookie_round_trip(
        cid: u64,
        pn: u64,
        nonce: [u8; 24],
        sealed in proptest::collection::vec(any::<u8>(), TAG_LEN..=1166),
    ) {
        let header = DataHeader { dcid: ConnectionId(cid), packet_number: pn };
        let dg = [&header.to_bytes()[..], &sealed].concat();
        prop_assert_eq!(Packet::parse(&dg), Ok(Packet::Data(header, &sealed[..])));
        let cookie = CookieReply { initiator_cid: ConnectionId(cid), nonce, sealed_cookie: &sealed };
        let mut out = [0u8; MAX_DATAGRAM_SIZE];
        let n = cookie.emit(&mut out).unwrap();
        prop_assert_eq!(Packet::parse(&out[..n]), Ok(Packet::CookieReply(cookie)));
    }
}
