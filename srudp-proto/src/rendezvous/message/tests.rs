//! Literal-byte tests of the rendezvous messages (spec §11.2, §11.8) and a
//! round-trip property over every message.

use proptest::prelude::*;

use super::*;

fn key(b: u8) -> PublicKey {
    PublicKey([b; KEY_LEN])
}

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A group membership with id `a…a` and proof `b…b` (on the wire: 32 × 0x61
/// then 32 × 0x62).
fn membership() -> GroupMembership {
    GroupMembership {
        group: GroupId([0x61; 32]),
        proof: MemberProof([0x62; 32]),
    }
}

/// Emits `m` and checks the bytes, then parses them back.
fn check(m: Message, expected: &[u8]) {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = m.emit(&mut buf).unwrap();
    assert_eq!(&buf[..n], expected, "{m:?}");
    assert_eq!(Message::parse(&expected[2..]).unwrap(), m);
}

#[test]
fn register_literal_bytes() {
    check(
        Message::Register {
            request: 7,
            name: Some(name("bob")),
            groups: vec![membership()],
            candidates: vec![sa("192.0.2.10:5000"), sa("[2001:db8::1]:443")],
            stream_only: false,
        },
        &[
            &[
                0x00, 0x65, // length 101
                0x01, // Register
                0x00, 0x00, 0x00, 0x07, // request
                0x03, b'b', b'o', b'b', // name
                0x01, // one group:
            ][..],
            &[0x61; 32], // its id
            &[0x62; 32], // our proof
            &[
                0x02, // two candidates
                0x04, 192, 0, 2, 10, 0x13, 0x88, // 192.0.2.10:5000
                0x06, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01,
                0xbb, // [2001:db8::1]:443
            ],
        ]
        .concat(),
    );
}

#[test]
fn peer_joined_and_peer_left_literal_bytes() {
    check(
        Message::PeerJoined {
            group: GroupId([0x61; 32]),
            peer: key(0x33),
            name: Some(name("carol")),
            proof: MemberProof([0x62; 32]),
        },
        &[
            &[0x00, 0x67, 0x84][..], // length 103, PeerJoined
            &[0x61; 32],             // group id
            &[0x33; 32],             // peer key
            &[0x05, b'c', b'a', b'r', b'o', b'l'],
            &[0x62; 32], // the peer's proof
        ]
        .concat(),
    );
    check(
        Message::PeerLeft {
            group: GroupId([0x61; 32]),
            peer: key(0x33),
        },
        &[&[0x00, 0x41, 0x85][..], &[0x61; 32], &[0x33; 32]].concat(),
    );
}

#[test]
fn connect_by_key_and_by_name_literal_bytes() {
    let mut by_key = vec![0x00, 0x26, 0x03, 0, 0, 0, 1, 0x00];
    by_key.extend_from_slice(&[0xab; 32]);
    check(
        Message::Connect {
            request: 1,
            target: Target::Key(key(0xab)),
        },
        &by_key,
    );
    check(
        Message::Connect {
            request: 2,
            target: Target::Name(name("alice")),
        },
        &[
            0x00, 0x0c, 0x03, 0, 0, 0, 2, 0x01, 0x05, b'a', b'l', b'i', b'c', b'e',
        ],
    );
}

#[test]
fn short_messages_literal_bytes() {
    check(
        Message::Unregister {
            request: 0x0102_0304,
        },
        &[0x00, 0x05, 0x02, 0x01, 0x02, 0x03, 0x04],
    );
    check(
        Message::NatTest { request: 9 },
        &[0x00, 0x05, 0x04, 0, 0, 0, 9],
    );
    check(
        Message::Error {
            request: 3,
            code: ErrorCode::PeerUnknown,
        },
        &[0x00, 0x06, 0x82, 0, 0, 0, 3, 0x01],
    );
    check(
        Message::Registered {
            request: 1,
            observed: sa("203.0.113.1:4000"),
            refresh_secs: 15,
            expiry_secs: 45,
        },
        &[
            0x00, 0x10, 0x81, 0, 0, 0, 1, 0x04, 203, 0, 113, 1, 0x0f, 0xa0, 0x00, 0x0f, 0x00, 0x2d,
        ],
    );
}

#[test]
fn introduce_literal_bytes() {
    let mut expected = vec![0x00, 0x38, 0x83, 0, 0, 0, 0];
    expected.extend_from_slice(&[0x11; 32]);
    expected.extend_from_slice(&[0x00]); // no name
    expected.extend_from_slice(&[0x00, 0x64]); // start in 100 ms
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x12, 0x34]); // relay session
    expected.extend_from_slice(&[0x01, 0x04, 203, 0, 113, 2, 0x17, 0x70]); // 203.0.113.2:6000
    check(
        Message::Introduce {
            request: 0,
            peer: key(0x11),
            name: None,
            start_in_ms: 100,
            relay_session: 0x1234,
            candidates: vec![sa("203.0.113.2:6000")],
            peer_stream_only: false,
        },
        &expected,
    );
}

