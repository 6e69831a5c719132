//! go-sockaddr templates in address config keys: `bind_addr =
//! "{{ GetPrivateInterfaces | include \"network\" \"10.0.0.0/8\" | attr \"address\" }}"`.
//!
//! Owns: evaluating the commonly used part of hashicorp/go-sockaddr's
//! template language (its `Get*` functions, `include`/`exclude`, `sort`,
//! `unique`, `limit`, `offset`, `attr`, `join`) against an interface list
//! the caller supplies. Must not read the machine's interfaces itself (see
//! `netif.rs`), so tests run against fake lists.
//!
//! Written from go-sockaddr's documentation; where its behaviour is a
//! plain bug (`exclude "flag" "down"` matching everything) we do the
//! documented thing instead.

mod error;
mod eval;
mod parse;
mod rfc;
mod select;

use crate::config::netif::IfAddr;
pub use error::TemplateError;

/// Whether a config value contains a template to evaluate.
pub fn is_template(s: &str) -> bool {
    s.contains("{{")
}

/// Evaluates a template against `interfaces` and returns the text it
/// produces (addresses separated by spaces).
pub fn expand(template: &str, interfaces: &[IfAddr]) -> Result<String, TemplateError> {
    let pieces = parse::parse(template)?;
    let mut out = String::new();
    for piece in pieces {
        match piece {
            parse::Piece::Text(t) => out.push_str(&t),
            parse::Piece::Action(pipeline) => out.push_str(&eval::run(&pipeline, interfaces)?),
        }
    }
    Ok(out)
}

