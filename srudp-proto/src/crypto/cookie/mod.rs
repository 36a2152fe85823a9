//! Handshake MACs and stateless cookies (spec §4.8), after WireGuard's
//! cookie reply: the responder can make an initiator prove it receives at
//! its source address before spending any Diffie-Hellman work or state on it.
//!
//! * `mac1` — keyed by the responder's public key, over the HandshakeInit up
//!   to it: a cheap check that drops garbage and wrong-key initiations
//!   before any Noise work, and the binding of a CookieReply to one init.
//! * `cookie` — `MAC(secret, source address)` with a secret the responder
//!   rotates every two minutes; sent to the initiator sealed (XChaCha20-
//!   Poly1305, associated data = the init's `mac1`), so only the holder of
//!   that init at that address can use it.
//! * `mac2` — keyed by the cookie, over the init up to it: proof of the
//!   round trip, checked while the responder is under load.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use blake2::digest::consts::U16;
use blake2::digest::{Digest, Mac};
use blake2::{Blake2s256, Blake2sMac};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};

use crate::keys::PublicKey;
use crate::random::Rng;
use crate::wire::packet::knock::KNOCK_MAC_OFFSET;
use crate::wire::{is_handshake_init_size, COOKIE_NONCE_LEN, KNOCK_SIZE, MAC_LEN, TAG_LEN};

/// A cookie: what the responder hands out and the initiator keys `mac2` with.
pub(crate) type Cookie = [u8; MAC_LEN];

/// Length of a sealed cookie in a CookieReply: the cookie and its tag.
pub(crate) const SEALED_COOKIE_LEN: usize = MAC_LEN + TAG_LEN;

/// How long a cookie secret is used before the next one; cookies made with
/// the previous secret are still accepted, so a cookie lives 2–4 minutes.
pub(crate) const COOKIE_SECRET_LIFETIME: Duration = Duration::from_secs(120);

const LABEL_MAC1: &[u8] = b"srudp/1 mac1";
const LABEL_COOKIE: &[u8] = b"srudp/1 cookie";

type Mac16 = Blake2sMac<U16>;

/// `MAC(key, parts…)`: keyed BLAKE2s with a 16-byte output (RFC 7693).
fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    let mut m = <Mac16 as KeyInit>::new_from_slice(key).expect("keys are at most 32 bytes");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Constant-time check of `tag` against `MAC(key, data)`.
fn mac_matches(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    let mut m = <Mac16 as KeyInit>::new_from_slice(key).expect("keys are at most 32 bytes");
    m.update(data);
    m.verify_slice(tag).is_ok()
}

/// `HASH(label ‖ key)`: BLAKE2s-256.
fn hash(label: &[u8], key: &PublicKey) -> [u8; 32] {
    let mut h = Blake2s256::new();
    h.update(label);
    h.update(key.0);
    h.finalize().into()
}

/// The two keys derived from a responder's static public key.
#[derive(Clone)]
pub(crate) struct MacKeys {
    mac1: [u8; 32],
    cookie: [u8; 32],
}

impl std::fmt::Debug for MacKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacKeys").finish_non_exhaustive()
    }
}

impl MacKeys {
    /// The keys of the responder whose static public key is `responder`.
    pub(crate) fn for_responder(responder: &PublicKey) -> Self {
        MacKeys {
            mac1: hash(LABEL_MAC1, responder),
            cookie: hash(LABEL_COOKIE, responder),
        }
    }

    /// Writes `mac1` into a HandshakeInit datagram (exactly 1200 bytes, or
    /// 1190 for a relay envelope; other lengths are left alone).
    pub(crate) fn stamp_mac1(&self, init: &mut [u8]) {
        let Some((mac1, _)) = mac_offsets(init) else {
            return;
        };
        let tag = mac(&self.mac1, &[&init[..mac1]]);
        init[mac1..mac1 + MAC_LEN].copy_from_slice(&tag);
    }

    /// Whether a HandshakeInit datagram carries a valid `mac1`.
    pub(crate) fn check_mac1(&self, init: &[u8]) -> bool {
        mac_offsets(init)
            .is_some_and(|(mac1, mac2)| mac_matches(&self.mac1, &init[..mac1], &init[mac1..mac2]))
    }

    /// Writes the MAC of a Knock datagram (exactly [`KNOCK_SIZE`] bytes,
    /// spec §9.3.8): keyed like `mac1`, over the bytes before it. Its type
    /// byte differs from an init's, so neither MAC can stand for the other.
    pub(crate) fn stamp_knock(&self, knock: &mut [u8]) {
        if knock.len() != KNOCK_SIZE {
            return;
        }
        let tag = mac(&self.mac1, &[&knock[..KNOCK_MAC_OFFSET]]);
        knock[KNOCK_MAC_OFFSET..].copy_from_slice(&tag);
    }

