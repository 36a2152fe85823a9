//! A rendezvous connection's byte stream: length-prefixed messages cut into
//! arbitrary pieces; what parses re-emits to the same frame.
//! The body lives in `srudp_proto::fuzzing` (compiled under `cfg(fuzzing)` only).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| srudp_proto::fuzzing::rendezvous(data));
