use super::*;
use crate::cli::acl::model::TemplateVariables;

fn link(id: &str, name: &str) -> Link {
    Link { id: id.into(), name: name.into() }
}

/// A token shaped like Consul's `FormatToken/complex` test case.
fn complex_token() -> Token {
    Token {
        accessor_id: "fbd2447f-7479-4329-ad13-b021d74f86ba".into(),
        secret_id: "869c6e91-4de9-4dab-b56e-87548435f9c6".into(),
        description: "test token".into(),
        create_time: "2020-05-22T18:52:31Z".into(),
        expiration_time: Some("2020-05-22T19:52:31Z".into()),
        policies: vec![
            link("beb04680-815b-4d7c-9e33-3d707c24672c", "hobbiton"),
            link("18788457-584c-4812-80d3-23d403148a90", "bywater"),
        ],
        roles: vec![link("3b0a78fe-b9c3-40de-b8ea-7d4d6674b366", "shire")],
        service_identities: vec![ServiceIdentity {
            service_name: "gardener".into(),
            datacenters: vec!["middleearth-northwest".into()],
        }],
        node_identities: vec![NodeIdentity {
            node_name: "bagend".into(),
            datacenter: "middleearth-northwest".into(),
        }],
        templated_policies: vec![TemplatedPolicy {
            template_name: "builtin/service".into(),
            template_variables: Some(TemplateVariables { name: "web".into() }),
            datacenters: vec![],
        }],
        hash: "YWJj".into(),
        create_index: 5,
        modify_index: 10,
        ..Token::default()
    }
}

#[test]
fn token_pretty_matches_consuls_layout() {
    let want = "\
AccessorID:       fbd2447f-7479-4329-ad13-b021d74f86ba
SecretID:         869c6e91-4de9-4dab-b56e-87548435f9c6
Description:      test token
Local:            false
Create Time:      2020-05-22 18:52:31 +0000 UTC
Expiration Time:  2020-05-22 19:52:31 +0000 UTC
Policies:
   beb04680-815b-4d7c-9e33-3d707c24672c - hobbiton
   18788457-584c-4812-80d3-23d403148a90 - bywater
Roles:
   3b0a78fe-b9c3-40de-b8ea-7d4d6674b366 - shire
Service Identities:
   gardener (Datacenters: middleearth-northwest)
Node Identities:
   bagend (Datacenter: middleearth-northwest)
Templated Policies:
   builtin/service
      Name: web
      Datacenters: all
";
    assert_eq!(token(&complex_token(), false), want);
}

#[test]
fn token_meta_adds_hash_and_indexes() {
    let out = token(&complex_token(), true);
    assert!(
        out.contains("Hash:             616263\nCreate Index:     5\nModify Index:     10\nPolicies:\n"),
        "{out}"
    );
}

#[test]
fn token_json_uses_gos_field_order_and_omits_empty_lists() {
    let t = Token {
        accessor_id: "a".into(),
        secret_id: "s".into(),
        create_time: "2020-05-22T18:52:31Z".into(),
        hash: "YWJj".into(),
        ..Token::default()
    };
    let want = r#"{
    "CreateIndex": 0,
    "ModifyIndex": 0,
    "AccessorID": "a",
    "SecretID": "s",
    "Description": "",
    "Local": false,
    "CreateTime": "2020-05-22T18:52:31Z",
    "Hash": "YWJj"
}"#;
    assert_eq!(json(&t), want);
}

#[test]
fn token_list_separates_entries_and_shows_legacy() {
    let e = TokenListEntry {
        accessor_id: "00000000-0000-0000-0000-000000000002".into(),
        secret_id: "anonymous".into(),
        description: "Anonymous Token".into(),
        create_time: "0001-01-01T00:00:00Z".into(),
        ..TokenListEntry::default()
    };
    let out = token_list(&[e.clone(), e], false);
    let one = "\
AccessorID:       00000000-0000-0000-0000-000000000002
SecretID:         anonymous
Description:      Anonymous Token
Local:            false
Create Time:      0001-01-01 00:00:00 +0000 UTC
Legacy:           false
";
    assert_eq!(out, format!("{one}\n{one}"));
}

#[test]
fn go_time_forms() {
    assert_eq!(go_time("2018-10-22T15:33:39.017890000Z"), "2018-10-22 15:33:39.01789 +0000 UTC");
    assert_eq!(go_time("2018-10-22T15:33:39-04:00"), "2018-10-22 15:33:39 -0400 -0400");
    assert_eq!(go_time("garbage"), "garbage");
}

