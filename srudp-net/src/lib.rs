//! The IO helpers every srudp runtime adapter needs the same way, kept out
//! of `srudp-proto` because they touch the operating system: binding one UDP
//! socket per endpoint (IPv4, IPv6, dual stack where the OS allows),
//! sending and receiving datagrams in batches (UDP GSO/GRO and multi-message
//! calls where the OS offers them), and listing this machine's addresses as
//! rendezvous host candidates.
#![warn(missing_docs)]

pub mod batch;
pub mod host_candidates;
pub mod socket;

pub use host_candidates::host_candidates;
