//! Serves the web UI under `ui_config.content_path` (`/ui/` by default).
//!
//! The UI is static files (`ui/` in the source tree: HTML, CSS and ES
//! modules) that talk to the agent only through the public `/v1` API, so it
//! holds no state and needs no server-side logic beyond serving files:
//!
//! * embedded (the default): `build.rs` compiles `ui/` into the binary, each
//!   file also gzip-compressed. Assets are served from
//!   `<content_path>assets/<tree hash>/…`: the hash changes with any file,
//!   so they are cached for a year; `index.html` is revalidated every time.
//! * `ui_config.dir`: that directory, read on each request (edits show on
//!   reload), revalidated every time.
//!
//! Every other path under the content path answers `index.html`, so a deep
//! link (`/ui/dc1/services/web`) survives a reload; the page's own router
//! takes it from there. `index.html` names the content path and the asset
//! directory through two placeholders, filled in here.

mod embedded;

use crate::config::UiSettings;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

const INDEX: &str = "index.html";
const ASSETS: &str = "assets/";
const CONTENT_PATH_MARK: &str = "__CONTENT_PATH__";
const ASSETS_MARK: &str = "__ASSETS__";

/// Pages may load scripts, styles and images only from this agent, and call
/// only this agent; no inline code, no framing (against clickjacking).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// A year: the longest lifetime caches honour, for names that change
/// whenever their content does.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The UI server, built once when the HTTP listeners start (Consul does not
/// reload `ui_config` either).
pub struct UiServer {
    content_path: String,
    source: Source,
}

enum Source {
    Embedded { index: File },
    Dir(PathBuf),
}

/// One response body, with its gzip form when it has one.
struct File {
    raw: Bytes,
    gzip: Option<Bytes>,
    hash: String,
    content_type: &'static str,
    cache: &'static str,
}

impl UiServer {
    pub fn new(settings: &UiSettings) -> UiServer {
        let content_path = settings.content_path.clone();
        let source = match &settings.dir {
            Some(dir) => Source::Dir(dir.clone()),
            None => {
                let assets = format!("{content_path}{ASSETS}{}/", embedded::TREE_HASH);
                let template = embedded::find(INDEX).map(|a| a.raw).unwrap_or_default();
                let raw = render_index(template, &content_path, &assets);
                let gzip = gzip(&raw);
                let index = File {
                    hash: fnv_hex(&raw),
                    raw: Bytes::from(raw),
                    gzip,
                    content_type: content_type(INDEX),
                    cache: REVALIDATE,
                };
                Source::Embedded { index }
            }
        };
        UiServer { content_path, source }
    }

    pub fn content_path(&self) -> &str {
        &self.content_path
    }

    /// Answers a GET (or HEAD) under the content path.
    pub async fn serve(&self, path: &str, headers: &HeaderMap) -> Response {
        let Some(rest) = path.strip_prefix(&self.content_path) else {
            return not_found();
        };
        let Ok(rest) = percent_encoding::percent_decode_str(rest).decode_utf8() else {
            return not_found();
        };
        match &self.source {
            Source::Embedded { index } => match rest.strip_prefix(ASSETS) {
                Some(asset) => {
                    let Some(name) =
                        asset.strip_prefix(embedded::TREE_HASH).and_then(|a| a.strip_prefix('/'))
                    else {
                        return not_found();
                    };
                    match embedded::find(&format!("{ASSETS}{name}")) {
                        Some(a) => respond(
                            &File {
                                raw: Bytes::from_static(a.raw),
                                gzip: Some(Bytes::from_static(a.gzip)),
                                hash: a.hash.to_string(),
                                content_type: content_type(a.path),
                                cache: IMMUTABLE,
                            },
                            headers,
                        ),
                        None => not_found(),
                    }
                }
                None => respond(index, headers),
            },
            Source::Dir(dir) => self.serve_dir(dir, &rest, headers).await,
        }
    }

    async fn serve_dir(&self, dir: &Path, rest: &str, headers: &HeaderMap) -> Response {
        let Some(rel) = safe_relative(rest) else { return not_found() };
        if !rel.as_os_str().is_empty() && rel != Path::new(INDEX) {
            let path = dir.join(&rel);
            if let Ok(data) = read_file_inside(dir, &path).await {
                let name = rel.to_string_lossy().to_string();
                return respond(&plain_file(data, content_type(&name)), headers);
            }
            if rest.starts_with(ASSETS) {
                return not_found();
            }
        }
        match tokio::fs::read(dir.join(INDEX)).await {
            Ok(template) => {
                let raw =
                    render_index(&template, &self.content_path, &format!("{}{ASSETS}", self.content_path));
                respond(&plain_file(raw, content_type(INDEX)), headers)
            }
            Err(e) => {
                tracing::warn!(target: "agent.http", dir = %dir.display(), error = %e, "UI directory has no readable index.html");
                not_found()
            }
        }
    }
}

fn plain_file(data: Vec<u8>, content_type: &'static str) -> File {
    File { hash: fnv_hex(&data), raw: Bytes::from(data), gzip: None, content_type, cache: REVALIDATE }
}

/// Reads `path` if it is a regular file that, symlinks resolved, is still
/// inside `dir`.
async fn read_file_inside(dir: &Path, path: &Path) -> std::io::Result<Vec<u8>> {
    let root = tokio::fs::canonicalize(dir).await?;
    let real = tokio::fs::canonicalize(path).await?;
    if !real.starts_with(&root) || !tokio::fs::metadata(&real).await?.is_file() {
        return Err(std::io::ErrorKind::NotFound.into());
    }
    tokio::fs::read(&real).await
}

