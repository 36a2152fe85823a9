//! Finding 7 of issue 15: any key could join any group, learn every
//! member's key and name, and be announced to the members. A group is now
//! named on the wire by an id only holders of its secret can compute, and
//! every announcement of a member carries that member's proof of the
//! secret, which members check (spec §11.3).

use srudp_proto::rendezvous::message::MessageReader;
use srudp_proto::rendezvous::{
    ClientEvent, GroupId, GroupMembership, GroupSecret, MemberProof, Message, ServerConfig,
};
use srudp_proto::{ConnectionHandle, Event, PublicKey, ReadError, TransportConfig};

use crate::rendezvous_attacker::{attacker_at, raw_connected, write_messages, S};
use crate::world::{addr, World};

/// Messages waiting on a raw endpoint's connection.
fn drain(w: &mut World, r: usize, h: ConnectionHandle, reader: &mut MessageReader) -> Vec<Message> {
    let mut out = Vec::new();
    loop {
        match w.raws[r].endpoint.read(h, reader.want()) {
            Ok(0) | Err(ReadError::Blocked | ReadError::Closed | ReadError::UnknownConnection) => {
                return out
            }
            Ok(n) => {
                if let Ok(Some(m)) = reader.advance(n) {
                    out.push(m);
                }
            }
        }
    }
}

