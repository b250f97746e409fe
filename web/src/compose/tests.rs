//! The composer's decisions: the opened original, recipients per kind, forward addresses,
//! subjects, the quoted text, the toolbar's edits and the HTML alternative.

use sealpost_core::{Right, Rights, Template};

use super::address::{self, AddressError, Mailbox, forward, parse_list};
use super::text::{self, Edit, Style, apply, byte_to_utf16, to_html, utf16_to_byte};
use super::*;
use crate::api::RewrapAnswer;
use crate::open::EnvelopeInfo;

pub(super) const CREATED: u64 = 1_800_000_000;

pub(super) const ORIGINAL: &str = "From: Alice Example <Alice@Example.com>\r\n\
To: Bob <bob@example.org>, carol@example.net\r\n\
Cc: \"Dave, D.\" <dave@example.net>, BOB@example.org\r\n\
Subject: Quarterly numbers\r\n\
Date: Tue, 1 Dec 2026 10:00:00 +0000\r\n\
Message-ID: <orig-1@example.com>\r\n\
References: <root@example.com> <mid@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello Bob,\r\n\
the numbers are attached.\r\n\
> an older quote\r\n\
--b\r\n\
Content-Type: application/pdf; name=\"q4.pdf\"\r\n\
Content-Disposition: attachment; filename=\"q4.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--b--\r\n";

pub(super) fn answer(template: &Template, expires: Option<u64>) -> RewrapAnswer {
    RewrapAnswer {
        sealed_share: String::new(),
        rights: template
            .rights
            .iter()
            .map(|r| r.name().to_string())
            .collect(),
        expires,
        sender: "alice@example.com".into(),
        template: template.name.clone(),
        message_id: "00112233445566778899aabbccddeeff".into(),
        email: "bob@example.org".into(),
        server_time: None,
    }
}

pub(super) fn info(subject: bool) -> EnvelopeInfo {
    EnvelopeInfo {
        tenant_id: "example.com".into(),
        key_service_url: "http://127.0.0.1:8080".into(),
        sender: "alice@example.com".into(),
        template: "Encrypt-Only".into(),
        subject: subject.then(|| "Quarterly numbers".into()),
        reference: "0011-2233-4455".into(),
        created: CREATED,
    }
}

pub(super) fn original() -> Original {
    original_with(&Template::encrypt_only(), None, true)
}

pub(super) fn original_with(t: &Template, expires: Option<u64>, subject: bool) -> Original {
    Original::read(ORIGINAL.as_bytes(), &answer(t, expires), &info(subject)).unwrap()
}

#[test]
fn the_original_is_read_for_replies() {
    let o = original();
    assert_eq!(o.sender, "alice@example.com");
    assert_eq!(o.message_id.as_deref(), Some("orig-1@example.com"));
    assert_eq!(o.references, ["root@example.com", "mid@example.com"]);
    assert_eq!(o.from[0].name.as_deref(), Some("Alice Example"));
    assert_eq!(o.to.len(), 2);
    assert_eq!(o.cc[0].name.as_deref(), Some("Dave, D."));
    assert_eq!(o.subject, "Quarterly numbers");
    assert!(o.text.contains("the numbers are attached."));
    assert!(o.date.contains("2026"), "{}", o.date);
    assert_eq!(o.attachments.len(), 1);
    assert_eq!(o.attachments[0].name, "q4.pdf");
    assert_eq!(o.attachments[0].content_type, "application/pdf");
    assert_eq!(&o.attachments[0].data[..], b"%PDF-1.4\n");
    assert!(o.header_subject);
    // Without the forward right the attachments are not kept.
    let dnf = original_with(&Template::do_not_forward(), None, false);
    assert!(dnf.attachments.is_empty() && !dnf.header_subject);
    assert!(!dnf.rights.contains(Right::Forward));
    assert!(Original::read(b"", &answer(&Template::encrypt_only(), None), &info(true)).is_none());
}

