//! What happens to every accepted message, from an SMTP session (the end of DATA) or from the
//! reply endpoint ([`crate::reply`]): the message goes through the mail-flow rules and
//! encryption ([`Processor`]), transport decryption for internal recipients when the tenant
//! allows it ([`crate::transport`]), every resulting copy is stored in one durable spool
//! entry, and only then does the client get its 250 (or 202). Any failure on the way answers
//! 451 and leaves nothing behind (the spool writes an entry whole or not at all).
//!
//! With `relay_first`, [`crate::relay_first`] takes the same steps ([`prepare`], then
//! [`accepted`]) but relays the copies before the 250 and spools only what the next hop did
//! not take.
//!
//! Recipients refused by a rule while others are accepted get a delivery status notification
//! to the sender, spooled as its own entry. This module does not relay: the delivery workers
//! ([`crate::worker`]) are woken to do that.

use std::net::IpAddr;
use std::sync::Arc;

use sealpost_core::mail::rfc5322::fields;
use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::process::{Processed, Processor};
use crate::smtp::{Handler, Transaction, Verdict};
use crate::spool::{NewEntry, NewPart, QueueId, Spool, dsn};
use crate::transport::Transport;

/// Seconds since the Unix epoch; passed in so tests can move time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// The SMTP handler of the gateway.
pub struct Gateway {
    /// Rules and encryption.
    pub processor: Arc<Processor>,
    /// The spool.
    pub spool: Spool,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Wakes the delivery scheduler after a store.
    pub wake: Arc<Notify>,
    /// Our name, for bounces.
    pub hostname: String,
    /// The clock.
    pub clock: Clock,
    /// Transport decryption's key-service client (when the tenant allows it).
    pub transport: Option<Transport>,
    /// Relay each message before answering its client (`relay_first`).
    pub relay_first: Option<crate::relay_first::RelayFirst>,
}

/// One message to accept, whichever way it came.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Envelope sender (`""` for the null sender).
    pub mail_from: String,
    /// Envelope recipients, as given.
    pub recipients: Vec<String>,
    /// The client's address (the SMTP peer, or the browser of a reply).
    pub peer: IpAddr,
    /// Where it came from, for the spool: `helo [ip]`, or the reply endpoint's note.
    pub received_from: String,
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Stored durably under this id (not yet acknowledged).
    Stored(QueueId),
    /// Refused for good (a rule, or it cannot be protected): SMTP 550.
    Rejected {
        /// Why, for the client.
        text: String,
    },
    /// Not stored because of an internal error; the client may try again: SMTP 451.
    TempFailed {
        /// Why, for the client.
        text: String,
    },
}

/// The original's `Message-ID` value, trimmed, if it has one.
pub fn message_id(raw: &[u8]) -> Option<String> {
    fields(raw)
        .into_iter()
        .find(|f| f.name.eq_ignore_ascii_case("message-id"))
        .and_then(|f| {
            let field = String::from_utf8_lossy(&raw[f.range]).into_owned();
            let value = field.split_once(':')?.1.trim().to_string();
            (!value.is_empty()).then_some(value)
        })
}

/// A message through the rules and encryption, not yet stored or relayed.
pub struct Prepared {
    /// Every copy, as the spool would store them.
    pub entry: NewEntry,
    /// What to count and log once it is accepted.
    pub report: Report,
}

/// What is counted and logged about a message once it is accepted.
pub struct Report {
    /// Recipients a rule refused, with the rule's text.
    pub rejected: Vec<(String, String)>,
    /// What the rules did, one line each, for the log.
    pub summary: Vec<String>,
    /// Copies that are protected wrappers.
    pub encrypted: u64,
    /// Copies that are not.
    pub passed: u64,
    /// The original's Message-ID.
    pub message_id: Option<String>,
}

