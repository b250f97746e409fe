//! Commands that call a running key service with a tenant admin token: `revoke`, `audit`.

use serde_json::Value;

use super::write_stdout;
use crate::error::{CliError, CliResult};

/// Where the key service is and the admin token to use.
#[derive(clap::Args, Debug)]
pub struct RemoteArgs {
    /// Key service base URL.
    #[arg(long, env = "SEALPOST_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Tenant admin token (`sealpost admin token create`); better passed in the environment.
    #[arg(long, env = "SEALPOST_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// `sealpost revoke` / `sealpost audit` arguments.
#[derive(clap::Args, Debug)]
pub struct MessageArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Message id (32 hex digits, as `sealpost inspect` shows it).
    #[arg(value_name = "MESSAGE_ID")]
    pub message_id: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into()
}

fn base(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

/// Turns a response into JSON, or a one-line error from the service's JSON error.
fn answer(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    url: &str,
) -> CliResult<Value> {
    let mut resp = result.map_err(|e| {
        CliError::new(
            format!("cannot reach the key service at {url}: {e}"),
            "check --url and that `sealpost serve` is running",
        )
    })?;
    let status = resp.status();
    let body: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no details");
    let hint = match status.as_u16() {
        401 => "check the admin token (`sealpost admin token create`)",
        400 => "check the message id (32 hex digits from `sealpost inspect`)",
        429 | 503 => "the service is busy; try again shortly",
        _ => "see the key service's log",
    };
    Err(CliError::new(
        format!("the key service refused ({status}): {message}"),
        hint,
    ))
}

/// Runs `revoke`.
pub fn revoke(a: MessageArgs) -> CliResult<()> {
    let url = format!("{}/v1/admin/revoke", base(&a.remote.url));
    let r = agent()
        .post(&url)
        .header("Authorization", &format!("Bearer {}", a.remote.token))
        .header("X-Sealpost-Client", "1")
        .send_json(serde_json::json!({ "message_id": a.message_id }));
    let v = answer(r, &a.remote.url)?;
    let newly = v.get("revoked").and_then(Value::as_bool).unwrap_or(false);
    let text = if newly {
        "revoked"
    } else {
        "was already revoked"
    };
    write_stdout(format!("message {} {text}\n", a.message_id.trim()).as_bytes())
}

/// Runs `audit`: the message's audit events as JSON.
pub fn audit(a: MessageArgs) -> CliResult<()> {
    let url = format!(
        "{}/v1/admin/messages/{}/audit",
        base(&a.remote.url),
        a.message_id.trim()
    );
    let r = agent()
        .get(&url)
        .header("Authorization", &format!("Bearer {}", a.remote.token))
        .call();
    let v = answer(r, &a.remote.url)?;
    let mut out = serde_json::to_vec_pretty(&v).expect("JSON serializes");
    out.push(b'\n');
    write_stdout(&out)
}
