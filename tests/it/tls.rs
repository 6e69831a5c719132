//! TLS end to end, with certificates made by our own `consul tls` in each
//! test: the files and fields `consul tls` writes; the HTTPS API (CLI
//! flags and environment, client certificates under `verify_incoming`,
//! h2 sharing one connection, garbage and stalled handshakes, certificate
//! rotation by SIGHUP); mutual TLS on the server port (a cluster with
//! `verify_incoming`, `verify_outgoing` and `verify_server_hostname`, and
//! the peers it must refuse in both directions); config refusals.

use crate::cluster::server_args;
use crate::harness::{unique_ip, wait_until, Agent, CliOutput, BIN};
use consul::api::{Client, ClientConfig, TlsOptions};
use consul::rpc::frame::{self, Kind};
use consul::rpc::method::{self, Method, WireCall, WireReply};
use consul::rpc::RequestContext;
use hyper::Method as HttpMethod;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use x509_parser::prelude::*;

/// A directory where `consul tls` makes a CA and certificates.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let pki = Pki { dir: tempfile::tempdir().unwrap() };
        let out = pki.run(&["tls", "ca", "create"]);
        assert_eq!(out.code, 0, "{out:?}");
        pki
    }

    fn run(&self, args: &[&str]) -> CliOutput {
        let out =
            Command::new(BIN).args(args).current_dir(self.dir.path()).stdin(Stdio::null()).output().unwrap();
        CliOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn ca(&self) -> String {
        self.path("consul-agent-ca.pem")
    }

    /// Runs `consul tls cert create ARGS`; returns the (cert, key) paths it saved.
    fn cert(&self, args: &[&str]) -> (String, String) {
        let mut all = vec!["tls", "cert", "create"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert_eq!(out.code, 0, "{out:?}");
        let saved: Vec<&str> = out.stdout.lines().filter_map(|l| l.strip_prefix("==> Saved ")).collect();
        assert_eq!(saved.len(), 2, "{out:?}");
        (self.path(saved[0]), self.path(saved[1]))
    }

    /// Writes a JSON config file and returns its path.
    fn config(&self, name: &str, json: serde_json::Value) -> String {
        let path = self.path(name);
        std::fs::write(&path, json.to_string()).unwrap();
        path
    }
}

fn parse_cert(path: &str) -> Vec<u8> {
    CertificateDer::from_pem_file(path).unwrap().to_vec()
}

fn sans(der: &[u8]) -> (Vec<String>, Vec<String>) {
    let (_, x) = X509Certificate::from_der(der).unwrap();
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = x.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(b) if b.len() == 4 => {
                    ips.push(format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]))
                }
                _ => {}
            }
        }
    }
    (dns, ips)
}

fn serial_of(der: &[u8]) -> String {
    X509Certificate::from_der(der).unwrap().1.raw_serial_as_string()
}

