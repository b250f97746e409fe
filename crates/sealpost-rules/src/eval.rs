//! Evaluating rules for one recipient, and grouping recipients whose treatment is identical.
//!
//! Rules run in priority order (ties in file order). A rule applies when every condition
//! matches and no exception does. Enforced actions build the recipient's [`Decision`]: the first
//! `encrypt` wins (a later one is noted and ignored), `reject` overrides everything and ends
//! evaluation, `stop` ends it after the rule. A rule in test mode changes nothing but adds
//! `X-Sealpost-Rule-Test`. Every step is recorded in a trail for `sealpost rules test`.
//! Nothing here sends, encrypts or logs: the gateway acts on the [`Outcome`]s.

use sealpost_core::policy::{Template, normalize_address};
use serde::Serialize;

use crate::message::MessageView;
use crate::model::{AddHeader, Condition, Mode, RuleSet, Scope, domain_matches, domain_of};

/// The header a rule in test mode adds, with the rule's name as its value.
pub const TEST_HEADER: &str = "X-Sealpost-Rule-Test";

/// What happens to the message for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    /// Deliver the original.
    Original,
    /// Deliver the wrapper mail, sealed with this template.
    Encrypt {
        /// The template (rights, expiry).
        template: Template,
        /// Leave the subject out of the wrapper mail.
        remove_subject: bool,
    },
    /// Refuse the message for this recipient.
    Reject {
        /// The rule's text.
        text: String,
    },
}

impl Decision {
    /// The SMTP reply for a rejection: `550 5.7.1 TEXT`.
    pub fn smtp_reply(&self) -> Option<String> {
        match self {
            Decision::Reject { text } => Some(format!("550 5.7.1 {text}")),
            _ => None,
        }
    }
}

/// One step of the explanation trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// A condition did not match.
    NotMatched {
        /// The rule.
        rule: String,
        /// The condition that did not match.
        condition: String,
    },
    /// The conditions matched but an exception skipped the rule.
    Skipped {
        /// The rule.
        rule: String,
        /// The exception that matched, and why.
        exception: String,
    },
    /// The rule applied.
    Matched {
        /// The rule.
        rule: String,
        /// Enforce or test.
        mode: Mode,
        /// Why each condition matched.
        because: Vec<String>,
        /// What it did (or, in test mode, would have done).
        actions: Vec<String>,
    },
}

/// The result for one recipient.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The recipient (lowercase).
    pub recipient: String,
    /// Whether the recipient is inside the organization.
    pub internal: bool,
    /// What to deliver.
    #[serde(flatten)]
    pub decision: Decision,
    /// Headers to add to this recipient's copy.
    pub add_headers: Vec<AddHeader>,
    /// The explanation.
    pub trail: Vec<Step>,
}

/// Recipients that receive the same copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// What to deliver.
    #[serde(flatten)]
    pub decision: Decision,
    /// Headers to add to this copy.
    pub add_headers: Vec<AddHeader>,
    /// Who gets it, in the order first seen.
    pub recipients: Vec<String>,
}

/// Groups recipients with identical decisions and headers: one copy per group, groups in the
/// order their first recipient appears.
pub fn group(outcomes: &[Outcome]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for o in outcomes {
        match groups
            .iter_mut()
            .find(|g| g.decision == o.decision && g.add_headers == o.add_headers)
        {
            Some(g) if !g.recipients.contains(&o.recipient) => {
                g.recipients.push(o.recipient.clone())
            }
            Some(_) => {}
            None => groups.push(Group {
                decision: o.decision.clone(),
                add_headers: o.add_headers.clone(),
                recipients: vec![o.recipient.clone()],
            }),
        }
    }
    groups
}

struct Ctx<'a> {
    set: &'a RuleSet,
    msg: &'a MessageView,
    sender: String,
    recipient: String,
}

impl RuleSet {
    /// Evaluates the rules for every recipient.
    pub fn evaluate_all(
        &self,
        msg: &MessageView,
        sender: &str,
        recipients: &[String],
    ) -> Vec<Outcome> {
        recipients
            .iter()
            .map(|r| self.evaluate(msg, sender, r))
            .collect()
    }

