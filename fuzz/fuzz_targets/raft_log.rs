//! Fuzz target `raft_log`: feeds libFuzzer's bytes to `consul::fuzzing::raft_log`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consul::fuzzing::raft_log(data));
