//! `relay_first = true`: the 250 comes after the next hop accepted every copy, nothing is
//! spooled for such a message; what the hop refuses or cannot take is spooled under the id
//! the client was given and handled by the delivery workers; after a transient failure the hop
//! rests and mail goes straight to the spool.

use super::*;

const RELAY_FIRST: &str = "relay_first = true";

/// Sends like [`Gateway::send`] and returns the queue id of the 250 (`… queued as ID`).
async fn send_for_id(g: &Gateway, to: &[&str], raw: &[u8]) -> String {
    let t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(g.smtp)
        .timeout(Some(Duration::from_secs(30)))
        .build();
    let env = Envelope::new(
        Some("alice@acme.example".parse::<Address>().unwrap()),
        to.iter().map(|t| t.parse().unwrap()).collect(),
    )
    .unwrap();
    let raw = raw.strip_suffix(b"\r\n").unwrap_or(raw);
    let reply = t.send_raw(&env, raw).await.expect("accepted");
    let text: String = reply.message().collect::<Vec<_>>().join(" ");
    text.rsplit(' ').next().expect("an id").to_string()
}

fn spooled_files(spool: &Path) -> usize {
    std::fs::read_dir(spool.join("queue")).unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_250_comes_after_the_next_hop_has_every_copy() {
    let Some(Running { k, sink, g }) = running(RELAY_FIRST).await else {
        return;
    };
    let raw = mail("first", "");
    let id = send_for_id(&g, &["bob@other.example", "carol@acme.example"], &raw).await;
    assert_eq!(id.len(), 16, "a queue id in the 250: {id}");
    // No waiting: both copies were at the sink before the gateway answered.
    let got = sink.received();
    assert_eq!(got.len(), 2, "both copies relayed before the 250");
    let original = got
        .iter()
        .find(|r| rcpts(&r.meta) == ["carol@acme.example"]);
    assert_eq!(original.expect("carol's copy").data, raw);
    let wrapper = got.iter().find(|r| rcpts(&r.meta) == ["bob@other.example"]);
    let bytes = extract_envelope(&wrapper.expect("bob's copy").data).unwrap();
    let opened = open_with_tenant_keys(
        &Sealed::parse(&bytes).unwrap(),
        &[k.signing.verifying_key()],
        std::slice::from_ref(&k.license),
    )
    .unwrap();
    assert_eq!(opened.plaintext.as_slice(), raw.as_slice());
    assert_eq!(
        spooled_files(&g.spool),
        0,
        "nothing was written to the spool"
    );
    assert!(g.queue().is_empty());
    assert_eq!(g.metric("messages_in_total").await, 1);
    assert_eq!(g.metric("encrypted_total").await, 1);
    assert_eq!(g.metric("delivered_total").await, 2);
    assert_eq!(g.metric("relay_first_spooled_total").await, 0);
    // The journal noted the message and its answer: nothing is left open.
    let journal = std::fs::read_to_string(g.spool.join("relaying")).unwrap();
    assert!(
        journal.contains(&format!("B {id} <first@acme.example>")),
        "{journal}"
    );
    eventually("the answer recorded", || {
        std::fs::read_to_string(g.spool.join("relaying"))
            .unwrap()
            .contains(&format!("E {id}"))
    })
    .await;
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_copies_are_spooled_under_the_id_the_client_got() {
    let Some(Running { sink, g, .. }) = running(RELAY_FIRST).await else {
        return;
    };
    let clock = g.clock.clone();
    // The sink refuses "perm…" with 550: carol's copy is relayed, perm's is spooled and the
    // delivery worker bounces it (a DSN to alice).
    let id = send_for_id(
        &g,
        &["carol@acme.example", "perm@acme.example"],
        &mail("mixed", ""),
    )
    .await;
    assert_eq!(
        sink.received().len(),
        0,
        "one transaction for both inside recipients"
    );
    eventually("the DSN for perm@", || {
        sink.received().iter().any(|r| {
            r.meta["mail_from"] == "<>"
                && String::from_utf8_lossy(&r.data).contains("perm@acme.example")
        })
    })
    .await;
    eventually("an empty queue", || g.queue().is_empty()).await;
    assert!(
        sink.received()
            .iter()
            .any(|r| rcpts(&r.meta) == ["carol@acme.example"]),
        "carol's copy delivered by the worker, one recipient at a time"
    );
    assert_eq!(g.metric("relay_first_spooled_total").await, 1);
    assert_eq!(g.metric("bounced_total").await, 1);
    assert_eq!(id.len(), 16);

    // A transient refusal (451 for "temp…"): spooled under the client's id, deferred by the
    // worker; the hop then rests, so the next message goes straight to the spool too.
    let temp = send_for_id(&g, &["temp@acme.example"], &mail("temp", "")).await;
    eventually("temp@ spooled under the client's id", || {
        g.queue().iter().any(|e| e.id.as_str() == temp)
    })
    .await;
    let before = sink.received().len();
    send_for_id(&g, &["dave@acme.example"], &mail("resting", "")).await;
    assert_eq!(g.metric("relay_first_spooled_total").await, 3);
    eventually("dave's copy delivered by the worker", || {
        sink.received().len() == before + 1
    })
    .await;
    // Once the rest is over, mail is relayed first again: at the sink by the 250.
    clock.fetch_add(relay_first_rest() + 1, Ordering::SeqCst);
    let before = sink.received().len();
    send_for_id(&g, &["erin@acme.example"], &mail("rested", "")).await;
    assert_eq!(sink.received().len(), before + 1, "relayed before the 250");
    assert_eq!(g.metric("relay_first_spooled_total").await, 3);
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_hop_spools_and_the_mail_goes_out_when_it_returns() {
    if !sink_available() {
        return;
    }
    let k = keys();
    let port = free_port();
    let spool = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(START));
    let g = Gateway::start_with(&k, port, spool.path(), clock.clone(), RELAY_FIRST).await;
    let raw = mail("offline", "");
    let id = send_for_id(&g, &["carol@acme.example"], &raw).await;
    let entries = g.queue();
    assert_eq!(entries.len(), 1, "spooled, durably, before the 250");
    assert_eq!(entries[0].id.as_str(), id);
    let sink = start_sink_on(port, &[]);
    clock.fetch_add(3600, Ordering::SeqCst);
    eventually("delivered once the hop is back", || {
        sink.received().len() == 1
    })
    .await;
    assert_eq!(sink.received()[0].data, raw);
    eventually("an empty queue", || g.queue().is_empty()).await;
    g.stop().await;
}

fn relay_first_rest() -> u64 {
    sealpost_gateway::relay_first::HOP_REST_SECS
}
