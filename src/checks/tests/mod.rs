//! In-process tests of the check runners against real loopback servers and real processes.