#[test]
fn message_ids_are_checked_before_they_are_repeated() {
    for good in ["a@b", "orig-1@example.com", "x.y+z@h"] {
        assert!(original::is_message_id(good), "{good}");
    }
    for bad in [
        "", "nobody", "a@b@c", "a b@c", "a@b>", "<a@b", "a\"@b", "@b", "a@",
    ] {
        assert!(!original::is_message_id(bad), "{bad}");
    }
}

#[test]
fn reply_goes_to_the_sender_with_the_from_name() {
    let r = address::fixed(Kind::Reply, &original(), "bob@example.org").unwrap();
    assert_eq!(
        r.to,
        [Mailbox {
            name: Some("Alice Example".into()),
            address: "alice@example.com".into()
        }]
    );
    assert!(r.cc.is_empty());
    assert_eq!(r.all(), ["alice@example.com"]);
}

#[test]
fn reply_all_adds_everyone_but_me_once() {
    let r = address::fixed(Kind::ReplyAll, &original(), " Bob@Example.org ").unwrap();
    assert_eq!(r.to_addresses(), ["alice@example.com"]);
    assert_eq!(r.cc_addresses(), ["carol@example.net", "dave@example.net"]);
    assert_eq!(
        r.all(),
        ["alice@example.com", "carol@example.net", "dave@example.net"]
    );
    // The sender replying to their own message: the others go to To.
    let r = address::fixed(Kind::ReplyAll, &original(), "alice@example.com").unwrap();
    assert_eq!(
        r.to_addresses(),
        ["bob@example.org", "carol@example.net", "dave@example.net"]
    );
    assert!(r.cc.is_empty());
    let mut alone = original();
    alone.to = vec![Mailbox::bare("alice@example.com")];
    alone.cc.clear();
    assert_eq!(
        address::fixed(Kind::ReplyAll, &alone, "alice@example.com"),
        Err(AddressError::NobodyElse)
    );
}

#[test]
fn forward_addresses_are_parsed_and_validated() {
    let list = parse_list("a@x.org, \"Doe, Jane\" <jane@y.org>; b@z.org\nA@X.org").unwrap();
    assert_eq!(
        list.iter().map(Mailbox::display).collect::<Vec<_>>(),
        ["a@x.org", "\"Doe, Jane\" <jane@y.org>", "b@z.org"]
    );
    assert_eq!(parse_list(" , ;").unwrap(), []);
    for bad in [
        "nobody",
        "a@b",
        "a@@x.org",
        "a b@x.org",
        "<a@x.org> tail",
        "a@x..org",
        "x@y.org, bad",
        "team:a@x.org",
    ] {
        assert!(
            matches!(parse_list(bad), Err(AddressError::Invalid(_))),
            "{bad}"
        );
    }
    let err = parse_list("ok@x.org, oops").unwrap_err();
    assert_eq!(
        err.to_string(),
        "“oops” is not an e-mail address. Write addresses like name@example.com, separated by commas."
    );
    assert_eq!(forward("", "c@x.org"), Err(AddressError::NoRecipients));
    let r = forward("a@x.org", "A@x.org, c@x.org").unwrap();
    assert_eq!(r.to_addresses(), ["a@x.org"]);
    assert_eq!(r.cc_addresses(), ["c@x.org"]);
    let many: Vec<String> = (0..101).map(|i| format!("p{i}@x.org")).collect();
    assert_eq!(forward(&many.join(","), ""), Err(AddressError::TooMany));
    assert!(forward(&many[..100].join(","), "").is_ok());
}

