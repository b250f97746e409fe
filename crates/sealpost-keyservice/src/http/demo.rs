//! The development mailbox of demo mode (`sealpost serve --demo`): `/dev/mailbox`.
//!
//! One server-rendered page (no script, no external resource, every value HTML-escaped) that
//! shows what a recipient would find in their mailbox:
//! - the mails in `DATA/demo-mailbox/*.eml` (filed there by the demo's gateway through its
//!   `file://` next hop, or put there by hand), each with whose mailbox it is in, a link to its
//!   `message.html` attachment when it is a protected wrapper mail, and to the `.eml`;
//! - the passcode mails of the key service's outbox, newest first, **codes in clear**.
//!
//! `message.html` is served inline as `text/html`, so a person can go mail → message.html →
//! portal in one browser. Its Content-Security-Policy allows exactly the file's own inline
//! script and style (by SHA-256 hash) and nothing else, and puts the page in a sandbox
//! (`allow-scripts allow-popups allow-popups-to-escape-sandbox`): it runs with an opaque
//! origin, so it cannot read the portal's storage although it is served from the same host,
//! and the portal window it opens is a normal, unsandboxed page.
//!
//! What it deliberately does not do: exist without `--demo` (the router adds it only then),
//! serve any file but the `.eml` files directly in that directory (names are looked up in the
//! directory listing, never joined into a path), or change anything (every route is a GET).

use std::path::PathBuf;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mail_parser::{Address, MessageParser, MimeHeaders};
use tower_http::set_header::SetResponseHeaderLayer;

use sealpost_core::mail::escape_html as escape;

use super::portal::{inline_elements, page_headers, sha256_source};
use crate::store::{OutboxRow, Store};

/// The mailbox directory's name inside the data directory.
pub const MAILBOX_DIR: &str = "demo-mailbox";

/// How many outbox mails the page shows.
const OUTBOX_SHOWN: i64 = 50;

/// Where the demo mailbox reads from.
#[derive(Clone)]
pub(crate) struct Mailbox {
    dir: PathBuf,
    store: Store,
}

impl Mailbox {
    pub(crate) fn new(dir: PathBuf, store: Store) -> Mailbox {
        Mailbox { dir, store }
    }
}

