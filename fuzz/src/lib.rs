//! What the fuzz targets share: their entry points.

#[doc(hidden)]
pub use libfuzzer_sys;

/// The entry points of a fuzz target whose property is `check(&[u8])`: under the fuzzer, the
/// libFuzzer target; without it, a `main` that replays the files named on the command line
/// (the corpus, or a failing input).
#[macro_export]
macro_rules! fuzz_entry {
    ($check:path) => {
        #[cfg(fuzzing)]
        $crate::libfuzzer_sys::fuzz_target!(|data: &[u8]| $check(data));

        #[cfg(not(fuzzing))]
        fn main() {
            for path in std::env::args().skip(1) {
                $check(&std::fs::read(&path).expect("read input"));
            }
        }
    };
}
