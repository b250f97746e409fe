use super::*;

const MIXED: &str = "From: Alice Example <alice@example.com>\r
To: bob@example.org, Carol <carol@example.org>\r
Cc: dave@example.org\r
Date: Sat, 28 Nov 2026 10:00:00 +0000\r
Subject: Quarterly =?utf-8?q?n=C3=BCmbers?=\r
MIME-Version: 1.0\r
Content-Type: multipart/mixed; boundary=\"b1\"\r
\r
--b1\r
Content-Type: multipart/related; boundary=\"b2\"\r
\r
--b2\r
Content-Type: multipart/alternative; boundary=\"b3\"\r
\r
--b3\r
Content-Type: text/plain; charset=utf-8\r
\r
Hello text\r
--b3\r
Content-Type: text/html; charset=utf-8\r
\r
<p>Hello <img src=\"cid:logo@x\"></p>\r
--b3--\r
--b2\r
Content-Type: image/png\r
Content-ID: <logo@x>\r
Content-Transfer-Encoding: base64\r
\r
iVBORw0KGgo=\r
--b2--\r
--b1\r
Content-Type: application/pdf; name=\"../../report.pdf\"\r
Content-Disposition: attachment; filename=\"../../report.pdf\"\r
Content-Transfer-Encoding: base64\r
\r
JVBERi0xLjQK\r
--b1\r
Content-Type: message/rfc822\r
\r
From: Eve <eve@example.net>\r
To: alice@example.com\r
Subject: Inner\r
\r
Inner body\r
--b1--\r
";

#[test]
fn reads_fields_bodies_attachments_and_nested() {
    let v = read_message(MIXED.as_bytes()).unwrap();
    assert_eq!(v.from, "Alice Example <alice@example.com>");
    assert_eq!(v.to, "bob@example.org, Carol <carol@example.org>");
    assert_eq!(v.cc, "dave@example.org");
    assert_eq!(v.subject, "Quarterly nümbers");
    assert!(v.date.contains("2026"), "{}", v.date);
    assert_eq!(v.bodies.len(), 1);
    assert!(matches!(&v.bodies[0], Body::Html(h) if h.contains("cid:logo@x")));
    assert_eq!(
        v.inline.get("logo@x").map(String::as_str),
        Some("data:image/png;base64,iVBORw0KGgo=")
    );
    assert_eq!(v.attachments.len(), 1, "the inline image is not listed");
    let pdf = &v.attachments[0];
    assert_eq!(pdf.name, "report.pdf");
    assert_eq!(pdf.content_type, "application/pdf");
    assert_eq!(&pdf.data[..], b"%PDF-1.4\n");
    assert_eq!(pdf.size(), 9);
    assert_eq!(v.nested.len(), 1);
    assert_eq!(v.nested[0].from, "Eve <eve@example.net>");
    assert_eq!(v.nested[0].subject, "Inner");
    assert_eq!(v.nested[0].bodies, vec![Body::Text("Inner body".into())]);
}

#[test]
fn plain_text_messages() {
    let v = read_message(b"From: a@b.c\r\nSubject: s\r\n\r\nline 1\r\nline 2\r\n").unwrap();
    assert_eq!(v.bodies, vec![Body::Text("line 1\r\nline 2\r\n".into())]);
    assert!(v.to.is_empty() && v.cc.is_empty() && v.date.is_empty());
    assert!(v.attachments.is_empty() && v.nested.is_empty());
}

#[test]
fn names_and_sizes() {
    assert_eq!(sanitize_file_name("C:\\x\\..\\a.pdf"), "a.pdf");
    assert_eq!(sanitize_file_name("..hidden\u{7}"), "hidden");
    assert_eq!(fallback_name("application/pdf", 2), "attachment-2.pdf");
    assert_eq!(human_size(532), "532 bytes");
    assert_eq!(human_size(12_595), "12.3 KB");
    assert_eq!(human_size(4 * 1024 * 1024), "4.0 MB");
    assert_eq!(human_size(1023), "1023 bytes");
    assert_eq!(human_size(1024), "1.0 KB");
    assert_eq!(human_size(5 << 30), "5.0 GB");
}