/// Runs one message through the rules, encryption and transport decryption; runs on a
/// blocking thread (inside the runtime, which transport decryption waits on). `Err` is the
/// final answer (refused, or failed before anything was stored).
pub fn prepare(g: &Gateway, tx: &Incoming, data: &[u8], now: u64) -> Result<Prepared, Accepted> {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let processed = match g
        .processor
        .process(&tx.mail_from, &tx.recipients, data, now, &mut rng)
    {
        Ok(p) => p,
        Err(e) if e.is_permanent() => {
            // The same message would fail the same way again (e.g. a field too long to seal).
            tracing::warn!(peer = %tx.peer, error = %e, "cannot protect a message; refused");
            Metrics::inc(&g.metrics.rejected);
            return Err(Accepted::Rejected {
                text: format!("Message cannot be protected: {e}"),
            });
        }
        Err(e) => {
            tracing::error!(peer = %tx.peer, error = %e, "cannot process a message; not accepted");
            Metrics::inc(&g.metrics.temp_failed);
            return Err(Accepted::TempFailed {
                text: "Message could not be processed, try again later".into(),
            });
        }
    };
    let (mut copies, rejected, summary, decryptable) = match processed {
        Processed::RejectAll { text } => {
            tracing::info!(peer = %tx.peer, "message refused by a rule");
            Metrics::inc(&g.metrics.rejected);
            return Err(Accepted::Rejected { text });
        }
        Processed::Deliver {
            copies,
            rejected,
            summary,
            decryptable,
        } => (copies, rejected, summary, decryptable),
    };
    if let Some(d) = &decryptable {
        match &g.transport {
            Some(t) => t.apply(d, &mut copies, Some(tx.peer), &g.metrics),
            None => {
                let n: usize = d.candidates.iter().map(|c| c.recipients.len()).sum();
                Metrics::add(&g.metrics.transport_failed, n as u64);
                tracing::warn!(message_id = %d.message_id, "transport decryption is on but no key service is configured; the protected wrapper is delivered");
            }
        }
    }
    let encrypted = copies.iter().filter(|c| c.encrypted).count() as u64;
    let message_id = message_id(data);
    Ok(Prepared {
        report: Report {
            rejected,
            summary,
            encrypted,
            passed: copies.len() as u64 - encrypted,
            message_id: message_id.clone(),
        },
        entry: NewEntry {
            mail_from: tx.mail_from.clone(),
            message_id,
            received_from: tx.received_from.clone(),
            parts: copies
                .into_iter()
                .map(|c| NewPart {
                    recipients: c.recipients,
                    data: c.data,
                    label: c.label,
                })
                .collect(),
        },
    })
}

/// Counts an accepted message, logs what the rules did under its queue id and spools the
/// notification of rule-refused recipients. Blocking (that notification is spooled).
pub fn accepted(g: &Gateway, id: &QueueId, tx: &Incoming, data: &[u8], r: &Report, now: u64) {
    Metrics::inc(&g.metrics.messages_in);
    Metrics::add(&g.metrics.encrypted, r.encrypted);
    Metrics::add(&g.metrics.passed, r.passed);
    for line in &r.summary {
        tracing::info!(queue_id = %id, "{line}");
    }
    if !r.rejected.is_empty() {
        Metrics::add(&g.metrics.recipients_rejected, r.rejected.len() as u64);
        let message_id = r.message_id.clone();
        bounce_rejected(g, id.as_str(), tx, data, message_id, &r.rejected, now);
    }
}

/// Processes and spools one message; runs on a blocking thread (inside the runtime, which
/// transport decryption waits on).
pub fn accept(g: &Gateway, tx: &Incoming, data: &[u8]) -> Accepted {
    let now = (g.clock)();
    let Prepared { entry, report } = match prepare(g, tx, data, now) {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    let id = match g.spool.store(entry, now) {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(peer = %tx.peer, error = %e, "cannot spool a message; not accepted");
            Metrics::inc(&g.metrics.temp_failed);
            return Accepted::TempFailed {
                text: "Message could not be queued, try again later".into(),
            };
        }
    };
    accepted(g, &id, tx, data, &report, now);
    Accepted::Stored(id)
}

