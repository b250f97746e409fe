//! Mail-flow rules for the Sealpost gateway: which mail is encrypted, with which template, and
//! which is rejected, decided per recipient.
//!
//! - [`RuleSet::load`] reads the `[organization]`, `[[templates]]` and `[[rules]]` parts of the
//!   gateway's TOML configuration and returns either a complete rule set or *every* mistake in
//!   the file with its line and column ([`LoadErrors`]); it never half-loads.
//! - [`MessageView::parse`] reads a message once into what rules look at.
//! - [`RuleSet::evaluate`] decides for one recipient ([`Outcome`]: a [`Decision`], headers to
//!   add and an explanation trail); [`group`] merges recipients with identical outcomes so the
//!   gateway sends one copy per group.
//!
//! This crate decides only: it does not speak SMTP, spool, encrypt or log. The format is
//! described in `docs/rules.md`.

#![forbid(unsafe_code)]

mod eval;
mod load;
mod load_actions;
mod load_cond;
mod message;
mod model;

pub use eval::{Decision, Group, Outcome, Step, TEST_HEADER, group};
pub use load::{DEFAULT_CLASSIFICATION_HEADERS, LoadError, LoadErrors};
pub use load_cond::{CONDITION_KEYS, parse_size};
pub use message::MessageView;
pub use model::{Actions, AddHeader, Condition, Mode, Rule, RuleSet, Scope, Words};
