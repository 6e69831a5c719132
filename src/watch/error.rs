//! Why a watch was refused or failed. The texts are Consul's where Consul
//! has one (`consul watch` and `consul validate` print them, the agent
//! stops with them), so users and scripts see the messages they know.

use std::time::Duration;

/// An error from a module whose own error type is not settled (the API
/// client, the checks' TLS client): kept whole, shown as it shows itself.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    // ----- a parameter of the wrong type, or one nobody asked for (params)
    #[error("Expecting {name} to be a string")]
    NotString { name: String },
    #[error("Expecting {name} to be a boolean")]
    NotBool { name: String },
    #[error("Expecting {name} to be a string or []string")]
    NotStringOrList { name: String },
    #[error("Index {index} of {name} expected to be string")]
    ListItemNotString { name: String, index: usize },
    /// Left over after parsing, sorted.
    #[error("Invalid parameters: [{}]", .0.join(" "))]
    InvalidParameters(Vec<String>),

    // ----- the watch definition (spec)
    #[error("Watch type must be specified")]
    NoType,
    #[error("Unsupported watch type: {0}")]
    UnsupportedType(String),
    #[error("Unsupported watch type: {0} (Connect watches are not available in this agent)")]
    ConnectType(String),
    #[error("Must specify a single key to watch")]
    NoKey,
    #[error("Must specify a single prefix to watch")]
    NoPrefix,
    #[error("Must specify a single service to watch")]
    NoService,
    #[error("Cannot specify service and state")]
    ServiceAndState,
    #[error("Invalid check state {0:?}: must be one of any, passing, warning, critical")]
    InvalidCheckState(String),
    #[error("Handler type 'http' requires 'http_handler_config' to be set")]
    NoHttpHandlerConfig,
    #[error("Failed to parse 'http_handler_config': {0}")]
    HttpHandlerConfig(#[source] Box<WatchError>),

    // ----- `http_handler_config` (http_handler)
    #[error("expected an object")]
    ConfigNotObject,
    /// `field` is quoted as Consul's decoder names it, e.g. `'path'`.
    #[error("'{field}' expected a string, got {got}")]
    ConfigNotString { field: String, got: String },
    #[error("Requires 'path' to be set")]
    NoPath,
    #[error("invalid method {0:?}")]
    InvalidMethod(String),
    #[error("Failed to parse timeout: {0}")]
    InvalidTimeout(#[source] crate::duration::DurationError),
    #[error("'tls_skip_verify' cannot parse {0:?} as bool")]
    TlsSkipVerifyText(String),
    #[error("'tls_skip_verify' expected a bool, got {0}")]
    TlsSkipVerifyType(String),
    #[error("'header' expected a map of header names to lists of values")]
    HeaderNotMap,
    #[error("'header' has an invalid header name {0:?}")]
    HeaderName(String),
    #[error("'header.{name}' expected strings, got {got}")]
    HeaderValueNotString { name: String, got: String },
    #[error("'header.{name}' expected a list of strings, got {got}")]
    HeaderValuesNotList { name: String, got: String },
    #[error("'header.{name}' has an invalid value {value:?}")]
    HeaderValue { name: String, value: String },

    // ----- one call of an `http` handler (http_handler)
    #[error("failed to invoke http watch handler '{path}': {source}")]
    Invoke { path: String, source: Box<WatchError> },
    #[error("failed to invoke http watch handler '{path}': timed out after {}", crate::duration::format(*after))]
    InvokeTimeout { path: String, after: Duration },
    #[error("invalid URL: {0}")]
    InvalidUrl(#[source] hyper::http::uri::InvalidUri),
    #[error("unsupported URL scheme {0:?}")]
    UnsupportedScheme(String),
    #[error("URL has no host")]
    NoHost,
    #[error("dial tcp {host}:{port}: {source}")]
    Dial { host: String, port: u16, source: std::io::Error },
    #[error("invalid request: {0}")]
    InvalidRequest(#[source] hyper::http::Error),
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    Http(#[source] hyper::Error),

    // ----- the agent's `watches` (agent)
    /// Any error above, naming the watch (its position and its JSON).
    #[error("Failed to parse watch #{number} ({json}): {source}")]
    InWatch { number: usize, json: String, source: Box<WatchError> },
    #[error("a watch must be an object")]
    NotAnObject,
    /// The handler type as given (a JSON value when it is not a string).
    #[error("Handler type '{0}' not recognized")]
    UnknownHandlerType(String),
    #[error("Watch type {0} is not allowed in agent config")]
    ConnectInAgentConfig(String),
    #[error("Watch handler must be a string")]
    HandlerNotString,
    #[error("Watch args must be a list of strings")]
    ArgsNotStrings,
    #[error("Only one watch handler allowed")]
    OneHandlerOnly,
    #[error("Must define a watch handler")]
    NoHandler,
    #[error("Watch args must name a command to run")]
    EmptyArgs,
    #[error("watch plans require an HTTP or HTTPS endpoint")]
    NoHttpEndpoint,
    /// A plan that could not be built, naming the watch.
    #[error("watch #{number}: {source}")]
    PlanFor { number: usize, source: Box<WatchError> },

    // ----- running a plan (plan, query)
    /// The API client could not be built or the request not made.
    #[error("{0}")]
    Client(#[source] Cause),
    #[error("GET {path}: no answer within {}", crate::duration::format(*after))]
    NoAnswer { path: String, after: Duration },
    #[error("Unexpected response code: {code} ({body})")]
    Status { code: u16, body: String },
    #[error("failed to decode the answer to GET {path}: {source}")]
    Decode { path: String, source: serde_json::Error },

    // ----- script handlers (script)
    #[error("handler has no command to run")]
    NoCommand,
    #[error("{0}")]
    Spawn(#[source] std::io::Error),
    #[error("{0}")]
    Wait(#[source] std::io::Error),
    /// Go's `*exec.ExitError` text (`exit status 2`, `signal: killed`).
    #[error("{0}")]
    Exit(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts no other test pins, word for word.
    #[test]
    fn messages() {
        let text = |e: WatchError| e.to_string();
        assert_eq!(
            text(WatchError::NotStringOrList { name: "tag".into() }),
            "Expecting tag to be a string or []string"
        );
        assert_eq!(
            text(WatchError::ConnectType("connect_roots".into())),
            "Unsupported watch type: connect_roots (Connect watches are not available in this agent)"
        );
        assert_eq!(
            text(WatchError::InvalidCheckState("sad".into())),
            "Invalid check state \"sad\": must be one of any, passing, warning, critical"
        );
        assert_eq!(
            text(WatchError::HttpHandlerConfig(Box::new(WatchError::NoPath))),
            "Failed to parse 'http_handler_config': Requires 'path' to be set"
        );
        assert_eq!(
            text(WatchError::ConfigNotString { field: "method".into(), got: "3".into() }),
            "'method' expected a string, got 3"
        );
        assert_eq!(text(WatchError::InvalidMethod("G T".into())), "invalid method \"G T\"");
        assert_eq!(
            text(WatchError::TlsSkipVerifyText("yes".into())),
            "'tls_skip_verify' cannot parse \"yes\" as bool"
        );
        assert_eq!(
            text(WatchError::TlsSkipVerifyType("[]".into())),
            "'tls_skip_verify' expected a bool, got []"
        );
        assert_eq!(
            text(WatchError::HeaderNotMap),
            "'header' expected a map of header names to lists of values"
        );
        assert_eq!(
            text(WatchError::HeaderValueNotString { name: "X".into(), got: "1".into() }),
            "'header.X' expected strings, got 1"
        );
        assert_eq!(
            text(WatchError::HeaderValuesNotList { name: "X".into(), got: "{}".into() }),
            "'header.X' expected a list of strings, got {}"
        );
        assert_eq!(
            text(WatchError::HeaderValue { name: "X".into(), value: "a\nb".into() }),
            "'header.X' has an invalid value \"a\\nb\""
        );
        assert_eq!(
            text(WatchError::Invoke { path: "http://h/x".into(), source: Box::new(WatchError::NoHost) }),
            "failed to invoke http watch handler 'http://h/x': URL has no host"
        );
        assert_eq!(
            text(WatchError::InvokeTimeout { path: "http://h/x".into(), after: Duration::from_secs(10) }),
            "failed to invoke http watch handler 'http://h/x': timed out after 10s"
        );
        assert_eq!(text(WatchError::UnsupportedScheme("ftp".into())), "unsupported URL scheme \"ftp\"");
        assert_eq!(
            text(WatchError::Dial {
                host: "h".into(),
                port: 80,
                source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused)
            }),
            "dial tcp h:80: connection refused"
        );
        assert_eq!(
            text(WatchError::ConnectInAgentConfig("connect_leaf".into())),
            "Watch type connect_leaf is not allowed in agent config"
        );
        assert_eq!(text(WatchError::EmptyArgs), "Watch args must name a command to run");
        assert_eq!(text(WatchError::NoHttpEndpoint), "watch plans require an HTTP or HTTPS endpoint");
        assert_eq!(
            text(WatchError::PlanFor {
                number: 3,
                source: Box::new(WatchError::Client("bad address".into()))
            }),
            "watch #3: bad address"
        );
        assert_eq!(
            text(WatchError::NoAnswer { path: "/v1/kv/a".into(), after: Duration::from_secs(660) }),
            "GET /v1/kv/a: no answer within 11m0s"
        );
        assert_eq!(
            text(WatchError::Status { code: 500, body: "No cluster leader".into() }),
            "Unexpected response code: 500 (No cluster leader)"
        );
        assert_eq!(text(WatchError::NoCommand), "handler has no command to run");
        assert_eq!(text(WatchError::Exit("exit status 2".into())), "exit status 2");
    }
}
