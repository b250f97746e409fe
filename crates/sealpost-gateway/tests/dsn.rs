//! Delivery status notifications: RFC 3464 structure and fields as mail-parser reads them,
//! and never a byte of the original's body.

use mail_parser::{MessageParser, MimeHeaders};
use sealpost_gateway::spool::dsn::{Failure, Original, build};

const ARRIVAL: u64 = 1_800_000_000;
const NOW: u64 = ARRIVAL + 86_400;
const SECRET: &str = "the-protected-plaintext-7f3a";

fn original_bytes() -> Vec<u8> {
    format!(
        "From: Alice <alice@example.org>\r\n\
         To: Bob <bob@example.net>\r\n\
         Subject: Quarterly numbers\r\n\
         Message-ID: <orig-1@example.org>\r\n\
         X-Long: folded\r\n \tcontinuation\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         {SECRET}\r\nMore: body text that looks like a header\r\n"
    )
    .into_bytes()
}

fn failure(rcpt: &str, status: &str, diagnostic: &str) -> Failure {
    Failure {
        recipient: rcpt.into(),
        status: status.into(),
        diagnostic: diagnostic.into(),
    }
}

fn build_for(data: &[u8], failures: &[Failure]) -> Vec<u8> {
    let original = Original {
        mail_from: "alice@example.org",
        message_id: Some("<orig-1@example.org>"),
        data,
        arrival: ARRIVAL,
    };
    build("gw.example.org", &original, failures, NOW).expect("a DSN")
}

/// All bytes of the DSN, raw and as every part decodes.
fn all_text(dsn: &[u8]) -> String {
    let msg = MessageParser::default().parse(dsn).unwrap();
    let mut s = String::from_utf8_lossy(dsn).into_owned();
    for p in &msg.parts {
        s.push_str(&String::from_utf8_lossy(p.contents()));
    }
    s
}

#[test]
fn a_dsn_is_a_delivery_status_report_with_three_parts() {
    let data = original_bytes();
    let dsn = build_for(
        &data,
        &[
            failure(
                "bob@example.net",
                "5.1.1",
                "550 5.1.1 <bob@example.net>: no such user",
            ),
            failure(
                "carol@example.net",
                "4.4.7",
                "gave up after 12 attempts: connection refused",
            ),
        ],
    );
    let msg = MessageParser::default().parse(&dsn).unwrap();

    let ct = msg.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
    assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
    assert_eq!(
        msg.from().unwrap().first().unwrap().address(),
        Some("MAILER-DAEMON@gw.example.org")
    );
    assert_eq!(
        msg.to().unwrap().first().unwrap().address(),
        Some("alice@example.org")
    );
    assert_eq!(msg.subject(), Some("Undelivered Mail Returned to Sender"));
    assert_eq!(
        msg.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied")
    );
    assert_eq!(msg.in_reply_to().as_text(), Some("orig-1@example.org"));
    assert!(msg.message_id().unwrap().ends_with("@gw.example.org"));
    assert_eq!(msg.date().unwrap().to_timestamp(), NOW as i64);

    let sub = msg.root_part().sub_parts().unwrap();
    assert_eq!(sub.len(), 3);
    let part = |i: usize| msg.part(sub[i]).unwrap();
    let types: Vec<String> = (0..3)
        .map(|i| {
            let ct = part(i).content_type().unwrap();
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""))
        })
        .collect();
    assert_eq!(
        types,
        [
            "text/plain",
            "message/delivery-status",
            "text/rfc822-headers"
        ]
    );

    let human = part(0).text_contents().unwrap();
    assert!(
        human.contains("<bob@example.net>: 550 5.1.1 <bob@example.net>: no such user"),
        "{human}"
    );
    assert!(
        human.contains("<carol@example.net>: gave up after 12 attempts"),
        "{human}"
    );
    assert!(human.contains("not delivered"), "{human}");

    let status = String::from_utf8(part(1).contents().to_vec()).unwrap();
    assert!(
        status.starts_with("Reporting-MTA: dns; gw.example.org\r\nArrival-Date: "),
        "{status}"
    );
    for expected in [
        "\r\n\r\nFinal-Recipient: rfc822; bob@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: no such user\r\n",
        "\r\n\r\nFinal-Recipient: rfc822; carol@example.net\r\nAction: failed\r\nStatus: 4.4.7\r\nDiagnostic-Code: smtp; gave up after 12 attempts: connection refused\r\n",
    ] {
        assert!(status.contains(expected), "{status}");
    }
    // The per-message and per-recipient field groups parse as header blocks.
    let arrival = status
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("Arrival-Date: ");
    let date_field = format!("Date: {arrival}\r\n\r\n");
    let parsed = MessageParser::default()
        .parse(date_field.as_bytes())
        .unwrap();
    assert_eq!(parsed.date().unwrap().to_timestamp(), ARRIVAL as i64);

    let headers = String::from_utf8(part(2).contents().to_vec()).unwrap();
    assert!(
        headers.starts_with("From: Alice <alice@example.org>\r\n"),
        "{headers}"
    );
    assert!(headers.contains("Subject: Quarterly numbers\r\n"));
    assert!(headers.contains("X-Long: folded\r\n \tcontinuation\r\n"));
    assert!(
        headers.ends_with("Content-Type: text/plain\r\n"),
        "{headers}"
    );

    let everything = all_text(&dsn);
    assert!(!everything.contains(SECRET));
    assert!(!everything.contains("looks like a header"));
}

