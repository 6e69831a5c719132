//! Watches one KV key with blocking queries and prints each new value, the
//! way consul-template and `consul watch -type=key` do.
//!
//! ```sh
//! cargo run --example watch_key -- web/greeting          # CONSUL_HTTP_ADDR or 127.0.0.1:8500
//! ```

use base64::Engine;
use consul::api::{encode, Client, ClientConfig};
use hyper::Method;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let key = std::env::args().nth(1).ok_or("usage: watch_key KEY")?;
    let client = Client::new(ClientConfig::resolve(None, None, None, None)?)?;
    let mut index = 0u64;
    loop {
        let path = format!("/v1/kv/{}?index={index}&wait=5m", encode(&key));
        let resp = client.request(Method::GET, &path, None).await?;
        let new_index = resp.index().unwrap_or(1);
        // An index that goes backwards means the data was reset: start over.
        if new_index < index {
            index = 0;
            continue;
        }
        if new_index == index {
            continue; // the wait timed out with no change
        }
        index = new_index;
        if resp.status == 404 {
            println!("{key}: (absent) at index {index}");
            continue;
        }
        let entries: Vec<serde_json::Value> = resp.json()?;
        let value = entries
            .first()
            .and_then(|e| e["Value"].as_str())
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
            .unwrap_or_default();
        println!("{key} = {} at index {index}", String::from_utf8_lossy(&value));
    }
}
