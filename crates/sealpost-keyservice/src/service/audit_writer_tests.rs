//! The group-commit writer against a fake sink whose commits the test opens one by one, and
//! once against a real SQLite store.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::*;

fn event(n: usize) -> NewAuditEvent {
    NewAuditEvent {
        time: 1_800_000_000,
        tenant_id: "example.com".into(),
        event: "share_released".into(),
        email: Some("bob@example.org".into()),
        message_id: Some("00112233445566778899aabbccddeeff".into()),
        client_ip: None,
        detail: n.to_string(),
    }
}

/// A sink that holds each batch until the test releases it, records what it committed, and
/// fails or misbehaves on request.
#[derive(Clone)]
struct FakeSink(Arc<Inner>);

struct Inner {
    /// One permit per batch allowed to finish.
    gate: Semaphore,
    /// Batches that reached the sink (the `detail` of each record).
    started: Mutex<Vec<Vec<usize>>>,
    /// Batches committed.
    committed: Mutex<Vec<Vec<usize>>>,
    /// Index (in `started`) of the batch to fail.
    fail_batch: Option<usize>,
    /// Return one id too few.
    short_ids: bool,
    /// Panic instead of writing.
    panic: bool,
    next_id: AtomicI64,
    /// Set while a batch is inside the sink.
    busy: AtomicBool,
    /// Most batches ever inside the sink at once.
    overlap: AtomicUsize,
}

impl FakeSink {
    fn new(open: bool) -> FakeSink {
        FakeSink(Arc::new(Inner {
            gate: Semaphore::new(if open { Semaphore::MAX_PERMITS } else { 0 }),
            started: Mutex::default(),
            committed: Mutex::default(),
            fail_batch: None,
            short_ids: false,
            panic: false,
            next_id: AtomicI64::new(1),
            busy: AtomicBool::new(false),
            overlap: AtomicUsize::new(0),
        }))
    }
    fn with(f: impl FnOnce(&mut Inner)) -> FakeSink {
        let mut sink = FakeSink::new(false);
        f(Arc::get_mut(&mut sink.0).unwrap());
        sink
    }
    fn release(&self, batches: usize) {
        self.0.gate.add_permits(batches);
    }
    fn started(&self) -> Vec<Vec<usize>> {
        self.0.started.lock().unwrap().clone()
    }
    fn committed(&self) -> Vec<Vec<usize>> {
        self.0.committed.lock().unwrap().clone()
    }
    /// Waits until `n` batches have reached the sink.
    async fn wait_started(&self, n: usize) {
        while self.0.started.lock().unwrap().len() < n {
            tokio::task::yield_now().await;
        }
    }
}

impl AuditSink for FakeSink {
    async fn append_batch(&self, events: &[NewAuditEvent]) -> Result<Vec<i64>, StoreError> {
        let s = &self.0;
        if s.busy.swap(true, Ordering::SeqCst) {
            s.overlap.fetch_add(1, Ordering::SeqCst);
        }
        let details: Vec<usize> = events.iter().map(|e| e.detail.parse().unwrap()).collect();
        let index = {
            let mut started = s.started.lock().unwrap();
            started.push(details.clone());
            started.len() - 1
        };
        s.gate.acquire().await.unwrap().forget();
        s.busy.store(false, Ordering::SeqCst);
        assert!(!s.panic, "the fake sink panics on purpose");
        if s.fail_batch == Some(index) {
            return Err(StoreError::Unavailable);
        }
        let mut ids: Vec<i64> = (0..events.len())
            .map(|_| s.next_id.fetch_add(1, Ordering::SeqCst))
            .collect();
        if s.short_ids {
            ids.pop();
        }
        s.committed.lock().unwrap().push(details);
        Ok(ids)
    }
}

type Waiter = JoinHandle<Result<i64, StoreError>>;

fn append(w: &Arc<AuditWriter>, n: usize) -> Waiter {
    let w = w.clone();
    tokio::spawn(async move { w.append(event(n)).await })
}

/// Hands records `from..=to` to the writer one after the other, so their queue order is
/// known, and waits until all are queued.
async fn queue_in_order(w: &Arc<AuditWriter>, from: usize, to: usize) -> Vec<Waiter> {
    let mut waiters = Vec::new();
    for n in from..=to {
        let before = w.queued();
        waiters.push(append(w, n));
        while w.queued() == before {
            tokio::task::yield_now().await;
        }
    }
    waiters
}

async fn results(waiters: Vec<Waiter>) -> Vec<Result<i64, StoreError>> {
    let mut out = Vec::new();
    for w in waiters {
        out.push(w.await.unwrap());
    }
    out
}

