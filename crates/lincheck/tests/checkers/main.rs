#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The checkers' tests, in one binary (one link instead of three): exact
//! verdicts on hand-made histories (`cases`), seeded randomized and
//! differential tests (`random`), and the ignored throughput measurement
//! (`perf`).

mod cases;
mod perf;
mod random;