    /// Whether a Knock datagram carries a valid MAC for this responder.
    pub(crate) fn check_knock(&self, knock: &[u8]) -> bool {
        knock.len() == KNOCK_SIZE
            && mac_matches(
                &self.mac1,
                &knock[..KNOCK_MAC_OFFSET],
                &knock[KNOCK_MAC_OFFSET..],
            )
    }

    /// Seals `cookie` for the initiator of the init whose `mac1` is given.
    pub(crate) fn seal_cookie(
        &self,
        nonce: &[u8; COOKIE_NONCE_LEN],
        cookie: &Cookie,
        mac1: &[u8],
    ) -> [u8; SEALED_COOKIE_LEN] {
        let aead = XChaCha20Poly1305::new(&self.cookie.into());
        let mut out = [0u8; SEALED_COOKIE_LEN];
        out[..MAC_LEN].copy_from_slice(cookie);
        let tag = aead
            .encrypt_in_place_detached(XNonce::from_slice(nonce), mac1, &mut out[..MAC_LEN])
            .expect("a 16-byte cookie always seals");
        out[MAC_LEN..].copy_from_slice(&tag);
        out
    }

    /// Opens a sealed cookie; `None` unless it authenticates against our
    /// init's `mac1`.
    pub(crate) fn open_cookie(
        &self,
        nonce: &[u8; COOKIE_NONCE_LEN],
        sealed: &[u8],
        mac1: &[u8],
    ) -> Option<Cookie> {
        if sealed.len() != SEALED_COOKIE_LEN {
            return None;
        }
        let aead = XChaCha20Poly1305::new(&self.cookie.into());
        let mut cookie: Cookie = sealed[..MAC_LEN].try_into().ok()?;
        aead.decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            mac1,
            &mut cookie,
            sealed[MAC_LEN..].into(),
        )
        .ok()?;
        Some(cookie)
    }
}

/// Where `mac1` and `mac2` start in a HandshakeInit datagram: its last 32
/// bytes, whichever of its two sizes it has (1200 direct, 1190 relayed).
/// `None` for any other length.
fn mac_offsets(init: &[u8]) -> Option<(usize, usize)> {
    is_handshake_init_size(init.len()).then(|| (init.len() - 2 * MAC_LEN, init.len() - MAC_LEN))
}

/// The `mac1` field of a HandshakeInit datagram.
pub(crate) fn mac1_of(init: &[u8]) -> &[u8] {
    mac_offsets(init).map_or(&[], |(mac1, mac2)| &init[mac1..mac2])
}

/// Whether a HandshakeInit datagram carries a `mac2` (any nonzero bytes:
/// an initiator without a cookie sends sixteen zeros). Says nothing of
/// whether it is valid.
pub(crate) fn has_mac2(init: &[u8]) -> bool {
    mac_offsets(init).is_some_and(|(_, mac2)| init[mac2..].iter().any(|&b| b != 0))
}

/// Writes `mac2` keyed by `cookie` into a HandshakeInit datagram.
pub(crate) fn stamp_mac2(cookie: &Cookie, init: &mut [u8]) {
    let Some((_, mac2)) = mac_offsets(init) else {
        return;
    };
    let tag = mac(cookie, &[&init[..mac2]]);
    init[mac2..].copy_from_slice(&tag);
}

/// The bytes a cookie is computed over: the IP address (4 or 16 bytes) and
/// the port, big-endian.
fn address_bytes(addr: SocketAddr, out: &mut [u8; 18]) -> &[u8] {
    let n = match addr {
        SocketAddr::V4(a) => {
            out[..4].copy_from_slice(&a.ip().octets());
            4
        }
        SocketAddr::V6(a) => {
            out[..16].copy_from_slice(&a.ip().octets());
            16
        }
    };
    out[n..n + 2].copy_from_slice(&addr.port().to_be_bytes());
    &out[..n + 2]
}

/// `MAC(secret, address)`: a value only the holder of `secret` can compute
/// for `addr` (a cookie, spec §4.8; the token of a hard-NAT knock, §4.4).
pub(crate) fn address_mac(secret: &[u8; 32], addr: SocketAddr) -> [u8; MAC_LEN] {
    let mut buf = [0u8; 18];
    mac(secret, &[address_bytes(addr, &mut buf)])
}

/// The responder's rotating cookie secrets. Secrets come from the endpoint's
/// seeded [`Rng`], drawn the first time a cookie is needed.
#[derive(Clone, Default)]
pub(crate) struct CookieSecrets {
    /// The current secret and when it was drawn.
    current: Option<([u8; 32], Instant)>,
    previous: Option<[u8; 32]>,
}