/// `/dev/mailbox`, `/dev/mailbox/{NAME}.eml`, `/dev/mailbox/{NAME}.eml/message.html`.
pub(crate) fn routes(mailbox: Mailbox) -> Router {
    let router = Router::new()
        .route("/dev/mailbox", get(page))
        .route("/dev/mailbox/{file}", get(download))
        .route("/dev/mailbox/{file}/message.html", get(message_html))
        .with_state(mailbox)
        .layer(SetResponseHeaderLayer::overriding(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    page_headers(router)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1b1f24}\
main{max-width:60rem;margin:0 auto;padding:1rem}\
.demo{background:#fde293;border:2px solid #b06000;padding:.75rem 1rem;margin:0 0 1rem;font-weight:600}\
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}\
ul{list-style:none;padding:0}li{background:#fff;border-radius:6px;padding:.75rem 1rem;margin:.5rem 0;box-shadow:0 1px 2px rgba(0,0,0,.15)}\
.meta{color:#4a5360;font-size:.9rem;word-break:break-all}\
a{color:#0b57d0;margin-right:1rem}a:focus{outline:3px solid #f9ab00;outline-offset:2px}\
pre{white-space:pre-wrap;background:#f4f5f7;padding:.5rem;overflow-wrap:anywhere}\
.code{font-size:1.4rem;font-family:monospace;letter-spacing:.1em}";

/// The page's CSP: its one style block by hash; no script, no image, no frame.
fn page_csp() -> HeaderValue {
    let csp = format!(
        "default-src 'none'; style-src {}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        sha256_source(STYLE.as_bytes())
    );
    HeaderValue::from_str(&csp).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
}

/// A wrapper mail in the mailbox directory, as the page lists it.
struct Mail {
    file: String,
    from: String,
    to: String,
    subject: String,
    date: String,
    /// Whose mailbox it was filed into (`Delivered-To`, set by the gateway's file:// hop).
    delivered_to: String,
    has_message_html: bool,
}

fn addresses(a: Option<&Address<'_>>) -> String {
    a.map(|a| {
        a.iter()
            .map(|addr| match (addr.name(), addr.address()) {
                (Some(n), Some(e)) => format!("{n} <{e}>"),
                (None, Some(e)) => e.to_string(),
                (Some(n), None) => n.to_string(),
                (None, None) => String::new(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    })
    .unwrap_or_default()
}

/// Whether `name` may be listed and served: a plain `.eml` file name.
fn valid_name(name: &str) -> bool {
    name.len() <= 200
        && name.ends_with(".eml")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The `.eml` files of the directory, sorted by name (a missing directory is empty).
async fn mail_files(dir: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return names;
    };
    while let Ok(Some(e)) = entries.next_entry().await {
        let is_file = e.file_type().await.is_ok_and(|t| t.is_file());
        if let Some(name) = e.file_name().to_str()
            && is_file
            && valid_name(name)
        {
            names.push(name.to_string());
        }
    }
    names.sort();
    names
}

/// Reads one listed mail; `None` if `file` is not one of the listed names.
async fn read_mail(mailbox: &Mailbox, file: &str) -> Option<Vec<u8>> {
    if !valid_name(file) || !mail_files(&mailbox.dir).await.iter().any(|n| n == file) {
        return None;
    }
    tokio::fs::read(mailbox.dir.join(file)).await.ok()
}

/// The `message.html` attachment of a wrapper mail.
fn message_html_of(raw: &[u8]) -> Option<Vec<u8>> {
    let message = MessageParser::default().parse(raw)?;
    message
        .attachments()
        .find(|p| p.attachment_name() == Some("message.html"))
        .map(|p| p.contents().to_vec())
}

fn describe(file: String, raw: &[u8]) -> Mail {
    let parsed = MessageParser::default().parse(raw);
    let get = |f: &dyn Fn(&mail_parser::Message<'_>) -> String| {
        parsed.as_ref().map(f).unwrap_or_default()
    };
    Mail {
        from: get(&|m| addresses(m.from())),
        to: get(&|m| addresses(m.to())),
        subject: get(&|m| m.subject().unwrap_or_default().to_string()),
        date: get(&|m| m.date().map(|d| d.to_rfc3339()).unwrap_or_default()),
        delivered_to: get(&|m| {
            m.header_raw("Delivered-To")
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        }),
        has_message_html: message_html_of(raw).is_some(),
        file,
    }
}

fn time(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0).unsigned_abs());
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The passcode in a passcode mail: the first line that is only digits (6 or more).
fn passcode_of(body: &str) -> Option<&str> {
    body.lines()
        .map(str::trim)
        .find(|l| l.len() >= 6 && l.bytes().all(|b| b.is_ascii_digit()))
}

async fn page(State(mailbox): State<Mailbox>) -> Response {
    let mut mails = Vec::new();
    for file in mail_files(&mailbox.dir).await {
        if let Ok(raw) = tokio::fs::read(mailbox.dir.join(&file)).await {
            mails.push(describe(file, &raw));
        }
    }
    let outbox = mailbox.store.outbox(OUTBOX_SHOWN).await;
    let html = render(
        &mailbox.dir.display().to_string(),
        &mails,
        outbox.as_deref().ok(),
    );
    if let Err(e) = &outbox {
        tracing::warn!(error = %e, "demo mailbox: the outbox cannot be read");
    }
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CONTENT_SECURITY_POLICY, page_csp()),
        ],
        html,
    )
        .into_response()
}

fn render(dir: &str, mails: &[Mail], outbox: Option<&[OutboxRow]>) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str("<title>Development mailbox — Sealpost demo</title>\n");
    h.push_str(&format!(
        "<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
    ));
    h.push_str("<p class=\"demo\" role=\"note\" data-testid=\"demo-banner\">Development mailbox — \
        demo mode only. This page exists because <code>sealpost serve</code> runs with <code>--demo</code>; \
        it shows passcodes in clear and must never be enabled for real users.</p>\n");
    h.push_str("<h1>Sealpost development mailbox</h1>\n");
    h.push_str(
        "<p>These are the protected mails a recipient would receive. Open a mail's \
        <strong>message.html</strong>, select <em>Open the message</em>, sign in with the \
        recipient's address, and take the passcode from the list below (reload this page after \
        asking for a code).</p>\n",
    );
    h.push_str(&format!(
        "<h2 id=\"mails\">Protected mails <span class=\"meta\">({})</span></h2>\n",
        escape(dir)
    ));
    if mails.is_empty() {
        h.push_str("<p>No mails yet: put wrapper mails (<code>sealpost encrypt</code> output, <code>*.eml</code>) into that directory.</p>\n");
    } else {
        h.push_str("<ul aria-labelledby=\"mails\">\n");
        for m in mails {
            let file = escape(&m.file);
            h.push_str(&format!(
                "<li data-testid=\"mailbox-mail\" data-file=\"{file}\">\n<strong>{}</strong>\n\
                 <div class=\"meta\">From {} · To {} · {}</div>\n<div class=\"meta\">{file}</div>\n<p>",
                escape(if m.subject.is_empty() { "(no subject)" } else { &m.subject }),
                escape(&m.from),
                escape(&m.to),
                escape(&m.date),
            ));
            if !m.delivered_to.is_empty() {
                h.push_str(&format!(
                    "<span data-testid=\"delivered-to\">In the mailbox of {}.</span> ",
                    escape(&m.delivered_to)
                ));
            }
            if m.has_message_html {
                h.push_str(&format!(
                    "<a data-testid=\"open-message-html\" href=\"/dev/mailbox/{file}/message.html\">Open message.html</a>"
                ));
            } else {
                h.push_str("<span>(not protected: no message.html attachment)</span> ");
            }
            h.push_str(&format!(
                "<a data-testid=\"download-eml\" href=\"/dev/mailbox/{file}\" download>Download {file}</a></p>\n</li>\n"
            ));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2 id=\"outbox\">Passcode mails <span class=\"meta\">(the key service's outbox, newest first)</span></h2>\n");
    match outbox {
        None => {
            h.push_str("<p>The outbox cannot be read right now (see the key service's log).</p>\n")
        }
        Some([]) => h.push_str(
            "<p>No passcode mail yet. Ask for a code in the portal, then reload this page.</p>\n",
        ),
        Some(rows) => {
            h.push_str("<ul aria-labelledby=\"outbox\">\n");
            for r in rows {
                let to = escape(&r.to_addr);
                h.push_str(&format!(
                    "<li data-testid=\"passcode-mail\" data-to=\"{to}\">\n<strong>{}</strong>\n\
                     <div class=\"meta\">To {to} · {}</div>\n",
                    escape(&r.subject),
                    time(r.created),
                ));
                if let Some(code) = passcode_of(&r.body) {
                    h.push_str(&format!(
                        "<p>Passcode: <span class=\"code\" data-testid=\"passcode\">{}</span></p>\n",
                        escape(code)
                    ));
                }
                h.push_str(&format!("<pre>{}</pre>\n</li>\n", escape(&r.body)));
            }
            h.push_str("</ul>\n");
        }
    }
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'"),
            ),
        ],
        "No such mail in the development mailbox.\n",
    )
        .into_response()
}

async fn download(State(mailbox): State<Mailbox>, UrlPath(file): UrlPath<String>) -> Response {
    let Some(raw) = read_mail(&mailbox, &file).await else {
        return not_found();
    };
    let disposition = format!("attachment; filename=\"{file}\"");
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("message/rfc822")),
            (
                CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
            (
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox"),
            ),
        ],
        raw,
    )
        .into_response()
}

/// The CSP for a `message.html`: its own inline scripts and styles by hash, in a sandbox that
/// may run them and open the (unsandboxed) portal.
pub(crate) fn message_html_csp(html: &[u8]) -> String {
    let hashes = |name: &[u8]| {
        let list: Vec<String> = inline_elements(html, name)
            .into_iter()
            .map(sha256_source)
            .collect();
        if list.is_empty() {
            "'none'".to_string()
        } else {
            list.join(" ")
        }
    };
    format!(
        "default-src 'none'; script-src {}; style-src {}; img-src data:; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'; \
         sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox",
        hashes(b"script"),
        hashes(b"style")
    )
}

async fn message_html(State(mailbox): State<Mailbox>, UrlPath(file): UrlPath<String>) -> Response {
    let Some(html) = read_mail(&mailbox, &file)
        .await
        .and_then(|raw| message_html_of(&raw))
    else {
        return not_found();
    };
    let csp = HeaderValue::from_str(&message_html_csp(&html))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; sandbox"));
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CONTENT_SECURITY_POLICY, csp),
        ],
        html,
    )
        .into_response()
}

#[cfg(test)]
#[path = "demo_tests.rs"]
mod tests;
