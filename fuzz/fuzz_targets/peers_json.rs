//! Fuzz target `peers_json`: feeds libFuzzer's bytes to `consul::fuzzing::peers_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consul::fuzzing::peers_json(data));
