//! SMTP session tests: `run_session` driven over an in-memory stream, one test per command
//! path and reply code (greeting, EHLO/HELO, MAIL/RCPT/DATA, parameters, addresses,
//! pipelining, dot-stuffing, size limits, error limits, timeouts, handler verdicts).

mod smtp_support;

use std::time::Duration;

use sealpost_gateway::smtp::SessionError;
use smtp_support::{Mode, Recorder, config, peer, start};

#[tokio::test]
async fn ehlo_lists_the_extensions() {
    let (mut c, _s) = start(config(), Recorder::new(Mode::Accept)).await;
    let reply = c.cmd("EHLO client.example", "250-gw.example").await;
    let lines: Vec<&str> = reply.lines().collect();
    assert_eq!(
        lines,
        [
            "250-gw.example",
            "250-PIPELINING",
            "250-SIZE 10000",
            "250-8BITMIME",
            "250-SMTPUTF8",
            "250 ENHANCEDSTATUSCODES"
        ]
    );
    assert!(!reply.contains("STARTTLS"), "no TLS configured: {reply}");
    c.cmd("STARTTLS", "502 5.5.1").await;
}

#[tokio::test]
async fn a_whole_transaction_reaches_the_handler_and_is_acknowledged_after_the_flush() {
    let handler = Recorder::new(Mode::Accept);
    let (mut c, session) = start(config(), handler.clone()).await;
    c.cmd("HELO client.example", "250 gw.example").await;
    let body = "Subject: hi\r\n\r\nHello.\r\n";
    let reply = c
        .transaction(
            "alice@org.example",
            &["bob@far.example", "carol@far.example"],
            body,
        )
        .await;
    assert_eq!(reply, "250 2.0.0 Ok: queued as Q1");
    c.cmd("QUIT", "221 2.0.0").await;
    assert_eq!(c.reply().await, "", "the server closes after QUIT");
    session.await.unwrap().unwrap();

    let delivered = handler.delivered();
    assert_eq!(delivered.len(), 1);
    let (tx, data) = &delivered[0];
    assert_eq!(tx.peer, peer());
    assert_eq!(tx.helo, "client.example");
    assert!(!tx.tls && !tx.smtputf8 && !tx.eight_bit);
    assert_eq!(tx.mail_from, "alice@org.example");
    assert_eq!(tx.recipients, ["bob@far.example", "carol@far.example"]);
    assert_eq!(data, body.as_bytes());
    assert_eq!(handler.acked(), [("Q1".to_owned(), true)]);
}

#[tokio::test]
async fn dot_stuffing_is_undone_and_only_crlf_dot_crlf_ends_the_data() {
    let handler = Recorder::new(Mode::Accept);
    let (mut c, _s) = start(config(), handler.clone()).await;
    c.cmd("EHLO c", "250").await;
    // First line stuffed, a lone dot line, a line of two dots, dots inside lines.
    let sent = "..first\r\nx\r\n..\r\n...\r\na.b\r\n.x\r\n";
    let reply = c.transaction("a@b.example", &["c@d.example"], sent).await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    // An empty message.
    let reply = c.transaction("a@b.example", &["c@d.example"], "").await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    // The data split at awkward places: "\r" | "\n." | ".\r" | "\n".
    c.cmd("MAIL FROM:<a@b.example>", "250").await;
    c.cmd("RCPT TO:<c@d.example>", "250").await;
    c.cmd("DATA", "354").await;
    for part in ["line\r", "\n.", ".dot\r\n.", "\r", "\n"] {
        c.send(part).await;
        tokio::task::yield_now().await;
    }
    c.expect("250 2.0.0").await;
    let delivered = handler.delivered();
    assert_eq!(delivered[0].1, b".first\r\nx\r\n.\r\n..\r\na.b\r\nx\r\n");
    assert_eq!(delivered[1].1, b"");
    assert_eq!(delivered[2].1, b"line\r\n.dot\r\n");
}