#[test]
fn subjects_get_one_prefix() {
    use Kind::*;
    assert_eq!(text::subject(Reply, "Hello"), "Re: Hello");
    assert_eq!(text::subject(ReplyAll, " RE: Hello "), "RE: Hello");
    assert_eq!(text::subject(Reply, "re:Hello"), "re:Hello");
    assert_eq!(text::subject(Reply, "Fwd: Hello"), "Re: Fwd: Hello");
    assert_eq!(text::subject(Forward, "Hello"), "Fwd: Hello");
    assert_eq!(text::subject(Forward, "FW: Hello"), "FW: Hello");
    assert_eq!(text::subject(Forward, "Re: Hello"), "Fwd: Re: Hello");
    assert_eq!(text::subject(Reply, ""), "Re:");
}

#[test]
fn drafts_start_with_the_quoted_original() {
    let o = original();
    let d = Draft::new(Kind::Reply, &o, "bob@example.org");
    assert_eq!(d.to, "Alice Example <alice@example.com>");
    assert_eq!(d.cc, "");
    assert_eq!(d.subject, "Re: Quarterly numbers");
    assert!(d.attachments.is_empty());
    assert!(d.body.starts_with("\n\nOn "), "{}", d.body);
    assert!(
        d.body.contains(", Alice Example <Alice@Example.com> wrote:\n> Hello Bob,\n> the numbers are attached.\n>> an older quote\n"),
        "{}",
        d.body
    );
    let d = Draft::new(Kind::ReplyAll, &o, "bob@example.org");
    assert_eq!(d.cc, "carol@example.net, \"Dave, D.\" <dave@example.net>");
    // What the read-only field shows reads back as the same mailboxes.
    assert_eq!(
        parse_list(&d.cc).unwrap(),
        [o.to[1].clone(), o.cc[0].clone()]
    );
    let d = Draft::new(Kind::Forward, &o, "bob@example.org");
    assert_eq!((d.to.as_str(), d.cc.as_str()), ("", ""));
    assert_eq!(d.subject, "Fwd: Quarterly numbers");
    assert_eq!(d.attachments, o.attachments);
    assert!(d.body.contains(
        "---------- Forwarded message ----------\nFrom: Alice Example <Alice@Example.com>\n"
    ));
    assert!(d.body.contains("Subject: Quarterly numbers\n"));
    assert!(
        d.body
            .ends_with("the numbers are attached.\n> an older quote\n"),
        "{}",
        d.body
    );
}

#[test]
fn bold_and_italic_wrap_and_unwrap_the_selection() {
    let e = apply("say hello now", 4, 9, Style::Bold);
    assert_eq!(
        e,
        Edit {
            text: "say **hello** now".into(),
            start: 6,
            end: 11
        }
    );
    assert_eq!(
        apply(&e.text, e.start, e.end, Style::Bold),
        Edit {
            text: "say hello now".into(),
            start: 4,
            end: 9
        }
    );
    // Surrounding spaces stay outside the markers.
    assert_eq!(
        apply("say hello now", 3, 10, Style::Italic).text,
        "say _hello_ now"
    );
    // Nothing selected: an empty pair with the cursor inside.
    assert_eq!(
        apply("ab", 1, 1, Style::Bold),
        Edit {
            text: "a****b".into(),
            start: 3,
            end: 3
        }
    );
    // Offsets past the end or inside a character are clamped.
    assert_eq!(apply("é", 1, 99, Style::Italic).text, "_é_");
}

#[test]
fn the_list_button_prefixes_and_removes_dashes() {
    let e = apply("intro\none\ntwo\nend", 8, 11, Style::List);
    assert_eq!(e.text, "intro\n- one\n- two\nend");
    assert_eq!((e.start, e.end), (6, 17));
    let back = apply(&e.text, e.start, e.end, Style::List);
    assert_eq!(back.text, "intro\none\ntwo\nend");
    assert_eq!(apply("", 0, 0, Style::List).text, "- ");
    assert_eq!(apply("a\n\nb", 0, 4, Style::List).text, "- a\n\n- b");
}

