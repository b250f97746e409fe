//! The loaded rule set: rules, their conditions and actions, the organization and templates.
//!
//! These types are only ever built by the loader (`load.rs`), which has checked every value;
//! they hold compiled regular expressions and normalized addresses so that evaluation does no
//! parsing. Evaluation itself is in `eval.rs`.

use regex::Regex;
use sealpost_core::policy::Template;
use serde::Serialize;

/// A fully valid rules file: the only way to get one is [`RuleSet::load`](crate::RuleSet::load).
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub(crate) organization: Organization,
    /// Rules in evaluation order: priority, then file order.
    pub(crate) rules: Vec<Rule>,
    pub(crate) templates: Vec<Template>,
}

impl RuleSet {
    /// The rules in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
    /// The custom templates defined in the file.
    pub fn templates(&self) -> &[Template] {
        &self.templates
    }
    /// The organization's own domains (lowercase).
    pub fn domains(&self) -> &[String] {
        &self.organization.domains
    }
    /// Whether `addr` belongs to the organization: its domain is one of the organization's
    /// domains or a subdomain of one.
    pub fn is_internal(&self, addr: &str) -> bool {
        let domain = domain_of(addr);
        self.organization
            .domains
            .iter()
            .any(|d| domain_matches(&domain, d))
    }
}

/// `[organization]`: the tenant's internal domains and where classification labels live.
#[derive(Debug, Clone)]
pub(crate) struct Organization {
    pub(crate) domains: Vec<String>,
    pub(crate) classification_headers: Vec<String>,
}

/// Enforce or only report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The rule's actions are applied.
    Enforce,
    /// The rule only logs and adds `X-Sealpost-Rule-Test`.
    Test,
}

/// One mail-flow rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// Lower runs first.
    pub priority: i64,
    /// Enforce or test.
    pub mode: Mode,
    /// All must match (none: the rule applies to every message).
    pub conditions: Vec<Condition>,
    /// Any one that matches skips the rule.
    pub exceptions: Vec<Condition>,
    /// What the rule does.
    pub actions: Actions,
}

/// Inside or outside the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A recipient in one of the organization's domains.
    Inside,
    /// Any other recipient.
    Outside,
}

/// A list of words or phrases, matched case-insensitively on word boundaries.
#[derive(Debug, Clone)]
pub struct Words {
    /// The words as written.
    pub words: Vec<String>,
    pub(crate) regex: Regex,
}

impl Words {
    /// Compiles the word list (never fails: every word is escaped).
    pub(crate) fn new(words: Vec<String>) -> Words {
        let alternatives: Vec<String> = words
            .iter()
            .map(|w| {
                let starts = w.chars().next().is_some_and(is_word_char);
                let ends = w.chars().last().is_some_and(is_word_char);
                format!(
                    "{}{}{}",
                    if starts { r"\b" } else { "" },
                    regex::escape(w),
                    if ends { r"\b" } else { "" }
                )
            })
            .collect();
        let regex = Regex::new(&format!("(?i)(?:{})", alternatives.join("|")))
            .expect("escaped words always form a valid regex");
        Words { words, regex }
    }

    /// The first word found in `text`, as written in the rule.
    pub(crate) fn find(&self, text: &str) -> Option<String> {
        let m = self.regex.find(text)?;
        let found = m.as_str().to_lowercase();
        self.words
            .iter()
            .find(|w| w.to_lowercase() == found)
            .cloned()
            .or_else(|| Some(m.as_str().to_string()))
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// One condition or exception. Every list means "any of".
#[derive(Debug, Clone)]
pub enum Condition {
    /// `recipient`: the recipient is one of these addresses.
    Recipient(Vec<String>),
    /// `recipient_domain`: the recipient's domain is one of these, or a subdomain of one.
    RecipientDomain(Vec<String>),
    /// `recipient_scope`: inside or outside the organization.
    RecipientScope(Scope),
    /// `sender`: the sender is one of these addresses.
    Sender(Vec<String>),
    /// `sender_domain`: the sender's domain is one of these, or a subdomain of one.
    SenderDomain(Vec<String>),
    /// `subject_contains`: the subject contains one of the words.
    SubjectContains(Words),
    /// `subject_or_body_contains`: the subject or a text body contains one of the words.
    SubjectOrBodyContains(Words),
    /// `subject_matches`: the subject matches one of the patterns.
    SubjectMatches(Vec<Regex>),
    /// `header_contains`: a header with this name contains one of the words.
    HeaderContains {
        /// Header field name.
        name: String,
        /// Words.
        words: Words,
    },
    /// `header_matches`: a header with this name matches one of the patterns.
    HeaderMatches {
        /// Header field name.
        name: String,
        /// Patterns.
        patterns: Vec<Regex>,
    },
    /// `attachment_name_matches`: an attachment's file name matches one of the patterns.
    AttachmentNameMatches(Vec<Regex>),
    /// `attachment_extension`: an attachment's extension is one of these (lowercase, no dot).
    AttachmentExtension(Vec<String>),
    /// `size_over`: the message is larger than this many bytes.
    SizeOver(u64),
    /// `classification`: a classification header has one of these values.
    Classification(Vec<String>),
}

impl Condition {
    /// The configuration key of this condition kind.
    pub fn key(&self) -> &'static str {
        match self {
            Condition::Recipient(_) => "recipient",
            Condition::RecipientDomain(_) => "recipient_domain",
            Condition::RecipientScope(_) => "recipient_scope",
            Condition::Sender(_) => "sender",
            Condition::SenderDomain(_) => "sender_domain",
            Condition::SubjectContains(_) => "subject_contains",
            Condition::SubjectOrBodyContains(_) => "subject_or_body_contains",
            Condition::SubjectMatches(_) => "subject_matches",
            Condition::HeaderContains { .. } => "header_contains",
            Condition::HeaderMatches { .. } => "header_matches",
            Condition::AttachmentNameMatches(_) => "attachment_name_matches",
            Condition::AttachmentExtension(_) => "attachment_extension",
            Condition::SizeOver(_) => "size_over",
            Condition::Classification(_) => "classification",
        }
    }
}

/// A header a rule adds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct AddHeader {
    /// Field name.
    pub name: String,
    /// Field value (one line).
    pub value: String,
}

/// What a rule does when it matches (and no exception does).
#[derive(Debug, Clone, Default)]
pub struct Actions {
    /// Encrypt with this template (built-in or custom).
    pub encrypt: Option<Template>,
    /// Leave the subject out of the wrapper mail.
    pub remove_subject: bool,
    /// Reject with this text (SMTP 550 5.7.1).
    pub reject: Option<String>,
    /// Headers to add.
    pub add_headers: Vec<AddHeader>,
    /// Evaluate no further rules.
    pub stop: bool,
}

/// The lowercase domain of an address (everything after the last `@`), or the whole input.
pub(crate) fn domain_of(addr: &str) -> String {
    let addr = addr.trim();
    addr.rsplit_once('@')
        .map_or(addr, |(_, d)| d)
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Whether `domain` is `wanted` or a subdomain of it (both lowercase).
pub(crate) fn domain_matches(domain: &str, wanted: &str) -> bool {
    domain == wanted
        || domain
            .strip_suffix(wanted)
            .is_some_and(|rest| rest.ends_with('.'))
}
