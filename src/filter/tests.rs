//! Table tests: expressions from Consul's documentation against records in
//! our JSON shapes, error messages and positions, limits.

use super::ast::{Expression, MatchOp};
use super::{parse_expression, schemas, Filter, FilterError, Schema, MAX_DEPTH, MAX_EXPRESSION_LEN};
use serde_json::{json, Value};

fn service_node() -> Value {
    json!({
        "ID": "40e4a748-2192-161a-0510-9bf59fe950b5",
        "Node": "node-2",
        "Address": "198.18.0.2",
        "Datacenter": "dc1",
        "TaggedAddresses": {"lan": "198.18.0.2"},
        "NodeMeta": {"os": "linux", "arch": "arm", "rack": "r12"},
        "ServiceKind": "",
        "ServiceID": "api-1",
        "ServiceName": "api-internal",
        "ServiceTags": ["test", "v1", "primary"],
        "ServiceAddress": "",
        "ServiceTaggedAddresses": {"lan": {"address": "10.0.0.2", "port": 9090}},
        "ServiceWeights": {"Passing": 1, "Warning": 1},
        "ServiceMeta": {"env": "prod", "version": "2"},
        "ServicePort": 9090,
        "ServiceEnableTagOverride": false,
        "ServiceProxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
        "ServiceConnect": {},
        "CreateIndex": 29,
        "ModifyIndex": 29
    })
}