#[tokio::test]
async fn a_pipelined_group_gets_its_replies_in_one_flush() {
    let handler = Recorder::new(Mode::Accept);
    let (mut c, _s) = start(config(), handler.clone()).await;
    c.cmd("EHLO c", "250").await;
    c.send(
        "MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nRCPT TO:<bad@@d>\r\n\
         RCPT TO:<e@f.example>\r\nDATA\r\n",
    )
    .await;
    c.expect("250 2.1.0").await;
    c.expect("250 2.1.5").await;
    c.expect("553 5.1.3").await;
    c.expect("250 2.1.5").await;
    c.expect("354").await;
    // Message, end, and the next commands in one write.
    c.send("Subject: x\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
        .await;
    c.expect("250 2.0.0 Ok: queued as Q1").await;
    c.expect("250 2.0.0 Ok").await;
    c.expect("221").await;
    let chunks = handler.flushed.chunks();
    assert!(
        chunks.iter().any(|chunk| chunk
            == "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n553 5.1.3 Bad address syntax\r\n\
                250 2.1.5 Recipient ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"),
        "the group's replies were not flushed together: {chunks:?}"
    );
    let (tx, _) = &handler.delivered()[0];
    assert_eq!(tx.recipients, ["c@d.example", "e@f.example"]);
}

#[tokio::test]
async fn commands_out_of_sequence_get_503_and_no_recipients_554() {
    let (mut c, _s) = start(config(), Recorder::new(Mode::Accept)).await;
    c.cmd("MAIL FROM:<a@b.example>", "503 5.5.1").await;
    c.cmd("EHLO c", "250").await;
    c.cmd("RCPT TO:<a@b.example>", "503 5.5.1").await;
    c.cmd("DATA", "503 5.5.1").await;
    c.cmd("MAIL FROM:<a@b.example>", "250 2.1.0").await;
    c.cmd("MAIL FROM:<a@b.example>", "503 5.5.1 Nested").await;
    c.cmd("RCPT TO:<not an address>", "5").await;
    c.cmd("DATA", "554 5.5.1 No valid recipients").await;
    c.cmd("RSET", "250 2.0.0").await;
    c.cmd("MAIL FROM:<a@b.example>", "250 2.1.0").await;
    // EHLO resets the transaction too.
    c.cmd("EHLO c", "250").await;
    c.cmd("RCPT TO:<a@b.example>", "503 5.5.1").await;
}

#[tokio::test]
async fn simple_commands() {
    let (mut c, session) = start(config(), Recorder::new(Mode::Accept)).await;
    c.cmd("NOOP", "250 2.0.0").await;
    c.cmd("NOOP anything", "250 2.0.0").await;
    c.cmd("VRFY bob", "252 2.0.0").await;
    c.cmd("HELP", "214 2.0.0").await;
    c.cmd("EXPN list", "502 5.5.1").await;
    c.cmd("AUTH PLAIN AGJvYgBzZWNyZXQ=", "502 5.5.1").await;
    c.cmd("BDAT 10 LAST", "502 5.5.1").await;
    c.cmd("FOO", "500 5.5.2").await;
    c.cmd("MAILX FROM:<a@b.example>", "500 5.5.2").await;
    c.cmd("RSET", "250 2.0.0").await;
    c.cmd("QUIT", "221 2.0.0 Bye").await;
    assert_eq!(c.reply().await, "");
    session.await.unwrap().unwrap();
}

#[tokio::test]
async fn verbs_are_case_insensitive_and_bare_lf_ends_a_command() {
    let handler = Recorder::new(Mode::Accept);
    let (mut c, _s) = start(config(), handler.clone()).await;
    c.cmd("ehlo c", "250").await;
    c.cmd("mail from:<a@b.example>", "250 2.1.0").await;
    c.cmd("rCpT To:<c@d.example>", "250 2.1.5").await;
    c.send("NoOp\n").await;
    c.expect("250 2.0.0").await;
    c.cmd("data", "354").await;
    c.send("x\r\n.\r\n").await;
    c.expect("250 2.0.0").await;
    assert_eq!(handler.delivered().len(), 1);
}

/// Runs `setup` (each expecting a 2xx or 3xx reply), then `line`, and returns its reply. One
/// session per case, so that the error limit does not interfere.
async fn reply_after(setup: &[&str], line: &[u8]) -> String {
    let (mut c, _s) = start(config(), Recorder::new(Mode::Accept)).await;
    for cmd in setup {
        let reply = c.cmd(cmd, "").await;
        assert!(
            reply.starts_with('2') || reply.starts_with('3'),
            "{cmd}: {reply}"
        );
    }
    c.send([line, b"\r\n"].concat()).await;
    c.reply().await
}

#[tokio::test]
async fn syntax_errors_get_501() {
    let in_mail: &[&str] = &["EHLO c", "MAIL FROM:<a@b.example>"];
    for (setup, line) in [
        (&[][..], &b"EHLO"[..]),
        (&[], b"HELO"),
        (&["EHLO c"], b"MAIL FROM:a@b.example"),
        (&["EHLO c"], b"MAIL a@b.example"),
        (&["EHLO c"], b"MAIL FROM:<a@b.example> SIZE=abc"),
        (&["EHLO c"], b"MAIL FROM:<a@b.example> BODY=9BIT"),
        (in_mail, b"RCPT c@d.example"),
        (in_mail, b"RSET now"),
        (in_mail, b"DATA now"),
        (in_mail, b"QUIT now"),
        (&[], b"NOOP \xff\xfe"),
    ] {
        let reply = reply_after(setup, line).await;
        assert!(
            reply.starts_with("501 5.5.4"),
            "{:?}: {reply}",
            String::from_utf8_lossy(line)
        );
    }
}

#[tokio::test]
async fn unknown_parameters_get_555() {
    let (mut c, _s) = start(config(), Recorder::new(Mode::Accept)).await;
    c.cmd("EHLO c", "250").await;
    c.cmd("MAIL FROM:<a@b.example> FOO=bar", "555 5.5.4").await;
    c.cmd("MAIL FROM:<a@b.example> BODY=BINARYMIME", "555 5.5.4")
        .await;
    c.cmd("MAIL FROM:<a@b.example> RET=HDRS", "555 5.5.4").await;
    c.cmd("MAIL FROM:<a@b.example> AUTH=<>", "555 5.5.4").await;
    c.cmd("MAIL FROM:<a@b.example> BODY=7BIT SIZE=10", "250 2.1.0")
        .await;
    c.cmd("RCPT TO:<c@d.example> NOTIFY=NEVER", "555 5.5.4")
        .await;
    c.cmd(
        "RCPT TO:<c@d.example> ORCPT=rfc822;c@d.example",
        "555 5.5.4",
    )
    .await;
    c.cmd("RCPT TO:<c@d.example> XYZ", "555 5.5.4").await;
}

#[tokio::test]
async fn bad_addresses_get_553_5_1_3() {
    for bad in [
        "<a@b@c.example>",
        "<a..b@c.example>",
        "<.a@c.example>",
        "<@c.example>",
        "<a@>",
        "<a@-c.example>",
        "<a@c-.example>",
        "<a@c..example>",
        "<x@y_z.example>",
        "<\"a b\"@c.example>",
        "<a@[192.0.2.1]>",
        "<a@[IPv6:2001:db8::1]>",
        "<postmaster>",
        "<local-only>",
    ] {
        let reply = reply_after(&["EHLO c"], format!("MAIL FROM:{bad}").as_bytes()).await;
        assert!(reply.starts_with("553 5.1.3"), "MAIL FROM:{bad}: {reply}");
    }
    let in_mail: &[&str] = &["EHLO c", "MAIL FROM:<a@b.example>"];
    for bad in [
        "<>",
        "<a@b@c.example>",
        "<a..b@c.example>",
        "<x@y_z.example>",
    ] {
        let reply = reply_after(in_mail, format!("RCPT TO:{bad}").as_bytes()).await;
        assert!(reply.starts_with("553 5.1.3"), "RCPT TO:{bad}: {reply}");
    }
}

#[tokio::test]
async fn null_sender_postmaster_source_routes_and_quoted_dot_atoms_are_accepted() {
    let handler = Recorder::new(Mode::Accept);
    let (mut c, _s) = start(config(), handler.clone()).await;
    c.cmd("EHLO c", "250").await;
    c.cmd("MAIL FROM:<> SMTPUTF8", "250 2.1.0").await;
    for good in [
        "<Postmaster>",
        "<@relay1.example,@relay2.example:user@c.example>",
        "<\"john.doe\"@c.example>",
        "<Ünï@cödé.example>",
    ] {
        c.cmd(&format!("RCPT TO:{good}"), "250 2.1.5").await;
    }
    c.cmd("DATA", "354").await;
    c.send("x\r\n.\r\n").await;
    c.expect("250 2.0.0").await;
    let (tx, _) = &handler.delivered()[0];
    assert_eq!(tx.mail_from, "", "the null sender");
    assert_eq!(
        tx.recipients,
        [
            "postmaster",
            "user@c.example",
            "john.doe@c.example",
            "Ünï@cödé.example"
        ]
    );
}

#[tokio::test]
async fn utf8_addresses_need_smtputf8_and_body_8bitmime_is_recorded() {
    let handler = Recorder::new(Mode::Accept);
    let (mut c, _s) = start(config(), handler.clone()).await;
    c.cmd("EHLO c", "250").await;
    c.cmd("MAIL FROM:<jösé@bücher.example>", "553 5.6.7").await;
    c.send(b"MAIL FROM:<\xff\xfe@b.example>\r\n").await;
    c.expect("553 5.6.7").await;
    c.cmd("MAIL FROM:<a@b.example> BODY=8BITMIME", "250 2.1.0")
        .await;
    c.cmd("RCPT TO:<ü@exämple.example>", "553 5.6.7").await;
    c.send(b"RCPT TO:<\xc3@b.example>\r\n").await;
    c.expect("553 5.6.7").await;
    c.cmd("RCPT TO:<c@d.example>", "250").await;
    c.cmd("DATA", "354").await;
    c.send("Subject: caf\u{e9}\r\n\r\n\u{e9}\r\n.\r\n").await;
    c.expect("250 2.0.0").await;
    c.cmd("MAIL FROM:<jösé@bücher.example> SMTPUTF8", "250 2.1.0")
        .await;
    c.cmd("RCPT TO:<ü@exämple.example>", "250 2.1.5").await;
    c.cmd("DATA", "354").await;
    c.send("x\r\n.\r\n").await;
    c.expect("250 2.0.0").await;
    let delivered = handler.delivered();
    assert!(delivered[0].0.eight_bit && !delivered[0].0.smtputf8);
    assert_eq!(
        delivered[0].1,
        "Subject: caf\u{e9}\r\n\r\n\u{e9}\r\n".as_bytes()
    );
    assert!(!delivered[1].0.eight_bit && delivered[1].0.smtputf8);
    assert_eq!(delivered[1].0.mail_from, "jösé@bücher.example");
    assert_eq!(delivered[1].0.recipients, ["ü@exämple.example"]);
}

#[tokio::test]
async fn recipients_beyond_the_limit_get_452() {
    let handler = Recorder::new(Mode::Accept);
    let mut cfg = config();
    cfg.max_recipients = 2;
    let (mut c, _s) = start(cfg, handler.clone()).await;
    c.cmd("EHLO c", "250").await;
    c.cmd("MAIL FROM:<a@b.example>", "250").await;
    c.cmd("RCPT TO:<r1@d.example>", "250").await;
    c.cmd("RCPT TO:<r2@d.example>", "250").await;
    c.cmd("RCPT TO:<r3@d.example>", "452 4.5.3").await;
    c.cmd("DATA", "354").await;
    c.send("x\r\n.\r\n").await;
    c.expect("250").await;
    assert_eq!(
        handler.delivered()[0].0.recipients,
        ["r1@d.example", "r2@d.example"]
    );
}

#[tokio::test]
async fn size_over_the_limit_gets_552_in_mail_from_and_after_the_data() {
    let handler = Recorder::new(Mode::Accept);
    let (mut c, session) = start(config(), handler.clone()).await;
    c.cmd("EHLO c", "250").await;
    c.cmd("MAIL FROM:<a@b.example> SIZE=10001", "552 5.3.4")
        .await;
    c.cmd(
        "MAIL FROM:<a@b.example> SIZE=99999999999999999999999",
        "552 5.3.4",
    )
    .await;
    c.cmd("MAIL FROM:<a@b.example> SIZE=10000", "250 2.1.0")
        .await;
    c.cmd("RCPT TO:<c@d.example>", "250").await;
    c.cmd("DATA", "354").await;
    // 100 lines of 100 bytes + CRLF: over 10 000 bytes, sent in pieces.
    let line = format!("{}\r\n", "y".repeat(100));
    for _ in 0..100 {
        c.send(&line).await;
    }
    c.send(".\r\n").await;
    c.expect("552 5.3.4").await;
    assert!(handler.delivered().is_empty());
    // The session goes on, with a fresh transaction; exactly the limit is fine.
    c.cmd("RCPT TO:<c@d.example>", "503 5.5.1").await;
    let exact = format!("{}\r\n", "z".repeat(9_998));
    let reply = c.transaction("a@b.example", &["c@d.example"], &exact).await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert_eq!(handler.delivered()[0].1.len(), 10_000);
    c.cmd("QUIT", "221").await;
    session.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_huge_message_is_read_to_its_end_without_being_kept() {
    let handler = Recorder::new(Mode::Accept);
    let (mut c, _s) = start(config(), handler.clone()).await;
    c.cmd("EHLO c", "250").await;
    c.cmd("MAIL FROM:<a@b.example>", "250").await;
    c.cmd("RCPT TO:<c@d.example>", "250").await;
    c.cmd("DATA", "354").await;
    // 4 MB, with a long line of 1 MB in it (long data lines are allowed).
    let chunk = format!("{}\r\n", "w".repeat(998)).repeat(1000);
    for _ in 0..3 {
        c.send(&chunk).await;
    }
    c.send("v".repeat(1_000_000)).await;
    c.send("\r\n.\r\n").await;
    c.expect("552 5.3.4").await;
    c.cmd("NOOP", "250").await;
    assert!(handler.delivered().is_empty());
}

#[tokio::test]
async fn long_command_lines_get_500_5_5_6() {
    let (mut c, _s) = start(config(), Recorder::new(Mode::Accept)).await;
    c.cmd(&format!("NOOP {}", "n".repeat(1100)), "500 5.5.6")
        .await;
    // A 200 kB line sent in pieces gets one reply, and the session goes on.
    c.send("NOOP ").await;
    for _ in 0..20 {
        c.send("m".repeat(10_000)).await;
        tokio::task::yield_now().await;
    }
    c.send("\r\n").await;
    c.expect("500 5.5.6").await;
    c.cmd("NOOP", "250 2.0.0").await;
    // Just under the limit is fine.
    c.cmd(&format!("NOOP {}", "n".repeat(1000)), "250 2.0.0")
        .await;
}

#[tokio::test]
async fn too_many_errors_close_the_session_with_421() {
    let (mut c, session) = start(config(), Recorder::new(Mode::Accept)).await;
    for _ in 0..9 {
        c.cmd("BOGUS", "500 5.5.2").await;
    }
    c.cmd("MAIL FROM:<a@b.example>", "503 5.5.1").await;
    c.expect("421 4.7.0").await;
    assert_eq!(c.reply().await, "");
    session.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_idle_client_gets_421_4_4_2() {
    let (mut c, session) = start(config(), Recorder::new(Mode::Accept)).await;
    c.cmd("EHLO c", "250").await;
    let started = tokio::time::Instant::now();
    c.expect("421 4.4.2").await;
    assert!(started.elapsed() >= Duration::from_secs(60));
    assert!(matches!(session.await.unwrap(), Err(SessionError::Timeout)));
}

#[tokio::test(start_paused = true)]
async fn a_client_silent_during_data_gets_421_and_nothing_is_delivered() {
    let handler = Recorder::new(Mode::Accept);
    let (mut c, session) = start(config(), handler.clone()).await;
    c.cmd("EHLO c", "250").await;
    c.cmd("MAIL FROM:<a@b.example>", "250").await;
    c.cmd("RCPT TO:<c@d.example>", "250").await;
    c.cmd("DATA", "354").await;
    c.send("Subject: half\r\n").await;
    let started = tokio::time::Instant::now();
    c.expect("421 4.4.2").await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(30) && waited < Duration::from_secs(60));
    assert!(matches!(session.await.unwrap(), Err(SessionError::Timeout)));
    assert!(handler.delivered().is_empty());
}

#[tokio::test]
async fn a_disconnect_during_data_delivers_nothing() {
    let handler = Recorder::new(Mode::Accept);
    let (mut c, session) = start(config(), handler.clone()).await;
    c.cmd("EHLO c", "250").await;
    c.cmd("MAIL FROM:<a@b.example>", "250").await;
    c.cmd("RCPT TO:<c@d.example>", "250").await;
    c.cmd("DATA", "354").await;
    c.send("Subject: half\r\n\r\nbody\r\n").await;
    drop(c);
    assert!(matches!(
        session.await.unwrap(),
        Err(SessionError::ClosedDuringData)
    ));
    assert!(handler.delivered().is_empty());
    assert!(handler.acked().is_empty());
}

#[tokio::test]
async fn handler_verdicts_become_550_and_451_without_acknowledgement() {
    let handler = Recorder::new(Mode::Reject("Policy says\r\nno".into()));
    let (mut c, _s) = start(config(), handler.clone()).await;
    c.cmd("EHLO c", "250").await;
    let reply = c
        .transaction("a@b.example", &["c@d.example"], "x\r\n")
        .await;
    assert_eq!(reply, "550 5.7.1 Policy says  no");
    *handler.mode.lock().unwrap() = Mode::TempFail("Spool full".into());
    let reply = c
        .transaction("a@b.example", &["c@d.example"], "x\r\n")
        .await;
    assert_eq!(reply, "451 4.3.0 Spool full");
    *handler.mode.lock().unwrap() = Mode::Accept;
    let reply = c
        .transaction("a@b.example", &["c@d.example"], "x\r\n")
        .await;
    assert_eq!(reply, "250 2.0.0 Ok: queued as Q3");
    assert_eq!(handler.delivered().len(), 3);
    assert_eq!(handler.acked(), [("Q3".to_owned(), true)]);
}

#[tokio::test]
async fn smuggled_end_of_data_is_refused_and_what_follows_is_not_run() {
    for trick in ["\n.\r\n", "\n.\n", "\r.\r\n", "\r\n..\n", "\r.\r"] {
        let handler = Recorder::new(Mode::Accept);
        let (mut c, _s) = start(config(), handler.clone()).await;
        c.cmd("EHLO c", "250").await;
        c.cmd("MAIL FROM:<a@b.example>", "250").await;
        c.cmd("RCPT TO:<c@d.example>", "250").await;
        c.cmd("DATA", "354").await;
        c.send(format!(
            "Subject: one\r\n\r\nbody{trick}MAIL FROM:<evil@x.example>\r\n\
             RCPT TO:<victim@y.example>\r\nDATA\r\nSubject: forged\r\n\r\n.\r\n"
        ))
        .await;
        let reply = c.reply().await;
        assert!(reply.starts_with("554 5.5.2"), "{trick:?}: {reply}");
        c.cmd("NOOP", "250 2.0.0 Ok").await;
        assert!(handler.delivered().is_empty(), "{trick:?}");
    }
}

#[tokio::test]
async fn bare_line_ends_away_from_dots_are_kept_as_received() {
    let handler = Recorder::new(Mode::Accept);
    let (mut c, _s) = start(config(), handler.clone()).await;
    c.cmd("EHLO c", "250").await;
    let body = "a\nb\rc\r\n.d\n";
    let reply = c
        .transaction("a@b.example", &["c@d.example"], &format!("{body}\r\n"))
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(handler.delivered()[0].1, b"a\nb\rc\r\nd\n\r\n");
}

#[tokio::test]
async fn no_acknowledgement_when_the_250_cannot_be_written() {
    let handler = Recorder::new(Mode::Accept);
    let (mut c, session) = start(config(), handler.clone()).await;
    c.cmd("EHLO c", "250").await;
    c.cmd("MAIL FROM:<a@b.example>", "250").await;
    c.cmd("RCPT TO:<c@d.example>", "250").await;
    c.cmd("DATA", "354").await;
    // The client sends the message and goes away without reading the reply.
    c.send("Subject: gone\r\n\r\nx\r\n.\r\n").await;
    drop(c);
    let result = session.await.unwrap();
    assert!(matches!(result, Err(SessionError::Io(_))), "{result:?}");
    assert_eq!(handler.delivered().len(), 1, "the message was complete");
    assert!(handler.acked().is_empty(), "acknowledged without a 250");
}
