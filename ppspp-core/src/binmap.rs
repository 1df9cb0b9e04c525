//! Availability maps: compact sets of chunks. Being built.
