//! `consul info`: the agent's Stats, one section per line block, sorted,
//! as Consul prints them (`section:` then `\tkey = value`).

use super::HttpFlags;
use clap::Args;
use hyper::Method;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Args, Debug)]
pub struct InfoArgs {
    #[command(flatten)]
    pub http: HttpFlags,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SelfInfo {
    #[serde(default)]
    stats: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

pub fn run(a: InfoArgs) -> i32 {
    super::block_on(async move {
        let client = match a.http.connect() {
            Ok(c) => c,
            Err(code) => return code,
        };
        let me: SelfInfo = match client.call(Method::GET, "/v1/agent/self", None).await.and_then(|r| r.json())
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("Error querying agent: {e}");
                return 1;
            }
        };
        print!("{}", render(&me.stats));
        0
    })
}

fn render(stats: &BTreeMap<String, BTreeMap<String, serde_json::Value>>) -> String {
    let mut out = String::new();
    for (section, kv) in stats {
        out.push_str(section);
        out.push_str(":\n");
        for (k, v) in kv {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!("\t{k} = {v}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_keys_sorted() {
        let mut stats = BTreeMap::new();
        stats.insert(
            "raft".to_string(),
            BTreeMap::from([("term".to_string(), "2".into()), ("applied_index".to_string(), "9".into())]),
        );
        stats.insert("agent".to_string(), BTreeMap::from([("checks".to_string(), "0".into())]));
        assert_eq!(render(&stats), "agent:\n\tchecks = 0\nraft:\n\tapplied_index = 9\n\tterm = 2\n");
    }
}
