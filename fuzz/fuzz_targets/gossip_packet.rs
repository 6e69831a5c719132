//! Fuzz target `gossip_packet`: feeds libFuzzer's bytes to `consul::fuzzing::gossip_packet`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consul::fuzzing::gossip_packet(data));
