//! Fuzz target `dns_request`: feeds libFuzzer's bytes to `consul::fuzzing::dns_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consul::fuzzing::dns_request(data));