#[test]
fn no_dsn_for_the_null_sender_or_without_failures() {
    let data = original_bytes();
    let f = [failure("bob@example.net", "5.0.0", "550 no")];
    for null in ["", "<>", "  "] {
        let o = Original {
            mail_from: null,
            message_id: None,
            data: &data,
            arrival: ARRIVAL,
        };
        assert!(build("gw.example.org", &o, &f, NOW).is_none(), "{null:?}");
    }
    let o = Original {
        mail_from: "alice@example.org",
        message_id: None,
        data: &data,
        arrival: ARRIVAL,
    };
    assert!(build("gw.example.org", &o, &[], NOW).is_none());
    let dsn = build("gw.example.org", &o, &f, NOW).unwrap();
    let msg = MessageParser::default().parse(&dsn).unwrap();
    assert!(msg.in_reply_to().as_text().is_none());
}

#[test]
fn hostile_diagnostics_and_statuses_stay_on_one_line() {
    let data = original_bytes();
    let long = "x".repeat(5000);
    let dsn = build_for(
        &data,
        &[
            failure(
                "bob@example.net",
                "9.9.9",
                "550 bad\r\nX-Injected: yes\r\n\r\nbody",
            ),
            failure("carol@example.net\r\nBcc: eve@example.com", "5.7.1", &long),
        ],
    );
    let text = String::from_utf8(dsn.clone()).unwrap();
    assert!(!text.contains("\r\nX-Injected"), "{text}");
    assert!(!text.contains("\r\nBcc:"), "{text}");
    assert!(text.contains("Status: 5.0.0\r\n"));
    assert!(
        text.contains("Diagnostic-Code: smtp; 550 bad  X-Injected: yes    body\r\n"),
        "{text}"
    );
    assert!(text.lines().all(|l| l.len() <= 998));
    assert!(text.contains(&format!("Diagnostic-Code: smtp; {}\r\n", "x".repeat(900))));
}

#[test]
fn a_message_without_a_blank_line_keeps_its_body_out() {
    // Broken MIME: header fields, then text with no empty line between.
    let data =
        format!("Subject: broken\r\nTo: bob@example.net\r\n{SECRET} in the body\r\nX: y\r\n");
    let dsn = build_for(
        data.as_bytes(),
        &[failure("bob@example.net", "5.0.0", "550 no")],
    );
    let everything = all_text(&dsn);
    assert!(everything.contains("Subject: broken\r\nTo: bob@example.net\r\n"));
    assert!(!everything.contains(SECRET));
    assert!(!everything.contains("X: y"));

    // Not even a header: nothing of it at all.
    let dsn = build_for(
        SECRET.as_bytes(),
        &[failure("bob@example.net", "5.0.0", "550 no")],
    );
    assert!(!all_text(&dsn).contains(SECRET));
}

#[test]
fn utf8_recipients_make_a_global_report() {
    let data = "Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n\r\nhallo\r\n".as_bytes();
    let dsn = build_for(
        data,
        &[failure("jürgen@例え.jp", "5.1.1", "550 5.1.1 unknown")],
    );
    let msg = MessageParser::default().parse(&dsn).unwrap();
    let sub = msg.root_part().sub_parts().unwrap();
    let status = msg.part(sub[1]).unwrap();
    let ct = status.content_type().unwrap();
    assert_eq!(ct.subtype(), Some("global-delivery-status"));
    let text = String::from_utf8(status.contents().to_vec()).unwrap();
    assert!(
        text.contains("Final-Recipient: utf-8; jürgen@例え.jp\r\n"),
        "{text}"
    );
    assert!(!all_text(&dsn).contains("hallo"));
}
