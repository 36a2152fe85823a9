//! placeholder: written by helper