#[test]
fn the_stream_only_flag_is_one_trailing_byte_that_older_readers_skip() {
    // Spec §11.2: Register and Introduce end in an optional `flags` byte,
    // bit 0 the stream carrier; written only when set.
    let register = |stream_only| Message::Register {
        request: 7,
        name: None,
        groups: Vec::new(),
        candidates: Vec::new(),
        stream_only,
    };
    let mut plain = [0u8; MAX_FRAME_LEN];
    let n_plain = register(false).emit(&mut plain).unwrap();
    let mut flagged = [0u8; MAX_FRAME_LEN];
    let n = register(true).emit(&mut flagged).unwrap();
    assert_eq!(n, n_plain + 1);
    assert_eq!(flagged[n - 1], 0x01);
    assert_eq!(&flagged[2..n - 1], &plain[2..n_plain], "the rest unchanged");
    assert_eq!(Message::parse(&flagged[2..n]).unwrap(), register(true));
    // Unknown flag bits, and more bytes after, are ignored.
    let mut later = flagged[2..n].to_vec();
    *later.last_mut().unwrap() = 0xff;
    later.extend_from_slice(&[9, 9]);
    assert_eq!(Message::parse(&later).unwrap(), register(true));
    later[n - 3] = 0xfe;
    assert_eq!(Message::parse(&later).unwrap(), register(false));

    let introduce = Message::Introduce {
        request: 0,
        peer: key(0x11),
        name: None,
        start_in_ms: 100,
        relay_session: 0x1234,
        candidates: vec![sa("203.0.113.2:6000")],
        peer_stream_only: true,
    };
    let mut expected = vec![0x00, 0x39, 0x83, 0, 0, 0, 0];
    expected.extend_from_slice(&[0x11; 32]);
    expected.extend_from_slice(&[0x00, 0x00, 0x64, 0, 0, 0, 0, 0, 0, 0x12, 0x34]);
    expected.extend_from_slice(&[0x01, 0x04, 203, 0, 113, 2, 0x17, 0x70]);
    expected.push(0x01); // flags: the peer is stream-only
    check(introduce, &expected);
}

#[test]
fn group_and_nat_messages_round_trip() {
    for m in [
        Message::PeerJoined {
            group: membership().group,
            peer: key(3),
            name: None,
            proof: membership().proof,
        },
        Message::PeerLeft {
            group: membership().group,
            peer: key(3),
        },
        Message::NatTestStarted {
            request: 5,
            alt: sa("203.0.113.9:3479"),
            filter_token: [1; 16],
            mapping_token: [2; 16],
        },
        Message::NatObserved {
            request: 5,
            observed: sa("[2001:db8::7]:9"),
        },
    ] {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = m.emit(&mut buf).unwrap();
        assert_eq!(usize::from(u16::from_be_bytes([buf[0], buf[1]])), n - 2);
        assert_eq!(Message::parse(&buf[2..n]).unwrap(), m);
    }
}

