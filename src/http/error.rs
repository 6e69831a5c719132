//! The one place errors become HTTP responses, with Consul's status codes
//! and plain-text bodies.

use crate::rpc::RpcError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub message: String,
    /// The `Allow` header of a 405.
    pub allow: Option<String>,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError { status, message: message.into(), allow: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }
}

impl From<RpcError> for HttpError {
    fn from(e: RpcError) -> Self {
        let status = match &e {
            RpcError::BadRequest(_) => StatusCode::BAD_REQUEST,
            RpcError::NotFound(_) => StatusCode::NOT_FOUND,
            RpcError::PermissionDenied(_) => StatusCode::FORBIDDEN,
            RpcError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            RpcError::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
            RpcError::AclDisabled | RpcError::CoordinatesDisabled => StatusCode::UNAUTHORIZED,
            RpcError::NoLeader
            | RpcError::NoPathToDatacenter
            | RpcError::ShuttingDown
            | RpcError::Internal(_)
            | RpcError::Parked => StatusCode::INTERNAL_SERVER_ERROR,
        };
        HttpError { status, message: e.to_string(), allow: None }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.message).into_response();
        if let Some(allow) = self.allow.and_then(|a| axum::http::HeaderValue::from_str(&a).ok()) {
            resp.headers_mut().insert(axum::http::header::ALLOW, allow);
        }
        resp.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        resp
    }
}

pub type HttpResult = Result<Response, HttpError>;
