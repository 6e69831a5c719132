//! Fuzz target `rpc_frame`: feeds libFuzzer's bytes to `consul::fuzzing::rpc_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consul::fuzzing::rpc_frame(data));
