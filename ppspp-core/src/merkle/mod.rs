//! Content integrity with Merkle hash trees (RFC 7574 §5). Being built.
