//! Criterion benchmarks for the ppspp workspace live in `benches/`; this library holds the
//! fixtures they share.
