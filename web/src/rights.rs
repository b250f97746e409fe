//! What the recipient may do with an opened message, from the sealed policy the key service
//! returned with share B (`rights`, `template`).
//!
//! The portal enforces these in the UI only: downloads appear only with `export`; without
//! `print` the page prints nothing but a notice (print CSS, and the `beforeprint` hook); without
//! `copy`, copy and cut are cancelled and text cannot be selected. A recipient who can read a
//! message can always photograph it; the rights make the sender's wishes the easy path, and
//! [`UiRights::banner`] says so plainly. Encrypt-Only grants everything.

use sealpost_core::policy::DO_NOT_FORWARD;
use sealpost_core::{Right, Rights};

/// The rights as the UI applies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiRights {
    /// Attachments may be downloaded.
    pub download: bool,
    /// The message may be printed.
    pub print: bool,
    /// Text may be copied.
    pub copy: bool,
    /// The message may be forwarded.
    pub forward: bool,
    /// The template's name.
    pub template: String,
}

impl UiRights {
    /// From the rewrap answer's rights and template.
    pub fn new(rights: Rights, template: &str) -> UiRights {
        UiRights {
            download: rights.contains(Right::Export),
            print: rights.contains(Right::Print),
            copy: rights.contains(Right::Copy),
            forward: rights.contains(Right::Forward),
            template: template.to_string(),
        }
    }

    /// Whether any restriction applies (and the banner shows).
    pub fn restricted(&self) -> bool {
        !(self.download && self.print && self.copy && self.forward)
    }

    /// The banner: a title and the sentence listing what is not allowed, or `None`.
    pub fn banner(&self) -> Option<(String, String)> {
        if !self.restricted() {
            return None;
        }
        let mut not = Vec::new();
        if !self.forward {
            not.push("forwarded");
        }
        if !self.print {
            not.push("printed");
        }
        if !self.copy {
            not.push("copied");
        }
        if !self.download {
            not.push("downloaded");
        }
        let list = match not.as_slice() {
            [] => String::new(),
            [one] => (*one).to_string(),
            [init @ .., last] => format!("{} or {last}", init.join(", ")),
        };
        let title = if self.template.eq_ignore_ascii_case(DO_NOT_FORWARD) {
            "Do not forward".to_string()
        } else {
            format!("Restricted: {}", self.template)
        };
        Some((
            title,
            format!(
                "The sender asked that this message and its attachments not be {list}. This portal turns those actions off."
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealpost_core::Template;

    #[test]
    fn do_not_forward_restricts_and_encrypt_only_does_not() {
        let dnf = UiRights::new(Template::do_not_forward().rights, "Do-Not-Forward");
        assert!(!dnf.download && !dnf.print && !dnf.copy && !dnf.forward);
        let (title, text) = dnf.banner().unwrap();
        assert_eq!(title, "Do not forward");
        assert!(
            text.contains("forwarded, printed, copied or downloaded"),
            "{text}"
        );
        let eo = UiRights::new(Template::encrypt_only().rights, "Encrypt-Only");
        assert!(eo.download && eo.print && eo.copy && eo.forward);
        assert_eq!(eo.banner(), None);
        let custom = UiRights::new(Rights::ALL, "x");
        assert!(!custom.restricted());
        let print_only = UiRights::new(
            Rights::of(&[Right::View, Right::Print, Right::Copy, Right::Forward]),
            "No export",
        );
        assert_eq!(
            print_only.banner().unwrap(),
            (
                "Restricted: No export".to_string(),
                "The sender asked that this message and its attachments not be downloaded. This portal turns those actions off.".to_string()
            )
        );
    }
}
