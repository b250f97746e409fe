//! `subject_or_body_contains` on the bodies as mail arrives: ASCII bodies (read without
//! mail-parser's charset decoder), Latin-1 and UTF-8 bodies (decoded), case-insensitivity and
//! word boundaries as docs/rules.md says, and bodies the fast path leaves to the full parse
//! (quoted-printable, multipart).

use sealpost_rules::{Decision, MessageView, RuleSet};

fn rules(words: &str) -> RuleSet {
    let text = format!(
        "[organization]\ndomains = [\"acme.example\"]\n\
         [[rules]]\nname = \"Body\"\npriority = 1\n\
         [rules.conditions]\nsubject_or_body_contains = {words}\n\
         [rules.actions]\nencrypt = \"Encrypt-Only\"\n"
    );
    RuleSet::load(&text).unwrap_or_else(|e| panic!("{e:?}"))
}

fn mail(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "From: alice@acme.example\r\nTo: bob@outside.example\r\nSubject: hello\r\n{headers}\r\n"
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}

fn encrypts(set: &RuleSet, raw: &[u8]) -> bool {
    let view = MessageView::parse(raw);
    let o = set.evaluate(&view, "alice@acme.example", "bob@outside.example");
    matches!(o.decision, Decision::Encrypt { .. })
}

#[test]
fn us_ascii_bodies_match_case_insensitively_on_word_boundaries() {
    let set = rules(r#"["card number", "IBAN"]"#);
    let ct = "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n";
    for (body, want) in [
        (&b"Here is my Card Number: 1234\r\n"[..], true),
        (b"iban DE00 1234\r\n", true),
        (b"line one\r\nCARD NUMBER\r\n", true),
        (b"my cardnumber\r\n", false),
        (b"a sibanx word\r\n", false),
        (b"card  number with two spaces\r\n", false),
        (b"nothing to see\r\n", false),
    ] {
        assert_eq!(
            encrypts(&set, &mail(ct, body)),
            want,
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    // No Content-Type at all is text/plain too.
    assert!(encrypts(&set, &mail("", b"the IBAN\r\n")));
    // An HTML body is searched as text.
    assert!(encrypts(
        &set,
        &mail(
            "Content-Type: text/html; charset=us-ascii\r\n",
            b"<p>your <b>card number</b></p>\r\n"
        )
    ));
}

#[test]
fn latin1_and_utf8_bodies_match_non_ascii_words() {
    let set = rules(r#"["Kartennummer", "größe"]"#);
    let latin1 = mail(
        "Content-Type: text/plain; charset=iso-8859-1\r\n",
        b"Ihre KARTENNUMMER und die Gr\xd6\xdfe\r\n",
    );
    assert!(encrypts(&set, &latin1));
    let only_umlaut = mail(
        "Content-Type: text/plain; charset=iso-8859-1\r\n",
        b"die Gr\xf6\xdfe\r\n",
    );
    assert!(encrypts(&set, &only_umlaut));
    let utf8 = mail(
        "Content-Type: text/plain; charset=utf-8\r\n",
        "Die GRÖSSE? Nein: die größe.\r\n".as_bytes(),
    );
    assert!(encrypts(&set, &utf8));
    let none = mail(
        "Content-Type: text/plain; charset=iso-8859-1\r\n",
        b"Gr\xf6sse\r\n",
    );
    assert!(!encrypts(&set, &none));
}

#[test]
fn encoded_and_multipart_bodies_still_match() {
    let set = rules(r#"["card number"]"#);
    let qp = mail(
        "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable\r\n",
        b"your card =\r\nnumber\r\n",
    );
    assert!(encrypts(&set, &qp));
    let multipart = mail(
        "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n",
        b"--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nhello\r\n\
          --b\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<p>card number</p>\r\n--b--\r\n",
    );
    assert!(encrypts(&set, &multipart));
}
