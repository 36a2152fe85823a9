//! An endpoint with one established connection fed arbitrary datagrams from arbitrary
//! addresses (and authenticated packets with arbitrary frames): state stays within every limit,
//! and the connection still carries data intact unless an input authenticated.
//! The body lives in `srudp_proto::fuzzing` (compiled under `cfg(fuzzing)` only).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| srudp_proto::fuzzing::endpoint(data));
