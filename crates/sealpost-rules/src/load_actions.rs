//! Reading the `actions` table of a rule: templates resolved, header fields checked, and
//! conflicting actions (`reject` with anything that delivers) refused.

use std::ops::Range;

use sealpost_core::policy::{Template, template_key};
use toml::de::DeValue;

use crate::load::{Loader, Val};
use crate::model::{Actions, AddHeader};

impl Loader<'_> {
    /// The template a rule names: a built-in one or one from `[[templates]]`.
    fn find_template(&mut self, name: &str, span: Range<usize>) -> Option<Template> {
        if let Some(t) = Template::builtin(name) {
            return Some(t);
        }
        let key = template_key(name);
        let found = self
            .templates
            .iter()
            .find(|t| template_key(&t.name) == key)
            .cloned();
        if found.is_none() {
            let mut known = vec!["Encrypt-Only".to_string(), "Do-Not-Forward".to_string()];
            known.extend(self.templates.iter().map(|t| t.name.clone()));
            self.err(
                span,
                format!("unknown template {name:?} (known: {})", known.join(", ")),
            );
        }
        found
    }

    pub(crate) fn actions(&mut self, v: &Val<'_>) -> Option<Actions> {
        let entries = self.table(v, "actions")?;
        let before = self.errors.len();
        let mut a = Actions::default();
        let mut stop_given = false;
        let mut spans: Vec<(&str, Range<usize>)> = Vec::new();
        for (k, val) in entries {
            let key = k.get_ref().as_ref();
            match key {
                "encrypt" => {
                    if let Some(t) = self.string(val, "encrypt") {
                        a.encrypt = self.find_template(&t, val.span());
                    }
                }
                "remove_subject" => {
                    a.remove_subject = self.boolean(val, "remove_subject").unwrap_or(false)
                }
                "reject" => {
                    if let Some(text) = self.string(val, "reject") {
                        if text.chars().any(|c| c.is_control()) || !text.is_ascii() {
                            self.err(val.span(), "the reject text must be one line of ASCII (it becomes the SMTP reply)");
                        } else {
                            a.reject = Some(text);
                        }
                    }
                }
                "add_header" => a.add_headers = self.add_headers(val),
                "stop" => {
                    stop_given = true;
                    a.stop = self.boolean(val, "stop").unwrap_or(false);
                }
                other => {
                    self.unknown_key(
                        k.span(),
                        other,
                        "actions",
                        "encrypt, remove_subject, reject, add_header, stop",
                    );
                    continue;
                }
            }
            spans.push((key, k.span()));
        }
        let span_of = |name: &str| {
            spans
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, s)| s.clone())
        };
        if let Some(span) = span_of("reject") {
            for other in ["encrypt", "remove_subject", "add_header"] {
                if span_of(other).is_some() {
                    self.err(
                        span.clone(),
                        format!("conflicting actions: `reject` cannot be combined with `{other}`"),
                    );
                }
            }
        }
        let nothing = spans.is_empty() || (stop_given && spans.len() == 1 && !a.stop);
        if nothing && self.errors.len() == before {
            self.err(v.span(), "the rule has no actions (give encrypt, remove_subject, reject, add_header or stop)");
        }
        (self.errors.len() == before).then_some(a)
    }

    fn add_headers(&mut self, v: &Val<'_>) -> Vec<AddHeader> {
        let items: Vec<&Val<'_>> = match v.get_ref() {
            DeValue::Array(a) => a.iter().collect(),
            _ => vec![v],
        };
        let mut out = Vec::new();
        for item in items {
            let Some(entries) = self.table(item, "add_header") else {
                continue;
            };
            let (mut name, mut value) = (None, None);
            for (k, val) in entries {
                match k.get_ref().as_ref() {
                    "name" => {
                        name = self
                            .string(val, "header name")
                            .and_then(|h| self.header_name(&h, val.span()))
                    }
                    "value" => match val.get_ref() {
                        DeValue::String(s) if s.contains(['\r', '\n']) => {
                            self.err(val.span(), "a header value must be one line")
                        }
                        DeValue::String(s) => value = Some(s.to_string()),
                        other => self.err(
                            val.span(),
                            format!("header value must be a string, not a {}", other.type_str()),
                        ),
                    },
                    other => self.unknown_key(k.span(), other, "add_header", "name, value"),
                }
            }
            match (name, value) {
                (Some(name), Some(value)) => out.push(AddHeader { name, value }),
                (_, None) if entries_missing(item, "value") => {
                    self.err(item.span(), "add_header needs a `value`")
                }
                (None, _) if entries_missing(item, "name") => {
                    self.err(item.span(), "add_header needs a `name`")
                }
                _ => {}
            }
        }
        out
    }
}

fn entries_missing(v: &Val<'_>, key: &str) -> bool {
    v.get_ref().get(key).is_none()
}