impl std::fmt::Debug for CookieSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieSecrets").finish_non_exhaustive()
    }
}

impl CookieSecrets {
    fn rotate(&mut self, now: Instant, rng: &mut Rng) -> [u8; 32] {
        match self.current {
            Some((secret, at)) if now.saturating_duration_since(at) < COOKIE_SECRET_LIFETIME => {
                secret
            }
            current => {
                let fresh = rng.seed32();
                self.previous = current
                    .filter(|(_, at)| {
                        now.saturating_duration_since(*at) < 2 * COOKIE_SECRET_LIFETIME
                    })
                    .map(|(s, _)| s);
                self.current = Some((fresh, now));
                fresh
            }
        }
    }

    /// The cookie of `addr` under the current secret.
    pub(crate) fn cookie_for(&mut self, now: Instant, rng: &mut Rng, addr: SocketAddr) -> Cookie {
        address_mac(&self.rotate(now, rng), addr)
    }

    /// Whether a HandshakeInit from `addr` carries a `mac2` made with the
    /// cookie of `addr` under the current or the previous secret.
    pub(crate) fn check_mac2(
        &mut self,
        now: Instant,
        rng: &mut Rng,
        addr: SocketAddr,
        init: &[u8],
    ) -> bool {
        let Some((_, mac2)) = mac_offsets(init) else {
            return false;
        };
        let current = self.rotate(now, rng);
        let mut buf = [0u8; 18];
        let who = address_bytes(addr, &mut buf);
        [Some(current), self.previous]
            .into_iter()
            .flatten()
            .any(|secret| {
                let cookie = mac(&secret, &[who]);
                mac_matches(&cookie, &init[..mac2], &init[mac2..])
            })
    }
}

/// What an initiator knows about cookies while it punches: the responder's
/// cookie key, and the cookie each candidate address handed out.
#[derive(Debug, Clone)]
pub(crate) struct InitiatorCookies {
    keys: MacKeys,
    /// At most one per candidate address (so at most `MAX_CANDIDATES`).
    cookies: Vec<HeldCookie>,
}

#[derive(Debug, Clone)]
struct HeldCookie {
    from: SocketAddr,
    cookie: Cookie,
    received: Instant,
    /// Extra probes this address's cookies triggered so far.
    extra_probes: u8,
}

/// Most extra (out-of-schedule) probes cookies from one address trigger in
/// one handshake: a genuine responder needs one, two if its secret rotates
/// meanwhile; an on-path attacker forging cookie replies gets no more.
pub(crate) const MAX_COOKIE_PROBES: u8 = 3;

impl InitiatorCookies {
    pub(crate) fn new(responder: &PublicKey) -> Self {
        InitiatorCookies {
            keys: MacKeys::for_responder(responder),
            cookies: Vec::new(),
        }
    }

    /// Takes a CookieReply from `from` (one of our candidates) answering our
    /// init. Returns whether it brought a new cookie for `from` and the init
    /// should be resent there at once (at most [`MAX_COOKIE_PROBES`] times).
    pub(crate) fn on_cookie_reply(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: &[u8; COOKIE_NONCE_LEN],
        sealed: &[u8],
        our_init: &[u8],
    ) -> bool {
        let Some(cookie) = self.keys.open_cookie(nonce, sealed, mac1_of(our_init)) else {
            return false;
        };
        match self.cookies.iter_mut().find(|h| h.from == from) {
            Some(held) if held.cookie == cookie => false,
            Some(held) => {
                held.cookie = cookie;
                held.received = now;
                let probe = held.extra_probes < MAX_COOKIE_PROBES;
                held.extra_probes += u8::from(probe);
                probe
            }
            None => {
                self.cookies.push(HeldCookie {
                    from,
                    cookie,
                    received: now,
                    extra_probes: 1,
                });
                true
            }
        }
    }

    /// Writes `mac1` into an outgoing copy of our init (needed when the copy
    /// was re-padded to another size, for a relay envelope).
    pub(crate) fn stamp_mac1(&self, init: &mut [u8]) {
        self.keys.stamp_mac1(init);
    }

    /// Writes `mac2` into an outgoing copy of our init, if `dest` gave us a
    /// cookie that is still fresh (zeros otherwise).
    pub(crate) fn stamp(&self, now: Instant, dest: SocketAddr, init: &mut [u8]) {
        let fresh = self.cookies.iter().find(|h| {
            h.from == dest && now.saturating_duration_since(h.received) < COOKIE_SECRET_LIFETIME
        });
        if let Some(held) = fresh {
            stamp_mac2(&held.cookie, init);
        } else if let Some((_, mac2)) = mac_offsets(init) {
            init[mac2..].fill(0);
        }
    }
}

#[cfg(test)]
mod tests;
