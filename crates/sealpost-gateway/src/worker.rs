//! Delivery: relays spooled copies to the next hop, retries with exponential backoff, and
//! after `bounce_after` (or on a permanent refusal) gives up and sends the sender a delivery
//! status notification. When the hop refuses only some recipients of a copy, the others get
//! it; the refused ones are bounced (for good) or moved to a new entry of their own (for now).
//!
//! One scheduler task asks the spool for due copies whenever it is woken (a new message was
//! spooled) and at least once a second, and hands each to a bounded set of delivery tasks; a
//! copy is never handed out twice at once. It rescans the spool directory every few seconds to
//! see what `sealpost queue retry|delete` changed from another process. This module does not
//! decide what is encrypted and does not speak SMTP itself ([`Relay`] does).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, watch};

use crate::handler::Clock;
use crate::maildrop::Maildrop;
use crate::metrics::Metrics;
use crate::relay::{NextHop, Relay, SendError};
use crate::spool::{NewEntry, NewPart, PartRef, Spool, SpoolError, dsn};

/// How often the spool directory is rescanned for other processes' changes.
const RESCAN_EVERY: Duration = Duration::from_secs(5);

/// Where accepted mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An SMTP server (the MTA's reinjection port, a smarthost).
    Smtp(NextHop),
    /// A directory: one `.eml` file per recipient (demo and tests; [`crate::maildrop`]).
    Directory(PathBuf),
}

impl Destination {
    /// Reads `smtp://…`, `smtp+starttls://…`, `smtps://…` or `file://DIR` (relative to `base`).
    pub fn parse(url: &str, base: &Path) -> Result<Destination, String> {
        match url.trim().strip_prefix("file://") {
            Some("") => Err("file:// needs a directory, e.g. file:///var/mail/sealpost".into()),
            Some(dir) => Ok(Destination::Directory(base.join(dir))),
            None => NextHop::parse(url)
                .map(Destination::Smtp)
                .map_err(|e| e.to_string()),
        }
    }

    /// The destination as logs show it.
    pub fn describe(&self) -> String {
        match self {
            Destination::Smtp(h) => h.describe(),
            Destination::Directory(d) => format!("file://{}", d.display()),
        }
    }
}

/// Where copies go: an SMTP next hop or a directory.
pub enum Outbound {
    /// Relay over SMTP.
    Smtp(Relay),
    /// File into a directory.
    Directory(Maildrop),
}

impl Outbound {
    /// Sends one copy.
    pub async fn send(&self, from: &str, rcpts: &[String], data: &[u8]) -> Result<(), SendError> {
        match self {
            Outbound::Smtp(r) => r.send(from, rcpts, data).await,
            Outbound::Directory(d) => d.send(from, rcpts, data).await,
        }
    }

    /// Sends one copy; when the hop refuses some recipients, the others still get it and each
    /// recipient has its own result ([`Relay::send_each`]).
    async fn send_each(
        &self,
        from: &str,
        rcpts: &[String],
        data: &[u8],
    ) -> Vec<(String, Result<(), SendError>)> {
        match self {
            Outbound::Smtp(r) => r.send_each(from, rcpts, data).await,
            Outbound::Directory(d) => {
                let all = d.send(from, rcpts, data).await;
                rcpts.iter().map(|r| (r.clone(), all.clone())).collect()
            }
        }
    }
}

/// When to retry and when to give up.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay before the first retry.
    pub first: Duration,
    /// Longest delay between retries.
    pub max: Duration,
    /// Age after which a copy is bounced.
    pub bounce_after: Duration,
}

impl RetryPolicy {
    /// Seconds to wait after the `attempts`-th failed attempt: `first`, doubling, capped at `max`.
    pub fn delay_after(&self, attempts: u32) -> u64 {
        let first = self.first.as_secs().max(1);
        let doubled = first.saturating_mul(1u64 << attempts.saturating_sub(1).min(30));
        doubled.min(self.max.as_secs().max(first))
    }
}

/// What the delivery tasks share.
pub struct Deliverer {
    /// The spool.
    pub spool: Spool,
    /// The next hop (shared with [`crate::relay_first`]).
    pub relay: Arc<Outbound>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Retry and bounce timing.
    pub policy: RetryPolicy,
    /// Our name, for bounces.
    pub hostname: String,
    /// The clock.
    pub clock: Clock,
}