fn health_entry() -> Value {
    json!({
        "Node": {"ID": "n1", "Node": "node-1", "Address": "10.0.0.1", "Datacenter": "dc1",
                 "TaggedAddresses": {}, "Meta": {"rack": "r7", "instance_type": "t2.medium"}},
        "Service": {"ID": "redis", "Service": "redis", "Tags": ["primary"], "Address": "",
                    "Meta": {"redis_version": "4.0"}, "Port": 8000,
                    "Weights": {"Passing": 10, "Warning": 1}, "EnableTagOverride": false,
                    "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}}, "Connect": {}},
        "Checks": [
            {"Node": "node-1", "CheckID": "service:redis", "Name": "redis check", "Status": "passing",
             "ServiceID": "redis", "ServiceName": "redis", "ServiceTags": ["primary"]},
            {"Node": "node-1", "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "critical",
             "ServiceID": "", "ServiceName": "", "ServiceTags": []}
        ]
    })
}

fn eval(expr: &str, schema: &Schema, record: &Value) -> bool {
    match Filter::parse(expr, schema) {
        Ok(f) => f.matches(record),
        Err(e) => panic!("{expr:?} did not parse: {e}"),
    }
}

#[test]
fn documented_expressions_on_service_nodes() {
    let s = schemas::service_node();
    let r = service_node();
    let table: &[(&str, bool)] = &[
        (r#"NodeMeta.os == "linux""#, true),
        (r#"NodeMeta.os == linux"#, true),
        (r#"NodeMeta["os"] == `linux`"#, true),
        (r#"NodeMeta.os != "linux""#, false),
        (r#"ServiceTags contains "primary""#, true),
        (r#""v1" in ServiceTags"#, true),
        (r#""v2" in ServiceTags"#, false),
        (r#""v2" not in ServiceTags"#, true),
        (r#"ServiceTags not contains "v1""#, false),
        (r#"ServiceMeta.env == prod and NodeMeta["rack"] matches "r[0-9]+""#, true),
        (r#"ServiceMeta.env == prod and NodeMeta["rack"] matches "^x""#, false),
        (r#"ServiceMeta.env == qa or ServiceName contains internal"#, true),
        (r#"Node != """#, true),
        (r#"ServiceAddress == """#, true),
        (r#"ServiceAddress is empty"#, true),
        (r#"ServicePort == 9090"#, true),
        (r#"ServicePort == "9090""#, true),
        (r#"ServicePort == "0x2382""#, true),
        (r#"ServicePort != 80"#, true),
        (r#"ServiceEnableTagOverride == false"#, true),
        (r#"ServiceEnableTagOverride == F"#, true),
        (r#"ServiceWeights.Passing == 1"#, true),
        (r#"ServiceTaggedAddresses.lan.Address == "10.0.0.2""#, true),
        (r#"ServiceTaggedAddresses.lan.Port == 9090"#, true),
        (r#"ServiceTaggedAddresses.wan.Port == 9090"#, false),
        (r#"lan in ServiceTaggedAddresses"#, true),
        (r#"ServiceTaggedAddresses contains wan"#, false),
        (r#"ServiceProxy.DestinationServiceName == """#, true),
        (r#"ServiceProxy.Upstreams is empty"#, true),
        (r#"ServiceConnect.Native == false"#, true),
        (r#"ServiceKind == """#, true),
        (r#"ServiceSocketPath is empty"#, true),
        (r#"not (ServicePort == 1 or ServicePort == 2)"#, true),
        (r#"not ServicePort == 9090"#, false),
        (r#"not not ServicePort == 9090"#, true),
        (r#"(ServiceName == "api-internal")"#, true),
        (r#"Address matches "^198\\.18\\.""#, true),
        (r#"Address not matches `^198\.18\.`"#, false),
        (r#"ID contains "-2192-""#, true),
        (r#""node" in Node"#, true),
        (r#"NodeMeta is not empty"#, true),
        (r#"TaggedAddresses.lan == "198.18.0.2""#, true),
    ];
    for (expr, want) in table {
        assert_eq!(eval(expr, s, &r), *want, "{expr}");
    }
}

#[test]
fn missing_map_keys_follow_consul() {
    let s = schemas::service_node();
    let r = service_node();
    let table: &[(&str, bool)] = &[
        (r#"ServiceMeta.x == "y""#, false),
        (r#"ServiceMeta.x != "y""#, true),
        (r#"ServiceMeta.x is empty"#, true),
        (r#"ServiceMeta.x is not empty"#, false),
        (r#"ServiceMeta.x contains "y""#, false),
        (r#""y" not in ServiceMeta.x"#, true),
        (r#"ServiceMeta.x matches ".*""#, false),
        (r#"ServiceMeta.x not matches ".*""#, true),
        (r#"ServiceTaggedAddresses.wan.Address == "10.0.0.2""#, false),
        (r#"ServiceTaggedAddresses.wan.Address != "10.0.0.2""#, true),
    ];
    for (expr, want) in table {
        assert_eq!(eval(expr, s, &r), *want, "{expr}");
    }
    // A map that is absent or null behaves like an empty map.
    let mut bare = service_node();
    bare["ServiceMeta"] = Value::Null;
    assert!(eval("ServiceMeta is empty", s, &bare));
    assert!(eval(r#"ServiceMeta.env != "prod""#, s, &bare));
}

#[test]
fn selectors_go_through_lists_with_any_semantics() {
    let s = schemas::service_health();
    let r = health_entry();
    let table: &[(&str, bool)] = &[
        (r#"Checks.Status == passing"#, true),
        (r#"Checks.Status == warning"#, false),
        // Negated leaves are "some check is not passing", as bexpr does.
        (r#"Checks.Status != passing"#, true),
        (r#"not Checks.Status == critical"#, false),
        (r#"Checks.CheckID == serfHealth and Checks.Status == critical"#, true),
        (r#"Checks.ServiceTags contains primary"#, true),
        (r#"Checks.ServiceTags is empty"#, true),
        (r#"Checks is not empty"#, true),
        (r#"Service.Tags contains "primary""#, true),
        (r#"Service.Meta.redis_version == "4.0""#, true),
        (r#"Service.Port == 8000"#, true),
        (r#"Node.Meta["rack"] matches "r[0-9]+""#, true),
        (r#"Node.Meta.rack == r8"#, false),
        (r#"Node.TaggedAddresses is empty"#, true),
        (r#"Service.Weights.Passing == 10"#, true),
    ];
    for (expr, want) in table {
        assert_eq!(eval(expr, s, &r), *want, "{expr}");
    }
    let mut no_checks = health_entry();
    no_checks["Checks"] = json!([]);
    assert!(!eval("Checks.Status != passing", s, &no_checks), "no check exists to differ");
    assert!(eval("Checks is empty", s, &no_checks));
}

#[test]
fn precedence_is_not_then_and_then_or() {
    // a or b and not c  ==  a or (b and (not c))
    let e = parse_expression("A == 1 or B == 2 and not C == 3").unwrap();
    let Expression::Or(terms) = e else { panic!("top level is not or: {e:?}") };
    assert_eq!(terms.len(), 2);
    let Expression::And(ands) = &terms[1] else { panic!("right of or is not and: {:?}", terms[1]) };
    assert!(matches!(ands[1], Expression::Not(_)));
    // Chains flatten; parentheses only group.
    let Expression::And(ands) = parse_expression("A == 1 and (B == 2 and C == 3) and D == 4").unwrap() else {
        panic!()
    };
    assert_eq!(ands.len(), 3);
    // `contains` keeps the selector on the left, `in` has it on the right.
    let Expression::Match(m) = parse_expression("Tags contains x").unwrap() else { panic!() };
    assert_eq!(
        (m.selector.to_string(), m.op, m.value.unwrap().raw),
        ("Tags".into(), MatchOp::In, "x".into())
    );
    let Expression::Match(m) = parse_expression("x not in Tags").unwrap() else { panic!() };
    assert_eq!(
        (m.selector.to_string(), m.op, m.value.unwrap().raw),
        ("Tags".into(), MatchOp::NotIn, "x".into())
    );
}

#[test]
fn literals_and_selectors() {
    let Expression::Match(m) = parse_expression(r#"Meta["a.b"].c == "x\ty""#).unwrap() else { panic!() };
    assert_eq!(m.selector.path, vec!["Meta", "a.b", "c"]);
    assert_eq!(m.value.unwrap().raw, "x\ty");
    let Expression::Match(m) = parse_expression(r#"Meta.k8s/app == `raw\n`"#).unwrap() else { panic!() };
    assert_eq!(m.selector.path, vec!["Meta", "k8s/app"]);
    assert_eq!(m.value.unwrap().raw, "raw\\n");
    let Expression::Match(m) = parse_expression(r#"Meta.x == "say \"hi\"""#).unwrap() else { panic!() };
    assert_eq!(m.value.unwrap().raw, "say \"hi\"");
    let Expression::Match(m) = parse_expression("Port == -1.5").unwrap() else { panic!() };
    assert_eq!(m.value.unwrap().raw, "-1.5");
    let Expression::Match(m) = parse_expression("A == b.c.0").unwrap() else { panic!() };
    assert_eq!(m.value.unwrap().raw, "b.c.0");
    // Whitespace of every kind, and none where punctuation separates.
    assert!(parse_expression(" \t(\nA==1\r)\n").is_ok());
    assert!(parse_expression("not(A == 1)or(B == 2)").is_ok());
}

fn syntax_err(expr: &str) -> (usize, usize, usize, String) {
    match parse_expression(expr) {
        Err(FilterError::Syntax { offset, line, column, message }) => (offset, line, column, message),
        other => panic!("{expr:?}: expected a syntax error, got {other:?}"),
    }
}

#[test]
fn syntax_errors_point_at_the_problem() {
    let (off, line, col, msg) = syntax_err("Name == ");
    assert_eq!((off, line, col), (8, 1, 9));
    assert!(msg.contains("expected a value"), "{msg}");

    let (off, _, _, msg) = syntax_err("Name = foo");
    assert_eq!(off, 5);
    assert!(msg.contains("expected a match operator"), "{msg}");

    let (off, _, _, msg) = syntax_err(r#"Name == "abc"#);
    assert_eq!(off, 8);
    assert!(msg.contains("unterminated string"), "{msg}");

    let (off, _, _, msg) = syntax_err("(Name == a");
    assert_eq!(off, 10);
    assert!(msg.contains("unmatched parentheses"), "{msg}");

    let (_, _, _, msg) = syntax_err("Name == a)");
    assert!(msg.contains("expected \"and\", \"or\""), "{msg}");

    let (off, line, col, _) = syntax_err("Name == a and\n  Port ==");
    assert_eq!((off, line, col), (23, 2, 10));

    let (off, _, _, msg) = syntax_err("Port == 12abc");
    assert_eq!(off, 8);
    assert!(msg.contains("invalid number literal"), "{msg}");

    let (_, _, _, msg) = syntax_err(r#"Meta[env] == x"#);
    assert!(msg.contains("invalid index"), "{msg}");
    let (_, _, _, msg) = syntax_err(r#"Meta["env" == x"#);
    assert!(msg.contains("unclosed index"), "{msg}");
    let (_, _, _, msg) = syntax_err(r#""x" == Name"#);
    assert!(msg.contains("selector must come first"), "{msg}");
    let (_, _, _, msg) = syntax_err(r#""x" in "y""#);
    assert!(msg.contains("invalid selector"), "{msg}");
    let (_, _, _, msg) = syntax_err("Name is full");
    assert!(msg.contains("\"empty\""), "{msg}");
    let (_, _, _, msg) = syntax_err(r#"Name == "\q""#);
    assert!(msg.contains("unknown escape"), "{msg}");
    for bad in [
        "",
        "   ",
        "and",
        "Name ==",
        "A == 1 and",
        "A == 1 or or B == 2",
        "()",
        "Name.",
        "Name..x == 1",
        "é == 1",
    ] {
        assert!(parse_expression(bad).is_err(), "{bad:?} parsed");
    }
    // Positions are character columns on the line, offsets are bytes.
    let (off, line, col, _) = syntax_err("Name == \"é\" xx");
    assert_eq!((off, line, col), (13, 1, 13));
}

fn invalid(expr: &str, schema: &Schema) -> String {
    match Filter::parse(expr, schema) {
        Err(FilterError::Invalid(m)) => m,
        other => panic!("{expr:?}: expected a schema error, got {other:?}"),
    }
}

#[test]
fn schema_errors_are_worded_like_consul() {
    let s = schemas::service_node();
    assert_eq!(invalid("Foo == 1", s), r#"Selector "Foo" is not valid"#);
    assert_eq!(invalid("ServiceMeta.env.x == 1", s), r#"Selector "ServiceMeta.env.x" is not valid"#);
    assert_eq!(
        invalid("serviceName == x", s),
        r#"Selector "serviceName" is not valid"#,
        "selectors are case-sensitive"
    );
    assert_eq!(
        invalid("ServiceWeights.passing == 1", s),
        r#"Selector "ServiceWeights.passing" is not valid"#
    );
    assert_eq!(
        invalid("ServicePort matches x", s),
        r#"Invalid match operator "Matches" for selector "ServicePort""#
    );
    assert_eq!(
        invalid("ServiceTags == x", s),
        r#"Invalid match operator "Equal" for selector "ServiceTags""#
    );
    assert_eq!(
        invalid("ServiceWeights is empty", s),
        r#"Invalid match operator "Is Empty" for selector "ServiceWeights""#
    );
    assert_eq!(
        invalid("ServicePort == abc", s),
        r#"Failed to coerce value "abc" for selector "ServicePort": strconv.ParseInt: parsing "abc": invalid syntax"#
    );
    assert_eq!(
        invalid("ServiceEnableTagOverride == yes", s),
        r#"Failed to coerce value "yes" for selector "ServiceEnableTagOverride": strconv.ParseBool: parsing "yes": invalid syntax"#
    );
    assert!(
        invalid(r#"ServiceName matches "(""#, s).starts_with(r#"Failed to compile regular expression "(""#)
    );
    let h = schemas::service_health();
    assert_eq!(invalid("Checks.Nope == x", h), r#"Selector "Checks.Nope" is not valid"#);
    assert_eq!(invalid("Checks == x", h), r#"Invalid match operator "Equal" for selector "Checks""#);
    // The JSON key of a renamed field is not a selector.
    assert_eq!(
        invalid("ServiceTaggedAddresses.lan.address == x", s),
        r#"Selector "ServiceTaggedAddresses.lan.address" is not valid"#
    );
}

#[test]
fn every_documented_selector_resolves() {
    // Spot checks of Consul's documented selector tables (map keys are free).
    let cases: &[(&Schema, &[&str])] = &[
        (
            schemas::node(),
            &[
                "Address",
                "Datacenter",
                "ID",
                "Meta",
                "Meta.x",
                "Node",
                "TaggedAddresses",
                "TaggedAddresses.lan",
            ],
        ),
        (
            schemas::node_service(),
            &[
                "Address",
                "Connect.Native",
                "EnableTagOverride",
                "Kind",
                "Proxy.Upstreams",
                "Proxy.Upstreams.MeshGateway.Mode",
                "Proxy.TransparentProxy.OutboundListenerPort",
                "TaggedAddresses.lan.Address",
                "Weights.Warning",
            ],
        ),
        (
            schemas::health_check(),
            &[
                "CheckID",
                "Name",
                "Node",
                "Notes",
                "Output",
                "ServiceID",
                "ServiceName",
                "ServiceTags",
                "Status",
            ],
        ),
        (schemas::agent_service(), &["Service", "Tags", "Meta.env", "Datacenter"]),
        (
            schemas::service_health(),
            &["Checks", "Checks.Status", "Node.Meta.rack", "Service.Proxy.Upstreams.LocalBindPort"],
        ),
        (schemas::member(), &["Name", "Addr", "Port", "Tags.role", "Status", "DelegateCur"]),
    ];
    for (schema, selectors) in cases {
        for sel in *selectors {
            let path: Vec<String> = sel.split('.').map(str::to_string).collect();
            assert!(super::schema::resolve(schema, &path).is_ok(), "{sel} does not resolve");
        }
    }
    // The listing names map values `<any>`, as Consul's docs do.
    let listed: Vec<String> = schemas::node().selectors().into_iter().map(|(s, _)| s).collect();
    assert!(listed.contains(&"Meta.<any>".to_string()), "{listed:?}");
}

#[test]
fn limits_are_enforced_without_panics() {
    let long = format!("Name == \"{}\"", "a".repeat(MAX_EXPRESSION_LEN));
    let (off, _, _, msg) = syntax_err(&long);
    assert_eq!(off, MAX_EXPRESSION_LEN);
    assert!(msg.contains("limit is 4096"), "{msg}");
    // Exactly at the limit is fine.
    let at_limit = format!("Name == \"{}\"", "a".repeat(MAX_EXPRESSION_LEN - 10));
    assert_eq!(at_limit.len(), MAX_EXPRESSION_LEN);
    assert!(parse_expression(&at_limit).is_ok());

    let deep_ok = format!("{}A == 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(parse_expression(&deep_ok).is_ok());
    let too_deep = format!("{}A == 1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    assert!(syntax_err(&too_deep).3.contains("deeper than 64"));
    let nots = format!("{}A == 1", "not ".repeat(MAX_DEPTH + 1));
    assert!(syntax_err(&nots).3.contains("deeper than 64"));
    // Unbalanced openers at any depth are refused, not overflowed.
    assert!(parse_expression(&"(".repeat(MAX_EXPRESSION_LEN)).is_err());
    assert!(parse_expression(&"not ".repeat(1000)).is_err());
    // A long flat chain costs no depth.
    let chain = vec!["A == 1"; 400].join(" or ");
    assert!(chain.len() < MAX_EXPRESSION_LEN);
    assert!(matches!(parse_expression(&chain), Ok(Expression::Or(t)) if t.len() == 400));

    // Regexes: too big to compile is an error; catastrophic-looking ones
    // run in linear time.
    let s = schemas::service_node();
    assert!(invalid(r#"ServiceName matches "(((a{100}){100}){100})""#, s)
        .contains("Failed to compile regular expression"));
    let f = Filter::parse(r#"ServiceName matches "^(a+)+$""#, s).unwrap();
    let mut r = service_node();
    r["ServiceName"] = Value::String(format!("{}b", "a".repeat(100_000)));
    let started = std::time::Instant::now();
    assert!(!f.matches(&r));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn records_of_unexpected_shape_never_panic() {
    let s = schemas::service_health();
    let f = Filter::parse(
        r#"Checks.Status == passing or Node.Meta.x is empty or Service.Port == 1 or "a" in Service.Tags or Service.Weights.Passing != 3"#,
        s,
    )
    .unwrap();
    for weird in [
        json!(null),
        json!(1),
        json!("x"),
        json!([1, 2]),
        json!({"Checks": 5, "Node": [], "Service": "x"}),
        json!({"Checks": [null, 1, {"Status": 7}], "Node": {"Meta": []}, "Service": {"Tags": {"a": 1}, "Port": "1"}}),
    ] {
        let _ = f.matches(&weird);
    }
    // Zero values: an empty record is a Go zero struct.
    assert!(f.matches(&json!({})), "Node.Meta.x is empty holds on a zero record");
    let port = Filter::parse("Service.Port == 0", s).unwrap();
    assert!(port.matches(&json!({})));
    let typed = Filter::parse("Service.Port == 1", s).unwrap();
    assert!(typed.matches(&json!({"Service": {"Port": "1"}})), "numeric strings still compare as numbers");
    assert!(typed.matches(&json!({"Service": {"Port": 1.0}})));
}
