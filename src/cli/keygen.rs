//! `consul keygen`: 32 random bytes, standard base64.

use base64::Engine;
use clap::Args;
use rand::RngCore;

#[derive(Args, Debug, Default)]
pub struct KeygenArgs {}

pub fn run(_args: &KeygenArgs) -> i32 {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    println!("{}", base64::engine::general_purpose::STANDARD.encode(key));
    0
}
