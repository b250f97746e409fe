//! The passcode outbox in the store, on each backend (see `support/db.rs`): queueing with the
//! challenge in one transaction, decoys, claiming (exclusive, also across instances racing),
//! delivered / retry / give-up transitions, and pruning.

use std::collections::HashSet;
use std::time::Duration;

use sealpost_keyservice::store::{
    ChallengeRow, DeliveryState, OutboxEntry, OutboxRow, Store, StoreError,
};

#[macro_use]
#[path = "support/db.rs"]
mod db;

use db::Db;

const T0: i64 = 1_800_000_000;

backends!(
    queued_mail_is_claimed_oldest_first_and_delivered,
    a_claim_excludes_others_until_its_lease_ends,
    racing_instances_claim_each_mail_once,
    failed_attempts_are_retried_then_given_up,
    decoys_are_written_like_mail_but_never_sent_or_listed,
    challenge_and_mail_are_one_transaction,
    purge_removes_settled_decoy_and_old_mail,
    queueing_wakes_a_waiting_worker,
);

fn mail(i: i64, created: i64) -> OutboxRow {
    OutboxRow {
        id: 0,
        created,
        to_addr: format!("r{i}@example.net"),
        subject: format!("Your Sealpost passcode (message M{i})"),
        body: format!("Your passcode is:\n\n    1234567{i}\n\nMessage reference: M{i}\n"),
    }
}

fn challenge(id: &str, sent: bool) -> ChallengeRow {
    ChallengeRow {
        id: id.into(),
        tenant_id: "example.com".into(),
        email: "r1@example.net".into(),
        message_id: "00".repeat(16),
        code_hash: vec![7; 32],
        sent,
        created: T0,
        expires: T0 + 600,
        attempts: 0,
        used: false,
    }
}

async fn entry(store: &Store, id: i64) -> OutboxEntry {
    store
        .outbox_entries(1000)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.mail.id == id)
        .unwrap_or_else(|| panic!("mail {id} is listed"))
}

async fn queued_mail_is_claimed_oldest_first_and_delivered(db: Db) {
    let store = db.open().await;
    assert!(store.claim_outbox(T0, T0 + 60).await.unwrap().is_none());
    let a = store.push_outbox(&mail(1, T0)).await.unwrap();
    let b = store.push_outbox(&mail(2, T0 + 1)).await.unwrap();
    // Not due before it was queued.
    assert!(store.claim_outbox(T0 - 1, T0 + 60).await.unwrap().is_none());

    let first = store.claim_outbox(T0 + 1, T0 + 61).await.unwrap().unwrap();
    assert_eq!((first.mail.id, first.attempts), (a, 0));
    assert_eq!(
        first.mail,
        OutboxRow {
            id: a,
            ..mail(1, T0)
        }
    );
    let second = store.claim_outbox(T0 + 1, T0 + 61).await.unwrap().unwrap();
    assert_eq!(second.mail.id, b);
    assert!(store.claim_outbox(T0 + 1, T0 + 61).await.unwrap().is_none());
    assert_eq!(entry(&store, a).await.state(), DeliveryState::Queued);

    assert!(store.mark_outbox_delivered(a, T0 + 2).await.unwrap());
    assert!(
        !store.mark_outbox_delivered(a, T0 + 3).await.unwrap(),
        "settled once"
    );
    let e = entry(&store, a).await;
    assert_eq!(e.state(), DeliveryState::Delivered);
    assert_eq!((e.delivered_at, e.attempts), (Some(T0 + 2), 1));
    assert_eq!(e.mail.body, "", "the code leaves the database on delivery");
    assert_eq!(e.mail.subject, mail(1, T0).subject);
    // Delivered mail is never claimed again, even after the lease.
    assert!(
        store
            .claim_outbox(T0 + 1000, T0 + 1060)
            .await
            .unwrap()
            .map(|c| c.mail.id)
            == Some(b)
    );
    let listed: Vec<i64> = store
        .outbox(10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(listed, vec![b, a], "newest first, every state");
}

async fn a_claim_excludes_others_until_its_lease_ends(db: Db) {
    let store = db.open().await;
    let other = db.open().await;
    let id = store.push_outbox(&mail(1, T0)).await.unwrap();
    assert_eq!(
        store
            .claim_outbox(T0, T0 + 60)
            .await
            .unwrap()
            .unwrap()
            .mail
            .id,
        id
    );
    assert!(
        other
            .claim_outbox(T0 + 30, T0 + 90)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        other
            .claim_outbox(T0 + 59, T0 + 119)
            .await
            .unwrap()
            .is_none()
    );
    // The first claimant died: once the lease ends, another instance takes the mail up.
    let again = other
        .claim_outbox(T0 + 60, T0 + 120)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.mail.id, again.attempts), (id, 0));
    assert!(
        store
            .claim_outbox(T0 + 61, T0 + 121)
            .await
            .unwrap()
            .is_none()
    );
}

