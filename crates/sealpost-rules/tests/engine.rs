//! The rule engine, table-driven: every condition kind as a condition and as an exception
//! (matching and not matching), every action, priority order, stop, test mode, and grouping
//! of recipients into copies.

use sealpost_core::policy::{Right, Rights, Template};
use sealpost_rules::{AddHeader, Decision, MessageView, Mode, RuleSet, Step, TEST_HEADER, group};

const ORG: &str = "[organization]\ndomains = [\"acme.example\"]\n";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn load(rules: &str) -> RuleSet {
    let text = format!("{ORG}{rules}");
    RuleSet::load(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"))
}

fn simple(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: alice@acme.example\r\nTo: bob@other.example\r\nSubject: {subject}\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

struct Case {
    /// The condition, as one TOML line of `[rules.conditions]` / `[rules.except]`.
    condition: &'static str,
    message: Vec<u8>,
    sender: &'static str,
    recipient: &'static str,
    matches: bool,
}

fn case(
    condition: &'static str,
    message: Vec<u8>,
    sender: &'static str,
    recipient: &'static str,
    matches: bool,
) -> Case {
    Case {
        condition,
        message,
        sender,
        recipient,
        matches,
    }
}

fn cases() -> Vec<Case> {
    let contract = fixture("contract.eml");
    let classified = fixture("classified.eml");
    let plain = simple("hello", "nothing to see");
    let big = simple("big", &"x".repeat(2000));
    let (a, b) = ("alice@acme.example", "bob@other.example");
    vec![
        case(
            r#"recipient = "Bob@Other.example""#,
            plain.clone(),
            a,
            b,
            true,
        ),
        case(
            r#"recipient = ["eve@other.example", "bob@other.example"]"#,
            plain.clone(),
            a,
            b,
            true,
        ),
        case(
            r#"recipient = "eve@other.example""#,
            plain.clone(),
            a,
            b,
            false,
        ),
        case(
            r#"recipient_domain = "other.example""#,
            plain.clone(),
            a,
            "x@mail.other.example",
            true,
        ),
        case(
            r#"recipient_domain = "other.example""#,
            plain.clone(),
            a,
            "x@notother.example",
            false,
        ),
        case(
            r#"recipient_scope = "inside""#,
            plain.clone(),
            a,
            "carol@sub.acme.example",
            true,
        ),
        case(r#"recipient_scope = "inside""#, plain.clone(), a, b, false),
        case(r#"recipient_scope = "outside""#, plain.clone(), a, b, true),
        case(
            r#"recipient_scope = "outside""#,
            plain.clone(),
            a,
            "carol@acme.example",
            false,
        ),
        case(
            r#"sender = "ALICE@acme.example""#,
            plain.clone(),
            a,
            b,
            true,
        ),
        case(
            r#"sender = "mallory@acme.example""#,
            plain.clone(),
            a,
            b,
            false,
        ),
        case(
            r#"sender_domain = "acme.example""#,
            plain.clone(),
            "a@legal.acme.example",
            b,
            true,
        ),
        case(
            r#"sender_domain = "acme.example""#,
            plain.clone(),
            "a@evil-acme.example",
            b,
            false,
        ),
        case(
            r#"subject_contains = ["secure"]"#,
            simple("Please SECURE this", ""),
            a,
            b,
            true,
        ),
        case(
            r#"subject_contains = ["secure"]"#,
            simple("insecure channel", ""),
            a,
            b,
            false,
        ),
        case(
            r#"subject_contains = "[secure]""#,
            simple("x[Secure] y", ""),
            a,
            b,
            true,
        ),
        case(
            r#"subject_contains = "[secure]""#,
            simple("secure", ""),
            a,
            b,
            false,
        ),
        case(
            r#"subject_contains = "card number""#,
            simple("my Card  number", ""),
            a,
            b,
            false,
        ),
        case(
            r#"subject_or_body_contains = ["iban"]"#,
            simple("hi", "send to IBAN DE00"),
            a,
            b,
            true,
        ),
        case(
            r#"subject_or_body_contains = "iban""#,
            classified.clone(),
            a,
            b,
            true,
        ),
        case(
            r#"subject_or_body_contains = ["quarterly"]"#,
            classified.clone(),
            a,
            b,
            true,
        ),
        case(
            r#"subject_or_body_contains = ["iban"]"#,
            simple("hi", "IBANs are long"),
            a,
            b,
            false,
        ),
        case(
            r#"subject_matches = '^RE: \d+'"#,
            simple("RE: 42 items", ""),
            a,
            b,
            true,
        ),
        case(
            r#"subject_matches = ['^RE: \d+', 'x{3}']"#,
            simple("FW: 42", ""),
            a,
            b,
            false,
        ),
        case(
            r#"header_contains = { name = "x-project", words = ["apollo"] }"#,
            contract.clone(),
            a,
            b,
            true,
        ),
        case(
            r#"header_contains = { name = "X-Project", words = ["gemini"] }"#,
            contract.clone(),
            a,
            b,
            false,
        ),
        case(
            r#"header_matches = { name = "X-Ticket", patterns = ['^T-\d{4}$'] }"#,
            classified.clone(),
            a,
            b,
            true,
        ),
        case(
            r#"header_matches = { name = "X-Ticket", patterns = ['^T-\d{5}$'] }"#,
            classified.clone(),
            a,
            b,
            false,
        ),
        case(
            r#"attachment_name_matches = '(?i)contract'"#,
            contract.clone(),
            a,
            b,
            true,
        ),
        case(
            r#"attachment_name_matches = 'contract'"#,
            contract.clone(),
            a,
            b,
            false,
        ),
        case(
            r#"attachment_name_matches = '(?i)contract'"#,
            plain.clone(),
            a,
            b,
            false,
        ),
        case(
            r#"attachment_extension = [".pdf", "docx"]"#,
            contract.clone(),
            a,
            b,
            true,
        ),
        case(
            r#"attachment_extension = "docx""#,
            contract.clone(),
            a,
            b,
            false,
        ),
        case(r#"size_over = "1KB""#, big.clone(), a, b, true),
        case(r#"size_over = "1KB""#, plain.clone(), a, b, false),
        case(r#"size_over = 10"#, plain.clone(), a, b, true),
        case(
            r#"classification = "Secret""#,
            classified.clone(),
            a,
            b,
            true,
        ),
        case(
            r#"classification = ["company-confidential"]"#,
            classified.clone(),
            a,
            b,
            true,
        ),
        case(
            r#"classification = "Top Secret""#,
            classified.clone(),
            a,
            b,
            false,
        ),
        case(r#"classification = "Secret""#, plain.clone(), a, b, false),
    ]
}

#[test]
fn every_condition_kind_matches_and_misses() {
    for c in cases() {
        let set = load(&format!(
            "[[rules]]\nname = \"r\"\n[rules.conditions]\n{}\n[rules.actions]\nencrypt = \"Encrypt-Only\"\n",
            c.condition
        ));
        let view = MessageView::parse(&c.message);
        let out = set.evaluate(&view, c.sender, c.recipient);
        let matched = matches!(out.trail[0], Step::Matched { .. });
        assert_eq!(
            matched, c.matches,
            "{} for {}: {:?}",
            c.condition, c.recipient, out.trail
        );
        assert_eq!(
            matches!(out.decision, Decision::Encrypt { .. }),
            c.matches,
            "{}",
            c.condition
        );
        if let Step::NotMatched { condition, .. } = &out.trail[0] {
            let key = c.condition.split(' ').next().unwrap();
            assert!(condition.starts_with(key), "{condition}");
        }
    }
}

#[test]
fn every_condition_kind_works_as_an_exception() {
    for c in cases() {
        let set = load(&format!(
            "[[rules]]\nname = \"r\"\n[rules.except]\n{}\n[rules.actions]\nencrypt = \"Encrypt-Only\"\n",
            c.condition
        ));
        let view = MessageView::parse(&c.message);
        let out = set.evaluate(&view, c.sender, c.recipient);
        match &out.trail[0] {
            Step::Skipped { rule, exception } => {
                assert!(c.matches, "{} skipped wrongly: {exception}", c.condition);
                assert_eq!(rule, "r");
                assert_eq!(out.decision, Decision::Original);
            }
            Step::Matched { because, .. } => {
                assert!(!c.matches, "{} did not skip", c.condition);
                assert!(because[0].contains("no conditions"), "{because:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn all_conditions_must_match_and_any_exception_skips() {
    let set = load(
        "[[rules]]\nname = \"r\"\n[rules.conditions]\nrecipient_scope = \"outside\"\nsubject_contains = \"secure\"\n\
         [rules.except]\nsender = \"ceo@acme.example\"\nsize_over = \"1MB\"\n[rules.actions]\nencrypt = \"Encrypt-Only\"\n",
    );
    let view = MessageView::parse(&simple("secure", ""));
    let out = set.evaluate(&view, "alice@acme.example", "bob@other.example");
    let Step::Matched { because, .. } = &out.trail[0] else {
        panic!("{:?}", out.trail)
    };
    assert_eq!(because.len(), 2, "{because:?}");
    assert!(matches!(
        set.evaluate(&view, "alice@acme.example", "c@acme.example")
            .trail[0],
        Step::NotMatched { .. }
    ));
    let skipped = set.evaluate(&view, "ceo@acme.example", "bob@other.example");
    assert_eq!(
        skipped.trail[0],
        Step::Skipped {
            rule: "r".into(),
            exception: "sender is ceo@acme.example".into()
        }
    );
}

#[test]
fn actions_encrypt_custom_template_remove_subject_headers() {
    let set = load(
        "[[templates]]\nname = \"Legal\"\nrights = [\"view\", \"reply\"]\nexpires_after = \"30days\"\n\
         [[rules]]\nname = \"legal\"\n[rules.actions]\nencrypt = \"legal\"\nremove_subject = true\n\
         add_header = [{ name = \"X-A\", value = \"1\" }, { name = \"X-B\", value = \"2\" }]\n\
         [[rules]]\nname = \"dnf\"\n[rules.actions]\nencrypt = \"do not forward\"\n",
    );
    let out = set.evaluate(
        &MessageView::parse(&simple("s", "")),
        "a@acme.example",
        "b@other.example",
    );
    let want = Template::custom(
        "Legal",
        Rights::of(&[Right::View, Right::Reply]),
        Some(30 * 86400),
    )
    .unwrap();
    assert_eq!(
        out.decision,
        Decision::Encrypt {
            template: want,
            remove_subject: true
        }
    );
    assert_eq!(
        out.add_headers,
        vec![
            AddHeader {
                name: "X-A".into(),
                value: "1".into()
            },
            AddHeader {
                name: "X-B".into(),
                value: "2".into()
            }
        ]
    );
    // The first encrypt wins; the second is noted.
    let Step::Matched { actions, .. } = &out.trail[1] else {
        panic!()
    };
    assert!(actions[0].contains("ignored"), "{actions:?}");
}

#[test]
fn reject_overrides_and_ends_evaluation() {
    let set = load(
        "[[rules]]\nname = \"enc\"\n[rules.actions]\nencrypt = \"Encrypt-Only\"\nadd_header = { name = \"X-A\", value = \"1\" }\n\
         [[rules]]\nname = \"block\"\n[rules.conditions]\nclassification = \"secret\"\n[rules.actions]\nreject = \"No secrets outside\"\n\
         [[rules]]\nname = \"after\"\n[rules.actions]\nadd_header = { name = \"X-After\", value = \"1\" }\n",
    );
    let out = set.evaluate(
        &MessageView::parse(&fixture("classified.eml")),
        "a@acme.example",
        "b@other.example",
    );
    assert_eq!(
        out.decision,
        Decision::Reject {
            text: "No secrets outside".into()
        }
    );
    assert_eq!(
        out.decision.smtp_reply().as_deref(),
        Some("550 5.7.1 No secrets outside")
    );
    assert_eq!(out.trail.len(), 2, "{:?}", out.trail);
    assert!(out.add_headers.is_empty());
}

#[test]
fn priority_order_ties_in_file_order_and_stop() {
    let set = load(
        "[[rules]]\nname = \"ten\"\npriority = 10\n[rules.actions]\nencrypt = \"Encrypt-Only\"\n\
         [[rules]]\nname = \"five-a\"\npriority = 5\n[rules.actions]\nadd_header = { name = \"X-1\", value = \"a\" }\n\
         [[rules]]\nname = \"five-b\"\npriority = 5\n[rules.actions]\nencrypt = \"Do-Not-Forward\"\nstop = true\n\
         [[rules]]\nname = \"first\"\npriority = -1\n[rules.actions]\nadd_header = { name = \"X-0\", value = \"z\" }\n",
    );
    let names: Vec<&str> = set.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["first", "five-a", "five-b", "ten"]);
    let out = set.evaluate(
        &MessageView::parse(&simple("s", "")),
        "a@acme.example",
        "b@other.example",
    );
    assert_eq!(out.trail.len(), 3, "stop ends evaluation: {:?}", out.trail);
    let Decision::Encrypt { template, .. } = &out.decision else {
        panic!()
    };
    assert_eq!(template.name, "Do-Not-Forward");
    let headers: Vec<&str> = out.add_headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(headers, ["X-0", "X-1"]);
}

#[test]
fn test_mode_only_adds_its_header() {
    let set = load(
        "[[rules]]\nname = \"trial\"\nmode = \"test\"\n[rules.actions]\nreject = \"no\"\n\
         [[rules]]\nname = \"trial 2\"\nmode = \"test\"\n[rules.actions]\nencrypt = \"Encrypt-Only\"\nstop = true\n\
         [[rules]]\nname = \"real\"\n[rules.actions]\nadd_header = { name = \"X-Real\", value = \"1\" }\n",
    );
    let out = set.evaluate(
        &MessageView::parse(&simple("s", "")),
        "a@acme.example",
        "b@other.example",
    );
    assert_eq!(out.decision, Decision::Original);
    assert_eq!(
        out.trail.len(),
        3,
        "test mode does not stop: {:?}",
        out.trail
    );
    let Step::Matched { mode, actions, .. } = &out.trail[0] else {
        panic!()
    };
    assert_eq!(*mode, Mode::Test);
    assert!(actions[0].contains("would reject"), "{actions:?}");
    let headers: Vec<(&str, &str)> = out
        .add_headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(
        headers,
        [
            (TEST_HEADER, "trial"),
            (TEST_HEADER, "trial 2"),
            ("X-Real", "1")
        ]
    );
}

#[test]
fn recipients_split_into_groups() {
    let set = load(
        "[[rules]]\nname = \"partners\"\n[rules.conditions]\nrecipient_domain = \"partner.example\"\n[rules.actions]\nreject = \"not to partners\"\n\
         [[rules]]\nname = \"outside\"\n[rules.conditions]\nrecipient_scope = \"outside\"\nattachment_extension = \"pdf\"\n\
         [rules.actions]\nencrypt = \"Do-Not-Forward\"\n",
    );
    let view = MessageView::parse(&fixture("contract.eml"));
    assert_eq!(
        view.recipients,
        [
            "bob@other.example",
            "carol@acme.example",
            "dave@partner.example",
            "erin@sub.acme.example"
        ]
    );
    let mut recipients = view.recipients.clone();
    recipients.push("zoe@other.example".into());
    let outcomes = set.evaluate_all(&view, view.from.as_deref().unwrap(), &recipients);
    let groups = group(&outcomes);
    let shape: Vec<(&str, Vec<&str>)> = groups
        .iter()
        .map(|g| {
            let kind = match &g.decision {
                Decision::Original => "original",
                Decision::Encrypt { .. } => "encrypt",
                Decision::Reject { .. } => "reject",
            };
            (kind, g.recipients.iter().map(String::as_str).collect())
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("encrypt", vec!["bob@other.example", "zoe@other.example"]),
            (
                "original",
                vec!["carol@acme.example", "erin@sub.acme.example"]
            ),
            ("reject", vec!["dave@partner.example"]),
        ]
    );
    assert!(outcomes[1].internal && !outcomes[0].internal);
    // Different headers make different copies, even with the same decision.
    let mut changed = outcomes.clone();
    changed[4].add_headers.push(AddHeader {
        name: "X".into(),
        value: "y".into(),
    });
    assert_eq!(group(&changed).len(), 4);
}

#[test]
fn unreadable_mail_still_has_a_size() {
    let view = MessageView::parse(b"");
    assert_eq!(view.size, 0);
    let view = MessageView::parse(b"\xff\xfe\x00garbage without headers");
    let set = load(
        "[[rules]]\nname = \"big\"\n[rules.conditions]\nsize_over = 5\n[rules.actions]\nencrypt = \"Encrypt-Only\"\n",
    );
    assert!(matches!(
        set.evaluate(&view, "a@acme.example", "b@x.example")
            .decision,
        Decision::Encrypt { .. }
    ));
}
