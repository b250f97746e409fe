//! Passcode mail delivery: a worker that takes due mail from the outbox, hands it to an SMTP
//! relay and records the outcome in the store.
//!
//! - **Claiming.** Each mail is claimed for a lease ([`DeliveryConfig::lease`]) with one
//!   conditional update ([`Store::claim_outbox`]), so several instances on one database do
//!   not send the same mail; a mail whose sender died mid-send is taken up again when its
//!   lease ends.
//! - **Retries.** A failed attempt is recorded with its error and retried after a delay that
//!   starts at [`DeliveryConfig::retry_initial`] and doubles up to
//!   [`DeliveryConfig::retry_max`]. A mail is given up (marked failed) when the relay
//!   refuses it for good (a 5xx answer), when its address cannot be used, or once it is
//!   older than [`DeliveryConfig::give_up_after`].
//! - **Waking.** The worker wakes when this process queues mail ([`Store::outbox_queued`]) and
//!   polls every [`DeliveryConfig::poll_interval`] for mail queued by other instances and for
//!   retries that fall due.
//! - **Time** comes from the [`Clock`], so tests move it.
//!
//! It never logs a passcode, a body or the relay URL's credentials; log lines name the mail
//! by its outbox id. Decoys are never claimed (see `store/outbox.rs`). Pruning delivered mail
//! is the purge task's job (`daemon.rs`), not the worker's.

mod smtp;

use std::sync::Arc;
use std::time::Duration;

use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use smtp::{DEFAULT_FROM, DeliveryConfigError, SmtpSettings};

use crate::clock::Clock;
use crate::store::{ClaimedMail, Store};

/// How delivery runs: the relay and the timing rules.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// The relay and the sender address.
    pub smtp: SmtpSettings,
    /// Delay after the first failed attempt; doubles with each further failure.
    pub retry_initial: Duration,
    /// The longest delay between attempts.
    pub retry_max: Duration,
    /// Age (from queueing) after which a mail is given up rather than tried again.
    pub give_up_after: Duration,
    /// How often the worker looks for due mail when nothing wakes it.
    pub poll_interval: Duration,
    /// How long a claim keeps other instances off a mail; longer than `send_timeout`.
    pub lease: Duration,
    /// The longest one attempt may take, connection included.
    pub send_timeout: Duration,
}

/// Default age after which an undelivered passcode mail is given up: 15 minutes. A passcode
/// is valid for at most 10 minutes, so a later mail would only carry a dead code.
pub const DEFAULT_GIVE_UP_SECS: u64 = 15 * 60;

impl DeliveryConfig {
    /// The defaults: retries after 30 s doubling to 1 h, give up after
    /// [`DEFAULT_GIVE_UP_SECS`], poll every 10 s, a 30 s send timeout under a 120 s lease.
    pub fn new(smtp: SmtpSettings) -> DeliveryConfig {
        DeliveryConfig {
            smtp,
            retry_initial: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(DEFAULT_GIVE_UP_SECS),
            poll_interval: Duration::from_secs(10),
            lease: Duration::from_secs(120),
            send_timeout: Duration::from_secs(30),
        }
    }

    /// The delay before the next attempt once `failures` attempts have failed (1 or more).
    pub fn retry_delay(&self, failures: i64) -> Duration {
        let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 32)).unwrap_or(32);
        self.retry_initial
            .saturating_mul(2_u32.saturating_pow(doublings))
            .min(self.retry_max)
    }
}

/// A running delivery worker. Dropping the handle stops the worker too, once the mail due
/// at that moment is sent; [`DeliveryWorker::stop`] stops it after the mail in hand.
#[derive(Debug)]
pub struct DeliveryWorker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl DeliveryWorker {
    /// Starts the worker on the current Tokio runtime.
    pub fn spawn(
        store: Store,
        clock: Arc<dyn Clock>,
        config: DeliveryConfig,
    ) -> Result<DeliveryWorker, DeliveryConfigError> {
        let transport = config.smtp.transport(config.send_timeout)?;
        let (stop, stopped) = watch::channel(false);
        tracing::info!(
            relay = config.smtp.relay(),
            "passcode mail goes to the SMTP relay"
        );
        let worker = Worker {
            store,
            clock,
            transport,
            config,
        };
        let task = tokio::spawn(worker.run(stopped));
        Ok(DeliveryWorker { stop, task })
    }

