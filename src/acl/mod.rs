//! Consul's ACL system (the 1.4+ model) as a library: what is stored
//! (`model`), and, from policy rule text, what a token may do. No IO, no
//! clock, no state: the catalog stores the model, the server resolves a
//! token's secret to its policies and asks this module what they allow.
//!
//! * `rules`: policy rule text (HCL or JSON) → validated [`Rules`].
//! * `authorizer`: a token's merged [`Rules`] → [`Authorizer`] answering
//!   "may it read key x", built once per token, asked many times.
//! * `identity`: service and node identities and the built-in templated
//!   policies, expanded into rule text as Consul expands them; the name
//!   rules Consul applies to policies, roles and identities.

pub mod authorizer;
pub mod caller;
pub mod identity;
pub mod model;
pub mod rules;

pub use authorizer::{Access, Authorizer, DefaultPolicy};
pub use caller::Identity;
pub use identity::{IdentityError, SyntheticPolicy, Template};
pub use rules::{parse as parse_rules, RuleError, Rules};
