//! `sealpost rules check` and `sealpost rules test`: the gateway's mail-flow rules, checked and
//! tried on a message without sending anything.
//!
//! Loading and evaluation are `sealpost-rules`'; this module reads files, picks recipients and
//! the sender, and prints. `check` is the one command whose failure prints more than one line:
//! every mistake as `FILE:LINE:COL: message` on standard error, then the usual error line.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sealpost_core::policy::is_plausible_address;
use sealpost_rules::{Decision, Group, MessageView, Outcome, RuleSet, Step, group};
use serde::Serialize;

use super::{read_input, write_stdout};
use crate::error::{CliError, CliResult, io_error};

/// Arguments of `rules check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The gateway configuration file with `[[rules]]`.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// Arguments of `rules test`.
#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// The gateway configuration file with `[[rules]]`.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The message (.eml); `-` reads stdin.
    #[arg(value_name = "MESSAGE")]
    pub message: PathBuf,
    /// A recipient to evaluate (repeatable); default: the message's To, Cc and Bcc.
    #[arg(long = "recipient", value_name = "ADDR")]
    pub recipients: Vec<String>,
    /// The envelope sender; default: the message's From address.
    #[arg(long, value_name = "ADDR")]
    pub sender: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn read_config(path: &Path) -> CliResult<String> {
    let bytes = std::fs::read(path).map_err(|e| io_error("read", path, e))?;
    String::from_utf8(bytes).map_err(|_| {
        CliError::new(
            format!("{} is not UTF-8 text", path.display()),
            "save the rules file as UTF-8",
        )
    })
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Runs `rules check`.
pub fn check(a: CheckArgs) -> CliResult<()> {
    let text = read_config(&a.config)?;
    match RuleSet::load(&text) {
        Ok(set) => write_stdout(format!("{} OK\n", plural(set.rules().len(), "rule")).as_bytes()),
        Err(errors) => {
            let mut out = String::new();
            for e in &errors.0 {
                let _ = writeln!(out, "{}:{e}", a.config.display());
            }
            let _ = std::io::stderr().lock().write_all(out.as_bytes());
            Err(CliError::new(
                format!(
                    "{} has {}",
                    a.config.display(),
                    plural(errors.0.len(), "error")
                ),
                "fix them and run `sealpost rules check` again",
            ))
        }
    }
}

#[derive(Serialize)]
struct Report<'a> {
    sender: &'a str,
    recipients: &'a [Outcome],
    groups: &'a [Group],
}

/// Runs `rules test`.
pub fn test(a: TestArgs) -> CliResult<()> {
    let text = read_config(&a.config)?;
    let set = RuleSet::load(&text).map_err(|errors| {
        let first = errors
            .0
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        CliError::new(
            format!(
                "{} has {} (first at {}:{first})",
                a.config.display(),
                plural(errors.0.len(), "error"),
                a.config.display()
            ),
            format!(
                "run `sealpost rules check --config {}` to see them all",
                a.config.display()
            ),
        )
    })?;
    let raw = read_input(&a.message)?;
    let view = MessageView::parse(&raw);
    let recipients = if a.recipients.is_empty() {
        view.recipients.clone()
    } else {
        a.recipients.clone()
    };
    if recipients.is_empty() {
        return Err(CliError::new(
            format!("{} has no To, Cc or Bcc recipients", a.message.display()),
            "name them with --recipient ADDR",
        ));
    }
    for r in &recipients {
        if !is_plausible_address(r) {
            return Err(CliError::new(
                format!("{r:?} is not an e-mail address"),
                "pass --recipient as local@domain",
            ));
        }
    }
    let sender = match (&a.sender, &view.from) {
        (Some(s), _) if !is_plausible_address(s) => {
            return Err(CliError::new(
                format!("{s:?} is not an e-mail address"),
                "pass --sender as local@domain",
            ));
        }
        (Some(s), _) => s.clone(),
        (None, Some(from)) => from.clone(),
        (None, None) => {
            return Err(CliError::new(
                format!("{} has no From address", a.message.display()),
                "name the sender with --sender ADDR",
            ));
        }
    };
    let outcomes = set.evaluate_all(&view, &sender, &recipients);
    let groups = group(&outcomes);
    if a.json {
        let report = Report {
            sender: &sender,
            recipients: &outcomes,
            groups: &groups,
        };
        let mut json = serde_json::to_vec_pretty(&report).expect("the report serializes");
        json.push(b'\n');
        return write_stdout(&json);
    }
    let names: Vec<&str> = set.rules().iter().map(|r| r.name.as_str()).collect();
    write_stdout(render(&sender, &names, &outcomes, &groups).as_bytes())
}

fn decision_text(d: &Decision) -> String {
    match d {
        Decision::Original => "deliver the original".into(),
        Decision::Encrypt {
            template,
            remove_subject,
        } => format!(
            "encrypt with {}{}",
            template.name,
            if *remove_subject {
                ", subject removed"
            } else {
                ""
            }
        ),
        Decision::Reject { text } => format!("reject: 550 5.7.1 {text}"),
    }
}

fn render(sender: &str, rules: &[&str], outcomes: &[Outcome], groups: &[Group]) -> String {
    let mut out = format!("sender: {sender}\n");
    for o in outcomes {
        let scope = if o.internal { "inside" } else { "outside" };
        let _ = writeln!(
            out,
            "\nrecipient {} ({scope}): {}",
            o.recipient,
            decision_text(&o.decision)
        );
        for step in &o.trail {
            let _ = match step {
                Step::NotMatched { rule, condition } => {
                    writeln!(
                        out,
                        "  rule {rule:?}: not matched ({condition} did not match)"
                    )
                }
                Step::Skipped { rule, exception } => {
                    writeln!(out, "  rule {rule:?}: skipped by exception: {exception}")
                }
                Step::Matched {
                    rule,
                    mode,
                    because,
                    actions,
                } => {
                    let mode = match mode {
                        sealpost_rules::Mode::Enforce => "matched",
                        sealpost_rules::Mode::Test => "matched (test mode)",
                    };
                    writeln!(
                        out,
                        "  rule {rule:?}: {mode} because {}\n    action: {}",
                        because.join("; "),
                        actions.join("; ")
                    )
                }
            };
        }
        if rules.is_empty() {
            out.push_str("  no rules\n");
        } else if let Some(rest) = rules.get(o.trail.len()..).filter(|r| !r.is_empty()) {
            let _ = writeln!(out, "  not evaluated, evaluation ended: {rest:?}");
        }
        for h in &o.add_headers {
            let _ = writeln!(out, "  header: {}: {}", h.name, h.value);
        }
    }
    let _ = writeln!(
        out,
        "\n{}:",
        plural(groups.len(), "copy").replace("copys", "copies")
    );
    for g in groups {
        let headers: Vec<String> = g
            .add_headers
            .iter()
            .map(|h| format!("{}: {}", h.name, h.value))
            .collect();
        let _ = writeln!(
            out,
            "  {} -> {}{}",
            decision_text(&g.decision),
            g.recipients.join(", "),
            if headers.is_empty() {
                String::new()
            } else {
                format!(" (adds {})", headers.join("; "))
            }
        );
    }
    out
}