/// The peers client `i` was told joined `group`.
fn joined(w: &World, i: usize, group: GroupId) -> Vec<PublicKey> {
    let mut v: Vec<_> = w
        .events(i)
        .iter()
        .filter_map(|e| match e {
            ClientEvent::PeerJoined { group: g, peer, .. } if *g == group => Some(*peer),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_key_without_the_group_secret_learns_no_member_and_is_announced_to_no_one() {
    let mut w = World::new(71);
    w.start_server(ServerConfig::default());
    let secret = GroupSecret::from_bytes(*b"the team's secret, 32 bytes long");
    let group = secret.id();
    let mut members = Vec::new();
    for i in 0..3u64 {
        let host = format!("192.0.2.{}", 10 + i);
        w.add_public_host(&host);
        let mut c = w.client_config();
        c.groups = vec![secret.clone()];
        c.detect_nat = false;
        members.push(w.add_client(&format!("{host}:4000"), 700 + i, c));
    }
    w.wait_registered(&members, 5 * S);

    // Mallory registers in four groups she guessed: secrets made of the
    // group's old plain-text name, zeros, and the like; then, as if the id
    // had leaked, the true id with a proof she cannot compute.
    w.add_public_host("192.0.2.66");
    let (r, h) = attacker_at(&mut w, "192.0.2.66:9000", 66, &TransportConfig::default());
    assert!(w.run_until(5 * S, |w| raw_connected(w, r, h)));
    let mallory = w.raws[r].endpoint.public_key();
    let mut padded = [0u8; 32];
    padded[..4].copy_from_slice(b"team");
    let guesses: Vec<GroupMembership> = [
        padded,
        [0; 32],
        [0xff; 32],
        *b"the team's secret, 32 bytes lonG",
    ]
    .into_iter()
    .map(|s| GroupSecret::from_bytes(s).membership(&mallory))
    .collect();
    let register = |request, groups| Message::Register {
        request,
        name: Some("mallory".parse().unwrap()),
        groups,
        candidates: vec![],
        stream_only: false,
    };
    write_messages(&mut w, r, h, &[register(1, guesses)]);
    w.run_for(2 * S);
    let mut reader = MessageReader::default();
    let seen = drain(&mut w, r, h, &mut reader);
    assert!(
        seen.iter().any(|m| matches!(m, Message::Registered { .. })),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|m| matches!(m, Message::PeerJoined { .. })),
        "guessing: Mallory learned {seen:?}"
    );

    // With the id but a forged proof, the honest server announces her (it
    // cannot check proofs: it never sees the secret), but every member
    // rejects the announcement.
    let forged = GroupMembership {
        group,
        proof: MemberProof([0x42; 32]),
    };
    write_messages(&mut w, r, h, &[register(2, vec![forged])]);
    w.run_for(2 * S);
    let keys: Vec<PublicKey> = members.iter().map(|&i| w.key(i)).collect();
    for (n, &i) in members.iter().enumerate() {
        let mut others: Vec<_> = keys.iter().copied().filter(|k| *k != keys[n]).collect();
        others.sort();
        assert_eq!(
            joined(&w, i, group),
            others,
            "member {i} knows the others, and only them"
        );
        assert!(w.events(i).iter().any(|e| matches!(
            e,
            ClientEvent::GroupNoticeRejected { peer, .. } if *peer == mallory
        )));
    }

    // A newcomer who holds the secret is announced to all and learns all.
    w.add_public_host("192.0.2.20");
    let mut c = w.client_config();
    c.groups = vec![secret.clone()];
    c.detect_nat = false;
    let dave = w.add_client("192.0.2.20:4000", 720, c);
    w.wait_registered(&[dave], 5 * S);
    w.run_for(S);
    assert_eq!(joined(&w, dave, group), {
        let mut k = keys.clone();
        k.sort();
        k
    });
    for &i in &members {
        assert!(joined(&w, i, group).contains(&w.key(dave)));
    }
}

#[test]
fn a_server_cannot_announce_a_member_who_does_not_hold_the_secret() {
    // The "server" is the attacker: a bare endpoint the client registers at
    // (on the world's server host; no real server runs).
    let mut w = World::new(72);
    let server_socket = "203.0.113.100:3478";
    let fake = w.add_raw(server_socket, 0x5e);
    let fake_key = w.raws[fake].endpoint.public_key();
    w.add_public_host("192.0.2.10");
    let secret = GroupSecret::from_bytes([9; 32]);
    let mut c = w.client_config();
    c.server_key = fake_key;
    c.server_addr = addr(server_socket);
    c.groups = vec![secret.clone()];
    c.detect_nat = false;
    let alice = w.add_client("192.0.2.10:4000", 801, c);
    let mut handle = None;
    assert!(w.run_until(5 * S, |w| {
        handle = w.raws[fake]
            .events
            .iter()
            .find_map(|(h, e)| matches!(e, Event::Connected { .. }).then_some(*h));
        handle.is_some()
    }));
    let h = handle.unwrap();
    let mut reader = MessageReader::default();
    let mut register = None;
    assert!(w.run_until(5 * S, |w| {
        register = drain(w, fake, h, &mut reader)
            .into_iter()
            .find_map(|m| match m {
                Message::Register {
                    request, groups, ..
                } => Some((request, groups)),
                _ => None,
            });
        register.is_some()
    }));
    let (request, groups) = register.unwrap();
    let alice_key = w.key(alice);
    assert_eq!(
        groups,
        vec![secret.membership(&alice_key)],
        "Alice sends the id and her proof"
    );
    assert_ne!(groups[0].group.0, [9; 32], "never the secret");
    // The fake server accepts her and announces two members: one with a
    // made-up proof, one with Alice's own proof replayed for another key.
    let (eve, trent) = (PublicKey([0xee; 32]), PublicKey([0x77; 32]));
    let answers = [
        Message::Registered {
            request,
            observed: addr("192.0.2.10:4000"),
            refresh_secs: 15,
            expiry_secs: 45,
        },
        Message::PeerJoined {
            group: groups[0].group,
            peer: eve,
            name: None,
            proof: MemberProof([0x42; 32]),
        },
        Message::PeerJoined {
            group: groups[0].group,
            peer: trent,
            name: None,
            proof: groups[0].proof,
        },
    ];
    write_messages(&mut w, fake, h, &answers);
    w.run_for(2 * S);
    assert!(w.client(alice).is_registered());
    assert!(
        joined(&w, alice, groups[0].group).is_empty(),
        "{:?}",
        w.events(alice)
    );
    let rejected: Vec<_> = w
        .events(alice)
        .iter()
        .filter_map(|e| match e {
            ClientEvent::GroupNoticeRejected { peer, .. } => Some(*peer),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, vec![eve, trent]);
    // A genuine member's announcement, with a proof only a holder of the
    // secret can make, is taken.
    let bob = PublicKey([0xb0; 32]);
    write_messages(
        &mut w,
        fake,
        h,
        &[Message::PeerJoined {
            group: groups[0].group,
            peer: bob,
            name: None,
            proof: secret.prove(&bob),
        }],
    );
    w.run_for(S);
    assert_eq!(joined(&w, alice, groups[0].group), vec![bob]);
}
