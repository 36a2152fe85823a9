//! The MACs and cookies of spec §4.8.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::keys::Keypair;
use crate::wire::{HANDSHAKE_INIT_MAC1_OFFSET, HANDSHAKE_INIT_MAC2_OFFSET, HANDSHAKE_INIT_SIZE};

fn key(seed: u64) -> PublicKey {
    Keypair::generate(&mut Rng::from_seed(seed)).public()
}

fn init_datagram(fill: u8) -> Vec<u8> {
    let mut dg = vec![fill; HANDSHAKE_INIT_SIZE];
    dg[0] = 1;
    dg[1] = 1;
    dg
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn mac1_binds_the_init_to_the_responder_key() {
    let keys = MacKeys::for_responder(&key(1));
    let mut dg = init_datagram(7);
    assert!(!keys.check_mac1(&dg));
    keys.stamp_mac1(&mut dg);
    assert!(keys.check_mac1(&dg));
    assert!(
        !MacKeys::for_responder(&key(2)).check_mac1(&dg),
        "another key"
    );
    // Any change before mac1 (padding included) breaks it; mac2 does not.
    for at in [
        0,
        3,
        500,
        HANDSHAKE_INIT_MAC1_OFFSET - 1,
        HANDSHAKE_INIT_MAC1_OFFSET,
    ] {
        let mut bad = dg.clone();
        bad[at] ^= 1;
        assert!(!keys.check_mac1(&bad), "byte {at}");
    }
    let mut with_mac2 = dg.clone();
    with_mac2[HANDSHAKE_INIT_SIZE - 1] ^= 1;
    assert!(keys.check_mac1(&with_mac2));
    assert!(!keys.check_mac1(&dg[..1199]));
}

#[test]
fn a_cookie_round_trip_proves_the_source_address() {
    let responder = key(1);
    let keys = MacKeys::for_responder(&responder);
    let mut secrets = CookieSecrets::default();
    let mut rng = Rng::from_seed(5);
    let now = Instant::now();
    let client = addr("192.0.2.7:5000");

    let mut init = init_datagram(9);
    keys.stamp_mac1(&mut init);
    assert!(
        !secrets.check_mac2(now, &mut rng, client, &init),
        "no cookie yet"
    );

    // Responder: seal the cookie of the client's address for this init.
    let cookie = secrets.cookie_for(now, &mut rng, client);
    let nonce = [3u8; COOKIE_NONCE_LEN];
    let sealed = keys.seal_cookie(&nonce, &cookie, mac1_of(&init));

    // Initiator: only the holder of this init opens it.
    let mut jar = InitiatorCookies::new(&responder);
    let mut other_init = init_datagram(10);
    keys.stamp_mac1(&mut other_init);
    assert!(!jar.on_cookie_reply(now, client, &nonce, &sealed, &other_init));
    assert!(!InitiatorCookies::new(&key(2)).on_cookie_reply(now, client, &nonce, &sealed, &init));
    assert!(jar.on_cookie_reply(now, client, &nonce, &sealed, &init));
    assert!(
        !jar.on_cookie_reply(now, client, &nonce, &sealed, &init),
        "the same cookie again is no news"
    );

    let mut resent = init.clone();
    jar.stamp(now, client, &mut resent);
    assert_eq!(
        resent[..HANDSHAKE_INIT_MAC2_OFFSET],
        init[..HANDSHAKE_INIT_MAC2_OFFSET]
    );
    assert!(keys.check_mac1(&resent), "mac2 leaves mac1 intact");
    assert!(secrets.check_mac2(now, &mut rng, client, &resent));
    // Bound to the address: the same init from elsewhere is not proven.
    assert!(!secrets.check_mac2(now, &mut rng, addr("192.0.2.7:5001"), &resent));
    assert!(!secrets.check_mac2(now, &mut rng, addr("192.0.2.8:5000"), &resent));
    // A cookie for one destination is not used toward another.
    let mut elsewhere = init.clone();
    jar.stamp(now, addr("198.51.100.1:1"), &mut elsewhere);
    assert_eq!(elsewhere[HANDSHAKE_INIT_MAC2_OFFSET..], [0; MAC_LEN]);
}

#[test]
fn cookies_survive_one_secret_rotation_but_not_two() {
    let mut secrets = CookieSecrets::default();
    let mut rng = Rng::from_seed(6);
    let t0 = Instant::now();
    let client = addr("[2001:db8::1]:443");
    let cookie = secrets.cookie_for(t0, &mut rng, client);
    let mut init = init_datagram(1);
    stamp_mac2(&cookie, &mut init);
    assert!(secrets.check_mac2(t0, &mut rng, client, &init));
    let t1 = t0 + COOKIE_SECRET_LIFETIME + Duration::from_secs(1);
    assert!(
        secrets.check_mac2(t1, &mut rng, client, &init),
        "previous secret"
    );
    assert_ne!(secrets.cookie_for(t1, &mut rng, client), cookie, "rotated");
    let t2 = t1 + COOKIE_SECRET_LIFETIME;
    assert!(
        !secrets.check_mac2(t2, &mut rng, client, &init),
        "two rotations"
    );
}

#[test]
fn sealed_cookies_that_do_not_authenticate_are_refused() {
    let keys = MacKeys::for_responder(&key(1));
    let nonce = [0u8; COOKIE_NONCE_LEN];
    let mac1 = [4u8; MAC_LEN];
    let sealed = keys.seal_cookie(&nonce, &[8; MAC_LEN], &mac1);
    assert_eq!(keys.open_cookie(&nonce, &sealed, &mac1), Some([8; MAC_LEN]));
    for at in 0..SEALED_COOKIE_LEN {
        let mut bad = sealed;
        bad[at] ^= 0x80;
        assert_eq!(keys.open_cookie(&nonce, &bad, &mac1), None);
    }
    assert_eq!(
        keys.open_cookie(&[1; COOKIE_NONCE_LEN], &sealed, &mac1),
        None
    );
    assert_eq!(keys.open_cookie(&nonce, &sealed[..31], &mac1), None);
    assert_eq!(
        keys.open_cookie(&nonce, &[sealed.as_slice(), &[0]].concat(), &mac1),
        None
    );
}

#[test]
fn new_cookies_from_one_address_trigger_only_a_few_extra_probes() {
    let responder = key(1);
    let keys = MacKeys::for_responder(&responder);
    let mut init = init_datagram(9);
    keys.stamp_mac1(&mut init);
    let mut jar = InitiatorCookies::new(&responder);
    let now = Instant::now();
    let from = addr("198.51.100.1:4433");
    // Every reply brings a different cookie (a rotating or forging sender).
    let probes = (0u8..10)
        .filter(|i| {
            let nonce = [*i; COOKIE_NONCE_LEN];
            let sealed = keys.seal_cookie(&nonce, &[*i; MAC_LEN], mac1_of(&init));
            jar.on_cookie_reply(now, from, &nonce, &sealed, &init)
        })
        .count();
    assert_eq!(probes, usize::from(MAX_COOKIE_PROBES));
    // The latest cookie is still the one used.
    let mut out = init.clone();
    jar.stamp(now, from, &mut out);
    let mut expected = init.clone();
    stamp_mac2(&[9; MAC_LEN], &mut expected);
    assert_eq!(out, expected);
}

#[test]
fn a_knock_mac_binds_the_knock_to_the_responder_key() {
    let keys = MacKeys::for_responder(&key(1));
    let mut knock = vec![0x5a; KNOCK_SIZE];
    knock[..2].copy_from_slice(&[1, 7]);
    assert!(!keys.check_knock(&knock));
    keys.stamp_knock(&mut knock);
    assert!(keys.check_knock(&knock));
    assert!(
        !MacKeys::for_responder(&key(2)).check_knock(&knock),
        "a knock for another key is not answered"
    );
    // Any changed byte (cid, token or the MAC itself) breaks it.
    for at in 0..KNOCK_SIZE {
        let mut bad = knock.clone();
        bad[at] ^= 1;
        assert!(!keys.check_knock(&bad), "byte {at}");
    }
    // Other lengths are never valid, and stamping them changes nothing.
    let mut long = knock.clone();
    long.push(0);
    assert!(!keys.check_knock(&long));
    let before = long.clone();
    keys.stamp_knock(&mut long);
    assert_eq!(long, before);
    // An init's mac1 is no knock MAC: the type byte is covered.
    let mut init = init_datagram(0x5a);
    keys.stamp_mac1(&mut init);
    assert!(!keys.check_knock(&init[..KNOCK_SIZE]));
}

#[test]
fn the_sealed_cookie_of_the_spec_example() {
    // Spec §4.8: XChaCha20-Poly1305 (HChaCha20 subkey from the nonce's
    // first 16 bytes, then RFC 8439 ChaCha20-Poly1305 with nonce
    // 0u32 ‖ the last 8 bytes), key cookie_key, AD the init's mac1; the
    // 16 encrypted cookie bytes, then the tag. These bytes were computed
    // independently of this code.
    let keys = MacKeys::for_responder(&PublicKey([0x11; 32]));
    let nonce: [u8; COOKIE_NONCE_LEN] = core::array::from_fn(|i| i as u8);
    let sealed = keys.seal_cookie(&nonce, &[0x33; MAC_LEN], &[0x44; MAC_LEN]);
    let hex: String = sealed.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "c0ed778e8044f7c07e1fd702d4b0c89d22be046e61959a927f46b5c6251d4a36"
    );
    assert_eq!(
        keys.open_cookie(&nonce, &sealed, &[0x44; MAC_LEN]),
        Some([0x33; MAC_LEN])
    );
    assert_eq!(keys.open_cookie(&nonce, &sealed, &[0x45; MAC_LEN]), None);
}

#[test]
fn the_macs_of_a_relayed_init_cover_its_1190_bytes() {
    let responder = Keypair::generate(&mut Rng::from_seed(31)).public();
    let keys = MacKeys::for_responder(&responder);
    let mut init = vec![0x5au8; crate::wire::RELAYED_HANDSHAKE_INIT_SIZE];
    keys.stamp_mac1(&mut init);
    assert!(keys.check_mac1(&init));
    assert_eq!(mac1_of(&init), &init[1158..1174]);
    // mac1 covers every byte before it, and only those.
    init[1157] ^= 1;
    assert!(!keys.check_mac1(&init));
    init[1157] ^= 1;
    init[1189] ^= 1;
    assert!(keys.check_mac1(&init), "mac2 is not under mac1");
    let cookie = [7u8; MAC_LEN];
    stamp_mac2(&cookie, &mut init);
    assert!(has_mac2(&init));
    // Any other length has no MACs.
    let mut odd = vec![0x5au8; 1195];
    keys.stamp_mac1(&mut odd);
    assert!(!keys.check_mac1(&odd));
    assert!(mac1_of(&odd).is_empty());
}