#[test]
fn malformed_messages_are_typed_errors() {
    use MessageError as E;
    assert_eq!(Message::parse(&[]), Err(E::InvalidLength(0)));
    assert_eq!(Message::parse(&[0x7f]), Err(E::UnknownType(0x7f)));
    assert_eq!(Message::parse(&[0x01, 0, 0]), Err(E::Truncated));
    // Register with 5 groups.
    assert_eq!(
        Message::parse(&[0x01, 0, 0, 0, 1, 0, 5]),
        Err(E::TooManyGroups(5))
    );
    // Register whose name has an upper-case letter, or a space.
    assert_eq!(
        Message::parse(&[0x01, 0, 0, 0, 1, 2, b'A', b'b', 0, 0]),
        Err(E::InvalidName)
    );
    assert_eq!(
        Message::parse(&[0x01, 0, 0, 0, 1, 2, b'a', b' ', 0, 0]),
        Err(E::InvalidName)
    );
    // A name of 65 bytes.
    let mut long = vec![0x01, 0, 0, 0, 1, 65];
    long.extend_from_slice(&[b'a'; 65]);
    long.extend_from_slice(&[0, 0]);
    assert_eq!(Message::parse(&long), Err(E::InvalidName));
    // A group membership cut short (an id, no proof).
    let mut short = vec![0x01, 0, 0, 0, 1, 0, 1];
    short.extend_from_slice(&[0x61; 32]);
    assert_eq!(Message::parse(&short), Err(E::Truncated));
    // A PeerJoined without its proof.
    let mut joined = vec![0x84];
    joined.extend_from_slice(&[0x61; 64]);
    joined.push(0);
    joined.extend_from_slice(&[0x62; 31]);
    assert_eq!(Message::parse(&joined), Err(E::Truncated));
    // 16 candidates.
    assert_eq!(
        Message::parse(&[0x01, 0, 0, 0, 1, 0, 0, 16]),
        Err(E::TooManyCandidates(16))
    );
    // Address family 5.
    assert_eq!(
        Message::parse(&[0x01, 0, 0, 0, 1, 0, 0, 1, 5, 1, 2, 3, 4, 0, 1]),
        Err(E::BadAddressFamily(5))
    );
    // Connect with target kind 2.
    assert_eq!(
        Message::parse(&[0x03, 0, 0, 0, 1, 2]),
        Err(E::BadTargetKind(2))
    );
    // Connect by key, key cut short.
    assert_eq!(
        Message::parse(&[0x03, 0, 0, 0, 1, 0, 1, 2, 3]),
        Err(E::Truncated)
    );
    assert_eq!(
        Message::parse(&[0u8; MAX_MESSAGE_LEN + 1]),
        Err(E::InvalidLength(MAX_MESSAGE_LEN + 1))
    );
}

#[test]
fn unknown_error_codes_and_trailing_bytes_are_tolerated() {
    assert_eq!(
        Message::parse(&[0x82, 0, 0, 0, 1, 200, 0xee, 0xee]),
        Ok(Message::Error {
            request: 1,
            code: ErrorCode::Unknown(200)
        })
    );
}

#[test]
fn emit_refuses_what_the_format_cannot_carry() {
    let too_many = Message::Register {
        request: 1,
        name: None,
        groups: vec![],
        candidates: vec![sa("192.0.2.1:1"); 16],
        stream_only: false,
    };
    let mut buf = [0u8; MAX_FRAME_LEN];
    assert_eq!(
        too_many.emit(&mut buf),
        Err(MessageError::TooManyCandidates(16))
    );
    let m = Message::NatTest { request: 1 };
    assert_eq!(m.emit(&mut [0u8; 6]), Err(MessageError::BufferTooSmall));
}

#[test]
fn reader_reassembles_frames_split_anywhere() {
    let messages = vec![
        Message::NatTest { request: 1 },
        Message::Connect {
            request: 2,
            target: Target::Name(name("alice")),
        },
        Message::Unregister { request: 3 },
    ];
    let mut stream = Vec::new();
    for m in &messages {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = m.emit(&mut buf).unwrap();
        stream.extend_from_slice(&buf[..n]);
    }
    for chunk in 1..=stream.len() {
        let mut reader = MessageReader::default();
        let mut got = Vec::new();
        let mut input = &stream[..];
        while !input.is_empty() {
            let want = reader.want();
            let n = want.len().min(chunk).min(input.len());
            want[..n].copy_from_slice(&input[..n]);
            input = &input[n..];
            if let Some(m) = reader.advance(n).unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, messages, "chunk size {chunk}");
    }
}

#[test]
fn reader_rejects_impossible_lengths() {
    for len in [[0u8, 0], [0x04, 0x01]] {
        let mut reader = MessageReader::default();
        reader.want()[..2].copy_from_slice(&len);
        assert!(matches!(
            reader.advance(2),
            Err(MessageError::InvalidLength(_))
        ));
    }
}

fn arb_name() -> impl Strategy<Value = Name> {
    "[a-z0-9._-]{1,64}".prop_map(|s| Name::new(&s).unwrap())
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
    ]
}