#[test]
fn policy_pretty_and_list() {
    let p = Policy {
        id: "06acc965-df4b-5a99-58cb-3250930c6324".into(),
        name: "node-services-read".into(),
        description: "d".into(),
        rules: "node_prefix \"\" { policy = \"read\" }".into(),
        datacenters: Some(vec!["dc1".into(), "dc2".into()]),
        ..Policy::default()
    };
    assert_eq!(
        policy(&p, false),
        "ID:           06acc965-df4b-5a99-58cb-3250930c6324\nName:         node-services-read\n\
         Description:  d\nDatacenters:  dc1, dc2\nRules:\nnode_prefix \"\" { policy = \"read\" }\n"
    );
    let entry = PolicyListEntry {
        id: p.id.clone(),
        name: p.name.clone(),
        description: "d".into(),
        ..PolicyListEntry::default()
    };
    assert_eq!(
        policy_list(&[entry], false),
        "node-services-read:\n   ID:           06acc965-df4b-5a99-58cb-3250930c6324\n   Description:  d\n   Datacenters:  \n"
    );
    // Go marshals a nil Datacenters slice as null.
    assert!(json(&Policy::default()).contains("\"Datacenters\": null"));
}

#[test]
fn role_pretty_and_list() {
    let r = Role {
        id: "r1".into(),
        name: "db".into(),
        description: "role".into(),
        policies: vec![link("p1", "read")],
        service_identities: vec![ServiceIdentity { service_name: "web".into(), datacenters: vec![] }],
        ..Role::default()
    };
    assert_eq!(
        role(&r, false),
        "ID:           r1\nName:         db\nDescription:  role\nPolicies:\n   p1 - read\nService Identities:\n   web (Datacenters: all)\n"
    );
    assert_eq!(
        role_list(&[r], false),
        "db:\n   ID:           r1\n   Description:  role\n   Policies:\n      p1 - read\n   Service Identities:\n      web (Datacenters: all)\n"
    );
}

#[test]
fn expanded_token_shows_rules_and_agent_defaults() {
    let mut t = complex_token();
    t.roles.clear();
    t.templated_policies.clear();
    t.node_identities.clear();
    t.policies.truncate(1);
    let e = TokenExpanded {
        expanded_policies: Some(vec![Policy {
            id: "beb04680-815b-4d7c-9e33-3d707c24672c".into(),
            name: "hobbiton".into(),
            description: "user policy on token".into(),
            rules: "service_prefix \"\" {\n  policy = \"read\"\n}".into(),
            ..Policy::default()
        }]),
        agent_acl_default_policy: "deny".into(),
        agent_acl_down_policy: "extend-cache".into(),
        resolved_by_agent: "server-1".into(),
        token: t,
        ..TokenExpanded::default()
    };
    let mut synthetic = Synthetic::new();
    synthetic.insert(
        (SERVICE_TEMPLATE.into(), "gardener".into()),
        Policy {
            description: "synthetic policy generated from templated policy: builtin/service".into(),
            rules: "\nservice \"gardener\" {\n\tpolicy = \"write\"\n}".into(),
            ..Policy::default()
        },
    );
    let out = token_expanded(&e, false, &synthetic);
    let want_body = "\
Policies:
\tPolicy Name: hobbiton
\t\tID: beb04680-815b-4d7c-9e33-3d707c24672c
\t\tDescription: user policy on token
\t\tRules:
\t\t\tservice_prefix \"\" {
\t\t\t  policy = \"read\"
\t\t\t}

Service Identities:
\tName: gardener (Datacenters: middleearth-northwest)
\t\tDescription: synthetic policy generated from templated policy: builtin/service
\t\tRules:
\t\t\tservice \"gardener\" {
\t\t\t\tpolicy = \"write\"
\t\t\t}

=== End of Authorizer Layer 0: Token ===
=== Start of Authorizer Layer 2: Agent Configuration Defaults (Inherited) ===
";
    assert!(out.contains(want_body), "{out}");
    assert!(out.contains("Resolved By Agent: \"server-1\"\n\nDefault Policy: deny\n"), "{out}");
    assert!(out.ends_with("(refer to down_policy option in agent configuration)\n\n"), "{out}");
}

#[test]
fn templated_policy_read_and_list() {
    let t = TemplatedPolicyResponse {
        template_name: "builtin/service".into(),
        description: "Gives the token or role permissions to register a service".into(),
        ..TemplatedPolicyResponse::default()
    };
    assert_eq!(
        templated_policy(&t, false),
        "Name:            builtin/service\nDescription:     Gives the token or role permissions to register a service\n\
         Input variables:\n\tName: String - Required - The name of the service.\nExample usage:\n\
         \tconsul acl token create -templated-policy builtin/service -var name:api\n"
    );
    let dns =
        TemplatedPolicyResponse { template_name: "builtin/dns".into(), ..TemplatedPolicyResponse::default() };
    assert!(templated_policy(&dns, false).contains("Input variables: None\nExample usage:\n"));
    let mut all = BTreeMap::new();
    all.insert(
        "b".to_string(),
        TemplatedPolicyResponse { template_name: "builtin/node".into(), ..t.clone() },
    );
    all.insert("a".to_string(), TemplatedPolicyResponse { template_name: "builtin/dns".into(), ..t });
    assert_eq!(templated_policy_list(&all), "builtin/dns\nbuiltin/node\n");
}

#[test]
fn unknown_format_is_consuls_error() {
    assert_eq!(Format::parse("yaml").unwrap_err(), "Unknown format: yaml");
    assert_eq!(Format::parse("json").unwrap(), Format::Json);
}
