//! Relaying before answering (`relay_first = true` in `[gateway]`): each message goes through
//! the rules and encryption as usual, then every copy is relayed to the next hop *inside the
//! client's SMTP transaction*, and the client gets its 250 once the next hop has accepted every
//! copy — the "accepted by the next hop" half of the gateway's promise. Nothing is written to
//! the spool for such a message: behind Postfix the message is queued once, by Postfix, instead
//! of once by Postfix and once by the gateway (the way before-queue filters usually work,
//! SMTPD_PROXY_README).
//!
//! What the next hop does not take is not lost and not refused: the copies it refused
//! (temporarily or for good) or could not be reached for are stored in the spool under the
//! same queue id, durably, before the 250, and the delivery workers take over (retry with
//! backoff, or a delivery status notification). If that store fails the client gets 451; if
//! some copies had already been relayed, that is logged as a possible duplicate. After a
//! transient failure the next hop is left alone for [`HOP_REST_SECS`]: messages go straight to
//! the spool, so an unreachable hop does not make every client wait for its timeout.
//!
//! Duplicates stay visible: the relay journal ([`RelayJournal`]) notes each message before its
//! relay begins and once its client has the answer, so a crash in between is reported at the
//! next start (`possible duplicate message_id=…`), as the spool reports its own.
//!
//! This module does not decide what is encrypted ([`crate::process`]), does not retry
//! ([`crate::worker`]) and does not speak SMTP itself ([`crate::relay`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::handler::{self, Accepted, Gateway, Incoming, Prepared};
use crate::metrics::Metrics;
use crate::spool::{Finished, NewEntry, QueueId, RelayJournal};
use crate::worker::Outbound;

/// Seconds the next hop is left alone after a transient failure.
pub const HOP_REST_SECS: u64 = 10;

/// What relaying first needs besides the gateway.
pub struct RelayFirst {
    /// The next hop (shared with the delivery workers).
    pub hop: Arc<Outbound>,
    /// The journal that makes duplicates visible.
    pub journal: RelayJournal,
    /// Until when (seconds since the epoch) messages go straight to the spool.
    rest_until: AtomicU64,
}

impl RelayFirst {
    /// Relays to `hop`, noting each message in `journal`.
    pub fn new(hop: Arc<Outbound>, journal: RelayJournal) -> RelayFirst {
        RelayFirst {
            hop,
            journal,
            rest_until: AtomicU64::new(0),
        }
    }

    fn resting(&self, now: u64) -> bool {
        now < self.rest_until.load(Ordering::Relaxed)
    }

    fn rest(&self, now: u64) {
        self.rest_until
            .fetch_max(now.saturating_add(HOP_REST_SECS), Ordering::Relaxed);
    }

    /// Records that the client has its answer for `id`; true if the spool must also be told
    /// (some copies were spooled, or the message was not relayed first at all).
    pub fn answered(&self, id: &QueueId) -> bool {
        self.journal.finish(id) != Finished::Relayed
    }
}

/// Accepts one message by relaying it first (the spool takes what the next hop does not).
pub async fn accept(g: &Arc<Gateway>, rf: &RelayFirst, tx: Incoming, data: Vec<u8>) -> Accepted {
    let now = (g.clock)();
    if rf.resting(now) {
        Metrics::inc(&g.metrics.relay_first_spooled);
        return handler::accept_async(g, tx, data).await;
    }
    let g2 = g.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        let p = handler::prepare(&g2, &tx, &data, now);
        (p, tx, data)
    })
    .await;
    let (Prepared { entry, report }, tx, data) = match prepared {
        Ok((Ok(p), tx, data)) => (p, tx, data),
        Ok((Err(answer), _, _)) => return answer,
        Err(e) => {
            tracing::error!(error = %e, "message processing stopped; not accepted");
            return temp_failed(g, "Message could not be processed, try again later");
        }
    };
    let Ok(id) = QueueId::generate(now) else {
        return temp_failed(g, "Message could not be queued, try again later");
    };
    let mut left = Vec::new();
    let mut relayed = 0usize;
    let copies = entry.parts.len();
    match rf.journal.begin(&id, entry.message_id.as_deref(), now) {
        Ok(()) => {
            for (i, part) in entry.parts.into_iter().enumerate() {
                if !left.is_empty() && rf.resting(now) {
                    left.push(part);
                    continue;
                }
                match rf
                    .hop
                    .send(&entry.mail_from, &part.recipients, &part.data)
                    .await
                {
                    Ok(()) => {
                        relayed += 1;
                        Metrics::inc(&g.metrics.delivered);
                        tracing::info!(queue_id = %id, part = i, recipients = part.recipients.len(), "relayed before answering the client");
                    }
                    Err(e) => {
                        if !e.permanent {
                            rf.rest(now);
                        }
                        tracing::warn!(queue_id = %id, part = i, error = %e.message, "not relayed; spooled for the delivery workers");
                        left.push(part);
                    }
                }
            }
        }
        Err(e) => {
            tracing::error!(queue_id = %id, error = %e, "cannot write the relay journal; the message is spooled instead");
            left = entry.parts;
        }
    }
    let message_id = entry.message_id.clone();
    let rest = NewEntry {
        parts: left,
        ..entry
    };
    if rest.parts.is_empty() && report.rejected.is_empty() {
        // Nothing to write: count and log here, without a trip to a blocking thread.
        handler::accepted(g, &id, &tx, &data, &report, now);
        return Accepted::Stored(id);
    }
    let (g2, id2) = (g.clone(), id.clone());
    let stored = tokio::task::spawn_blocking(move || {
        if !rest.parts.is_empty() {
            g2.spool.store_as(&id2, rest, now)?;
        }
        handler::accepted(&g2, &id2, &tx, &data, &report, now);
        Ok::<_, crate::spool::SpoolError>(())
    })
    .await;
    let error = match stored {
        Ok(Ok(())) => {
            if relayed < copies {
                // Due once the client's 250 is acknowledged (which wakes the workers).
                Metrics::inc(&g.metrics.relay_first_spooled);
                rf.journal.spooled(&id);
            }
            return Accepted::Stored(id);
        }
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    tracing::error!(queue_id = %id, error, "cannot spool the copies the next hop did not take; not accepted");
    rf.journal.finish(&id);
    if relayed > 0 {
        tracing::warn!(
            queue_id = %id,
            relayed,
            copies,
            "possible duplicate message_id={}: copies were relayed, and the client is told to send the message again",
            message_id.as_deref().unwrap_or("none")
        );
    }
    temp_failed(g, "Message could not be queued, try again later")
}

fn temp_failed(g: &Gateway, text: &str) -> Accepted {
    Metrics::inc(&g.metrics.temp_failed);
    Accepted::TempFailed { text: text.into() }
}