fn arb_key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(PublicKey)
}

fn arb_membership() -> impl Strategy<Value = GroupMembership> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(g, p)| GroupMembership {
        group: GroupId(g),
        proof: MemberProof(p),
    })
}

fn arb_message() -> impl Strategy<Value = Message> {
    let addrs = || proptest::collection::vec(arb_addr(), 0..=MAX_MESSAGE_CANDIDATES);
    prop_oneof![
        (
            any::<u32>(),
            proptest::option::of(arb_name()),
            proptest::collection::vec(arb_membership(), 0..=MAX_GROUPS),
            addrs(),
            any::<bool>()
        )
            .prop_map(|(request, name, groups, candidates, stream_only)| {
                Message::Register {
                    request,
                    name,
                    groups,
                    candidates,
                    stream_only,
                }
            }),
        any::<u32>().prop_map(|request| Message::Unregister { request }),
        (any::<u32>(), arb_key()).prop_map(|(request, k)| Message::Connect {
            request,
            target: Target::Key(k)
        }),
        (any::<u32>(), arb_name()).prop_map(|(request, n)| Message::Connect {
            request,
            target: Target::Name(n)
        }),
        any::<u32>().prop_map(|request| Message::NatTest { request }),
        (any::<u32>(), arb_addr(), any::<u16>(), any::<u16>()).prop_map(
            |(request, observed, refresh_secs, expiry_secs)| Message::Registered {
                request,
                observed,
                refresh_secs,
                expiry_secs
            }
        ),
        (any::<u32>(), any::<u8>()).prop_map(|(request, c)| Message::Error {
            request,
            code: ErrorCode::from_wire(c)
        }),
        (
            any::<u32>(),
            arb_key(),
            proptest::option::of(arb_name()),
            any::<u16>(),
            any::<u64>(),
            addrs(),
            any::<bool>()
        )
            .prop_map(
                |(
                    request,
                    peer,
                    name,
                    start_in_ms,
                    relay_session,
                    candidates,
                    peer_stream_only,
                )| {
                    Message::Introduce {
                        request,
                        peer,
                        name,
                        start_in_ms,
                        relay_session,
                        candidates,
                        peer_stream_only,
                    }
                }
            ),
        (
            arb_membership(),
            arb_key(),
            proptest::option::of(arb_name())
        )
            .prop_map(|(m, peer, name)| Message::PeerJoined {
                group: m.group,
                peer,
                name,
                proof: m.proof
            }),
        (arb_membership(), arb_key()).prop_map(|(m, peer)| Message::PeerLeft {
            group: m.group,
            peer
        }),
        (
            any::<u32>(),
            arb_addr(),
            any::<[u8; 16]>(),
            any::<[u8; 16]>()
        )
            .prop_map(|(request, alt, filter_token, mapping_token)| {
                Message::NatTestStarted {
                    request,
                    alt,
                    filter_token,
                    mapping_token,
                }
            }),
        (any::<u32>(), arb_addr())
            .prop_map(|(request, observed)| Message::NatObserved { request, observed }),
        any::<[u8; 32]>().prop_map(|k| Message::Opened { peer: PublicKey(k) }),
        any::<[u8; 32]>().prop_map(|k| Message::PeerOpened { peer: PublicKey(k) }),
    ]
}

#[test]
fn opened_and_peer_opened_literal_bytes() {
    let expected = |ty: u8| [&[0x00, 0x21, ty][..], &[0x03; 32]].concat();
    check(Message::Opened { peer: key(3) }, &expected(0x05));
    check(Message::PeerOpened { peer: key(3) }, &expected(0x88));
}

proptest! {
    #[test]
    fn every_message_round_trips(m in arb_message()) {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = m.emit(&mut buf).unwrap();
        prop_assert!(n <= MAX_FRAME_LEN);
        prop_assert_eq!(usize::from(u16::from_be_bytes([buf[0], buf[1]])), n - 2);
        prop_assert_eq!(Message::parse(&buf[2..n]).unwrap(), m);
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1100)) {
        let _ = Message::parse(&bytes);
        let mut reader = MessageReader::default();
        let mut input = &bytes[..];
        while !input.is_empty() {
            let want = reader.want();
            let n = want.len().min(input.len());
            want[..n].copy_from_slice(&input[..n]);
            input = &input[n..];
            let _ = reader.advance(n);
        }
    }
}