/// Runs the scheduler until `shutdown` turns true; in-flight deliveries are awaited.
pub async fn run(
    d: Arc<Deliverer>,
    workers: usize,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(workers.max(1)));
    let in_flight: Arc<Mutex<HashSet<PartRef>>> = Arc::default();
    let mut last_rescan = tokio::time::Instant::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if last_rescan.elapsed() >= RESCAN_EVERY {
            last_rescan = tokio::time::Instant::now();
            let spool = d.spool.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || spool.rescan()).await {
                tracing::error!(error = %e, "cannot rescan the spool");
            }
        }
        let spool = d.spool.clone();
        let now = (d.clock)();
        let due = match tokio::task::spawn_blocking(move || spool.due(now)).await {
            Ok(Ok(due)) => due,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read the spool");
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        for part in due {
            if !in_flight.lock().expect("not poisoned").insert(part.clone()) {
                continue;
            }
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                _ = shutdown.wait_for(|s| *s) => {
                    in_flight.lock().expect("not poisoned").remove(&part);
                    break;
                }
            };
            let d = d.clone();
            let in_flight = in_flight.clone();
            tokio::spawn(async move {
                deliver_one(&d, &part).await;
                in_flight.lock().expect("not poisoned").remove(&part);
                drop(permit);
            });
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.wait_for(|s| *s) => {}
        }
    }
    // Let running deliveries finish so their outcome is recorded.
    let _ = permits.acquire_many(workers.max(1) as u32).await;
}

/// Runs a blocking spool call off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// One attempt at relaying one copy, and its bookkeeping.
async fn deliver_one(d: &Arc<Deliverer>, part: &PartRef) {
    let now = (d.clock)();
    let (spool, p) = (d.spool.clone(), part.clone());
    let data = match blocking(move || {
        spool.begin_attempt(&p, now)?;
        spool.read_part(&p)
    })
    .await
    {
        Some(Ok(data)) => data,
        Some(Err(
            e @ (SpoolError::NotFound(_) | SpoolError::NotDue(_) | SpoolError::NoSuchPart(_)),
        )) => {
            // Finished by a delivery that ended after the due list was read, or deleted by an
            // operator meanwhile: nothing to do.
            tracing::debug!(part = %part, error = %e, "skipping a spooled copy");
            return;
        }
        Some(Err(e)) => {
            // Unreadable (then quarantined by the spool, which logs it loudly).
            tracing::warn!(part = %part, error = %e, "skipping a spooled copy");
            return;
        }
        None => return,
    };
    let results = d
        .relay
        .send_each(&data.mail_from, &data.recipients, &data.data)
        .await;
    let now = (d.clock)();
    let failed: Vec<(String, SendError)> = results
        .into_iter()
        .filter_map(|(r, res)| res.err().map(|e| (r, e)))
        .collect();
    let whole =
        failed.len() == data.recipients.len() && failed.iter().all(|(_, e)| *e == failed[0].1);
    if failed.is_empty() {
        let (spool, p) = (d.spool.clone(), part.clone());
        match blocking(move || spool.delivered(&p, now)).await {
            Some(Ok(())) => {
                Metrics::inc(&d.metrics.delivered);
                tracing::info!(part = %part, recipients = data.recipients.len(), "relayed");
            }
            Some(Err(e)) => {
                tracing::error!(part = %part, error = %e, "relayed, but cannot record it: it may be relayed again")
            }
            None => {}
        }
    } else if whole {
        let e = &failed[0].1;
        let age = now.saturating_sub(data.created);
        if e.permanent || age >= d.policy.bounce_after.as_secs() {
            bounce(d, part, &data, &failed, now).await;
        } else {
            let next = now + d.policy.delay_after(data.attempts + 1);
            Metrics::inc(&d.metrics.deferred);
            tracing::warn!(part = %part, error = %e.message, retry_in_secs = next - now, "relay deferred");
            let (spool, p, msg) = (d.spool.clone(), part.clone(), e.message.clone());
            if let Some(Err(e)) = blocking(move || spool.deferred(&p, now, &msg, next)).await {
                tracing::error!(part = %part, error = %e, "cannot record a deferral");
            }
        }
    } else {
        split(d, part, data, failed, now).await;
    }
}

