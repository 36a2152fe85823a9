//! Any datagram: parses or fails cleanly; what parses re-emits to the same packet.
//! The body lives in `srudp_proto::fuzzing` (compiled under `cfg(fuzzing)` only).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| srudp_proto::fuzzing::packet(data));