    /// Stops the worker once the mail in hand (if any) is sent and recorded, and waits.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

struct Worker {
    store: Store,
    clock: Arc<dyn Clock>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    config: DeliveryConfig,
}

/// What became of one attempt.
enum Outcome {
    Sent,
    /// Worth trying again later.
    Transient(String),
    /// Trying again would fail the same way.
    Permanent(String),
}

impl Worker {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            self.drain(&stop).await;
            tokio::select! {
                () = self.store.outbox_queued() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    /// Sends every due mail this instance can claim.
    async fn drain(&self, stop: &watch::Receiver<bool>) {
        while !*stop.borrow() {
            let now = self.clock.now();
            let lease_until = now.saturating_add(secs(self.config.lease));
            match self.store.claim_outbox(now, lease_until).await {
                Ok(Some(mail)) => self.deliver(mail).await,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the passcode outbox; will retry");
                    return;
                }
            }
        }
    }

    async fn deliver(&self, claimed: ClaimedMail) {
        let id = claimed.mail.id;
        let give_up_at = claimed
            .mail
            .created
            .saturating_add(secs(self.config.give_up_after));
        let now = self.clock.now();
        if now >= give_up_at {
            let reason = "too old to send (queued before an SMTP relay was reachable)";
            self.record(id, self.store.give_up_outbox(id, now, reason).await);
            tracing::warn!(mail = id, reason, "gave up a passcode mail");
            return;
        }
        let outcome = match smtp::message(self.config.smtp.from(), &claimed.mail, now) {
            Err(e) => Outcome::Permanent(e),
            Ok(message) => {
                match tokio::time::timeout(self.config.send_timeout, self.transport.send(message))
                    .await
                {
                    Ok(Ok(_)) => Outcome::Sent,
                    Ok(Err(e)) if e.is_permanent() => Outcome::Permanent(e.to_string()),
                    Ok(Err(e)) => Outcome::Transient(e.to_string()),
                    Err(_) => Outcome::Transient(format!(
                        "no answer from the relay within {} s",
                        self.config.send_timeout.as_secs()
                    )),
                }
            }
        };
        let now = self.clock.now();
        let attempts = claimed.attempts + 1;
        match outcome {
            Outcome::Sent => {
                self.record(id, self.store.mark_outbox_delivered(id, now).await);
                tracing::info!(mail = id, attempts, "passcode mail delivered");
            }
            Outcome::Transient(error) => {
                let retry_at = now.saturating_add(secs(self.config.retry_delay(attempts)));
                if retry_at >= give_up_at {
                    let done = self
                        .store
                        .record_outbox_failure(id, now, &error, None)
                        .await;
                    self.record(id, done);
                    tracing::warn!(mail = id, attempts, %error, "gave up a passcode mail");
                } else {
                    let done = self
                        .store
                        .record_outbox_failure(id, now, &error, Some(retry_at))
                        .await;
                    self.record(id, done);
                    tracing::warn!(
                        mail = id,
                        attempts,
                        retry_in_secs = retry_at - now,
                        %error,
                        "passcode mail not delivered; will retry"
                    );
                }
            }
            Outcome::Permanent(error) => {
                let done = self
                    .store
                    .record_outbox_failure(id, now, &error, None)
                    .await;
                self.record(id, done);
                tracing::warn!(mail = id, attempts, %error, "passcode mail refused; gave up");
            }
        }
    }

    /// Logs a failure to record an outcome; the lease then lapses and the mail is taken up
    /// again (a mail may then be sent twice, which beats losing it).
    fn record(&self, id: i64, result: Result<bool, crate::store::StoreError>) {
        match result {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(mail = id, "passcode mail was settled by another instance")
            }
            Err(e) => {
                tracing::warn!(mail = id, error = %e, "cannot record the delivery outcome")
            }
        }
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c =
            DeliveryConfig::new(SmtpSettings::new("smtp://127.0.0.1:25", DEFAULT_FROM).unwrap());
        let delays: Vec<u64> = (1..=9).map(|n| c.retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(c.retry_delay(0).as_secs(), 30);
        assert_eq!(c.retry_delay(i64::MAX).as_secs(), 3600);
    }
}