async fn racing_instances_claim_each_mail_once(db: Db) {
    let seed = db.open().await;
    let mut queued = HashSet::new();
    for i in 0..40 {
        queued.insert(seed.push_outbox(&mail(i, T0)).await.unwrap());
    }
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let store = db.open().await;
        for _ in 0..3 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(c) = store.claim_outbox(T0, T0 + 60).await.unwrap() {
                    mine.push(c.mail.id);
                }
                mine
            }));
        }
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    let distinct: HashSet<i64> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), distinct.len(), "a mail was claimed twice");
    assert_eq!(distinct, queued, "every mail was claimed");
}

async fn failed_attempts_are_retried_then_given_up(db: Db) {
    let store = db.open().await;
    let id = store.push_outbox(&mail(1, T0)).await.unwrap();
    store.claim_outbox(T0, T0 + 60).await.unwrap().unwrap();
    assert!(
        store
            .record_outbox_failure(id, T0 + 1, "connection refused", Some(T0 + 31))
            .await
            .unwrap()
    );
    let e = entry(&store, id).await;
    assert_eq!(e.state(), DeliveryState::Retrying);
    assert_eq!(
        (e.attempts, e.next_attempt_at, e.last_error.as_deref()),
        (1, T0 + 31, Some("connection refused"))
    );
    assert!(!e.mail.body.is_empty(), "kept for the next attempt");
    // The claim was released, but the mail is not due yet.
    assert!(
        store
            .claim_outbox(T0 + 30, T0 + 90)
            .await
            .unwrap()
            .is_none()
    );
    let c = store.claim_outbox(T0 + 31, T0 + 91).await.unwrap().unwrap();
    assert_eq!((c.mail.id, c.attempts), (id, 1));

    // A failure without a retry time gives the mail up.
    let long = "x".repeat(2000);
    assert!(
        store
            .record_outbox_failure(id, T0 + 32, &long, None)
            .await
            .unwrap()
    );
    let e = entry(&store, id).await;
    assert_eq!(e.state(), DeliveryState::Failed);
    assert_eq!((e.attempts, e.failed_at), (2, Some(T0 + 32)));
    assert_eq!(e.mail.body, "");
    assert!(e.last_error.unwrap().len() <= 500, "errors are cut short");
    assert!(
        store
            .claim_outbox(T0 + 10_000, T0 + 10_060)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.mark_outbox_delivered(id, T0 + 33).await.unwrap());
    assert!(
        !store
            .record_outbox_failure(id, T0 + 33, "late", Some(T0 + 99))
            .await
            .unwrap()
    );

    // Giving up without an attempt (too old) leaves the count alone.
    let old = store.push_outbox(&mail(2, T0)).await.unwrap();
    assert!(
        store
            .give_up_outbox(old, T0 + 90_000, "too old")
            .await
            .unwrap()
    );
    let e = entry(&store, old).await;
    assert_eq!(
        (e.state(), e.attempts, e.last_error.as_deref()),
        (DeliveryState::Failed, 0, Some("too old"))
    );
    assert!(
        !store
            .give_up_outbox(old, T0 + 90_001, "again")
            .await
            .unwrap()
    );
}

