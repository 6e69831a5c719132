//! The systems under test and their peers, as processes on loopback.

pub mod consul;
pub mod etcd;
pub mod serf;
