//! Consul's ACL system (the 1.4+ model) as a library: what is stored
//! (`model`), and, from policy rule text, what a token may do. No IO, no
//! clock, no state: the catalog stores the model, the server resolves a
//! token's secret to its policies and asks this module what they allow.

pub mod model;
