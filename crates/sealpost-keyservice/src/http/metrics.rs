//! Counters for `/metrics`, in the Prometheus text exposition format (version 0.0.4).
//!
//! Plain atomics over fixed label sets, so a scrape never allocates per label value and a
//! client cannot create new series: routes are the router's own patterns (anything else is
//! `unmatched`), statuses are counted by class, refusal reasons are the API's error codes.
//! Nothing here knows about addresses, tokens or messages.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::error::{ApiError, code};

/// The route patterns, as registered in the router, plus `unmatched`.
pub(super) const ROUTES: &[&str] = &[
    "/v1/tenants/{tenant_id}",
    "/v1/otp/start",
    "/v1/otp/verify",
    "/v1/rewrap",
    "/v1/oidc/start",
    "/v1/oidc/finish",
    "/v1/admin/revoke",
    "/v1/admin/messages/{message_id}/audit",
    "/v1/gateway/replies/authorize",
    "/v1/gateway/transport/rewrap",
    "/v1/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
    "unmatched",
];

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Rewrap refusal reasons, as error codes.
const REFUSALS: &[&str] = &[
    code::NOT_SIGNED_IN.code,
    code::NOT_A_RECIPIENT.code,
    code::REVOKED.code,
    code::EXPIRED.code,
    code::UNKNOWN_KEY.code,
    code::UNKNOWN_TENANT.code,
    code::MALFORMED_LICENSE.code,
    code::BAD_CLIENT_KEY.code,
    code::RATE_LIMITED.code,
    code::UNAVAILABLE.code,
];

const OTP_EVENTS: [&str; 3] = ["started", "verified", "failed"];

/// The service's counters.
pub struct Metrics {
    in_flight: AtomicI64,
    requests: Vec<[AtomicU64; 5]>,
    released: AtomicU64,
    refused: Vec<AtomicU64>,
    otp: [AtomicU64; 3],
    /// OpenID Connect sign-ins: started, verified, failed (as `otp`).
    oidc: [AtomicU64; 3],
    /// Reply authorizations: authorized, refused.
    replies: [AtomicU64; 2],
    /// Transport rewraps: released, refused.
    transport: [AtomicU64; 2],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            in_flight: AtomicI64::new(0),
            requests: ROUTES.iter().map(|_| Default::default()).collect(),
            released: AtomicU64::new(0),
            refused: REFUSALS.iter().map(|_| AtomicU64::new(0)).collect(),
            otp: Default::default(),
            oidc: Default::default(),
            replies: Default::default(),
            transport: Default::default(),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// Counts one finished request.
    fn request(&self, route: &str, status: u16) {
        let r = ROUTES
            .iter()
            .position(|p| *p == route)
            .unwrap_or(ROUTES.len() - 1);
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        bump(&self.requests[r][class]);
    }

    /// Counts the outcome of a rewrap.
    pub(super) fn rewrap<T>(&self, result: &Result<T, ApiError>) {
        match result {
            Ok(_) => bump(&self.released),
            Err(e) => {
                if let Some(i) = REFUSALS.iter().position(|r| *r == e.code().code) {
                    bump(&self.refused[i]);
                }
            }
        }
    }

    /// Counts a passcode requested (whether or not a mail went out: the API cannot tell).
    pub(super) fn otp_started<T>(&self, result: &Result<T, ApiError>) {
        if result.is_ok() {
            bump(&self.otp[0]);
        }
    }

    /// Counts a passcode verified or refused (not counting unavailability or rate limits).
    pub(super) fn otp_verified<T>(&self, result: &Result<T, ApiError>) {
        let failures = [
            code::WRONG_CODE,
            code::CODE_EXPIRED,
            code::TOO_MANY_ATTEMPTS,
            code::LOCKED,
        ];
        match result {
            Ok(_) => bump(&self.otp[1]),
            Err(e) if failures.contains(&e.code()) => bump(&self.otp[2]),
            Err(_) => {}
        }
    }

    /// Counts a reply authorized or refused (not counting unavailability).
    pub(super) fn reply_authorization<T>(&self, result: &Result<T, ApiError>) {
        count_outcome(&self.replies, result);
    }

    /// Counts a transport rewrap released or refused (not counting unavailability).
    pub(super) fn transport_rewrap<T>(&self, result: &Result<T, ApiError>) {
        count_outcome(&self.transport, result);
    }

    /// Counts an OpenID Connect sign-in started.
    pub(super) fn oidc_started<T>(&self, result: &Result<T, ApiError>) {
        if result.is_ok() {
            bump(&self.oidc[0]);
        }
    }

