//! Socket binding, shared by the adapters (see `srudp-net`).

pub(crate) use srudp_net::socket::*;