#[test]
fn selections_convert_between_utf16_and_bytes() {
    let s = "a😀é b";
    assert_eq!(utf16_to_byte(s, 0), 0);
    assert_eq!(utf16_to_byte(s, 1), 1);
    assert_eq!(utf16_to_byte(s, 3), 5);
    assert_eq!(utf16_to_byte(s, 4), 7);
    assert_eq!(utf16_to_byte(s, 99), s.len());
    for b in [0, 1, 5, 7, 8, s.len()] {
        assert_eq!(utf16_to_byte(s, byte_to_utf16(s, b)), b);
    }
    assert_eq!(byte_to_utf16(s, s.len()), 6);
}

#[test]
fn formatting_becomes_escaped_html() {
    let html = to_html(
        "Hi <b>you</b> & \"them\",\n**bold <i>** and _it's_ snake_case_name\n- one **1**\n* two\n\n> quoted **not bold** <x>\n>> deeper",
    )
    .unwrap();
    assert!(html.contains("<p>Hi &lt;b&gt;you&lt;/b&gt; &amp; &quot;them&quot;,<br>\n<strong>bold &lt;i&gt;</strong> and <em>it&#39;s</em> snake_case_name</p>"), "{html}");
    assert!(
        html.contains("<ul>\n<li>one <strong>1</strong></li>\n<li>two</li>\n</ul>"),
        "{html}"
    );
    assert!(
        html.contains(">quoted **not bold** &lt;x&gt;<br>\n&gt; deeper</blockquote>"),
        "{html}"
    );
    assert!(!html.contains("<b>") && !html.contains("<i>") && !html.contains("<x>"));
    // No markup used: no HTML alternative.
    assert_eq!(to_html("plain text, a_b_c, 2 * 3 ** 4, **\n> quote"), None);
    assert_eq!(to_html("** not bold**"), None);
    assert!(to_html("_x_").unwrap().contains("<em>x</em>"));
    assert!(
        to_html("**_both_**")
            .unwrap()
            .contains("<strong><em>both</em></strong>")
    );
}

#[test]
fn rights_and_templates_are_named() {
    let note = submit::protection_note(&original_with(&Template::do_not_forward(), None, true));
    assert!(note.contains("protected with Do-Not-Forward, like the original: it cannot be forwarded, printed, copied or downloaded in the portal."), "{note}");
    let note = submit::protection_note(&original_with(
        &Template::encrypt_only(),
        Some(CREATED + 7 * 86_400),
        true,
    ));
    assert!(
        note.contains(
            "Encrypt-Only, like the original: its recipients can read it without restrictions."
        ),
        "{note}"
    );
    assert!(
        note.ends_with("it can be opened for 7 days after it is sent."),
        "{note}"
    );
    let view_reply = Rights::of(&[Right::View, Right::Reply]);
    assert_eq!(
        offered(view_reply, Some("https://r.example")),
        [Kind::Reply]
    );
}

#[test]
fn buttons_follow_the_rights_and_the_reply_url() {
    let url = Some("http://127.0.0.1:8090");
    assert_eq!(
        offered(Template::encrypt_only().rights, url),
        [Kind::Reply, Kind::ReplyAll, Kind::Forward]
    );
    assert_eq!(
        offered(Template::do_not_forward().rights, url),
        [Kind::Reply, Kind::ReplyAll]
    );
    assert_eq!(offered(Template::encrypt_only().rights, None), []);
    assert_eq!(
        offered(Template::encrypt_only().rights, Some("not a url")),
        []
    );
    assert_eq!(offered(Rights::of(&[Right::View]), url), []);
    assert_eq!(
        offered(Rights::of(&[Right::View, Right::Forward]), url),
        [Kind::Forward]
    );
    assert_eq!(Kind::ReplyAll.as_str(), "reply_all");
    assert_eq!(Kind::Forward.right(), Right::Forward);
    assert!(Kind::Forward.editable_recipients() && !Kind::Reply.editable_recipients());
}
