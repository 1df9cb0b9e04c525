//! Criterion benchmarks for the ppspp workspace live in `benches/`; this library holds what
//! they share: reading criterion's own estimates back so that a bench can print the ratio of
//! two measurements taken in the same run, and the engine benchmark's workload ([`transfer`]).

pub mod transfer;

use std::path::{Path, PathBuf};

/// The directory criterion writes its estimates to (`target/criterion`).
pub fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("criterion")
}

/// The median time in nanoseconds criterion estimated for benchmark `id` (`group/function`),
/// read from `new/estimates.json`; `None` if that benchmark was not run. The median, not the
/// mean: on a shared machine a few samples slowed by other tenants move the mean a lot.
pub fn median_ns(id: &str) -> Option<f64> {
    let path = criterion_dir().join(id).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    // {"mean":{...},"median":{"confidence_interval":{...},"point_estimate":123.4,...},...}
    let median = &text[text.find("\"median\"")?..];
    let pe = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = pe.find([',', '}'])?;
    pe[..end].trim().parse().ok()
}

/// Prints `label: a / b = ratio` for two benchmark ids measured in the same run.
pub fn print_ratio(label: &str, numerator: &str, denominator: &str) {
    match (median_ns(numerator), median_ns(denominator)) {
        (Some(a), Some(b)) if b > 0.0 => {
            println!(
                "ratio {label}: medians {a:.1} ns / {b:.1} ns = {:.3}",
                a / b
            );
        }
        _ => println!("ratio {label}: not measured in this run"),
    }
}
