//! Which ACL token a client sends, from the CLI's `-token` / `-token-file`
//! flags and the `CONSUL_HTTP_TOKEN` / `CONSUL_HTTP_TOKEN_FILE` variables.
//!
//! Consul's rule (its `api.DefaultConfig` plus `api.NewClient`): a flag
//! replaces its own variable (`-token` over `CONSUL_HTTP_TOKEN`, `-token-file`
//! over `CONSUL_HTTP_TOKEN_FILE`); then a token file, when one is named and
//! holds a non-blank token, wins over any token given directly. So the order
//! is `-token-file`, `CONSUL_HTTP_TOKEN_FILE`, `-token`, `CONSUL_HTTP_TOKEN`.
//! A named file that cannot be read is an error, never a silent fallback.

use std::path::Path;

pub const TOKEN_ENV: &str = "CONSUL_HTTP_TOKEN";
pub const TOKEN_FILE_ENV: &str = "CONSUL_HTTP_TOKEN_FILE";

/// A token file that was named but could not be read.
#[derive(Debug, thiserror::Error)]
#[error("Error loading token file: open {path}: {reason}")]
pub struct TokenFileError {
    pub path: String,
    pub reason: String,
}

/// Resolves the token from the flags and `env` (a variable lookup; an empty
/// value counts as unset, as in Consul). `None` means no token: the agent
/// then uses its own default token.
pub fn resolve(
    flag_token: Option<&str>,
    flag_token_file: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, TokenFileError> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let file = flag_token_file.map(str::to_string).filter(|f| !f.is_empty()).or_else(|| env(TOKEN_FILE_ENV));
    let direct = flag_token.map(str::to_string).filter(|t| !t.is_empty()).or_else(|| env(TOKEN_ENV));
    if let Some(path) = file {
        let from_file = read_token_file(&path)?;
        if !from_file.is_empty() {
            return Ok(Some(from_file));
        }
    }
    Ok(direct)
}

/// The process environment, for `resolve`.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The file's content without surrounding whitespace (a trailing newline is
/// the common case).
fn read_token_file(path: &str) -> Result<String, TokenFileError> {
    std::fs::read_to_string(Path::new(path))
        .map(|s| s.trim().to_string())
        .map_err(|e| TokenFileError { path: path.to_string(), reason: go_io_reason(&e) })
}

/// Go prints the system's message in lower case without Rust's
/// " (os error N)" suffix; scripts match on Consul's text.
fn go_io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    fn token_file(dir: &tempfile::TempDir, name: &str, content: &str) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_string()
    }

    #[test]
    fn flag_token_beats_env_token() {
        let env = env_of(&[(TOKEN_ENV, "from-env")]);
        assert_eq!(resolve(Some("from-flag"), None, &env).unwrap().as_deref(), Some("from-flag"));
        assert_eq!(resolve(None, None, &env).unwrap().as_deref(), Some("from-env"));
        assert_eq!(resolve(None, None, env_of(&[])).unwrap(), None);
        // An empty flag or variable is the same as none.
        assert_eq!(resolve(Some(""), None, &env).unwrap().as_deref(), Some("from-env"));
        assert_eq!(resolve(None, None, env_of(&[(TOKEN_ENV, "")])).unwrap(), None);
    }

    #[test]
    fn token_file_beats_direct_tokens_as_in_consul() {
        let dir = tempfile::tempdir().unwrap();
        let flag_file = token_file(&dir, "flag", "  from-flag-file\n");
        let env_file = token_file(&dir, "env", "from-env-file\n");
        let env = env_of(&[(TOKEN_ENV, "from-env"), (TOKEN_FILE_ENV, env_file.as_str())]);
        assert_eq!(
            resolve(Some("from-flag"), Some(&flag_file), &env).unwrap().as_deref(),
            Some("from-flag-file")
        );
        // The file variable still beats -token: Consul reads the file last.
        assert_eq!(resolve(Some("from-flag"), None, &env).unwrap().as_deref(), Some("from-env-file"));
        // -token-file replaces CONSUL_HTTP_TOKEN_FILE.
        assert_eq!(resolve(None, Some(&flag_file), &env).unwrap().as_deref(), Some("from-flag-file"));
    }

    #[test]
    fn blank_token_file_falls_back_to_direct_token() {
        let dir = tempfile::tempdir().unwrap();
        let blank = token_file(&dir, "blank", "\n \n");
        let env = env_of(&[(TOKEN_ENV, "from-env")]);
        assert_eq!(resolve(Some("t"), Some(&blank), &env).unwrap().as_deref(), Some("t"));
        assert_eq!(resolve(None, Some(&blank), &env).unwrap().as_deref(), Some("from-env"));
        assert_eq!(resolve(None, Some(&blank), env_of(&[])).unwrap(), None);
    }

    #[test]
    fn unreadable_token_file_is_an_error_with_gos_text() {
        let err = resolve(Some("t"), Some("/nonexistent/acl-token"), env_of(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Error loading token file: open /nonexistent/acl-token: no such file or directory"
        );
        let err = resolve(None, None, env_of(&[(TOKEN_FILE_ENV, "/nonexistent/env-token")])).unwrap_err();
        assert!(err.to_string().contains("open /nonexistent/env-token"), "{err}");
    }
}
