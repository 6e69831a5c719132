//! `jwt` auth methods, binding rules, `consul login` / `logout`, through a
//! real dev agent with ACLs on. The test serves the JWKS itself (and an
//! OIDC discovery document) over HTTP on its own loopback address, with EC
//! keys it generates (ring), rotates them mid-test and can make the server
//! hang. RSA is covered with a static-key method whose key is a fixture
//! (tests/it/fixtures/jwt-rsa-test-key*.pem, made with `openssl genpkey`:
//! ring signs RSA but does not generate RSA keys).

use crate::harness::{cli_with_env, unique_ip, Agent};
use base64::Engine;
use consul::api::{ApiResponse, Client, ClientConfig};
use hyper::Method;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROOT: &str = "3f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// An ES256 signing key with its `kid`.
struct EcKey {
    kid: String,
    pair: EcdsaKeyPair,
}

impl EcKey {
    fn generate(kid: &str) -> EcKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        EcKey { kid: kid.into(), pair }
    }

    fn jwk(&self) -> Value {
        let p = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "use": "sig", "kid": self.kid, "x": b64(&p[1..33]), "y": b64(&p[33..])})
    }

    /// The public key as a PEM SubjectPublicKeyInfo.
    fn pem(&self) -> String {
        // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING point }
        let mut der = hex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
        der.extend_from_slice(self.pair.public_key().as_ref());
        pem("PUBLIC KEY", &der)
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let sig = self.pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn rsa_sign(claims: &Value) -> String {
    use rustls_pki_types::pem::PemObject;
    let key = include_str!("fixtures/jwt-rsa-test-key.pem");
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
    let header = json!({"alg": "RS256", "typ": "JWT"});
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let mut sig = vec![0; pair.public().modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
    format!("{input}.{}", b64(&sig))
}

/// What the test's key server answers.
struct KeyServerState {
    jwks: Value,
    /// Accept connections and never answer.
    hang: bool,
    fetches: usize,
}

/// A JWKS (`/keys`) and OIDC discovery (`/.well-known/openid-configuration`)
/// server on a loopback address of its own.
struct KeyServer {
    base: String,
    state: Arc<Mutex<KeyServerState>>,
}

impl KeyServer {
    async fn start(jwks: Value) -> KeyServer {
        let listener = tokio::net::TcpListener::bind((unique_ip(), 0)).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(KeyServerState { jwks, hang: false, fetches: 0 }));
        let (st, b) = (state.clone(), base.clone());
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((mut conn, _)) = listener.accept().await else { return };
                let (st, b) = (st.clone(), b.clone());
                if st.lock().unwrap().hang {
                    held.push(conn);
                    continue;
                }
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let (status, body) = if path == "/keys" {
                        let mut s = st.lock().unwrap();
                        s.fetches += 1;
                        ("200 OK", s.jwks.to_string())
                    } else if path == "/.well-known/openid-configuration" {
                        ("200 OK", json!({"issuer": b, "jwks_uri": format!("{b}/keys")}).to_string())
                    } else {
                        ("404 Not Found", "{}".to_string())
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                });
            }
        });
        KeyServer { base, state }
    }

    fn set(&self, f: impl FnOnce(&mut KeyServerState)) {
        f(&mut self.state.lock().unwrap())
    }
}

struct Acl {
    agent: Agent,
    root: Client,
}

impl Acl {
    async fn start() -> Acl {
        let hcl = format!(
            r#"acl {{ enabled = true default_policy = "deny" tokens {{ initial_management = "{ROOT}" }} }}"#
        );
        let agent = Agent::dev(&["-hcl", &hcl]);
        agent.wait_ready().await;
        let root = client(&agent, Some(ROOT));
        let ready = crate::common::wait::wait_until(Duration::from_secs(30), || async {
            matches!(root.request(Method::GET, "/v1/acl/token/self", None).await, Ok(r) if r.status.is_success())
        })
        .await;
        assert!(ready, "the initial management token never worked\n{}", agent.output_text());
        Acl { agent, root }
    }