#[test]
fn tls_ca_and_cert_create_write_consul_files_and_fields() {
    let pki = Pki::new();
    // The CA: a self-signed CA certificate and its P-256 key, valid 1825 days.
    let ca = parse_cert(&pki.ca());
    let (_, x) = X509Certificate::from_der(&ca).unwrap();
    assert!(x.is_ca());
    assert_eq!(x.issuer(), x.subject());
    let days = (x.validity().not_after.timestamp() - x.validity().not_before.timestamp()) / 86400;
    assert_eq!(days, 1825);
    let key = std::fs::read_to_string(pki.path("consul-agent-ca-key.pem")).unwrap();
    assert!(key.contains("PRIVATE KEY"), "{key}");
    let again = pki.run(&["tls", "ca", "create"]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("consul-agent-ca.pem already exists."), "{again:?}");

    // Server certificates count up; SANs and usages as Consul's.
    let (s0, s0_key) = pki.cert(&["-server"]);
    assert!(s0.ends_with("dc1-server-consul-0.pem") && s0_key.ends_with("dc1-server-consul-0-key.pem"));
    let (s1, _) = pki.cert(&["-server", "-node", "n1", "-additional-ipaddress", "10.1.2.3"]);
    assert!(s1.ends_with("dc1-server-consul-1.pem"), "{s1}");
    let der = parse_cert(&s1);
    let (dns, ips) = sans(&der);
    assert_eq!(dns, ["n1.server.dc1.consul", "server.dc1.consul", "localhost"]);
    assert_eq!(ips, ["10.1.2.3", "127.0.0.1"]);
    let (_, x) = X509Certificate::from_der(&der).unwrap();
    assert!(!x.is_ca());
    let eku = x.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    let ku = x.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.key_encipherment());
    let days = (x.validity().not_after.timestamp() - x.validity().not_before.timestamp()) / 86400;
    assert_eq!(days, 365);
    assert_eq!(x.issuer(), X509Certificate::from_der(&ca).unwrap().1.subject());
    assert!(x.public_key().algorithm.algorithm.to_id_string().starts_with("1.2.840.10045.2.1"), "EC key");

    let (c, _) = pki.cert(&["-client", "-dc", "dc2", "-domain", "consul", "-days", "30"]);
    assert!(c.ends_with("dc2-client-consul-0.pem"), "{c}");
    let der = parse_cert(&c);
    assert_eq!(
        sans(&der),
        (vec!["client.dc2.consul".to_string(), "localhost".into()], vec!["127.0.0.1".into()])
    );
    let (_, x) = X509Certificate::from_der(&der).unwrap();
    let days = (x.validity().not_after.timestamp() - x.validity().not_before.timestamp()) / 86400;
    assert_eq!(days, 30);

    let (cli, _) = pki.cert(&["-cli"]);
    assert!(cli.ends_with("dc1-cli-consul-0.pem"), "{cli}");
    let der = parse_cert(&cli);
    assert_eq!(sans(&der), (vec!["cli.dc1.consul".to_string(), "localhost".into()], vec![]));
    let (_, x) = X509Certificate::from_der(&der).unwrap();
    let eku = x.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);

    // Consul's errors.
    let out = pki.run(&["tls", "cert", "create", "-client", "-node", "x"]);
    assert_eq!((out.code, out.stderr.trim()), (1, "-node requires -server"));
    let out = pki.run(&["tls", "cert", "create"]);
    assert_eq!((out.code, out.stderr.trim()), (1, "Please provide either -server, -client, or -cli"));
    let out = pki.run(&["tls", "cert", "create", "-server", "-client"]);
    assert_eq!(out.code, 1);
    let out = pki.run(&["tls", "cert", "create", "-server", "-ca", "missing.pem"]);
    assert!(out.code == 1 && out.stderr.contains("Error reading CA"), "{out:?}");
}

#[test]
fn impossible_tls_settings_are_refused_with_the_fix() {
    use crate::config_errors::start_with;
    let pki = Pki::new();
    let (cert, key) = pki.cert(&["-server"]);
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            serde_json::json!({"tls": {"https": {"verify_incoming": true, "cert_file": cert, "key_file": key}}}),
            "tls.https.verify_incoming is set but no CA is configured",
        ),
        (
            serde_json::json!({"tls": {"defaults": {"tls_min_version": "TLSv1_1"}}}),
            "TLSv1_1 is not supported",
        ),
        (
            serde_json::json!({"tls_cipher_suites": "TLS_RSA_WITH_AES_128_CBC_SHA"}),
            "TLS_RSA_WITH_AES_128_CBC_SHA is not supported",
        ),
        (serde_json::json!({"auto_encrypt": {"tls": true}}), "Connect CA"),
        (serde_json::json!({"verify_outgoing": true}), "verify_outgoing is set but no CA"),
        (
            serde_json::json!({"tls": {"defaults": {"cert_file": "/nonexistent.pem", "key_file": "/nonexistent-key.pem"}}}),
            "failed to read certificate file /nonexistent.pem",
        ),
    ];
    for (json, want) in cases {
        let mut obj = json;
        obj["data_dir"] = serde_json::Value::String(pki.path("data"));
        let (code, out) = start_with(&[("tls.json", &obj.to_string())], &[]);
        assert_eq!(code, Some(1), "{obj}: {out}");
        assert!(out.contains(want), "{obj}: want {want:?} in\n{out}");
    }
}