#[tokio::test]
async fn answers_only_after_the_commit() {
    let sink = FakeSink::new(false);
    let w = Arc::new(AuditWriter::spawn(sink.clone(), BATCH_CAP));
    let first = append(&w, 0);
    sink.wait_started(1).await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(
        !first.is_finished(),
        "answered while the transaction was still open"
    );
    assert!(sink.committed().is_empty());
    sink.release(1);
    assert_eq!(first.await.unwrap().unwrap(), 1);
    assert_eq!(sink.committed(), vec![vec![0]]);
}

#[tokio::test]
async fn records_waiting_during_a_commit_share_the_next_transaction() {
    let sink = FakeSink::new(false);
    let w = Arc::new(AuditWriter::spawn(sink.clone(), BATCH_CAP));
    let first = append(&w, 0);
    sink.wait_started(1).await;
    let rest = queue_in_order(&w, 1, 10).await;
    sink.release(2);
    assert_eq!(first.await.unwrap().unwrap(), 1);
    let ids: Vec<i64> = results(rest)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, (2..=11).collect::<Vec<i64>>());
    assert_eq!(
        sink.committed(),
        vec![vec![0], (1..=10).collect::<Vec<usize>>()],
        "ten records, one transaction"
    );
    assert_eq!(
        sink.0.overlap.load(Ordering::SeqCst),
        0,
        "one commit at a time"
    );
}

#[tokio::test]
async fn a_failed_transaction_fails_every_request_in_it_and_only_those() {
    let sink = FakeSink::with(|s| s.fail_batch = Some(1));
    let w = Arc::new(AuditWriter::spawn(sink.clone(), BATCH_CAP));
    let first = append(&w, 0);
    sink.wait_started(1).await;
    let failing = queue_in_order(&w, 1, 5).await;
    sink.release(2);
    assert!(first.await.unwrap().is_ok());
    for r in results(failing).await {
        assert!(matches!(r, Err(StoreError::Unavailable)), "{r:?}");
    }
    // The writer carries on with the next batch.
    let after = append(&w, 6);
    sink.release(1);
    assert!(after.await.unwrap().is_ok());
    assert_eq!(sink.committed(), vec![vec![0], vec![6]]);
}

#[tokio::test]
async fn batches_are_capped_and_first_in_first_out() {
    let sink = FakeSink::new(false);
    let w = Arc::new(AuditWriter::spawn(sink.clone(), 4));
    let first = append(&w, 0);
    sink.wait_started(1).await;
    let rest = queue_in_order(&w, 1, 10).await;
    sink.release(10);
    assert!(first.await.unwrap().is_ok());
    let ids: Vec<i64> = results(rest)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        ids,
        (2..=11).collect::<Vec<i64>>(),
        "ids follow arrival order"
    );
    assert_eq!(
        sink.started(),
        vec![vec![0], vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9, 10]]
    );
}

#[tokio::test]
async fn a_wrong_number_of_ids_fails_the_batch() {
    let sink = FakeSink::with(|s| s.short_ids = true);
    let w = Arc::new(AuditWriter::spawn(sink.clone(), BATCH_CAP));
    let first = append(&w, 0);
    sink.release(1);
    assert!(matches!(first.await.unwrap(), Err(StoreError::Corrupt(_))));
}

#[tokio::test]
async fn a_stopped_writer_refuses_every_record() {
    let sink = FakeSink::with(|s| s.panic = true);
    sink.release(1);
    let w = Arc::new(AuditWriter::spawn(sink.clone(), BATCH_CAP));
    assert!(matches!(
        w.append(event(0)).await,
        Err(StoreError::Unavailable)
    ));
    assert!(matches!(
        w.append(event(1)).await,
        Err(StoreError::Unavailable)
    ));
}

#[tokio::test]
async fn cancelled_requests_do_not_stop_the_writer() {
    let sink = FakeSink::new(false);
    let w = Arc::new(AuditWriter::spawn(sink.clone(), BATCH_CAP));
    let gone = append(&w, 0);
    sink.wait_started(1).await;
    gone.abort();
    sink.release(1);
    let next = append(&w, 1);
    sink.release(1);
    assert_eq!(next.await.unwrap().unwrap(), 2);
    assert_eq!(sink.committed(), vec![vec![0], vec![1]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_records_are_all_durable_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::sqlite_in_dir(dir.path(), 4).await.unwrap();
    let w = Arc::new(AuditWriter::spawn(store.clone(), BATCH_CAP));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200usize {
        let w = w.clone();
        tasks.spawn(async move { (n, w.append(event(n)).await) });
    }
    let mut answered = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (n, id) = r.unwrap();
        answered.push((id.unwrap(), n.to_string()));
    }
    answered.sort_unstable();
    let rows = store
        .audit_for_message("example.com", "00112233445566778899aabbccddeeff", 1000)
        .await
        .unwrap();
    let mut stored: Vec<(i64, String)> = rows.into_iter().map(|r| (r.id, r.detail)).collect();
    stored.sort_unstable();
    assert_eq!(stored.len(), 200);
    assert_eq!(
        stored, answered,
        "each request got the id of its own stored record"
    );
}