    /// Evaluates the rules for one recipient; `sender` is the envelope sender (MAIL FROM).
    pub fn evaluate(&self, msg: &MessageView, sender: &str, recipient: &str) -> Outcome {
        let cx = Ctx {
            set: self,
            msg,
            sender: normalize_address(sender),
            recipient: normalize_address(recipient),
        };
        let mut decision = Decision::Original;
        let mut encrypted_by: Option<String> = None;
        let mut remove_subject = false;
        let mut headers: Vec<AddHeader> = Vec::new();
        let mut trail = Vec::new();
        for rule in &self.rules {
            let mut because = Vec::new();
            let mut failed = None;
            for c in &rule.conditions {
                match cx.check(c) {
                    Some(why) => because.push(why),
                    None => {
                        failed = Some(describe(c));
                        break;
                    }
                }
            }
            if let Some(condition) = failed {
                trail.push(Step::NotMatched {
                    rule: rule.name.clone(),
                    condition,
                });
                continue;
            }
            if rule.conditions.is_empty() {
                because.push("the rule has no conditions: it applies to every message".into());
            }
            if let Some(exception) = rule.exceptions.iter().find_map(|c| cx.check(c)) {
                trail.push(Step::Skipped {
                    rule: rule.name.clone(),
                    exception,
                });
                continue;
            }
            let a = &rule.actions;
            let mut actions = Vec::new();
            let mut stop = false;
            if rule.mode == Mode::Test {
                let mut would = Vec::new();
                if let Some(text) = &a.reject {
                    would.push(format!("reject with 550 5.7.1 {text}"));
                }
                if let Some(t) = &a.encrypt {
                    would.push(format!("encrypt with {}", t.name));
                }
                if a.remove_subject {
                    would.push("remove the subject".into());
                }
                for h in &a.add_headers {
                    would.push(format!("add header {}: {}", h.name, h.value));
                }
                if a.stop {
                    would.push("stop processing".into());
                }
                actions.push(format!(
                    "test mode, nothing enforced; would {}",
                    would.join(", ")
                ));
                actions.push(format!("add header {TEST_HEADER}: {}", rule.name));
                headers.push(AddHeader {
                    name: TEST_HEADER.into(),
                    value: rule.name.clone(),
                });
            } else {
                if let Some(text) = &a.reject {
                    decision = Decision::Reject { text: text.clone() };
                    actions.push(format!("reject with 550 5.7.1 {text}"));
                    stop = true;
                }
                if let Some(t) = &a.encrypt {
                    match &encrypted_by {
                        None => {
                            decision = Decision::Encrypt {
                                template: t.clone(),
                                remove_subject: false,
                            };
                            encrypted_by = Some(rule.name.clone());
                            actions.push(format!("encrypt with {}", t.name));
                        }
                        Some(by) => actions.push(format!(
                            "encrypt with {} ignored: rule {by:?} already chose the template",
                            t.name
                        )),
                    }
                }
                if a.remove_subject {
                    remove_subject = true;
                    actions.push("remove the subject from the wrapper".into());
                }
                for h in &a.add_headers {
                    headers.push(h.clone());
                    actions.push(format!("add header {}: {}", h.name, h.value));
                }
                if a.stop {
                    stop = true;
                    actions.push("stop processing further rules".into());
                }
            }
            trail.push(Step::Matched {
                rule: rule.name.clone(),
                mode: rule.mode,
                because,
                actions,
            });
            if stop {
                break;
            }
        }
        match &mut decision {
            Decision::Encrypt {
                remove_subject: r, ..
            } => *r = remove_subject,
            Decision::Reject { .. } => headers.clear(),
            Decision::Original => {}
        }
        Outcome {
            internal: self.is_internal(&cx.recipient),
            recipient: cx.recipient,
            decision,
            add_headers: headers,
            trail,
        }
    }
}

