//! Offline checkers for the fault-injection harness: the history model, a
//! linearizability checker for KV registers, and cheaper oracles (phantom
//! reads, durability, lock mutual exclusion). Library code with no IO of its
//! own beyond reading and writing JSON lines, so a harness binary and tests
//! can both use it. Must not depend on the server's modules: it judges the
//! server from the outside.
//!
//! See docs/lincheck.md for the model, the algorithm, budgets and formats.
//!
//! Layout:
//! - `history`: operations, outcomes, the workload contract;
//! - `jsonl`: saving and loading histories;
//! - `recorder`: stamping invocations/completions from many client threads;
//! - `checker` (+ `prepare`, `search`, `report`): linearizability;
//! - `properties`: phantom reads and durability;
//! - `locks`: lock mutual exclusion and sequencers;
//! - `contract`: checks the history keeps the unique-value/index contract;
//! - `simulate`: seeded histories of a correct register, for tests/benches.

pub mod checker;
pub mod contract;
pub mod history;
pub mod jsonl;
pub mod locks;
mod memo;
mod prepare;
pub mod properties;
pub mod recorder;
pub mod report;

mod search;
pub mod simulate;

pub use checker::{check_linearizability, Budget, CheckOptions};
pub use history::{Call, ClientId, Operation, Outcome, ReadMode, Ret, Time};
pub use jsonl::{read_jsonl, write_jsonl, HistoryError};
pub use prepare::CheckError;
pub use recorder::{PendingOp, Recorder};
pub use report::{
    BudgetExceeded, KeyReport, KeyStats, KeyVerdict, LinearizedStep, OpRef, RegisterValue, Report, Verdict,
    Violation,
};
