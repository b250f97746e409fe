//! Reading the `conditions` and `except` tables of a rule (both take the same keys).
//!
//! Every value is checked and compiled here: addresses normalized, domains lowercased, word
//! lists and regular expressions compiled once, sizes turned into bytes. Matching is
//! `eval.rs`'s job.

use std::ops::Range;

use regex::Regex;
use sealpost_core::policy::{is_plausible_address, normalize_address};
use toml::de::DeValue;

use crate::load::{Loader, Val};
use crate::model::{Condition, Scope, Words};

/// The condition keys, for error messages.
pub const CONDITION_KEYS: &str = "recipient, recipient_domain, recipient_scope, sender, \
sender_domain, subject_contains, subject_or_body_contains, subject_matches, header_contains, \
header_matches, attachment_name_matches, attachment_extension, size_over, classification";

impl Loader<'_> {
    pub(crate) fn conditions(&mut self, v: &Val<'_>, section: &str) -> Vec<Condition> {
        let Some(entries) = self.table(v, section) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, val) in entries {
            let key = k.get_ref().as_ref();
            let c = match key {
                "recipient" => self.addresses(val, "recipient").map(Condition::Recipient),
                "recipient_domain" => self.domains(val, key).map(Condition::RecipientDomain),
                "recipient_scope" => self.scope(val),
                "sender" => self.addresses(val, "sender").map(Condition::Sender),
                "sender_domain" => self.domains(val, key).map(Condition::SenderDomain),
                "subject_contains" => self.words(val, key).map(Condition::SubjectContains),
                "subject_or_body_contains" => {
                    self.words(val, key).map(Condition::SubjectOrBodyContains)
                }
                "subject_matches" => self.regexes(val, key).map(Condition::SubjectMatches),
                "header_contains" | "header_matches" => self.header_condition(key, val),
                "attachment_name_matches" => {
                    self.regexes(val, key).map(Condition::AttachmentNameMatches)
                }
                "attachment_extension" => self.strings(val, "attachment_extension").map(|l| {
                    Condition::AttachmentExtension(
                        l.into_iter()
                            .map(|(e, _)| e.trim().trim_start_matches('.').to_lowercase())
                            .collect(),
                    )
                }),
                "size_over" => self.size(val).map(Condition::SizeOver),
                "classification" => self.strings(val, "classification").map(|l| {
                    Condition::Classification(
                        l.into_iter().map(|(s, _)| s.trim().to_string()).collect(),
                    )
                }),
                other => {
                    self.unknown_key(k.span(), other, section, CONDITION_KEYS);
                    None
                }
            };
            out.extend(c);
        }
        out
    }

    fn addresses(&mut self, v: &Val<'_>, what: &str) -> Option<Vec<String>> {
        let list = self.strings(v, what)?;
        let mut out = Vec::new();
        let mut ok = true;
        for (a, span) in list {
            if is_plausible_address(a.trim()) {
                out.push(normalize_address(&a));
            } else {
                ok = false;
                self.err(
                    span,
                    format!("{a:?} is not an e-mail address (for a domain use {what}_domain)"),
                );
            }
        }
        ok.then_some(out)
    }

    fn domains(&mut self, v: &Val<'_>, what: &str) -> Option<Vec<String>> {
        let list = self.strings(v, what)?;
        let mut out = Vec::new();
        let mut ok = true;
        for (d, span) in list {
            match self.domain(&d, span) {
                Some(d) => out.push(d),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn scope(&mut self, v: &Val<'_>) -> Option<Condition> {
        let s = self.string(v, "recipient_scope")?;
        let scope = match s.as_str() {
            "inside" => Scope::Inside,
            "outside" => Scope::Outside,
            other => {
                self.err(
                    v.span(),
                    format!("recipient_scope {other:?} is neither \"inside\" nor \"outside\""),
                );
                return None;
            }
        };
        if self.org.domains.is_empty() {
            self.err(v.span(), "recipient_scope needs the organization's domains: add [organization] domains = [\"example.com\"]");
            return None;
        }
        Some(Condition::RecipientScope(scope))
    }

    fn words(&mut self, v: &Val<'_>, what: &str) -> Option<Words> {
        let list = self.strings(v, what)?;
        Some(Words::new(
            list.into_iter()
                .map(|(w, _)| w.trim().to_string())
                .collect(),
        ))
    }

    pub(crate) fn regexes(&mut self, v: &Val<'_>, what: &str) -> Option<Vec<Regex>> {
        let list = self.strings(v, what)?;
        let mut out = Vec::new();
        let mut ok = true;
        for (p, span) in list {
            match self.regex(&p, span) {
                Some(r) => out.push(r),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn regex(&mut self, p: &str, span: Range<usize>) -> Option<Regex> {
        match Regex::new(p) {
            Ok(r) => Some(r),
            Err(e) => {
                let text = e.to_string();
                let last = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                let reason = last.trim().trim_start_matches("error: ");
                self.err(span, format!("invalid regular expression {p:?}: {reason}"));
                None
            }
        }
    }

    fn header_condition(&mut self, key: &str, v: &Val<'_>) -> Option<Condition> {
        let entries = self.table(v, key)?;
        let list_key = if key == "header_contains" {
            "words"
        } else {
            "patterns"
        };
        let (mut name, mut words, mut patterns) = (None, None, None);
        let mut ok = true;
        for (k, val) in entries {
            match k.get_ref().as_ref() {
                "name" => {
                    name = self
                        .string(val, "header name")
                        .and_then(|h| self.header_name(&h, val.span()));
                    ok &= name.is_some();
                }
                "words" if list_key == "words" => {
                    words = self.words(val, "words");
                    ok &= words.is_some();
                }
                "patterns" if list_key == "patterns" => {
                    patterns = self.regexes(val, "patterns");
                    ok &= patterns.is_some();
                }
                other => {
                    ok = false;
                    self.unknown_key(k.span(), other, key, &format!("name, {list_key}"));
                }
            }
        }
        if !ok {
            return None;
        }
        let Some(name) = name else {
            self.err(v.span(), format!("{key} needs a header `name`"));
            return None;
        };
        match (words, patterns) {
            (Some(words), _) => Some(Condition::HeaderContains { name, words }),
            (_, Some(patterns)) => Some(Condition::HeaderMatches { name, patterns }),
            _ => {
                self.err(v.span(), format!("{key} needs `{list_key}`"));
                None
            }
        }
    }

    fn size(&mut self, v: &Val<'_>) -> Option<u64> {
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => u64::from_str_radix(i.as_str(), i.radix()).ok(),
            DeValue::String(s) => parse_size(s),
            _ => None,
        };
        if parsed.is_none() {
            self.err(v.span(), "size_over must be a number of bytes or a size such as \"10MB\", \"512KB\" or \"1GB\"");
        }
        parsed
    }
}

/// Parses `"10MB"`-style sizes: an integer and an optional unit B, KB, MB, GB (multiples of
/// 1024, as Exchange counts them; KiB, MiB, GiB mean the same), case-insensitive, spaces
/// allowed between number and unit.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let n: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "kib" | "k" => 1 << 10,
        "mb" | "mib" | "m" => 1 << 20,
        "gb" | "gib" | "g" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}
