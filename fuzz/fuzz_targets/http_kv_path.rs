//! Fuzz target `http_kv_path`: feeds libFuzzer's bytes to `consul::fuzzing::http_kv_path`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consul::fuzzing::http_kv_path(data));
