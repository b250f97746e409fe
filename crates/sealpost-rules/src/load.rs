//! Loading a rules file: the whole file is read and every mistake is collected, with its line
//! and column, before anything is returned; only a fully valid file yields a [`RuleSet`].
//!
//! The file is parsed with `toml`'s spanned document tree (`DeTable`), walked by hand so that
//! one mistake does not hide the next. Only `[organization]`, `[[templates]]` and `[[rules]]`
//! are read; every other top-level table (such as `[keyservice]`) belongs to another part of
//! Sealpost and is ignored. Conditions are read in `load_cond.rs`, actions in
//! `load_actions.rs`.

use std::fmt;
use std::ops::Range;

use sealpost_core::policy::{Right, Rights, Template, template_key};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::model::{Mode, Organization, Rule, RuleSet};

/// Header names searched by `classification` when `[organization]` names none.
pub const DEFAULT_CLASSIFICATION_HEADERS: [&str; 2] = ["X-Classification", "Sensitivity"];

/// One mistake in a rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong, in one line.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Every mistake in a rules file, in file order (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} error{} in the rules file",
            if n == 1 { "" } else { "s" }
        )?;
        if let Some(first) = self.0.first() {
            write!(f, ", the first at {first}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

pub(crate) type Val<'i> = Spanned<DeValue<'i>>;
/// A rule's name and where it is written.
type Named = (String, Range<usize>);
/// A table entry: the key with its span, and the value.
pub(crate) type Entry<'v, 'i> = (&'v Spanned<std::borrow::Cow<'i, str>>, &'v Val<'i>);

/// Collects errors while walking the document.
pub(crate) struct Loader<'s> {
    src: &'s str,
    pub(crate) errors: Vec<(usize, String)>,
    pub(crate) org: Organization,
    pub(crate) templates: Vec<Template>,
}

impl<'s> Loader<'s> {
    pub(crate) fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors.push((span.start, message.into()));
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let before = &self.src[..self.src.floor_char_boundary(offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// The entries of a table value, or an error when it is something else.
    pub(crate) fn table<'v, 'i>(
        &mut self,
        v: &'v Val<'i>,
        what: &str,
    ) -> Option<Vec<Entry<'v, 'i>>> {
        match v.get_ref() {
            DeValue::Table(t) => {
                let mut entries: Vec<_> = t.iter().collect();
                entries.sort_by_key(|(k, _)| k.span().start);
                Some(entries)
            }
            other => {
                self.err(
                    v.span(),
                    format!("{what} must be a table, not a {}", other.type_str()),
                );
                None
            }
        }
    }

    pub(crate) fn string(&mut self, v: &Val<'_>, what: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) if s.trim().is_empty() => {
                self.err(v.span(), format!("{what} must not be empty"));
                None
            }
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.err(
                    v.span(),
                    format!("{what} must be a string, not a {}", other.type_str()),
                );
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, v: &Val<'_>, what: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.err(
                    v.span(),
                    format!("{what} must be true or false, not a {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A string or a non-empty array of strings, each with its span.
    pub(crate) fn strings(
        &mut self,
        v: &Val<'_>,
        what: &str,
    ) -> Option<Vec<(String, Range<usize>)>> {
        match v.get_ref() {
            DeValue::Array(a) if a.is_empty() => {
                self.err(v.span(), format!("{what} must not be an empty list"));
                None
            }
            DeValue::Array(a) => {
                let mut out = Vec::new();
                let mut ok = true;
                for item in a.iter() {
                    match self.string(item, what) {
                        Some(s) => out.push((s, item.span())),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            DeValue::String(_) => Some(vec![(self.string(v, what)?, v.span())]),
            other => {
                self.err(
                    v.span(),
                    format!(
                        "{what} must be a string or a list of strings, not a {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    pub(crate) fn unknown_key(
        &mut self,
        span: Range<usize>,
        key: &str,
        section: &str,
        known: &str,
    ) {
        self.err(
            span,
            format!("unknown key `{key}` in {section} (known keys: {known})"),
        );
    }
}

impl RuleSet {
    /// Loads a rules file, collecting every error in it.
    pub fn load(src: &str) -> Result<RuleSet, LoadErrors> {
        let (doc, syntax) = DeTable::parse_recoverable(src);
        let mut l = Loader {
            src,
            errors: Vec::new(),
            org: Organization {
                domains: Vec::new(),
                classification_headers: DEFAULT_CLASSIFICATION_HEADERS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            },
            templates: Vec::new(),
        };
        let mut syntax_at = Vec::new();
        for e in syntax {
            let start = e.span().map_or(0, |s| s.start);
            syntax_at.push(start);
            let message = e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .to_string();
            l.errors.push((start, format!("invalid TOML: {message}")));
        }
        let doc = doc.into_inner();
        if let Some(org) = doc.get("organization") {
            l.organization(org);
        }
        if let Some(t) = doc.get("templates") {
            l.templates_list(t);
        }
        let mut rules = Vec::new();
        if let Some(r) = doc.get("rules") {
            rules = l.rules_list(r);
        }
        if l.errors.is_empty() {
            rules.sort_by_key(|r| r.priority);
            return Ok(RuleSet {
                organization: l.org,
                rules,
                templates: l.templates,
            });
        }
        let mut errs = std::mem::take(&mut l.errors);
        // A value the TOML parser could not read would also fail its own check: report once.
        errs.retain(|(at, m)| m.starts_with("invalid TOML") || !syntax_at.contains(at));
        errs.sort_by_key(|(at, _)| *at);
        errs.dedup();
        Err(LoadErrors(
            errs.into_iter()
                .map(|(at, message)| {
                    let (line, column) = l.position(at);
                    LoadError {
                        line,
                        column,
                        message,
                    }
                })
                .collect(),
        ))
    }
}

impl Loader<'_> {
    fn organization(&mut self, v: &Val<'_>) {
        let Some(entries) = self.table(v, "[organization]") else {
            return;
        };
        for (k, v) in entries {
            match k.get_ref().as_ref() {
                "domains" => {
                    if let Some(list) = self.strings(v, "organization domain") {
                        for (d, span) in list {
                            if let Some(d) = self.domain(&d, span) {
                                self.org.domains.push(d);
                            }
                        }
                    }
                }
                "classification_headers" => {
                    if let Some(list) = self.strings(v, "classification header") {
                        self.org.classification_headers.clear();
                        for (h, span) in list {
                            if let Some(h) = self.header_name(&h, span) {
                                self.org.classification_headers.push(h);
                            }
                        }
                    }
                }
                other => self.unknown_key(
                    k.span(),
                    other,
                    "[organization]",
                    "domains, classification_headers",
                ),
            }
        }
    }

    /// Checks a domain as written in the file; returns it lowercase.
    pub(crate) fn domain(&mut self, d: &str, span: Range<usize>) -> Option<String> {
        let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
        if d.is_empty() || d.contains('@') || d.chars().any(|c| c.is_whitespace() || c == '/') {
            self.err(
                span,
                format!("{d:?} is not a domain (write it as example.com)"),
            );
            return None;
        }
        Some(d)
    }

    /// Checks a header field name (printable ASCII, no colon or space).
    pub(crate) fn header_name(&mut self, h: &str, span: Range<usize>) -> Option<String> {
        if h.is_empty() || !h.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
            self.err(span, format!("{h:?} is not a header field name"));
            return None;
        }
        Some(h.to_string())
    }

    fn array_of_tables<'v, 'i>(&mut self, v: &'v Val<'i>, what: &str) -> Vec<&'v Val<'i>> {
        match v.get_ref() {
            DeValue::Array(a) => a.iter().collect(),
            other => {
                self.err(
                    v.span(),
                    format!(
                        "{what} must be an array of tables ([[{what}]]), not a {}",
                        other.type_str()
                    ),
                );
                Vec::new()
            }
        }
    }

    fn templates_list(&mut self, v: &Val<'_>) {
        for t in self.array_of_tables(v, "templates") {
            self.template(t);
        }
    }

    fn template(&mut self, v: &Val<'_>) {
        let Some(entries) = self.table(v, "a [[templates]] entry") else {
            return;
        };
        let (mut name, mut rights, mut expires) = (None, None, None);
        let mut ok = true;
        for (k, val) in entries {
            match k.get_ref().as_ref() {
                "name" => name = self.string(val, "template name").map(|n| (n, val.span())),
                "rights" => match self.strings(val, "right") {
                    Some(list) => {
                        let mut set = Vec::new();
                        for (r, span) in list {
                            match Right::parse(&r) {
                                Some(r) => set.push(r),
                                None => {
                                    ok = false;
                                    let known: Vec<&str> =
                                        Right::ALL.iter().map(|r| r.name()).collect();
                                    self.err(
                                        span,
                                        format!(
                                            "unknown right {r:?} (known: {})",
                                            known.join(", ")
                                        ),
                                    );
                                }
                            }
                        }
                        rights = Some(Rights::of(&set));
                    }
                    None => ok = false,
                },
                "expires_after" => match self.string(val, "expires_after") {
                    Some(s) => match humantime::parse_duration(&s) {
                        Ok(d) => expires = Some(d.as_secs()),
                        Err(e) => {
                            ok = false;
                            self.err(val.span(), format!("expires_after {s:?} is not a duration ({e}); write e.g. \"30days\" or \"12h\""));
                        }
                    },
                    None => ok = false,
                },
                other => {
                    ok = false;
                    self.unknown_key(k.span(), other, "a template", "name, rights, expires_after");
                }
            }
        }
        let Some((name, name_span)) = name else {
            if v.get_ref().get("name").is_none() {
                self.err(v.span(), "a template has no `name`");
            }
            return;
        };
        let Some(rights) = rights else {
            self.err(v.span(), format!("template {name:?} has no `rights`"));
            return;
        };
        if !ok {
            return;
        }
        if self
            .templates
            .iter()
            .any(|t| template_key(&t.name) == template_key(&name))
        {
            self.err(name_span, format!("template {name:?} is defined twice"));
            return;
        }
        match Template::custom(&name, rights, expires) {
            Ok(t) => self.templates.push(t),
            Err(e) => self.err(name_span, e.to_string()),
        }
    }

    fn rules_list(&mut self, v: &Val<'_>) -> Vec<Rule> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for r in self.array_of_tables(v, "rules") {
            let (rule, name) = self.rule(r);
            if let Some((name, span)) = name {
                if names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                    self.err(span, format!("rule name {name:?} is used twice"));
                    continue;
                }
                names.push(name);
            }
            rules.extend(rule);
        }
        rules
    }

    /// One rule (when valid) and its name with the name's span (when it has one).
    fn rule(&mut self, v: &Val<'_>) -> (Option<Rule>, Option<Named>) {
        let Some(entries) = self.table(v, "a [[rules]] entry") else {
            return (None, None);
        };
        let before = self.errors.len();
        let (mut name, mut priority, mut mode) = (None, 0i64, Mode::Enforce);
        let (mut conditions, mut exceptions, mut actions) = (Vec::new(), Vec::new(), None);
        let mut actions_span = v.span();
        for (k, val) in entries {
            match k.get_ref().as_ref() {
                "name" => name = self.string(val, "rule name").map(|n| (n, val.span())),
                "priority" => match val.get_ref() {
                    DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                        Ok(p) => priority = p,
                        Err(_) => self.err(val.span(), "priority is out of range"),
                    },
                    other => self.err(
                        val.span(),
                        format!("priority must be an integer, not a {}", other.type_str()),
                    ),
                },
                "mode" => match self.string(val, "mode").as_deref() {
                    Some("enforce") => mode = Mode::Enforce,
                    Some("test") => mode = Mode::Test,
                    Some(other) => self.err(
                        val.span(),
                        format!("mode {other:?} is neither \"enforce\" nor \"test\""),
                    ),
                    None => {}
                },
                "conditions" => conditions = self.conditions(val, "conditions"),
                "except" => exceptions = self.conditions(val, "except"),
                "actions" => {
                    actions_span = val.span();
                    actions = self.actions(val);
                }
                other => self.unknown_key(
                    k.span(),
                    other,
                    "a rule",
                    "name, priority, mode, conditions, except, actions",
                ),
            }
        }
        let Some((name, name_span)) = name else {
            if v.get_ref().get("name").is_none() {
                self.err(v.span(), "a rule has no `name`");
            }
            return (None, None);
        };
        let named = Some((name.clone(), name_span));
        let actions = match actions {
            Some(a) => a,
            None if self.errors.len() > before => return (None, named),
            None => {
                self.err(actions_span, format!("rule {name:?} has no actions"));
                return (None, named);
            }
        };
        let rule = (self.errors.len() == before).then_some(Rule {
            name,
            priority,
            mode,
            conditions,
            exceptions,
            actions,
        });
        (rule, named)
    }
}
