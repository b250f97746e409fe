//! `fetch` for the portal: `config.json` and the key service's JSON API, as the API wants it
//! (`Content-Type: application/json`, `X-Sealpost-Client: 1`, a bearer token only on
//! `/v1/rewrap`, no cookies, no referrer). Errors become [`CallError`]; bodies are never logged.

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, RequestMode, Response};

use crate::api::{CallError, ErrorBody};

/// `s` as one URL path segment: unreserved characters as they are, every other byte
/// percent-encoded.
pub fn encode_path(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn send(request: Request) -> Result<Response, CallError> {
    let window = web_sys::window().ok_or(CallError::Network)?;
    let answer = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| CallError::Network)?;
    answer
        .dyn_into::<Response>()
        .map_err(|_| CallError::Network)
}

async fn text(response: &Response) -> Result<String, CallError> {
    let promise = response.text().map_err(|_| CallError::Network)?;
    let value = JsFuture::from(promise)
        .await
        .map_err(|_| CallError::Network)?;
    value.as_string().ok_or(CallError::Network)
}

async fn finish<T: DeserializeOwned>(response: Response) -> Result<T, CallError> {
    let status = response.status();
    let body = text(&response).await?;
    if (200..300).contains(&status) {
        return serde_json::from_str(&body).map_err(|_| CallError::Status {
            status,
            body: ErrorBody::default(),
            retry_after: None,
        });
    }
    let retry_after = response
        .headers()
        .get("Retry-After")
        .ok()
        .flatten()
        .and_then(|s| s.trim().parse().ok());
    Err(CallError::Status {
        status,
        body: serde_json::from_str(&body).unwrap_or_default(),
        retry_after,
    })
}

/// GET a same-origin or key-service resource as text (for `config.json`).
pub async fn get_text(url: &str) -> Result<String, CallError> {
    let init = RequestInit::new();
    init.set_method("GET");
    let request = Request::new_with_str_and_init(url, &init).map_err(|_| CallError::Network)?;
    let response = send(request).await?;
    if !response.ok() {
        return Err(CallError::Status {
            status: response.status(),
            body: ErrorBody::default(),
            retry_after: None,
        });
    }
    text(&response).await
}

/// GET JSON from the key service.
pub async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, CallError> {
    let init = RequestInit::new();
    init.set_method("GET");
    init.set_mode(RequestMode::Cors);
    let request = Request::new_with_str_and_init(url, &init).map_err(|_| CallError::Network)?;
    finish(send(request).await?).await
}

/// POST JSON to the key service, with the bearer token when given.
pub async fn post_json<B: Serialize, T: DeserializeOwned>(
    url: &str,
    body: &B,
    bearer: Option<&str>,
) -> Result<T, CallError> {
    let json = serde_json::to_string(body).map_err(|_| CallError::Network)?;
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_mode(RequestMode::Cors);
    init.set_body(&JsValue::from_str(&json));
    let request = Request::new_with_str_and_init(url, &init).map_err(|_| CallError::Network)?;
    let headers = request.headers();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(|_| CallError::Network);
    set("Content-Type", "application/json")?;
    set("X-Sealpost-Client", "1")?;
    if let Some(token) = bearer {
        set("Authorization", &format!("Bearer {token}"))?;
    }
    finish(send(request).await?).await
}