/// Checks a template's syntax, function names, arguments, selectors and
/// patterns without looking at any machine (for `consul validate`).
pub fn check(template: &str) -> Result<(), TemplateError> {
    expand(template, &[]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::netif::IfFlags;

    /// A typical cloud VM: loopback, a private NIC with the default route,
    /// a Docker bridge, a second private NIC, and IPv6.
    fn vm() -> Vec<IfAddr> {
        let mut v = Vec::new();
        let mut add = |name: &str, cidr: &str, flags: IfFlags, default: bool| {
            v.push(IfAddr::parse(name, cidr, flags, default).unwrap());
        };
        add("lo", "127.0.0.1/8", IfFlags::loopback_up(), false);
        add("lo", "::1/128", IfFlags::loopback_up(), false);
        add("eth0", "10.0.1.5/24", IfFlags::ethernet_up(), true);
        add("eth0", "fe80::5/64", IfFlags::ethernet_up(), true);
        add("docker0", "172.17.0.1/16", IfFlags::ethernet_up(), false);
        add("eth1", "192.168.50.4/24", IfFlags::ethernet_up(), false);
        v
    }

    fn run(t: &str) -> Result<String, String> {
        expand(t, &vm()).map_err(|e| e.to_string())
    }

    #[test]
    fn consul_doc_examples() {
        assert_eq!(run("{{ GetPrivateIP }}").unwrap(), "10.0.1.5");
        assert_eq!(run(r#"{{ GetInterfaceIP "eth1" }}"#).unwrap(), "192.168.50.4");
        assert_eq!(
            run(r#"{{ GetAllInterfaces | include "network" "192.168.0.0/16" | attr "address" }}"#).unwrap(),
            "192.168.50.4"
        );
        assert_eq!(
            run(r#"{{ GetPrivateInterfaces | exclude "type" "ipv6" | join "address" " " }}"#).unwrap(),
            "10.0.1.5 172.17.0.1 192.168.50.4"
        );
        assert_eq!(run(r#"{{ GetPrivateInterfaces | attr "address" }}"#).unwrap(), "10.0.1.5");
        assert_eq!(run(r#"{{ GetDefaultInterfaces | attr "address" }}"#).unwrap(), "10.0.1.5");
        assert_eq!(
            run(r#"{{ GetAllInterfaces | include "flags" "loopback" | join "address" "," }}"#).unwrap(),
            "127.0.0.1,::1"
        );
        assert_eq!(run(r#"0.0.0.0 {{ GetInterfaceIP "docker0" }}"#).unwrap(), "0.0.0.0 172.17.0.1");
        assert_eq!(
            run(r#"{{ GetAllInterfaces | include "name" "^eth" | include "type" "ipv4" | sort "-address" | limit 1 | attr "address" }}"#)
                .unwrap(),
            "192.168.50.4"
        );
        assert_eq!(run(r#"{{ GetPrivateInterfaces | offset -1 | attr "name" }}"#).unwrap(), "eth1");
        assert_eq!(run(r#"{{ GetInterfaceIPs "lo" }}"#).unwrap(), "127.0.0.1 ::1");
    }

    #[test]
    fn public_and_missing() {
        assert_eq!(run("{{ GetPublicIP }}").unwrap(), "");
        let mut ifs = vm();
        ifs.push(IfAddr::parse("eth2", "34.120.1.9/20", IfFlags::ethernet_up(), false).unwrap());
        assert_eq!(expand("{{ GetPublicIP }}", &ifs).unwrap(), "34.120.1.9");
        assert_eq!(expand("{{ GetPublicIPs }}", &ifs).unwrap(), "34.120.1.9");
        assert_eq!(run(r#"{{ GetInterfaceIP "wlan0" }}"#).unwrap(), "");
        // An interface that is down is not "private" for GetPrivateIP.
        let mut down = vm();
        for i in &mut down {
            if i.name == "eth0" {
                i.flags.up = false;
            }
        }
        assert_eq!(expand("{{ GetPrivateIP }}", &down).unwrap(), "172.17.0.1");
        assert_eq!(expand("{{ GetPrivateIPs }}", &down).unwrap(), "172.17.0.1 10.0.1.5 192.168.50.4");
    }

    #[test]
    fn errors_name_the_function() {
        for (t, want) in [
            ("{{ GetPrivatIP }}", "unknown function \"GetPrivatIP\""),
            ("{{ GetInterfaceIP }}", "GetInterfaceIP takes 1 argument"),
            (r#"{{ GetAllInterfaces }}"#, "ends in a list of interfaces"),
            (r#"{{ GetPrivateIP | attr "address" }}"#, "attr: expected a list of interfaces"),
            (r#"{{ GetAllInterfaces | include "name" }}"#, "include takes 2 arguments"),
            (r#"{{ GetAllInterfaces | math "address" "+1" | attr "address" }}"#, "\"math\" is not supported"),
            (r#"{{ GetAllInterfaces | limit "x" | attr "address" }}"#, "limit: expected a number"),
            (r#"{{ include "name" "eth0" }}"#, "include: needs a list of interfaces piped in"),
        ] {
            let e = run(t).unwrap_err();
            assert!(e.contains(want), "{t}: {e}");
        }
    }

    /// Random edits of real templates (seeded) never panic the parser or
    /// the evaluator.
    #[test]
    fn mutated_templates_never_panic() {
        use rand::{Rng, SeedableRng};
        let corpus = [
            r#"{{ GetAllInterfaces | include "network" "10.0.0.0/8" | sort "-address,size" | offset -1 | limit 2 | join "address" " " }}"#,
            r#"{{- GetInterfaceIP "eth0" -}} {{ GetPrivateInterfaces | exclude "flags" "loopback|up" | attr "network" }}"#,
            r#"{{ GetAllInterfaces | unique "name" | include "rfc" "1918|6598" | include "size" "24" | attr "broadcast" }}"#,
        ];
        let alphabet: Vec<char> = "{}|\"`-+ 01aZ/.$()\\é".chars().collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..4000 {
            let mut chars: Vec<char> = corpus[round % corpus.len()].chars().collect();
            for _ in 0..rng.random_range(1..5) {
                let at = rng.random_range(0..=chars.len());
                if at < chars.len() && rng.random_bool(0.5) {
                    chars.remove(at);
                } else {
                    chars.insert(at, alphabet[rng.random_range(0..alphabet.len())]);
                }
            }
            let text: String = chars.into_iter().collect();
            let _ = expand(&text, &vm());
            let _ = check(&text);
        }
    }

    #[test]
    fn check_catches_bad_templates_without_interfaces() {
        assert!(check(r#"{{ GetInterfaceIP "eth0" }}"#).is_ok());
        assert!(check(r#"{{ GetAllInterfaces | include "network" "10.0.0.0/8" | attr "address" }}"#).is_ok());
        assert!(check(r#"{{ GetAllInterfaces | include "netwrk" "10.0.0.0/8" | attr "address" }}"#).is_err());
        assert!(check(r#"{{ GetAllInterfaces | attr "adress" }}"#).is_err());
        assert!(check(r#"{{ GetAllInterfaces | join "address" }}"#).is_err());
        assert!(check("{{ GetPrivateIP").is_err());
    }
}