    async fn call(&self, c: &Client, method: Method, path: &str, body: Option<Value>) -> ApiResponse {
        c.request(method, path, body.map(|b| serde_json::to_vec(&b).unwrap().into())).await.unwrap()
    }

    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let r = self.call(&self.root, method.clone(), path, Some(body)).await;
        assert!(r.status.is_success(), "{method} {path}: {} {}", r.status, r.text());
        r.json().unwrap()
    }

    async fn login(&self, method: &str, jwt: &str) -> ApiResponse {
        let anon = client(&self.agent, None);
        let body = json!({"AuthMethod": method, "BearerToken": jwt, "Meta": {"pod": "p1"}});
        self.call(&anon, Method::POST, "/v1/acl/login", Some(body)).await
    }

    async fn token_count(&self) -> usize {
        let r = self.call(&self.root, Method::GET, "/v1/acl/tokens", None).await;
        r.json::<Vec<Value>>().unwrap().len()
    }
}

fn client(agent: &Agent, token: Option<&str>) -> Client {
    Client::new(ClientConfig {
        address: agent.addr(),
        token: token.map(str::to_string),
        ..Default::default()
    })
    .unwrap()
}

/// How many logins the latency figures are taken over.
const LATENCY_LOGINS: usize = 100;

/// p50 and p99 of `LATENCY_LOGINS` logins against `method` (each with a
/// fresh JWT from `jwt`), over loopback HTTP; every one must succeed.
async fn login_latency(acl: &Acl, method: &str, jwt: impl Fn() -> String) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(LATENCY_LOGINS);
    for _ in 0..LATENCY_LOGINS {
        let jwt = jwt();
        let start = Instant::now();
        let r = acl.login(method, &jwt).await;
        times.push(start.elapsed());
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    }
    times.sort();
    let at = |q: f64| times[((q * LATENCY_LOGINS as f64).ceil() as usize).saturating_sub(1)];
    (at(0.50), at(0.99))
}

fn claims(job: &str, ns: &str, groups: &[&str]) -> Value {
    json!({
        "iss": "nomad", "aud": ["consul.io"], "iat": now(), "nbf": now(), "exp": now() + 300,
        "nomad_job_id": job, "nomad_namespace": ns, "groups": groups,
    })
}

