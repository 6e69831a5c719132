//! Fuzz target `http_body`: feeds libFuzzer's bytes to `consul::fuzzing::http_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consul::fuzzing::http_body(data));