/// Spools a notification to the sender for the recipients a rule refused.
fn bounce_rejected(
    g: &Gateway,
    queue_id: &str,
    tx: &Incoming,
    data: &[u8],
    message_id: Option<String>,
    rejected: &[(String, String)],
    now: u64,
) {
    let failures: Vec<dsn::Failure> = rejected
        .iter()
        .map(|(recipient, text)| dsn::Failure {
            recipient: recipient.clone(),
            status: "5.7.1".into(),
            diagnostic: format!("550 5.7.1 {text}"),
        })
        .collect();
    let original = dsn::Original {
        mail_from: &tx.mail_from,
        message_id: message_id.as_deref(),
        data,
        arrival: now,
    };
    let Some(report) = dsn::build(&g.hostname, &original, &failures, now) else {
        return;
    };
    let entry = NewEntry {
        mail_from: String::new(),
        message_id: None,
        received_from: format!("{} (rule rejection of {queue_id})", g.hostname),
        parts: vec![NewPart {
            recipients: vec![tx.mail_from.clone()],
            data: report,
            label: "delivery status notification".into(),
        }],
    };
    match g.spool.store(entry, now) {
        Ok(id) => {
            let _ = g.spool.acknowledge(&id);
        }
        Err(e) => tracing::error!(
            queue_id,
            error = %e,
            "cannot spool the notification of rule-rejected recipients"
        ),
    }
}

/// [`accept`] on a blocking thread.
pub async fn accept_async(g: &Arc<Gateway>, incoming: Incoming, data: Vec<u8>) -> Accepted {
    let g = g.clone();
    tokio::task::spawn_blocking(move || accept(&g, &incoming, &data))
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "message processing stopped; not accepted");
            Accepted::TempFailed {
                text: "Message could not be processed, try again later".into(),
            }
        })
}

/// Records that the client has its answer and wakes the delivery scheduler (blocking: a
/// small rename).
pub fn acknowledge(g: &Gateway, id: &QueueId) {
    if let Err(e) = g.spool.acknowledge(id) {
        tracing::warn!(queue_id = %id, error = %e, "cannot record that the client has its answer");
    }
    g.wake.notify_one();
}

/// The gateway behind an `Arc`, as the SMTP server wants it.
pub struct SharedGateway(pub Arc<Gateway>);

impl Handler for SharedGateway {
    async fn deliver(&self, tx: Transaction, data: Vec<u8>) -> Verdict {
        let incoming = Incoming {
            received_from: format!("{} [{}]", tx.helo, tx.peer.ip()),
            mail_from: tx.mail_from,
            recipients: tx.recipients,
            peer: tx.peer.ip(),
        };
        let answer = match &self.0.relay_first {
            Some(rf) => crate::relay_first::accept(&self.0, rf, incoming, data).await,
            None => accept_async(&self.0, incoming, data).await,
        };
        match answer {
            Accepted::Stored(id) => Verdict::Accepted {
                queue_id: id.to_string(),
            },
            Accepted::Rejected { text } => Verdict::Rejected { text },
            Accepted::TempFailed { text } => Verdict::TempFailed { text },
        }
    }

    fn acknowledged(&self, queue_id: &str) {
        let Ok(id) = queue_id.parse() else { return };
        if let Some(rf) = &self.0.relay_first
            && !rf.answered(&id)
        {
            // Relayed whole before the 250: nothing in the spool to acknowledge.
            return;
        }
        let g = self.0.clone();
        // A small rename off the async threads; the entry becomes due for relaying once
        // acknowledged, so the scheduler is woken afterwards.
        tokio::task::spawn_blocking(move || acknowledge(&g, &id));
    }
}
