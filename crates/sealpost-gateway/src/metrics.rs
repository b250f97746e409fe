//! The gateway's counters and the `/metrics` (Prometheus text format 0.0.4) and `/healthz`
//! endpoints, in the same style as the key service's.
//!
//! Plain atomics over a fixed set of series: nothing here knows about addresses, subjects or
//! message contents, and a client cannot create new series.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::spool::Spool;

/// Counters since start.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages accepted with 250.
    pub messages_in: AtomicU64,
    /// Protected copies made (one per group of recipients).
    pub encrypted: AtomicU64,
    /// Copies passed on unencrypted.
    pub passed: AtomicU64,
    /// Messages refused whole with 550: by a rule, or because they cannot be protected.
    pub rejected: AtomicU64,
    /// Recipients refused by a rule while others were accepted (a bounce is sent).
    pub recipients_rejected: AtomicU64,
    /// Messages answered 451 because of an internal error.
    pub temp_failed: AtomicU64,
    /// Copies relayed to the next hop.
    pub delivered: AtomicU64,
    /// With `relay_first`: messages of which some copies went to the spool instead (the next
    /// hop refused them, could not be reached, or was resting after a failure).
    pub relay_first_spooled: AtomicU64,
    /// Relay attempts that failed and will be retried.
    pub deferred: AtomicU64,
    /// Copies given up on (a delivery status notification went to the sender).
    pub bounced: AtomicU64,
    /// Internal recipients who got our protected mail decrypted.
    pub transport_decrypted: AtomicU64,
    /// Internal recipients the key service refused transport decryption for.
    pub transport_refused: AtomicU64,
    /// Internal recipients whose transport decryption failed (key service unreachable, too
    /// slow, or a damaged answer).
    pub transport_failed: AtomicU64,
    /// Replies accepted by the reply endpoint.
    pub replies_accepted: AtomicU64,
    /// Replies refused, per error code ([`REPLY_CODES`]; others count as `other`).
    pub replies_refused: [AtomicU64; REPLY_CODES.len()],
}

/// The error codes of the reply endpoint counted in `sealpost_gateway_replies_total`; the last,
/// `other`, counts any code not listed.
pub const REPLY_CODES: [&str; 23] = [
    "bad_request",
    "missing_client_header",
    "unsupported_media_type",
    "bad_original",
    "bad_envelope",
    "recipients_mismatch",
    "too_large",
    "key_service_unavailable",
    "unavailable",
    "rejected",
    "not_signed_in",
    "not_a_recipient",
    "right_not_granted",
    "recipients_not_allowed",
    "sender_mismatch",
    "reply_policy_invalid",
    "revoked",
    "expired",
    "malformed_license",
    "unknown_key",
    "overloaded",
    "request_timeout",
    "other",
];

impl Metrics {
    /// Adds one to `c`.
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to `c`.
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a reply refused with `code`.
    pub fn reply_refused(&self, code: &str) {
        let i = REPLY_CODES
            .iter()
            .position(|c| *c == code)
            .unwrap_or(REPLY_CODES.len() - 1);
        Metrics::inc(&self.replies_refused[i]);
    }

    /// The exposition text; `queue` is the number of copies waiting in the spool.
    pub fn render(&self, queue: Option<usize>) -> String {
        let mut out = String::with_capacity(2048);
        let counters: [(&str, &str, &AtomicU64); 10] = [
            ("messages_in", "Messages accepted (250).", &self.messages_in),
            ("encrypted", "Protected copies made.", &self.encrypted),
            ("passed", "Copies passed on unencrypted.", &self.passed),
            (
                "rejected",
                "Messages refused with 550 (a rule, or not protectable).",
                &self.rejected,
            ),
            (
                "recipients_rejected",
                "Recipients refused by a rule while others were accepted.",
                &self.recipients_rejected,
            ),
            (
                "temp_failed",
                "Messages answered 451 after an internal error.",
                &self.temp_failed,
            ),
            (
                "delivered",
                "Copies relayed to the next hop.",
                &self.delivered,
            ),
            (
                "relay_first_spooled",
                "Messages relayed first of which some copies were spooled instead.",
                &self.relay_first_spooled,
            ),
            (
                "deferred",
                "Relay attempts deferred for a retry.",
                &self.deferred,
            ),
            (
                "bounced",
                "Copies given up on and bounced to the sender.",
                &self.bounced,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(out, "# HELP sealpost_gateway_{name}_total {help}");
            let _ = writeln!(out, "# TYPE sealpost_gateway_{name}_total counter");
            let _ = writeln!(
                out,
                "sealpost_gateway_{name}_total {}",
                c.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP sealpost_gateway_transport_decryptions_total Transport decryptions per internal recipient, by result.\n\
             # TYPE sealpost_gateway_transport_decryptions_total counter\n",
        );
        for (result, c) in [
            ("decrypted", &self.transport_decrypted),
            ("refused", &self.transport_refused),
            ("failed", &self.transport_failed),
        ] {
            let _ = writeln!(
                out,
                "sealpost_gateway_transport_decryptions_total{{result=\"{result}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP sealpost_gateway_replies_total Requests to the reply endpoint, by result and error code.\n\
             # TYPE sealpost_gateway_replies_total counter\n",
        );
        let _ = writeln!(
            out,
            "sealpost_gateway_replies_total{{result=\"accepted\"}} {}",
            self.replies_accepted.load(Ordering::Relaxed)
        );
        for (code, c) in REPLY_CODES.iter().zip(&self.replies_refused) {
            let _ = writeln!(
                out,
                "sealpost_gateway_replies_total{{result=\"refused\",code=\"{code}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        if let Some(q) = queue {
            out.push_str("# HELP sealpost_gateway_queue_size Copies waiting in the spool.\n");
            out.push_str("# TYPE sealpost_gateway_queue_size gauge\n");
            let _ = writeln!(out, "sealpost_gateway_queue_size {q}");
        }
        out
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    spool: Spool,
}

/// The `/metrics` and `/healthz` router.
pub fn router(metrics: Arc<Metrics>, spool: Spool) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(AppState { metrics, spool })
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    let spool = s.spool.clone();
    let queue = tokio::task::spawn_blocking(move || spool.len().ok())
        .await
        .ok()
        .flatten();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(queue),
    )
}

/// Serves the router on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    spool: Spool,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics, spool))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await
}
