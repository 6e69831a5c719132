//! Fuzz target `config_json`: feeds libFuzzer's bytes to `consul::fuzzing::config_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consul::fuzzing::config_json(data));
