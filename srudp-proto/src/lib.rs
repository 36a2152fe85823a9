//! srudp-proto (skeleton; crate docs are written with the endpoint).
#![forbid(unsafe_code)]

pub mod crypto;
pub mod range_set;
pub mod wire;
#[cfg(feature = "sim")]
pub mod sim;