/// Some recipients of a copy got it and others did not: those refused for good (or for too
/// long) get a notification, those refused for now move to a new entry of their own (retried
/// with backoff; `bounce_after` still counts from the message's arrival), and the copy is
/// recorded as delivered.
async fn split(
    d: &Arc<Deliverer>,
    part: &PartRef,
    data: crate::spool::PartData,
    failed: Vec<(String, SendError)>,
    now: u64,
) {
    let age = now.saturating_sub(data.created);
    let (give_up, retry): (Vec<_>, Vec<_>) = failed
        .into_iter()
        .partition(|(_, e)| e.permanent || age >= d.policy.bounce_after.as_secs());
    let delivered = data.recipients.len() - give_up.len() - retry.len();
    if !retry.is_empty() {
        let next = now + d.policy.delay_after(1);
        let message = retry[0].1.message.clone();
        let entry = NewEntry {
            mail_from: data.mail_from.clone(),
            message_id: data.message_id.clone(),
            received_from: format!("{} (recipients deferred from {part})", d.hostname),
            parts: vec![NewPart {
                recipients: retry.iter().map(|(r, _)| r.clone()).collect(),
                data: data.data.clone(),
                label: data.label.clone(),
            }],
        };
        let (spool, arrived) = (d.spool.clone(), data.created);
        let stored = blocking(move || {
            let id = spool.store_moved(entry, now, arrived)?;
            spool.acknowledge(&id)?;
            let first = PartRef { id, part: 0 };
            spool.deferred(&first, now, &message, next)?;
            Ok::<_, SpoolError>(first)
        })
        .await;
        match stored {
            Some(Ok(first)) => {
                Metrics::add(&d.metrics.deferred, retry.len() as u64);
                tracing::warn!(part = %part, moved_to = %first, recipients = retry.len(), error = %retry[0].1.message, retry_in_secs = next - now, "some recipients deferred");
            }
            Some(Err(e)) => {
                // The copy stays queued as a whole: retried later for every recipient.
                tracing::error!(part = %part, error = %e, "cannot spool the deferred recipients; the copy will be relayed again to all of them (possible duplicate)");
                return;
            }
            None => return,
        }
    }
    if !give_up.is_empty() {
        bounce(d, part, &data, &give_up, now).await;
        if delivered > 0 {
            Metrics::inc(&d.metrics.delivered);
        }
        return;
    }
    let (spool, p) = (d.spool.clone(), part.clone());
    match blocking(move || spool.delivered(&p, now)).await {
        Some(Ok(())) => {
            Metrics::inc(&d.metrics.delivered);
            tracing::info!(part = %part, recipients = delivered, "relayed to some recipients");
        }
        Some(Err(e)) => tracing::error!(part = %part, error = %e, "cannot record a delivery"),
        None => {}
    }
}

/// Gives up on a copy for the `failed` recipients (each with its own reason): spools a
/// notification to the sender (unless the copy is itself a notification), then marks the copy
/// bounced.
async fn bounce(
    d: &Arc<Deliverer>,
    part: &PartRef,
    data: &crate::spool::PartData,
    failed: &[(String, SendError)],
    now: u64,
) {
    let diagnose = |e: &SendError| {
        if e.permanent {
            ("5.0.0", e.message.clone())
        } else {
            let tries = data.attempts + 1;
            (
                "4.4.7",
                format!("gave up after {tries} attempts: {}", e.message),
            )
        }
    };
    let failures: Vec<dsn::Failure> = failed
        .iter()
        .map(|(r, e)| {
            let (status, diagnostic) = diagnose(e);
            dsn::Failure {
                recipient: r.clone(),
                status: status.into(),
                diagnostic,
            }
        })
        .collect();
    let diagnostic = failures
        .first()
        .map(|f| f.diagnostic.clone())
        .unwrap_or_default();
    let original = dsn::Original {
        mail_from: &data.mail_from,
        message_id: data.message_id.as_deref(),
        data: &data.data,
        arrival: data.created,
    };
    let report = dsn::build(&d.hostname, &original, &failures, now);
    let (spool, p, mail_from, msg) = (
        d.spool.clone(),
        part.clone(),
        data.mail_from.clone(),
        diagnostic.clone(),
    );
    let hostname = d.hostname.clone();
    let result = blocking(move || {
        if let Some(report) = report {
            let id = spool.store(
                NewEntry {
                    mail_from: String::new(),
                    message_id: None,
                    received_from: hostname,
                    parts: vec![NewPart {
                        recipients: vec![mail_from],
                        data: report,
                        label: "delivery status notification".into(),
                    }],
                },
                now,
            )?;
            spool.acknowledge(&id)?;
        }
        spool.bounced(&p, now, &msg)
    })
    .await;
    match result {
        Some(Ok(())) => {
            Metrics::inc(&d.metrics.bounced);
            tracing::warn!(part = %part, error = %diagnostic, "gave up; the sender is notified");
        }
        Some(Err(e)) => tracing::error!(part = %part, error = %e, "cannot record a bounce"),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            first: Duration::from_secs(60),
            max: Duration::from_secs(600),
            bounce_after: Duration::from_secs(86400),
        };
        let delays: Vec<u64> = (1..=6).map(|a| p.delay_after(a)).collect();
        assert_eq!(delays, [60, 120, 240, 480, 600, 600]);
        assert_eq!(p.delay_after(u32::MAX), 600);
    }
}
