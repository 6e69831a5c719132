//! Fuzz target `filter_expr`: feeds libFuzzer's bytes to `consul::fuzzing::filter_expr`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consul::fuzzing::filter_expr(data));
