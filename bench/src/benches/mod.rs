//! One module per benchmark; each fills a `Section`.

pub mod cas;
pub mod catalog;
pub mod catalog_scale;
pub mod disk;
pub mod dns;
pub mod failover;
pub mod footprint;
pub mod gossip;
pub mod gossip_sim;
pub mod kv;
pub mod kv_mixed;
pub mod profile;
pub mod watch;
pub mod watch_h2;