    /// Counts an OpenID Connect sign-in finished or refused (not counting unavailability of
    /// the database or the provider, or rate limits).
    pub(super) fn oidc_finished<T>(&self, result: &Result<T, ApiError>) {
        let failures = [
            code::OIDC_STATE_INVALID,
            code::OIDC_FAILED,
            code::EMAIL_NOT_VERIFIED,
        ];
        match result {
            Ok(_) => bump(&self.oidc[1]),
            Err(e) if failures.contains(&e.code()) => bump(&self.oidc[2]),
            Err(_) => {}
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.push_str("# HELP sealpost_http_requests_total HTTP requests answered, by route and status class.\n");
        out.push_str("# TYPE sealpost_http_requests_total counter\n");
        for (route, counts) in ROUTES.iter().zip(&self.requests) {
            for (class, c) in CLASSES.iter().zip(counts) {
                let n = get(c);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "sealpost_http_requests_total{{route=\"{route}\",status=\"{class}\"}} {n}"
                    );
                }
            }
        }
        out.push_str("# HELP sealpost_http_requests_in_flight HTTP requests being handled now.\n");
        out.push_str("# TYPE sealpost_http_requests_in_flight gauge\n");
        let _ = writeln!(
            out,
            "sealpost_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        out.push_str("# HELP sealpost_rewraps_released_total Shares released by rewrap.\n");
        out.push_str("# TYPE sealpost_rewraps_released_total counter\n");
        let _ = writeln!(
            out,
            "sealpost_rewraps_released_total {}",
            get(&self.released)
        );
        out.push_str("# HELP sealpost_rewraps_refused_total Rewraps refused, by reason.\n");
        out.push_str("# TYPE sealpost_rewraps_refused_total counter\n");
        for (reason, c) in REFUSALS.iter().zip(&self.refused) {
            let _ = writeln!(
                out,
                "sealpost_rewraps_refused_total{{reason=\"{reason}\"}} {}",
                get(c)
            );
        }
        out.push_str(
            "# HELP sealpost_otp_total Passcode sign-in events: started, verified, failed.\n",
        );
        out.push_str("# TYPE sealpost_otp_total counter\n");
        for (event, c) in OTP_EVENTS.iter().zip(&self.otp) {
            let _ = writeln!(out, "sealpost_otp_total{{event=\"{event}\"}} {}", get(c));
        }
        out.push_str("# HELP sealpost_oidc_total OpenID Connect sign-in events: started, verified, failed.\n");
        out.push_str("# TYPE sealpost_oidc_total counter\n");
        for (event, c) in OTP_EVENTS.iter().zip(&self.oidc) {
            let _ = writeln!(out, "sealpost_oidc_total{{event=\"{event}\"}} {}", get(c));
        }
        out.push_str("# HELP sealpost_reply_authorizations_total Gateway reply authorizations: authorized, refused.\n");
        out.push_str("# TYPE sealpost_reply_authorizations_total counter\n");
        for (result, c) in ["authorized", "refused"].iter().zip(&self.replies) {
            let _ = writeln!(
                out,
                "sealpost_reply_authorizations_total{{result=\"{result}\"}} {}",
                get(c)
            );
        }
        out.push_str("# HELP sealpost_transport_rewraps_total Shares released to the gateway for transport decryption, and refusals.\n");
        out.push_str("# TYPE sealpost_transport_rewraps_total counter\n");
        for (result, c) in ["released", "refused"].iter().zip(&self.transport) {
            let _ = writeln!(
                out,
                "sealpost_transport_rewraps_total{{result=\"{result}\"}} {}",
                get(c)
            );
        }
        out
    }
}

/// Counts a success in `counters[0]` and a refusal in `counters[1]`; a database failure is
/// neither.
fn count_outcome<T>(counters: &[AtomicU64; 2], result: &Result<T, ApiError>) {
    match result {
        Ok(_) => bump(&counters[0]),
        Err(e) if e.code() != code::UNAVAILABLE => bump(&counters[1]),
        Err(_) => {}
    }
}

/// Keeps the in-flight gauge balanced even if the request future is dropped.
struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Middleware: counts requests in flight and answered.
pub(super) async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str());
    let route = ROUTES
        .iter()
        .copied()
        .find(|r| *r == route)
        .unwrap_or("unmatched");
    let metrics = &state.metrics;
    metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let _guard = InFlight(&metrics.in_flight);
    let response = next.run(req).await;
    metrics.request(route, response.status().as_u16());
    response
}
