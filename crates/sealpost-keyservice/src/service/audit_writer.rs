//! Group commit of audit records: one writer task per [`KeyService`](super::KeyService)
//! appends every audit record, many requests' records to one transaction.
//!
//! A request hands its record to the writer ([`AuditWriter::append`]) and waits. The writer
//! takes everything that is waiting, up to [`BATCH_CAP`] records in arrival order, writes it
//! with [`Store::append_audit_batch`] in one transaction (one disk sync on SQLite, one WAL
//! flush on PostgreSQL), and only after the commit answers each request with its record's id.
//! Records that arrive during a commit form the next batch, so under load one commit carries
//! many records and at low load a record is written at once, without waiting for company.
//!
//! Guarantees:
//! - **Ack only after commit.** `append` returns `Ok` only once the transaction holding the
//!   record has committed durably; callers release share B only after that (audit fails
//!   closed).
//! - **All or nothing per batch.** If the transaction fails, every request in the batch gets
//!   the error (the store's transaction stored none of them).
//! - **Fail closed when the writer is gone.** If the writer task has stopped (it panicked, or
//!   the runtime is shutting down), `append` answers [`StoreError::Unavailable`].
//! - **Order and fairness.** Records are taken first in, first out; no batch holds more than
//!   [`BATCH_CAP`], so the oldest waiting record is always in the next batch.
//!
//! What it deliberately does not do: retry a failed batch (the requests fail and their
//! clients may retry), or delay a record to wait for a fuller batch.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use crate::store::{NewAuditEvent, Store, StoreError};

/// The most records one transaction carries.
pub const BATCH_CAP: usize = 256;

/// How many records may wait for the writer before `append` itself waits for room.
const QUEUE_CAPACITY: usize = 4096;

/// Where batches are written: the [`Store`] in the service, a fake in the tests.
pub(crate) trait AuditSink: Send + Sync + 'static {
    /// Stores all of `events` in one transaction, or none; their ids in order.
    fn append_batch(
        &self,
        events: &[NewAuditEvent],
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;
}

impl AuditSink for Store {
    fn append_batch(
        &self,
        events: &[NewAuditEvent],
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send {
        self.append_audit_batch(events)
    }
}

/// One record waiting for its commit.
struct Pending {
    event: NewAuditEvent,
    done: oneshot::Sender<Result<i64, StoreError>>,
}

/// The handle requests use to append audit records through the writer task.
pub(crate) struct AuditWriter {
    queue: mpsc::Sender<Pending>,
}

impl AuditWriter {
    /// Starts the writer task on the current Tokio runtime. It stops when the last handle is
    /// dropped, after writing what was queued.
    pub(crate) fn spawn<S: AuditSink>(sink: S, batch_cap: usize) -> AuditWriter {
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(write_batches(sink, rx, batch_cap.max(1)));
        AuditWriter { queue }
    }

    /// Appends `event`; returns its id once it is committed durably.
    pub(crate) async fn append(&self, event: NewAuditEvent) -> Result<i64, StoreError> {
        let (done, committed) = oneshot::channel();
        self.queue
            .send(Pending { event, done })
            .await
            .map_err(|_| writer_gone())?;
        committed.await.unwrap_or_else(|_| Err(writer_gone()))
    }

    /// Records handed over and not yet taken by the writer.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

fn writer_gone() -> StoreError {
    tracing::error!("the audit writer has stopped; refusing to release shares");
    StoreError::Unavailable
}

/// The writer task: batch, commit, answer; until every handle is gone.
async fn write_batches<S: AuditSink>(sink: S, mut rx: mpsc::Receiver<Pending>, cap: usize) {
    let mut batch = Vec::with_capacity(cap);
    while rx.recv_many(&mut batch, cap).await > 0 {
        let (events, waiting): (Vec<NewAuditEvent>, Vec<_>) =
            batch.drain(..).map(|p| (p.event, p.done)).unzip();
        match sink.append_batch(&events).await {
            Ok(ids) if ids.len() == waiting.len() => {
                for (done, id) in waiting.into_iter().zip(ids) {
                    // A request that gave up waiting has dropped its receiver: nothing to do.
                    let _ = done.send(Ok(id));
                }
            }
            Ok(ids) => {
                let e = StoreError::Corrupt(format!(
                    "{} audit records were committed but {} ids came back",
                    waiting.len(),
                    ids.len()
                ));
                fail_all(waiting, &e);
            }
            Err(e) => fail_all(waiting, &e),
        }
    }
}

fn fail_all(waiting: Vec<oneshot::Sender<Result<i64, StoreError>>>, e: &StoreError) {
    for done in waiting {
        let _ = done.send(Err(copy_error(e)));
    }
}

/// The same error again, for each request of a failed batch.
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable => StoreError::Unavailable,
        StoreError::Conflict => StoreError::Conflict,
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
        StoreError::Other(m) => StoreError::Other(m.clone()),
    }
}

#[cfg(test)]
#[path = "audit_writer_tests.rs"]
mod tests;