#[tokio::test]
async fn https_port_without_certificates_starts_and_refuses_handshakes_clearly() {
    let pki = Pki::new();
    let a = Agent::dev(&["-https-port=8501"]);
    a.wait_ready().await;
    let https = format!("{}:8501", a.ip);
    let r = tls_connect(&https, "localhost", client_config(&pki.ca(), None, &[])).await;
    assert!(r.is_err(), "a handshake without a certificate succeeded");
    let logged = wait_until(Duration::from_secs(5), || async {
        a.output_text().contains("TLS handshake refused: the HTTPS port has no certificate")
    })
    .await;
    assert!(logged, "{}", a.output_text());
    let self_: serde_json::Value = a.get("/v1/agent/self").await.json().unwrap();
    assert_eq!(self_["DebugConfig"]["HTTPSPort"], 8501);
}

/// A rustls client that trusts `ca` and presents `cert` (when given).
fn client_config(ca: &str, cert: Option<(&str, &str)>, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match cert {
        Some((c, k)) => b
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(c).unwrap().map(|c| c.unwrap()).collect(),
                PrivateKeyDer::from_pem_file(k).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn tls_connect(
    addr: &str,
    name: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await
}

/// The serial number of the certificate a new HTTPS connection gets.
async fn served_serial(addr: &str, ca: &str, client: (&str, &str)) -> Option<String> {
    let s = tls_connect(addr, "localhost", client_config(ca, Some(client), &[])).await.ok()?;
    let der = s.get_ref().1.peer_certificates()?.first()?.to_vec();
    Some(serial_of(&der))
}

/// Reads until the peer closes (or `limit` passes); true if it closed.
async fn closes_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_api_with_client_certificates_h2_bad_clients_and_rotation() {
    let pki = Pki::new();
    let ip = unique_ip();
    let ip_s = ip.to_string();
    let (cert, key) = pki.cert(&["-server", "-additional-ipaddress", &ip_s]);
    let (cli_cert, cli_key) = pki.cert(&["-cli"]);
    // The agent reads fixed names, so rotation replaces their contents.
    let (live_cert, live_key) = (pki.path("https.pem"), pki.path("https-key.pem"));
    std::fs::copy(&cert, &live_cert).unwrap();
    std::fs::copy(&key, &live_key).unwrap();
    let config = pki.config(
        "https.json",
        serde_json::json!({
            "ports": {"https": 8501},
            "limits": {"https_handshake_timeout": "1s"},
            "tls": {"defaults": {"ca_file": pki.ca(), "cert_file": live_cert, "key_file": live_key,
                                  "verify_incoming": true}},
            // The agent's own certificate lets its HTTPS check through
            // its own verify_incoming.
            "enable_agent_tls_for_checks": true,
            "check": {"id": "self-https", "name": "self over https",
                      "http": format!("https://{ip}:8501/v1/status/leader"), "interval": "1s"}
        }),
    );
    let args: Vec<String> = vec![
        "agent".into(),
        "-dev".into(),
        format!("-bind={ip}"),
        format!("-client={ip}"),
        "-node=tls".into(),
        format!("-config-file={config}"),
    ];
    let a = Agent::spawn(ip, args, None, None);
    a.wait_ready().await;
    let https = format!("{ip}:8501");
    let out = a.output_text();
    assert!(out.contains(&format!("Started HTTPS server: address=https://{https}")), "{out}");
    assert!(out.contains("every HTTPS client, including the consul CLI"), "{out}");

    // The CLI over HTTPS, with flags, then with the environment.
    let run = |args: &[&str], env: &[(&str, &str)]| crate::harness::cli_with_env(args, env, None);
    let https_url = format!("https://{https}");
    let flags = ["-ca-file", &pki.ca(), "-client-cert", &cli_cert, "-client-key", &cli_key];
    let mut put = vec!["kv", "put", "-http-addr", &https_url];
    put.extend_from_slice(&flags);
    put.extend_from_slice(&["greeting", "hello"]);
    let out = run(&put, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let ca = pki.ca();
    let env = [
        ("CONSUL_HTTP_ADDR", https.as_str()),
        ("CONSUL_HTTP_SSL", "true"),
        ("CONSUL_CACERT", ca.as_str()),
        ("CONSUL_CLIENT_CERT", cli_cert.as_str()),
        ("CONSUL_CLIENT_KEY", cli_key.as_str()),
    ];
    let out = run(&["kv", "get", "greeting"], &env);
    assert_eq!((out.code, out.stdout.trim()), (0, "hello"), "{out:?}");
    // -tls-server-name picks the name to verify (the IP is also in the cert).
    let out = run(&["kv", "get", "-tls-server-name", "server.dc1.consul", "greeting"], &env);
    assert_eq!((out.code, out.stdout.trim()), (0, "hello"), "{out:?}");
    let out = run(&["kv", "get", "-tls-server-name", "wrong.example", "greeting"], &env);
    assert_ne!(out.code, 0, "a wrong server name must fail: {out:?}");
    // verify_incoming: no client certificate, no answer.
    let out = run(&["kv", "get", "-http-addr", &https_url, "-ca-file", &ca, "greeting"], &[]);
    assert_ne!(out.code, 0, "{out:?}");
    // Without our CA the server is not trusted.
    let out = run(
        &[
            "kv",
            "get",
            "-http-addr",
            &https_url,
            "-client-cert",
            &cli_cert,
            "-client-key",
            &cli_key,
            "greeting",
        ],
        &[],
    );
    assert_ne!(out.code, 0, "{out:?}");
    // ...unless verification is switched off.
    let mut insecure = env.to_vec();
    insecure.retain(|(k, _)| *k != "CONSUL_CACERT");
    insecure.push(("CONSUL_HTTP_SSL_VERIFY", "false"));
    let out = run(&["kv", "get", "greeting"], &insecure);
    assert_eq!((out.code, out.stdout.trim()), (0, "hello"), "{out:?}");
    // Plain HTTP keeps running next to HTTPS.
    assert_eq!(a.get("/v1/kv/greeting?raw").await.text(), "hello");
    let passing = wait_until(Duration::from_secs(10), || async {
        let checks: serde_json::Value = a.get("/v1/agent/checks").await.json().unwrap();
        checks["self-https"]["Status"] == "passing"
    })
    .await;
    assert!(passing, "the HTTPS check with the agent's certificate never passed\n{}", a.output_text());

    // Bad clients: garbage and a plain HTTP request are closed; a client
    // that stalls mid-handshake is dropped at the handshake deadline and
    // meanwhile delays nobody.
    let mut garbage = TcpStream::connect(&https).await.unwrap();
    garbage.write_all(b"\x16\x03\x01\x00\x05hello garbage that is not TLS").await.unwrap();
    assert!(closes_within(&mut garbage, Duration::from_secs(5)).await);
    let mut plain = TcpStream::connect(&https).await.unwrap();
    plain.write_all(b"GET /v1/kv/greeting HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(closes_within(&mut plain, Duration::from_secs(5)).await);
    let mut stalled = TcpStream::connect(&https).await.unwrap();
    stalled.write_all(b"\x16\x03\x01").await.unwrap();
    let api = Client::new(ClientConfig {
        address: https_url.clone(),
        tls: TlsOptions {
            ca_file: Some(ca.clone()),
            client_cert: Some(cli_cert.clone()),
            client_key: Some(cli_key.clone()),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(2),
        api.request(HttpMethod::GET, "/v1/kv/greeting?raw", None),
    )
    .await
    .expect("a stalled handshake delayed another client")
    .unwrap();
    assert_eq!(r.text(), "hello");
    assert!(
        closes_within(&mut stalled, Duration::from_secs(5)).await,
        "the stalled handshake was never dropped"
    );
    let logged = wait_until(Duration::from_secs(5), || async {
        a.output_text().contains("http: TLS handshake error")
    })
    .await;
    assert!(logged, "no log line for failed handshakes");

    // h2: 500 blocking queries on one TLS connection, all woken by one write.
    let tls = tls_connect(&https, "localhost", client_config(&ca, Some((&cli_cert, &cli_key)), &[b"h2"]))
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let index = a.get("/v1/kv/h2key").await.index().unwrap_or(1);
    let mut waiting = Vec::new();
    for _ in 0..500 {
        let mut sender = sender.clone();
        let uri = format!("https://{https}/v1/kv/h2key?index={index}&wait=30s");
        waiting.push(tokio::spawn(async move {
            let req = hyper::Request::get(uri).body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
            let resp = sender.send_request(req).await.unwrap();
            resp.status()
        }));
    }
    // Let every query reach the server before the write that wakes them.
    tokio::task::yield_now().await;
    assert!(a.put("/v1/kv/h2key", b"v").await.status.is_success());
    for w in waiting {
        let status = tokio::time::timeout(Duration::from_secs(40), w).await.unwrap().unwrap();
        assert!(status == 200 || status == 404, "{status}");
    }

    // Rotation: a writer keeps writing over HTTPS while the certificate is
    // replaced and SIGHUP reloads it; no write fails, and new connections
    // get the new serial.
    let old_serial = served_serial(&https, &ca, (&cli_cert, &cli_key)).await.unwrap();
    assert_eq!(old_serial, serial_of(&parse_cert(&cert)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let api = api.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 20 {
                let r =
                    api.request(HttpMethod::PUT, &format!("/v1/kv/w/{n}"), Some(format!("{n}").into())).await;
                assert!(r.as_ref().is_ok_and(|r| r.status.is_success()), "write {n} failed: {r:?}");
                n += 1;
            }
            n
        })
    };
    let (new_cert, new_key) = pki.cert(&["-server", "-additional-ipaddress", &ip_s]);
    let new_serial = serial_of(&parse_cert(&new_cert));
    std::fs::copy(&new_cert, &live_cert).unwrap();
    std::fs::copy(&new_key, &live_key).unwrap();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(a.pid() as i32, libc::SIGHUP) };
    let rotated = wait_until(Duration::from_secs(10), || async {
        served_serial(&https, &ca, (&cli_cert, &cli_key)).await.as_deref() == Some(new_serial.as_str())
    })
    .await;
    assert!(rotated, "new connections never got serial {new_serial}\n{}", a.output_text());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.await.unwrap();
    let r = a.get("/v1/kv/w/?keys").await;
    let keys: Vec<String> = r.json().unwrap();
    assert_eq!(keys.len() as u32, written);

    // A bad new file: the reload fails, says why, and the running
    // certificate stays.
    std::fs::write(&live_cert, "not a certificate").unwrap();
    let out = crate::harness::cli_with_env(&["reload", "-http-addr", &a.addr()], &[], None);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("Failed reloading tls configuration"), "{out:?}");
    assert_eq!(served_serial(&https, &ca, (&cli_cert, &cli_key)).await.as_deref(), Some(new_serial.as_str()));
}

/// The TLS part of an agent's config for the secure cluster.
fn secure(pki: &Pki, cert: &str, key: &str) -> serde_json::Value {
    serde_json::json!({"tls": {
        "defaults": {"ca_file": pki.ca(), "cert_file": cert, "key_file": key,
                     "verify_incoming": true, "verify_outgoing": true},
        "internal_rpc": {"verify_server_hostname": true}
    }})
}

/// One RPC call over `stream` (preamble already sent); `None` when the
/// connection ends without an answer.
async fn rpc_call<S, M>(stream: &mut S, id: u64, args: &M) -> Option<WireReply>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    M: Method,
{
    let call = WireCall::new(RequestContext::default(), args).unwrap();
    let bytes = frame::encode(id, Kind::Request, &postcard::to_allocvec(&call).unwrap()).unwrap();
    stream.write_all(&bytes).await.ok()?;
    let f = tokio::time::timeout(Duration::from_secs(5), frame::read_frame(stream)).await.ok()?.ok()?;
    Some(postcard::from_bytes::<WireReply>(&f.payload).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mutual_tls_cluster_refuses_impostors_in_both_directions() {
    let pki = Pki::new();
    let (server_cert, server_key) = pki.cert(&["-server"]);
    let (client_cert, client_key) = pki.cert(&["-client"]);
    let server_cfg = pki.config("server.json", secure(&pki, &server_cert, &server_key));
    let client_cfg = pki.config("client.json", secure(&pki, &client_cert, &client_key));
    let cfg_flag = |c: &str| format!("-config-file={c}");

    let ips: Vec<Ipv4Addr> = (0..3).map(|_| unique_ip()).collect();
    let servers: Vec<Agent> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().to_path_buf();
            let others: Vec<Ipv4Addr> = ips.iter().filter(|o| *o != ip).copied().collect();
            let f = cfg_flag(&server_cfg);
            let args = server_args(*ip, &dir, &format!("s{}", i + 1), Some(3), &others, &[&f]);
            Agent::spawn(*ip, args, Some(dir), Some(tmp))
        })
        .collect();
    let client = Agent::on_own_ip("c1", &[format!("-retry-join={}", ips[0]), cfg_flag(&client_cfg)]);
    // Raft over TLS elects a leader; the client's writes reach it over TLS.
    client.wait_ready().await;
    assert!(client.put("/v1/kv/secure", b"yes").await.status.is_success(), "{}", client.output_text());
    for s in &servers {
        let ok = wait_until(Duration::from_secs(10), || async {
            s.try_get("/v1/kv/secure?raw&stale").await.is_some_and(|r| r.text() == "yes")
        })
        .await;
        assert!(ok, "{} never saw the write\n{}", s.addr(), s.output_text());
    }
    let rpc = format!("{}:8300", ips[0]);

    // A plain-text client speaking our framing gets no answer.
    let mut plain = TcpStream::connect(&rpc).await.unwrap();
    frame::write_preamble(&mut plain).await.unwrap();
    assert!(rpc_call(&mut plain, 1, &method::StatusLeader {}).await.is_none());
    let logged = wait_until(Duration::from_secs(5), || async {
        servers[0].output_text().contains("plain-text RPC connection refused")
    })
    .await;
    assert!(logged, "{}", servers[0].output_text());

    // A client certificate gets ordinary calls answered but not the
    // servers' own (Raft, forwarded writes, read-index).
    let mut as_client = tls_connect(
        &rpc,
        "server.dc1.consul",
        client_config(&pki.ca(), Some((&client_cert, &client_key)), &[]),
    )
    .await
    .unwrap();
    frame::write_preamble(&mut as_client).await.unwrap();
    let leader = rpc_call(&mut as_client, 1, &method::StatusLeader {}).await.unwrap();
    assert!(method::decode_reply::<method::StatusLeader>(leader).is_ok());
    let refused = rpc_call(&mut as_client, 2, &method::ReadIndex {}).await.unwrap();
    assert!(
        matches!(&refused, Err(consul::rpc::RpcError::PermissionDenied(m)) if m.contains("servers only")),
        "{refused:?}"
    );
    // A server's certificate may.
    let mut as_server = tls_connect(
        &rpc,
        "server.dc1.consul",
        client_config(&pki.ca(), Some((&server_cert, &server_key)), &[]),
    )
    .await
    .unwrap();
    frame::write_preamble(&mut as_server).await.unwrap();
    let allowed = rpc_call(&mut as_server, 1, &method::ReadIndex {}).await.unwrap();
    assert!(!matches!(allowed, Err(consul::rpc::RpcError::PermissionDenied(_))), "{allowed:?}");

    // A certificate of another CA gets nothing.
    let other = Pki::new();
    let (o_cert, o_key) = other.cert(&["-client"]);
    let stranger =
        tls_connect(&rpc, "server.dc1.consul", client_config(&pki.ca(), Some((&o_cert, &o_key)), &[])).await;
    if let Ok(mut s) = stranger {
        let _ = frame::write_preamble(&mut s).await;
        assert!(rpc_call(&mut s, 1, &method::StatusLeader {}).await.is_none());
    }

    // Garbage on the server port ends that connection only.
    let mut garbage = TcpStream::connect(&rpc).await.unwrap();
    garbage.write_all(&[0x16; 64]).await.unwrap();
    assert!(closes_within(&mut garbage, Duration::from_secs(10)).await);
    assert!(client.put("/v1/kv/after-garbage", b"1").await.status.is_success());

    // Dialing: a "server" whose certificate names dc2 (or no server at
    // all) is refused by a client of dc1, which says why.
    let (dc2_cert, dc2_key) = pki.cert(&["-server", "-dc", "dc2"]);
    let mut rogue_tls = secure(&pki, &dc2_cert, &dc2_key);
    rogue_tls["tls"]["defaults"]["verify_incoming"] = false.into();
    let rogue_cfg = pki.config("rogue.json", rogue_tls);
    let rogue_ip = unique_ip();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let f = cfg_flag(&rogue_cfg);
    let rogue = Agent::spawn(
        rogue_ip,
        server_args(rogue_ip, &dir, "rogue", None, &[], &["-bootstrap", &f]),
        Some(dir),
        Some(tmp),
    );
    rogue.wait_ready().await;
    let victim = Agent::on_own_ip("victim", &[format!("-retry-join={rogue_ip}"), cfg_flag(&client_cfg)]);
    let refused = wait_until(Duration::from_secs(15), || async {
        let _ = victim.try_get("/v1/kv/anything").await;
        victim.output_text().contains("TLS handshake with server failed")
    })
    .await;
    assert!(refused, "the client never refused the dc2 certificate\n{}", victim.output_text());
    let r = victim.get("/v1/kv/anything").await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(victim.output_text().contains("certificate not valid for name"), "{}", victim.output_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_upgrade_serves_plain_and_tls_until_verify_incoming() {
    let pki = Pki::new();
    let (server_cert, server_key) = pki.cert(&["-server"]);
    let (client_cert, client_key) = pki.cert(&["-client"]);
    // Step 1 of the rolling upgrade: the server has its certificate but
    // still accepts plain text.
    let mut rolling = secure(&pki, &server_cert, &server_key);
    rolling["tls"]["defaults"]["verify_incoming"] = false.into();
    let server_cfg = pki.config("server.json", rolling.clone());
    let client_cfg = pki.config("client.json", secure(&pki, &client_cert, &client_key));
    let ip = unique_ip();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let f = format!("-config-file={server_cfg}");
    let server =
        Agent::spawn(ip, server_args(ip, &dir, "s1", None, &[], &["-bootstrap", &f]), Some(dir), Some(tmp));
    server.wait_ready().await;
    let old = Agent::on_own_ip("old", &[format!("-retry-join={ip}")]);
    let new = Agent::on_own_ip("new", &[format!("-retry-join={ip}"), format!("-config-file={client_cfg}")]);
    old.wait_ready().await;
    new.wait_ready().await;
    assert!(old.put("/v1/kv/plain", b"1").await.status.is_success());
    assert!(new.put("/v1/kv/tls", b"1").await.status.is_success());

    // Step 2: verify_incoming on the server, by reload. New plain-text
    // connections are refused; TLS clients go on.
    rolling["tls"]["defaults"]["verify_incoming"] = true.into();
    pki.config("server.json", rolling);
    let out = crate::harness::cli_with_env(&["reload", "-http-addr", &server.addr()], &[], None);
    assert_eq!(out.code, 0, "{out:?}");
    let mut plain = TcpStream::connect(format!("{ip}:8300")).await.unwrap();
    frame::write_preamble(&mut plain).await.unwrap();
    assert!(rpc_call(&mut plain, 1, &method::StatusLeader {}).await.is_none());
    assert!(new.put("/v1/kv/tls", b"2").await.status.is_success());
    assert_eq!(server.get("/v1/kv/tls?raw").await.text(), "2");
}

/// KV operations per second from `workers` concurrent clients for `secs`.
async fn throughput(client: &Client, method: HttpMethod, workers: usize, secs: u64) -> f64 {
    let stop = std::time::Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let client = client.clone();
        let method = method.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while std::time::Instant::now() < stop {
                let path = format!("/v1/kv/bench/{w}");
                let body =
                    (method == HttpMethod::PUT).then(|| bytes::Bytes::from_static(b"0123456789abcdef"));
                let r = client.request(method.clone(), &path, body).await.unwrap();
                assert!(r.status.is_success() || r.status == 404, "{}", r.status);
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / secs as f64
}

/// Not a check: prints what TLS costs, side by side (HTTP vs HTTPS on one
/// agent; a 3-server cluster's writes with and without TLS on the server
/// port). `cargo test --release --test it tls::tls_cost -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn tls_cost_figures() {
    let pki = Pki::new();
    let ip = unique_ip();
    let (cert, key) = pki.cert(&["-server", "-additional-ipaddress", &ip.to_string()]);
    let (cli_cert, cli_key) = pki.cert(&["-cli"]);
    let config = pki.config(
        "https.json",
        serde_json::json!({"ports": {"https": 8501},
            "tls": {"defaults": {"ca_file": pki.ca(), "cert_file": cert, "key_file": key, "verify_incoming": true}}}),
    );
    let args = vec![
        "agent".into(),
        "-dev".into(),
        format!("-bind={ip}"),
        format!("-client={ip}"),
        "-node=bench".into(),
        format!("-config-file={config}"),
    ];
    let a = Agent::spawn(ip, args, None, None);
    a.wait_ready().await;
    let https = Client::new(ClientConfig {
        address: format!("https://{ip}:8501"),
        tls: TlsOptions {
            ca_file: Some(pki.ca()),
            client_cert: Some(cli_cert.clone()),
            client_key: Some(cli_key.clone()),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    for (name, c) in [("HTTP ", a.client()), ("HTTPS", https)] {
        let put = throughput(&c, HttpMethod::PUT, 16, 3).await;
        let get = throughput(&c, HttpMethod::GET, 16, 3).await;
        println!("TLS COST {name}: KV PUT {put:.0}/s, KV GET {get:.0}/s (16 keep-alive clients, dev agent)");
    }
    drop(a);

    let (server_cert, server_key) = pki.cert(&["-server"]);
    for tls in [false, true] {
        let mut extra: Vec<String> = Vec::new();
        if tls {
            let cfg = pki.config("server.json", secure(&pki, &server_cert, &server_key));
            extra.push(format!("-config-file={cfg}"));
        }
        let ips: Vec<Ipv4Addr> = (0..3).map(|_| unique_ip()).collect();
        let servers: Vec<Agent> = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                let tmp = tempfile::tempdir().unwrap();
                let dir = tmp.path().to_path_buf();
                let others: Vec<Ipv4Addr> = ips.iter().filter(|o| *o != ip).copied().collect();
                let e: Vec<&str> = extra.iter().map(String::as_str).collect();
                let args = server_args(*ip, &dir, &format!("s{}", i + 1), Some(3), &others, &e);
                Agent::spawn(*ip, args, Some(dir), Some(tmp))
            })
            .collect();
        for s in &servers {
            s.wait_ready().await;
        }
        // Through a follower: its forwarding and the leader's replication
        // both cross the server port.
        let leader: String = servers[0].get("/v1/status/leader").await.json().unwrap();
        let follower = servers.iter().find(|s| !leader.starts_with(&s.ip.to_string())).unwrap();
        let put = throughput(&follower.client(), HttpMethod::PUT, 32, 4).await;
        println!("TLS COST 3 servers, RPC TLS {tls}: KV PUT via a follower {put:.0}/s (32 clients)");
    }
}
