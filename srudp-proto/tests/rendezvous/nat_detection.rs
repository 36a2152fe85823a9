//! NAT behaviour detection (spec §11.7).