#[tokio::test]
async fn jwks_method_binds_each_type_rotates_keys_and_survives_a_hanging_key_server() {
    let acl = Acl::start().await;
    let k1 = EcKey::generate("k1");
    let keys = KeyServer::start(json!({"keys": [k1.jwk()]})).await;

    // Methods of other types are refused by name, with a 400.
    let r = acl
        .call(
            &acl.root,
            Method::PUT,
            "/v1/acl/auth-method",
            Some(json!({"Name": "k8s", "Type": "kubernetes"})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.text());
    assert!(r.text().contains("\"kubernetes\" is not supported"), "{}", r.text());

    let m = acl
        .ok(
            Method::PUT,
            "/v1/acl/auth-method",
            json!({
                "Name": "nomad-workloads", "Type": "jwt", "DisplayName": "Nomad", "MaxTokenTTL": "1h",
                "Config": {
                    "JWKSURL": format!("{}/keys", keys.base),
                    "JWTSupportedAlgs": ["ES256"],
                    "BoundAudiences": ["consul.io"], "BoundIssuer": "nomad",
                    "ClaimMappings": {"nomad_job_id": "job", "nomad_namespace": "ns"},
                    "ListClaimMappings": {"groups": "groups"},
                }
            }),
        )
        .await;
    assert_eq!(m["MaxTokenTTL"], "1h0m0s");
    assert_eq!(m["Config"]["BoundIssuer"], "nomad");
    let list: Vec<Value> =
        acl.call(&acl.root, Method::GET, "/v1/acl/auth-methods", None).await.json().unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].get("Config").is_none(), "the listing has no Config: {}", list[0]);

    acl.ok(
        Method::PUT,
        "/v1/acl/policy",
        json!({"Name": "kv-app", "Rules": "key_prefix \"app/\" { policy = \"write\" }"}),
    )
    .await;
    acl.ok(
        Method::PUT,
        "/v1/acl/policy",
        json!({"Name": "kv-ops", "Rules": "key_prefix \"ops/\" { policy = \"write\" }"}),
    )
    .await;
    acl.ok(Method::PUT, "/v1/acl/role", json!({"Name": "ops-role", "Policies": [{"Name": "kv-ops"}]})).await;
    let rules = [
        json!({"BindType": "service", "BindName": "${value.job}", "Selector": "value.ns == default"}),
        json!({"BindType": "node", "BindName": "node-${value.job}", "Selector": "nodes in list.groups"}),
        json!({"BindType": "role", "BindName": "ops-role", "Selector": "value.job == web and \"admins\" in list.groups"}),
        json!({"BindType": "policy", "BindName": "kv-app", "Selector": "admins in list.groups"}),
        json!({"BindType": "templated-policy", "BindName": "builtin/service", "BindVars": {"Name": "${value.job}-tp"},
               "Selector": "value.job matches \"^web\""}),
        // A rule whose role does not exist binds nothing.
        json!({"BindType": "role", "BindName": "missing-role"}),
    ];
    for mut rule in rules {
        rule["AuthMethod"] = json!("nomad-workloads");
        acl.ok(Method::PUT, "/v1/acl/binding-rule", rule).await;
    }
    // Selector syntax errors and unknown fields are refused when written.
    for bad in ["value.ns ==", "value.nope == x", "(value.ns == a"] {
        let body =
            json!({"AuthMethod": "nomad-workloads", "BindType": "service", "BindName": "x", "Selector": bad});
        let r = acl.call(&acl.root, Method::PUT, "/v1/acl/binding-rule", Some(body)).await;
        assert_eq!(r.status.as_u16(), 500, "{bad}: {}", r.text());
        assert!(r.text().contains("Selector is invalid"), "{bad}: {}", r.text());
    }
    let body = json!({"AuthMethod": "nomad-workloads", "BindType": "service", "BindName": "${value.nope}"});
    let r = acl.call(&acl.root, Method::PUT, "/v1/acl/binding-rule", Some(body)).await;
    assert!(r.text().contains("invalid BindName"), "{}", r.text());
    let listed: Vec<Value> = acl
        .call(&acl.root, Method::GET, "/v1/acl/binding-rules?authmethod=nomad-workloads", None)
        .await
        .json()
        .unwrap();
    assert_eq!(listed.len(), 6);
    let none: Vec<Value> = acl
        .call(&acl.root, Method::GET, "/v1/acl/binding-rules?authmethod=other", None)
        .await
        .json()
        .unwrap();
    assert!(none.is_empty());

    // A valid login gets exactly what the matching rules bind.
    let r = acl.login("nomad-workloads", &k1.sign(&claims("web", "default", &["admins", "nodes"]))).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let t: Value = r.json().unwrap();
    assert_eq!(t["AuthMethod"], "nomad-workloads");
    assert_eq!(t["Description"], "token created via login: {\"pod\":\"p1\"}");
    assert_eq!(t["Local"], true);
    assert_eq!(t["ServiceIdentities"], json!([{"ServiceName": "web"}]));
    assert_eq!(t["NodeIdentities"], json!([{"NodeName": "node-web", "Datacenter": "dc1"}]));
    assert_eq!(t["Roles"][0]["Name"], "ops-role");
    assert_eq!(t["Roles"].as_array().unwrap().len(), 1);
    assert_eq!(t["Policies"][0]["Name"], "kv-app");
    assert_eq!(t["TemplatedPolicies"][0]["TemplateName"], "builtin/service");
    assert_eq!(t["TemplatedPolicies"][0]["TemplateVariables"]["name"], "web-tp");
    assert!(t["ExpirationTime"].is_string(), "MaxTokenTTL sets an expiry: {t}");
    let secret = t["SecretID"].as_str().unwrap().to_string();

    // Its rights: exactly those bound.
    let me = client(&acl.agent, Some(&secret));
    let put = |path: &'static str, body: Value| {
        let me = &me;
        async move {
            me.request(Method::PUT, path, Some(serde_json::to_vec(&body).unwrap().into())).await.unwrap()
        }
    };
    assert_eq!(put("/v1/kv/app/config", json!("x")).await.status.as_u16(), 200, "policy kv-app");
    assert_eq!(put("/v1/kv/ops/config", json!("x")).await.status.as_u16(), 200, "role ops-role");
    assert_eq!(put("/v1/kv/other", json!("x")).await.status.as_u16(), 403, "nothing else");
    let reg = |name: &str| json!({"Name": name, "Port": 80});
    assert_eq!(
        put("/v1/agent/service/register", reg("web")).await.status.as_u16(),
        200,
        "service identity web"
    );
    assert_eq!(
        put("/v1/agent/service/register", reg("web-tp")).await.status.as_u16(),
        200,
        "templated policy"
    );
    assert_eq!(put("/v1/agent/service/register", reg("db")).await.status.as_u16(), 403, "not db");

    // A login no rule matches: 403 as Consul words it, nothing stored.
    let before = acl.token_count().await;
    let r = acl.login("nomad-workloads", &k1.sign(&claims("db", "batch", &[]))).await;
    assert_eq!((r.status.as_u16(), r.text().trim().to_string()), (403, "Permission denied".to_string()));

    // Refused tokens, each with its reason.
    let mut expired = claims("web", "default", &[]);
    expired["exp"] = json!(now() - 3600);
    expired["iat"] = json!(now() - 7200);
    expired["nbf"] = json!(now() - 7200);
    let mut wrong_aud = claims("web", "default", &[]);
    wrong_aud["aud"] = json!("vault");
    let mut wrong_iss = claims("web", "default", &[]);
    wrong_iss["iss"] = json!("someone-else");
    let impostor = EcKey { kid: "k1".into(), pair: EcKey::generate("x").pair };
    let cases = [
        (k1.sign(&expired), "token is expired (exp)"),
        (k1.sign(&wrong_aud), "aud claim does not match any bound audience"),
        (k1.sign(&wrong_iss), "invalid issuer claim (iss)"),
        (impostor.sign(&claims("web", "default", &[])), "failed to verify id token signature"),
        ("not-a-jwt".to_string(), "malformed jwt"),
        ("a.b.c".to_string(), "malformed jwt"),
    ];
    for (jwt, why) in cases {
        let r = acl.login("nomad-workloads", &jwt).await;
        assert_eq!(r.status.as_u16(), 500, "{why}: {}", r.text());
        assert!(r.text().contains(why), "expected {why:?}, got {}", r.text());
    }
    let r = acl.login("nomad-workloads", &"x".repeat(64 * 1024)).await;
    assert_eq!(r.status.as_u16(), 400, "oversized: {}", r.text());
    let r = acl.login("no-such-method", &k1.sign(&claims("web", "default", &[]))).await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text());
    assert!(r.text().contains("ACL not found"), "{}", r.text());
    assert_eq!(acl.token_count().await, before, "refused logins store nothing");

    // Key rotation: the server now publishes k2 only; a token naming k2 is
    // accepted (an unknown kid refreshes the keys), one signed by k1 no longer.
    let k2 = EcKey::generate("k2");
    keys.set(|s| s.jwks = json!({"keys": [k2.jwk()]}));
    let r = acl.login("nomad-workloads", &k2.sign(&claims("web", "default", &[]))).await;
    assert_eq!(r.status.as_u16(), 200, "rotated key: {}", r.text());
    let r = acl.login("nomad-workloads", &k1.sign(&claims("web", "default", &[]))).await;
    assert_eq!(r.status.as_u16(), 500, "retired key: {}", r.text());

    // Login latency with the keys cached.
    let (p50, p99) = login_latency(&acl, "nomad-workloads", || k2.sign(&claims("web", "default", &[]))).await;
    println!(
        "login latency (JWKS, ES256, keys cached): p50 {p50:?}, p99 {p99:?} over {LATENCY_LOGINS} logins"
    );

    // Logout: only the token itself, only a login's token.
    let r = acl.call(&me, Method::POST, "/v1/acl/logout", None).await;
    assert_eq!((r.status.as_u16(), r.text().trim().to_string()), (200, "true".to_string()));
    let r = acl.call(&me, Method::GET, "/v1/acl/token/self", None).await;
    // A deleted secret is one that does not exist (Consul 1.15+: 404).
    assert_eq!(r.status.as_u16(), 404, "logged out: {}", r.text());
    let r = acl.call(&acl.root, Method::POST, "/v1/acl/logout", None).await;
    assert_eq!(r.status.as_u16(), 403);
    assert!(r.text().contains("Permission denied: token wasn't created via login"), "{}", r.text());
    let r = acl.call(&client(&acl.agent, None), Method::POST, "/v1/acl/logout", None).await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.text());

    // A key server that accepts and never answers: the login fails with a
    // clear error within the fetch deadline, stores nothing, and the agent
    // keeps serving meanwhile.
    let before = acl.token_count().await;
    keys.set(|s| s.hang = true);
    let k3 = EcKey::generate("k3");
    let jwt = k3.sign(&claims("web", "default", &[]));
    let start = Instant::now();
    let (r, leader) = tokio::join!(acl.login("nomad-workloads", &jwt), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        acl.call(&acl.root, Method::GET, "/v1/status/leader", None).await
    });
    let took = start.elapsed();
    assert_eq!(leader.status.as_u16(), 200, "the agent serves while a login waits on keys");
    assert_eq!(r.status.as_u16(), 500, "{}", r.text());
    assert!(r.text().contains("fetching keys") && r.text().contains("no answer within 5s"), "{}", r.text());
    assert!(took < Duration::from_secs(12), "bounded: took {took:?}");
    assert_eq!(acl.token_count().await, before);

    // Deleting the method takes its rules and its logins' tokens.
    keys.set(|s| s.hang = false);
    acl.ok(Method::DELETE, "/v1/acl/auth-method/nomad-workloads", json!(null)).await;
    let rules: Vec<Value> =
        acl.call(&acl.root, Method::GET, "/v1/acl/binding-rules", None).await.json().unwrap();
    assert!(rules.is_empty());
    let tokens: Vec<Value> = acl.call(&acl.root, Method::GET, "/v1/acl/tokens", None).await.json().unwrap();
    assert!(tokens.iter().all(|t| t.get("AuthMethod").is_none()), "{tokens:?}");
    let r = acl.call(&acl.root, Method::GET, "/v1/acl/auth-method/nomad-workloads", None).await;
    assert_eq!(r.status.as_u16(), 404);
}

