//! Helpers shared by the test binaries (`it`, `faults`), one copy each:
//! waiting for a condition with a deadline (`wait`), child processes that
//! cannot outlive their test (`proc`), and network namespaces (`netns`).
//! Each binary includes this directory with
//! `#[path = "../common/mod.rs"] mod common;`.

// Each binary uses only some of these helpers; and test helpers may panic.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod netns;
pub mod proc;
pub mod wait;
