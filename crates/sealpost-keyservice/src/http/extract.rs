//! Extractors whose rejections are the API's JSON errors, never axum's plain-text ones.
//!
//! - [`ApiJson`]: the body of a mutating call. Checks, in this order, the
//!   `X-Sealpost-Client: 1` header (no simple-request CSRF), the JSON content type, the body
//!   size, then parses strictly (unknown fields are errors).
//! - [`ApiPath`]: a path parameter.
//! - [`ClientIp`]: the client's address, from the socket or, when configured, the last entry
//!   of `X-Forwarded-For`.
//! - [`Bearer`]: the token of an `Authorization: Bearer …` header, if any. It is handed to the
//!   service and never logged.
//! - [`B64`]: a binary field, standard base64 with padding.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use super::AppState;
use super::error::{ApiError, code};

/// The custom header every mutating call must carry.
pub const CLIENT_HEADER: &str = "x-sealpost-client";

/// A JSON request body, checked as described in the module docs.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if req.headers().get(CLIENT_HEADER).map(|v| v.as_bytes()) != Some(b"1") {
            return Err(ApiError::new(code::MISSING_CLIENT_HEADER));
        }
        if !is_json(req.headers()) {
            return Err(ApiError::new(code::UNSUPPORTED_MEDIA_TYPE));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(code::TOO_LARGE)
            } else {
                ApiError::with_message(code::BAD_REQUEST, "the request body could not be read")
            }
        })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            ApiError::with_message(code::BAD_REQUEST, format!("invalid request body: {e}"))
        })
    }
}

/// `application/json`, optionally with parameters (`; charset=utf-8`).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// A path parameter; a bad one is a JSON 400.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(_) => Err(ApiError::with_message(
                code::BAD_REQUEST,
                "invalid path parameter",
            )),
        }
    }
}

/// The client's IP address, if known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if state.config.trust_forwarded_for
            && let Some(ip) = forwarded_for(&parts.headers)
        {
            return Ok(ClientIp(Some(ip)));
        }
        Ok(ClientIp(peer))
    }
}

/// The last address of the last `X-Forwarded-For` header: the one the trusted proxy in front
/// of us appended (earlier entries are whatever the client claimed).
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    let entry = last.to_str().ok()?.rsplit(',').next()?.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The bearer token of the `Authorization` header, if it has one.
pub struct Bearer(pub Option<Zeroizing<String>>);

impl Bearer {
    /// The token as the service takes it.
    pub fn token(&self) -> Option<&str> {
        self.0.as_deref().map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .map(|token| Zeroizing::new(token.to_string()));
        Ok(Bearer(token))
    }
}

/// Bytes carried in JSON as a standard base64 string (RFC 4648 §4, with padding).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct B64(pub Vec<u8>);

impl std::fmt::Debug for B64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "B64(<{} bytes>)", self.0.len())
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map(B64)
            .map_err(|_| D::Error::custom("a binary field is not standard base64 (with padding)"))
    }
}

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_takes_the_last_entry() {
        let mut h = HeaderMap::new();
        assert_eq!(forwarded_for(&h), None);
        h.append(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.1".parse().unwrap(),
        );
        assert_eq!(forwarded_for(&h), Some("198.51.100.1".parse().unwrap()));
        h.append("x-forwarded-for", "[2001:db8::1]:443".parse().unwrap());
        assert_eq!(forwarded_for(&h), Some("2001:db8::1".parse().unwrap()));
        let mut junk = HeaderMap::new();
        junk.insert("x-forwarded-for", "unknown".parse().unwrap());
        assert_eq!(forwarded_for(&junk), None);
    }

    #[test]
    fn content_type() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/json-seq".parse().unwrap(),
        );
        assert!(!is_json(&h));
    }

    #[test]
    fn base64_fields() {
        let b: B64 = serde_json::from_str("\"AAEC\"").unwrap();
        assert_eq!(b.0, [0, 1, 2]);
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"AAEC\"");
        assert!(serde_json::from_str::<B64>("\"AAE\"").is_err());
        assert!(serde_json::from_str::<B64>("\"AA-_\"").is_err());
        assert!(serde_json::from_str::<B64>("12").is_err());
    }
}