impl Ctx<'_> {
    /// Why `c` matches, or `None` when it does not.
    fn check(&self, c: &Condition) -> Option<String> {
        let msg = self.msg;
        match c {
            Condition::Recipient(list) => list
                .contains(&self.recipient)
                .then(|| format!("recipient is {}", self.recipient)),
            Condition::RecipientDomain(list) => {
                let d = domain_of(&self.recipient);
                list.iter()
                    .find(|w| domain_matches(&d, w))
                    .map(|w| format!("recipient {} is in domain {w}", self.recipient))
            }
            Condition::RecipientScope(scope) => {
                let inside = self.set.is_internal(&self.recipient);
                match (scope, inside) {
                    (Scope::Inside, true) => Some(format!(
                        "recipient {} is inside the organization",
                        self.recipient
                    )),
                    (Scope::Outside, false) => Some(format!(
                        "recipient {} is outside the organization",
                        self.recipient
                    )),
                    _ => None,
                }
            }
            Condition::Sender(list) => list
                .contains(&self.sender)
                .then(|| format!("sender is {}", self.sender)),
            Condition::SenderDomain(list) => {
                let d = domain_of(&self.sender);
                list.iter()
                    .find(|w| domain_matches(&d, w))
                    .map(|w| format!("sender {} is in domain {w}", self.sender))
            }
            Condition::SubjectContains(words) => words
                .find(&msg.subject)
                .map(|w| format!("subject contains {w:?}")),
            Condition::SubjectOrBodyContains(words) => {
                if let Some(w) = words.find(&msg.subject) {
                    return Some(format!("subject contains {w:?}"));
                }
                msg.bodies
                    .iter()
                    .find_map(|b| words.find(b))
                    .map(|w| format!("body contains {w:?}"))
            }
            Condition::SubjectMatches(patterns) => patterns
                .iter()
                .find(|p| p.is_match(&msg.subject))
                .map(|p| format!("subject matches /{}/", p.as_str())),
            Condition::HeaderContains { name, words } => msg
                .header_values(name)
                .find_map(|v| words.find(v))
                .map(|w| format!("header {name} contains {w:?}")),
            Condition::HeaderMatches { name, patterns } => msg.header_values(name).find_map(|v| {
                patterns
                    .iter()
                    .find(|p| p.is_match(v))
                    .map(|p| format!("header {name} matches /{}/", p.as_str()))
            }),
            Condition::AttachmentNameMatches(patterns) => msg.attachments.iter().find_map(|a| {
                patterns
                    .iter()
                    .find(|p| p.is_match(a))
                    .map(|p| format!("attachment {a:?} matches /{}/", p.as_str()))
            }),
            Condition::AttachmentExtension(exts) => msg.attachments.iter().find_map(|a| {
                let ext = a.rsplit_once('.')?.1.to_lowercase();
                exts.contains(&ext)
                    .then(|| format!("attachment {a:?} has extension {ext:?}"))
            }),
            Condition::SizeOver(limit) => (msg.size > *limit)
                .then(|| format!("message size {} bytes is over {limit} bytes", msg.size)),
            Condition::Classification(values) => self
                .set
                .organization
                .classification_headers
                .iter()
                .find_map(|h| {
                    msg.header_values(h).find_map(|v| {
                        values
                            .iter()
                            .find(|want| v.trim().eq_ignore_ascii_case(want))
                            .map(|want| format!("header {h} is {want:?}"))
                    })
                }),
        }
    }
}

/// A condition as the rules file states it, for the trail.
fn describe(c: &Condition) -> String {
    let list = |v: &[String]| format!("{v:?}");
    let pats =
        |v: &[regex::Regex]| format!("{:?}", v.iter().map(|r| r.as_str()).collect::<Vec<_>>());
    let value = match c {
        Condition::Recipient(v)
        | Condition::RecipientDomain(v)
        | Condition::Sender(v)
        | Condition::SenderDomain(v)
        | Condition::AttachmentExtension(v)
        | Condition::Classification(v) => list(v),
        Condition::RecipientScope(Scope::Inside) => "\"inside\"".into(),
        Condition::RecipientScope(Scope::Outside) => "\"outside\"".into(),
        Condition::SubjectContains(w) | Condition::SubjectOrBodyContains(w) => list(&w.words),
        Condition::SubjectMatches(p) | Condition::AttachmentNameMatches(p) => pats(p),
        Condition::HeaderContains { name, words } => format!("{name} {}", list(&words.words)),
        Condition::HeaderMatches { name, patterns } => format!("{name} {}", pats(patterns)),
        Condition::SizeOver(n) => format!("{n} bytes"),
    };
    format!("{} {value}", c.key())
}
