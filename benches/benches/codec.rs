//! Codec benchmarks (being built).
fn main() {}
