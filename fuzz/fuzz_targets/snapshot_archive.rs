//! Fuzz target `snapshot_archive`: feeds libFuzzer's bytes to `consul::fuzzing::snapshot_archive`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consul::fuzzing::snapshot_archive(data));
