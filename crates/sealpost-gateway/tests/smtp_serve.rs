//! `serve` over a real loopback TCP listener: the session limit and the graceful shutdown.

mod smtp_support;

use std::sync::Arc;
use std::time::Duration;

use sealpost_gateway::smtp::serve;
use smtp_support::{Client, Mode, Recorder, config};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(10);

async fn listen(
    max_sessions: usize,
    handler: Arc<Recorder>,
) -> (
    std::net::SocketAddr,
    watch::Sender<bool>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, shutdown) = watch::channel(false);
    let server = tokio::spawn(serve(
        listener,
        Arc::new(config()),
        handler,
        max_sessions,
        shutdown,
    ));
    (addr, stop, server)
}

async fn connect(addr: std::net::SocketAddr) -> Client<TcpStream> {
    Client::new(TcpStream::connect(addr).await.unwrap())
}

#[tokio::test]
async fn sessions_beyond_the_limit_get_421_and_a_freed_slot_is_reused() {
    let handler = Recorder::new(Mode::Accept);
    let (addr, stop, server) = listen(1, handler.clone()).await;
    let mut first = connect(addr).await;
    first.expect("220 gw.example").await;
    let mut second = connect(addr).await;
    assert_eq!(
        second.reply().await,
        "421 4.3.2 Too many connections, try again later"
    );
    assert_eq!(second.reply().await, "", "closed after the 421");

    first.cmd("EHLO first.example", "250").await;
    let reply = first
        .transaction("a@b.example", &["c@d.example"], "x\r\n")
        .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    first.cmd("QUIT", "221").await;
    assert_eq!(first.reply().await, "");

    // The slot is freed when the session task ends, shortly after the 221.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut third = connect(addr).await;
        let reply = third.reply().await;
        if reply.starts_with("220 ") {
            third.cmd("QUIT", "221").await;
            break;
        }
        assert!(reply.starts_with("421 4.3.2"), "{reply}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(handler.delivered().len(), 1);
    assert!(handler.delivered()[0].0.peer.ip().is_loopback());
}

#[tokio::test]
async fn shutdown_closes_idle_sessions_and_lets_a_transaction_finish() {
    let handler = Recorder::new(Mode::Accept);
    let (addr, stop, server) = listen(10, handler.clone()).await;
    let mut idle = connect(addr).await;
    idle.expect("220").await;
    idle.cmd("EHLO idle.example", "250").await;
    let mut busy = connect(addr).await;
    busy.expect("220").await;
    busy.cmd("EHLO busy.example", "250").await;
    busy.cmd("MAIL FROM:<a@b.example>", "250").await;

    stop.send(true).unwrap();
    assert_eq!(
        idle.reply().await,
        "421 4.3.2 Service shutting down, try again later"
    );
    assert_eq!(idle.reply().await, "");

    // The busy session finishes its transaction, then is told to go.
    busy.cmd("RCPT TO:<c@d.example>", "250").await;
    busy.cmd("DATA", "354").await;
    busy.send("Subject: last\r\n\r\nx\r\n.\r\n").await;
    busy.expect("250 2.0.0 Ok: queued as Q1").await;
    busy.expect("421 4.3.2").await;

    tokio::time::timeout(WAIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
    assert_eq!(handler.delivered().len(), 1);
    let acked: Vec<String> = handler.acked().into_iter().map(|(id, _)| id).collect();
    assert_eq!(acked, ["Q1"]);
}
