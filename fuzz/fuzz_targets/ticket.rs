//! A ticket as text and as the bytes under its base32, and the text as a rendezvous address (KEY@HOST:PORT): each parses or fails cleanly; what parses writes back to the same value.
//! The body lives in `srudp_proto::fuzzing` (compiled under `cfg(fuzzing)` only).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| srudp_proto::fuzzing::ticket(data));
