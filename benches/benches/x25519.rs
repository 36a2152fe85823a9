//! X25519 strategies compared (criterion), for the handshake's Diffie-Hellman
//! work (issue 8, connections):
//!
//! ```text
//! cargo bench -p srudp-benches --bench x25519
//! ```
//!
//! * `x25519/ladder` — curve25519-dalek's Montgomery ladder
//!   (`MontgomeryPoint::mul_clamped`), what snow uses;
//! * `x25519/edwards` — the same result through the Edwards form: the
//!   u-coordinate mapped to an Edwards point, multiplied with dalek's
//!   variable-base multiplication (its AVX2 backend where the CPU has it),
//!   mapped back;
//! * `x25519/base` — a public key from a secret (fixed-base, dalek's
//!   precomputed radix-16 table; its larger radix-64/128/256 tables measured
//!   no faster here).
//!
//! * `x25519/aws-lc` and `x25519/aws-lc-base` — AWS-LC's X25519 through
//!   aws-lc-rs, as srudp-proto's `aws-lc` feature calls it (a private key
//!   built from the bytes, which derives its public key, then the agreement;
//!   a public key from a secret).
//!
//! srudp-proto's `crypto/x25519.rs` takes AWS-LC with the `aws-lc` feature,
//! else the Edwards route (twist points excepted); its tests pin both to the
//! ladder.

use std::time::Duration;

use aws_lc_rs::agreement::{agree, PrivateKey, UnparsedPublicKey, X25519};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use curve25519_dalek::montgomery::MontgomeryPoint;

fn x25519(c: &mut Criterion) {
    let secret = [0x42u8; 32];
    let peer = MontgomeryPoint::mul_base_clamped([0x17u8; 32]);
    c.bench_function("x25519/ladder", |b| {
        b.iter(|| black_box(peer).mul_clamped(black_box(secret)))
    });
    c.bench_function("x25519/edwards", |b| {
        b.iter(|| {
            black_box(peer)
                .to_edwards(0)
                .map(|p| p.mul_clamped(black_box(secret)).to_montgomery())
        })
    });
    c.bench_function("x25519/base", |b| {
        b.iter(|| MontgomeryPoint::mul_base_clamped(black_box(secret)))
    });
    let peer_bytes = peer.to_bytes();
    c.bench_function("x25519/aws-lc", |b| {
        b.iter(|| {
            let key = PrivateKey::from_private_key(&X25519, &black_box(secret)).unwrap();
            agree(
                &key,
                UnparsedPublicKey::new(&X25519, &peer_bytes),
                (),
                |k| Ok::<_, ()>(k[0]),
            )
        })
    });
    c.bench_function("x25519/aws-lc-base", |b| {
        b.iter(|| {
            let key = PrivateKey::from_private_key(&X25519, &black_box(secret)).unwrap();
            key.compute_public_key().unwrap().as_ref()[0]
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = x25519
}
criterion_main!(benches);
