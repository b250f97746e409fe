//! The fast path of [`MessageView::parse`] against mail-parser's full parse: the same view for
//! every message shape the fast path takes, and the full parse for every shape it must not.

use super::{MessageView, ascii_single_part};

/// A message with the given extra header lines (each ending in CRLF) and body.
fn mail(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "From: Alice <alice@acme.example>\r\nTo: bob@outside.example, Carol <carol@x.example>\r\n\
         Subject: Quarterly numbers\r\nMessage-ID: <1@acme.example>\r\n{headers}\r\n"
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}

const ASCII_BODY: &[u8] =
    b"Hello Bob,\r\n\r\nthe card number is below.\r\n.leading dot\r\nIBAN at end\r\n";

/// Checks that `raw` takes the fast path (or not) and reads exactly as the full parse reads it.
fn check(raw: &[u8], fast: bool) {
    assert_eq!(
        ascii_single_part(raw).is_some(),
        fast,
        "fast path taken for {:?}",
        String::from_utf8_lossy(raw)
    );
    assert_eq!(
        MessageView::parse(raw),
        MessageView::parse_full(raw),
        "views differ for {:?}",
        String::from_utf8_lossy(raw)
    );
}

#[test]
fn single_ascii_text_parts_take_the_fast_path_and_read_the_same() {
    let content_types = [
        "",
        "Content-Type: text/plain\r\n",
        "Content-Type: text/plain; charset=us-ascii\r\n",
        "Content-Type: text/plain; charset=\"US-ASCII\"\r\n",
        "Content-Type: TEXT/PLAIN; charset=utf-8; format=flowed\r\n",
        "Content-Type: text/plain; charset=iso-8859-1\r\n",
        "Content-Type: text/plain; charset=windows-1252\r\n",
        "Content-Type: text/plain; charset=latin1\r\n",
        "Content-Type: text/html; charset=us-ascii\r\n",
        "Content-Type: text/calendar; charset=utf8\r\n",
        "Content-Type: text/plain; charset=ascii; name=\"notes.txt\"\r\n",
        "Content-Type: text/plain; charset=us-ascii\r\nContent-Disposition: attachment; filename=\"contract.txt\"\r\n",
    ];
    let encodings = [
        "",
        "Content-Transfer-Encoding: 7bit\r\n",
        "Content-Transfer-Encoding: 8BIT\r\n",
        "Content-Transfer-Encoding: binary\r\n",
    ];
    let bodies: [&[u8]; 4] = [
        ASCII_BODY,
        b"<html><body><p>Card <b>number</b></p></body></html>\r\n",
        b"",
        b"no final line end",
    ];
    for ct in content_types {
        for cte in encodings {
            for body in bodies {
                let headers = format!("MIME-Version: 1.0\r\n{ct}{cte}");
                check(&mail(&headers, body), true);
            }
        }
    }
    // LF line ends, and a folded header.
    check(
        b"From: a@acme.example\nSubject: a long\n subject\nContent-Type: text/plain;\n charset=us-ascii\n\nbody line\n.dot\n",
        true,
    );
}

#[test]
fn other_shapes_are_left_to_the_full_parse_and_read_the_same() {
    let latin1 = b"Gr\xfc\xdfe, die Kartennummer\r\n";
    let cases: Vec<Vec<u8>> = vec![
        // Not ASCII: the charset decoder must run.
        mail("Content-Type: text/plain; charset=iso-8859-1\r\n", latin1),
        mail(
            "Content-Type: text/plain; charset=utf-8\r\n",
            "Grüße, Kartennummer\r\n".as_bytes(),
        ),
        // Charsets whose ASCII bytes do not stand for themselves.
        mail("Content-Type: text/plain; charset=utf-7\r\n", b"Hi +AGEAYgBj- there\r\n"),
        mail(
            "Content-Type: text/plain; charset=iso-2022-jp\r\n",
            b"\x1b$B$3$s$K$A$O\x1b(B\r\n",
        ),
        mail("Content-Type: text/plain; charset=utf-16le\r\n", b"H\0i\0\r\0\n\0"),
        // Transfer encodings.
        mail(
            "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable\r\n",
            b"card =\r\nnumber =3D 1\r\n",
        ),
        mail(
            "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: base64\r\n",
            b"Y2FyZCBudW1iZXI=\r\n",
        ),
        // Not text.
        mail("Content-Type: application/pdf; name=a.pdf\r\n", b"%PDF-1.4\r\n"),
        mail("Content-Type: message/rfc822\r\n", b"Subject: inner\r\n\r\ninner body\r\n"),
        mail(
            "Content-Type: multipart/mixed; boundary=\"b1\"\r\n",
            b"--b1\r\nContent-Type: text/plain\r\n\r\ncard number\r\n--b1\r\n\
              Content-Type: text/plain; name=contract.txt\r\nContent-Disposition: attachment\r\n\r\nx\r\n--b1--\r\n",
        ),
        mail("Content-Type: multipart/mixed\r\n", b"no boundary at all\r\n"),
        // No empty line, or no header at all.
        b"Subject: only a header\r\n".to_vec(),
        b"\r\njust a body\r\n".to_vec(),
        b"not a message at all".to_vec(),
        Vec::new(),
    ];
    for raw in &cases {
        check(raw, false);
    }
}

#[test]
fn the_fast_path_keeps_bodies_headers_and_attachments() {
    let raw = mail(
        "Content-Type: text/plain; charset=us-ascii\r\nX-Classification: Secret\r\n\
         Content-Disposition: attachment; filename=\"nda.txt\"\r\n",
        ASCII_BODY,
    );
    assert!(ascii_single_part(&raw).is_some());
    let v = MessageView::parse(&raw);
    assert_eq!(v.subject, "Quarterly numbers");
    assert_eq!(v.from.as_deref(), Some("alice@acme.example"));
    assert_eq!(v.recipients, ["bob@outside.example", "carol@x.example"]);
    assert_eq!(v.attachments, ["nda.txt"]);
    assert_eq!(
        v.header_values("x-classification").collect::<Vec<_>>(),
        ["Secret"]
    );
    assert_eq!(v.size, raw.len() as u64);
    assert!(v.readable);

    let inline = mail("Content-Type: text/plain; charset=us-ascii\r\n", ASCII_BODY);
    let v = MessageView::parse(&inline);
    assert_eq!(v.bodies, [std::str::from_utf8(ASCII_BODY).unwrap()]);
}