/// The decoded rest of a URL path as a relative file path, or `None` if it
/// could step outside the directory (`..`, absolute parts, NUL, backslash).
fn safe_relative(rest: &str) -> Option<PathBuf> {
    if rest.contains('\0') || rest.contains('\\') {
        return None;
    }
    let rel = PathBuf::from(rest);
    rel.components().all(|c| matches!(c, Component::Normal(_))).then_some(rel)
}

fn render_index(template: &[u8], content_path: &str, assets: &str) -> Vec<u8> {
    String::from_utf8_lossy(template)
        .replace(CONTENT_PATH_MARK, content_path)
        .replace(ASSETS_MARK, assets)
        .into_bytes()
}

fn respond(file: &File, req_headers: &HeaderMap) -> Response {
    let use_gzip = file.gzip.is_some() && accepts_gzip(req_headers);
    // A strong ETag names one representation, so the gzip one differs.
    let etag = if use_gzip { format!("\"{}-gz\"", file.hash) } else { format!("\"{}\"", file.hash) };
    let mut resp = if if_none_match(req_headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = match (&file.gzip, use_gzip) {
            (Some(gz), true) => gz.clone(),
            _ => file.raw.clone(),
        };
        let mut r = Response::new(Body::from(body));
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.content_type));
        if use_gzip {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(file.cache));
    if file.gzip.is_some() {
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    security_headers(h);
    resp
}

/// Headers every UI response carries, errors included.
fn security_headers(h: &mut HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}

fn not_found() -> Response {
    let mut resp = (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    security_headers(h);
    resp
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0"));
            coding.eq_ignore_ascii_case("gzip") && !refused
        })
    })
}

/// `If-None-Match` (RFC 9110 §13.1.2): weak comparison, `*` matches all.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
    })
}

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn gzip(data: &[u8]) -> Option<Bytes> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).ok()?;
    enc.finish().ok().map(Bytes::from)
}

/// FNV-1a (64 bits) in hex, as `build.rs` hashes the embedded files: a
/// change detector for ETags, not a security hash.
fn fnv_hex(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Consul's answer to `/`: a redirect to the
/// UI when it is served, or a note saying how to turn it on.
pub fn root(ui: Option<&UiServer>) -> Response {
    match ui {
        Some(ui) => redirect(ui.content_path()),
        None => (
            StatusCode::OK,
            "Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent configuration and restart.",
        )
            .into_response(),
    }
}

/// A 301 to `location`, as Go's `http.Redirect` writes it.
pub fn redirect(location: &str) -> Response {
    let mut resp = StatusCode::MOVED_PERMANENTLY.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_asset_is_served_and_revalidates() {
        let ui = UiServer::new(&UiSettings { enabled: true, dir: None, content_path: "/ui/".into() });
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(embedded::find(INDEX).is_some(), "ui/index.html is embedded");
        for a in embedded::ASSETS.iter().filter(|a| a.path.starts_with(ASSETS)) {
            let name = a.path.trim_start_matches(ASSETS);
            let path = format!("/ui/assets/{}/{name}", embedded::TREE_HASH);
            let resp = rt.block_on(ui.serve(&path, &HeaderMap::new()));
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            assert_eq!(resp.headers()[header::CACHE_CONTROL], IMMUTABLE);
            let etag = resp.headers()[header::ETAG].clone();
            let mut again = HeaderMap::new();
            again.insert(header::IF_NONE_MATCH, etag);
            assert_eq!(rt.block_on(ui.serve(&path, &again)).status(), StatusCode::NOT_MODIFIED);
        }
        let stale = rt.block_on(ui.serve("/ui/assets/0000/app.js", &HeaderMap::new()));
        assert_eq!(stale.status(), StatusCode::NOT_FOUND);
        let deep = rt.block_on(ui.serve("/ui/dc1/services/web", &HeaderMap::new()));
        assert_eq!(deep.status(), StatusCode::OK);
        assert_eq!(deep.headers()[header::CACHE_CONTROL], REVALIDATE);
    }

    #[test]
    fn the_index_names_the_content_path_and_the_hashed_assets() {
        let out = render_index(
            b"<meta content=\"__CONTENT_PATH__\"><script src=\"__ASSETS__app.js\">",
            "/x/",
            "/x/assets/h/",
        );
        assert_eq!(out, b"<meta content=\"/x/\"><script src=\"/x/assets/h/app.js\">");
        let index = embedded::find(INDEX).unwrap();
        let text = String::from_utf8_lossy(index.raw);
        assert!(text.contains(CONTENT_PATH_MARK) && text.contains(ASSETS_MARK));
        // No inline script or style: the CSP forbids them.
        assert!(!text.contains("<script>") && !text.contains("<style") && !text.contains(" style="));
    }

    #[test]
    fn paths_cannot_leave_the_directory() {
        assert!(safe_relative("../etc/passwd").is_none());
        assert!(safe_relative("assets/../../x").is_none());
        assert!(safe_relative("/etc/passwd").is_none());
        assert!(safe_relative("a\\b").is_none());
        assert!(safe_relative("./a").is_none());
        assert_eq!(safe_relative("assets/app.js"), Some(PathBuf::from("assets/app.js")));
    }

    #[test]
    fn conditional_and_encoding_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("br, gzip;q=0.8"));
        assert!(accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip;q=0, br"));
        assert!(!accepts_gzip(&h));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"a\", W/\"b\""));
        assert!(if_none_match(&h, "\"b\""));
        assert!(!if_none_match(&h, "\"c\""));
    }
}
