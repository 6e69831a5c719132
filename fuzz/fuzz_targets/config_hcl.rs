//! Fuzz target `config_hcl`: feeds libFuzzer's bytes to `consul::fuzzing::config_hcl`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consul::fuzzing::config_hcl(data));