async fn decoys_are_written_like_mail_but_never_sent_or_listed(db: Db) {
    let store = db.open().await;
    let decoy = store
        .insert_challenge_with_mail(&challenge("c-decoy", false), &mail(1, T0), true)
        .await
        .unwrap();
    let real = store
        .insert_challenge_with_mail(&challenge("c-real", true), &mail(2, T0), false)
        .await
        .unwrap();
    assert!(decoy > 0 && real > decoy);
    assert!(!store.challenge("c-decoy").await.unwrap().unwrap().sent);
    assert!(store.challenge("c-real").await.unwrap().unwrap().sent);
    let listed: Vec<i64> = store
        .outbox(10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(listed, vec![real]);
    let entries = store.outbox_entries(10).await.unwrap();
    assert_eq!(entries.len(), 1);
    let c = store.claim_outbox(T0 + 5, T0 + 65).await.unwrap().unwrap();
    assert_eq!(c.mail.id, real);
    assert!(store.claim_outbox(T0 + 5, T0 + 65).await.unwrap().is_none());
    assert!(!store.mark_outbox_delivered(decoy, T0 + 6).await.unwrap());
    assert!(!store.give_up_outbox(decoy, T0 + 6, "no").await.unwrap());
}

async fn challenge_and_mail_are_one_transaction(db: Db) {
    let store = db.open().await;
    store
        .insert_challenge_with_mail(&challenge("c1", true), &mail(1, T0), false)
        .await
        .unwrap();
    // The challenge id is taken: neither row is written.
    let again = store
        .insert_challenge_with_mail(&challenge("c1", true), &mail(2, T0), false)
        .await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    assert_eq!(store.outbox(10).await.unwrap().len(), 1);
    assert!(store.claim_outbox(T0, T0 + 60).await.unwrap().is_some());
    assert!(store.claim_outbox(T0, T0 + 60).await.unwrap().is_none());
}

async fn purge_removes_settled_decoy_and_old_mail(db: Db) {
    let store = db.open().await;
    let week = 7 * 24 * 3600;
    let now = T0 + week;
    let delivered = store.push_outbox(&mail(1, now - 60)).await.unwrap();
    let failed = store.push_outbox(&mail(2, now - 60)).await.unwrap();
    let old = store.push_outbox(&mail(3, now - week - 1)).await.unwrap();
    let edge = store.push_outbox(&mail(4, now - week)).await.unwrap();
    let pending = store.push_outbox(&mail(5, now - 60)).await.unwrap();
    let retrying = store.push_outbox(&mail(6, now - 60)).await.unwrap();
    store
        .insert_challenge_with_mail(&challenge("c-decoy", false), &mail(7, now), true)
        .await
        .unwrap();
    assert!(
        store
            .mark_outbox_delivered(delivered, now - 50)
            .await
            .unwrap()
    );
    assert!(
        store
            .give_up_outbox(failed, now - 50, "refused")
            .await
            .unwrap()
    );
    assert!(
        store
            .record_outbox_failure(retrying, now - 50, "busy", Some(now + 10))
            .await
            .unwrap()
    );

    assert_eq!(store.purge_outbox(now, week).await.unwrap(), 4);
    let mut left: Vec<i64> = store
        .outbox(10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    left.sort();
    assert_eq!(left, vec![edge, pending, retrying]);
    assert!(!left.contains(&old));
    assert_eq!(store.purge_outbox(now, week).await.unwrap(), 0);
    assert_eq!(
        store.purge_outbox(now + 1, week).await.unwrap(),
        1,
        "the edge"
    );
}

async fn queueing_wakes_a_waiting_worker(db: Db) {
    let store = db.open().await;
    let clone = store.clone();
    let waiter = tokio::spawn(async move { clone.outbox_queued().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.push_outbox(&mail(1, T0)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter woke")
        .unwrap();
    // A signal raised while nobody waits is kept for the next wait, decoys included.
    store
        .insert_challenge_with_mail(&challenge("c-decoy", false), &mail(2, T0), true)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), store.outbox_queued())
        .await
        .expect("the signal was kept");
}