#[tokio::test]
async fn static_keys_discovery_and_the_cli() {
    let acl = Acl::start().await;
    let ec = EcKey::generate("ec");
    let rsa_pub = include_str!("fixtures/jwt-rsa-test-key.pub.pem");
    acl.ok(
        Method::PUT,
        "/v1/acl/auth-method",
        json!({"Name": "static", "Type": "jwt", "TokenLocality": "global", "Config": {
            "JWTValidationPubKeys": [ec.pem(), rsa_pub], "BoundAudiences": ["consul.io"],
            "ClaimMappings": {"nomad_job_id": "job"},
        }}),
    )
    .await;
    acl.ok(
        Method::PUT,
        "/v1/acl/binding-rule",
        json!({"AuthMethod": "static", "BindType": "service", "BindName": "${value.job}"}),
    )
    .await;
    for jwt in [ec.sign(&claims("api", "x", &[])), rsa_sign(&claims("api", "x", &[]))] {
        let r = acl.login("static", &jwt).await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        let t: Value = r.json().unwrap();
        assert_eq!(t["Local"], false, "TokenLocality global");
        assert!(t.get("ExpirationTime").is_none());
    }
    let (p50, p99) = login_latency(&acl, "static", || rsa_sign(&claims("api", "x", &[]))).await;
    println!("login latency (static key, RS256): p50 {p50:?}, p99 {p99:?} over {LATENCY_LOGINS} logins");
    let stranger = EcKey::generate("s");
    let r = acl.login("static", &stranger.sign(&claims("api", "x", &[]))).await;
    assert!(r.text().contains("no known key successfully validated the token signature"), "{}", r.text());

    // OIDC discovery: the issuer is the discovery URL; keys from its jwks_uri.
    let disc = EcKey::generate("d1");
    let keys = KeyServer::start(json!({"keys": [disc.jwk()]})).await;
    acl.ok(
        Method::PUT,
        "/v1/acl/auth-method",
        json!({"Name": "oidc-disc", "Type": "jwt", "Config": {
            "OIDCDiscoveryURL": keys.base, "JWTSupportedAlgs": ["ES256"], "BoundAudiences": ["consul.io"],
            "ClaimMappings": {"nomad_job_id": "job"},
        }}),
    )
    .await;
    acl.ok(
        Method::PUT,
        "/v1/acl/binding-rule",
        json!({"AuthMethod": "oidc-disc", "BindType": "service", "BindName": "${value.job}"}),
    )
    .await;
    let mut c = claims("api", "x", &[]);
    c["iss"] = json!(keys.base);
    let r = acl.login("oidc-disc", &disc.sign(&c)).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    // An unreachable JWKS URL is refused when the method is written.
    let r = acl
        .call(
            &acl.root,
            Method::PUT,
            "/v1/acl/auth-method",
            Some(json!({"Name": "dead", "Type": "jwt",
            "Config": {"JWKSURL": format!("{}/nothing-here", keys.base)}})),
        )
        .await;
    assert!(r.text().contains("error checking JWKSURL"), "{}", r.text());

    // The CLI end to end.
    let dir = tempfile::tempdir().unwrap();
    let jwt_file = dir.path().join("jwt");
    std::fs::write(&jwt_file, ec.sign(&claims("api", "x", &[]))).unwrap();
    let sink = dir.path().join("token");
    let addr = acl.agent.addr();
    let env = [("CONSUL_HTTP_ADDR", addr.as_str())];
    let out = cli_with_env(
        &[
            "login",
            "-method=static",
            &format!("-bearer-token-file={}", jwt_file.display()),
            &format!("-token-sink-file={}", sink.display()),
            "-meta=pod=p9",
        ],
        &env,
        None,
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let secret = std::fs::read_to_string(&sink).unwrap();
    let me = client(&acl.agent, Some(secret.trim()));
    let t: Value = me.request(Method::GET, "/v1/acl/token/self", None).await.unwrap().json().unwrap();
    assert_eq!(t["Description"], "token created via login: {\"pod\":\"p9\"}");
    let out = cli_with_env(&["logout", &format!("-token={}", secret.trim())], &env, None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(me.request(Method::GET, "/v1/acl/token/self", None).await.unwrap().status.as_u16(), 404);

    let root_env = [("CONSUL_HTTP_ADDR", addr.as_str()), ("CONSUL_HTTP_TOKEN", ROOT)];
    let out = cli_with_env(&["acl", "auth-method", "list"], &root_env, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("static:") && out.stdout.contains("Type:         jwt"), "{}", out.stdout);
    let out = cli_with_env(&["acl", "auth-method", "read", "-name=static", "-format=json"], &root_env, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["TokenLocality"], "global");
    let out = cli_with_env(
        &[
            "acl",
            "auth-method",
            "create",
            "-type=jwt",
            "-name=cli-made",
            "-max-token-ttl=10m",
            &format!("-config={}", json!({"JWTValidationPubKeys": [ec.pem()]})),
        ],
        &root_env,
        None,
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("cli-made"), "{}", out.stdout);
    let out = cli_with_env(
        &[
            "acl",
            "binding-rule",
            "create",
            "-method=cli-made",
            "-bind-type=service",
            "-bind-name=web",
            "-selector=value.x == y",
        ],
        &root_env,
        None,
    );
    assert_ne!(out.code, 0, "unknown selector field: {}", out.stdout);
    let out = cli_with_env(
        &[
            "acl",
            "binding-rule",
            "create",
            "-method=cli-made",
            "-bind-type=service",
            "-bind-name=web",
            "-format=json",
        ],
        &root_env,
        None,
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let rule: Value = serde_json::from_str(&out.stdout).unwrap();
    let id = rule["ID"].as_str().unwrap();
    let out = cli_with_env(&["acl", "binding-rule", "list", "-method=cli-made"], &root_env, None);
    assert!(out.stdout.contains(id), "{}", out.stdout);
    let out = cli_with_env(
        &["acl", "binding-rule", "update", &format!("-id={id}"), "-description=now described"],
        &root_env,
        None,
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("now described"), "{}", out.stdout);
    let out = cli_with_env(&["acl", "binding-rule", "delete", &format!("-id={id}")], &root_env, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = cli_with_env(
        &["acl", "auth-method", "update", "-name=cli-made", "-description=desc"],
        &root_env,
        None,
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out = cli_with_env(&["acl", "auth-method", "delete", "-name=cli-made"], &root_env, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("deleted successfully"), "{}", out.stdout);
}

/// A server of datacenter `dc` on its own loopback address, with ACLs on
/// and `primary_datacenter = "dc1"`; `acl_extra` goes in the `acl` block.
fn dc_server(name: &str, dc: &str, acl_extra: &str, extra: &[String]) -> Agent {
    let hcl = format!(
        r#"primary_datacenter = "dc1"
acl {{
  enabled = true
  default_policy = "deny"
  {acl_extra}
}}"#
    );
    let mut args = vec![
        format!("-datacenter={dc}"),
        "-server".to_string(),
        "-bootstrap".to_string(),
        "-retry-interval-wan=1s".to_string(),
        "-hcl".to_string(),
        hcl,
    ];
    args.extend(extra.iter().cloned());
    Agent::on_own_ip(name, &args)
}

/// Auth methods across two datacenters, as Consul has them: each
/// datacenter has its own (never replicated; a secondary's writes stay
/// there), so a login in a secondary that replicates tokens works while
/// the primary is down and makes a local token; `TokenLocality = "global"`
/// belongs to the primary, whose global login tokens replicate to the
/// secondary (the lag is measured) and log out through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_methods_belong_to_their_datacenter_and_outlive_the_primary() {
    let tokens = format!(r#"tokens {{ initial_management = "{ROOT}" agent = "{ROOT}" }}"#);
    let mut dc1 = dc_server("p1", "dc1", &tokens, &[]);
    let dc2 = dc_server(
        "s2",
        "dc2",
        &format!(r#"enable_token_replication = true tokens {{ agent = "{ROOT}" replication = "{ROOT}" }}"#),
        &[format!("-retry-join-wan={}", dc1.ip)],
    );
    dc1.wait_ready().await;
    dc2.wait_ready().await;
    let (root1, root2) = (client(&dc1, Some(ROOT)), client(&dc2, Some(ROOT)));
    let req = |c: &Client, m: Method, path: &str, body: Option<Value>| {
        let (c, path) = (c.clone(), path.to_string());
        async move { c.request(m, &path, body.map(|b| serde_json::to_vec(&b).unwrap().into())).await.unwrap() }
    };
    let login = |a: &Agent, method: &str, jwt: String| {
        let (anon, method) = (client(a, None), method.to_string());
        async move {
            let body = json!({"AuthMethod": method, "BearerToken": jwt});
            anon.request(Method::POST, "/v1/acl/login", Some(serde_json::to_vec(&body).unwrap().into()))
                .await
                .unwrap()
        }
    };
    // The root token (global) is replicated before dc2 serves ACL writes.
    let replicated = crate::common::wait::wait_until(Duration::from_secs(30), || async {
        req(&root2, Method::GET, "/v1/acl/replication", None)
            .await
            .json::<Value>()
            .is_ok_and(|r| r["ReplicatedTokenIndex"] != 0)
    })
    .await;
    assert!(replicated, "{}", dc2.output_text());

    let key = EcKey::generate("k");
    let method = |name: &str, locality: &str| {
        json!({"Name": name, "Type": "jwt", "TokenLocality": locality, "Config": {
            "JWTValidationPubKeys": [key.pem()], "BoundAudiences": ["consul.io"],
            "ClaimMappings": {"nomad_job_id": "job"},
        }})
    };
    let rule = |m: &str| json!({"AuthMethod": m, "BindType": "service", "BindName": "${value.job}"});

    // A secondary may not make global tokens.
    let r = req(&root2, Method::PUT, "/v1/acl/auth-method", Some(method("dc2-jwt", "global"))).await;
    assert_eq!(
        (r.status.as_u16(), r.text().trim().to_string()),
        (
            500,
            "Invalid Auth Method: TokenLocality 'global' can only be used in the primary datacenter".into()
        )
    );
    // A local method written in dc2 lives in dc2 only.
    let r = req(&root2, Method::PUT, "/v1/acl/auth-method", Some(method("dc2-jwt", "local"))).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let r = req(&root2, Method::PUT, "/v1/acl/binding-rule", Some(rule("dc2-jwt"))).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let r = req(&root1, Method::GET, "/v1/acl/auth-method/dc2-jwt", None).await;
    assert_eq!(r.status.as_u16(), 404, "dc2's method reached the primary: {}", r.text());
    let listed: Vec<Value> = req(&root1, Method::GET, "/v1/acl/binding-rules", None).await.json().unwrap();
    assert!(listed.is_empty(), "{listed:?}");

    // A login in dc2 makes a local token there, unknown to the primary.
    let r = login(&dc2, "dc2-jwt", key.sign(&claims("api", "x", &[]))).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let t: Value = r.json().unwrap();
    assert_eq!((t["Local"].clone(), t["AuthMethod"].clone()), (json!(true), json!("dc2-jwt")));
    let local_secret = t["SecretID"].as_str().unwrap().to_string();
    let r = req(&client(&dc1, Some(&local_secret)), Method::GET, "/v1/acl/token/self", None).await;
    assert_eq!(r.status.as_u16(), 404, "a dc2 login token works in the primary: {}", r.text());

    // A global method in the primary: its login tokens reach dc2 by
    // replication. Lag: login in dc1 -> the token resolves in dc2.
    let r = req(&root1, Method::PUT, "/v1/acl/auth-method", Some(method("global-jwt", "global"))).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    req(&root1, Method::PUT, "/v1/acl/binding-rule", Some(rule("global-jwt"))).await;
    let mut lags = Vec::new();
    let mut global_secret = String::new();
    for _ in 0..10 {
        let r = login(&dc1, "global-jwt", key.sign(&claims("api", "x", &[]))).await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        let t: Value = r.json().unwrap();
        assert_eq!(t["Local"], false);
        global_secret = t["SecretID"].as_str().unwrap().to_string();
        let start = Instant::now();
        // (A read dc2 decides itself: `token/self` of a token it does
        // not hold would ask the primary.)
        let me = client(&dc2, Some(&global_secret));
        let arrived = crate::common::wait::wait_until(Duration::from_secs(3), || async {
            me.request(Method::GET, "/v1/catalog/services", None).await.is_ok_and(|r| r.status.is_success())
        })
        .await;
        assert!(arrived, "a global login token never reached dc2");
        lags.push(start.elapsed());
    }
    lags.sort();
    println!("global login token, dc1 login -> resolves in dc2: median {:?}, all {lags:?}", lags[5]);
    // Its logout through dc2 deletes it in the primary (which owns it).
    let r = req(&client(&dc2, Some(&global_secret)), Method::POST, "/v1/acl/logout", None).await;
    assert_eq!((r.status.as_u16(), r.text().trim().to_string()), (200, "true".into()));
    let r = req(&client(&dc1, Some(&global_secret)), Method::GET, "/v1/acl/token/self", None).await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.text());
    // A secondary has no global method to log into.
    let r = login(&dc2, "global-jwt", key.sign(&claims("api", "x", &[]))).await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text());

    // The primary stops: logins and logouts in dc2 go on.
    dc1.kill9();
    let r = login(&dc2, "dc2-jwt", key.sign(&claims("web", "x", &[]))).await;
    assert_eq!(r.status.as_u16(), 200, "login in dc2 with the primary down: {}", r.text());
    let t: Value = r.json().unwrap();
    let me = client(&dc2, Some(t["SecretID"].as_str().unwrap()));
    let r = req(&me, Method::GET, "/v1/acl/token/self", None).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let r = req(&me, Method::POST, "/v1/acl/logout", None).await;
    assert_eq!((r.status.as_u16(), r.text().trim().to_string()), (200, "true".into()));
    let r = req(&client(&dc2, Some(&local_secret)), Method::POST, "/v1/acl/logout", None).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
}
