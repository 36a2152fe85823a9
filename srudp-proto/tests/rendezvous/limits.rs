//! Rate limits, bounds and hostile clients (spec §11.2, §11.3, §11.5).
