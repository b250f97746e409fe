//! The open message (`message-view`): header fields, bodies (text in `body-text`, HTML in the
//! sandboxed `body-html-frame`), `load-remote`, attachments with `attachment-download` only
//! with the export right, the `dnf-banner`, and nested messages (`nested-message`), shown
//! recursively. Above it: Reply, Reply all and Forward (`reply-actions`), the composer
//! (`compose`) while one is open, and the notice after sending (`compose-success`), from
//! [`super::compose`].

use std::sync::Arc;

use leptos::prelude::*;

use super::compose::{ComposePage, ReplyActions, SentNotice};
use crate::app::{self, Ctx};
use crate::browser;
use crate::open::DecryptPath;
use crate::render::mime::human_size;
use crate::render::sanitize::sanitize;
use crate::render::{Attachment, Body, MessageView, RenderOptions, html_document};

/// Whether showing `m` (and its nested messages) without remote content removes any.
fn any_remote_blocked(m: &MessageView) -> bool {
    m.bodies.iter().any(|b| match b {
        Body::Html(h) => sanitize(h, &m.inline, false).is_ok_and(|(_, blocked)| blocked),
        Body::Text(_) => false,
    }) || m.nested.iter().any(any_remote_blocked)
}

/// The message page.
#[component]
pub fn MessagePage() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let Some(message) = ctx.message.get_untracked() else {
        return view! { <p>"No message."</p> }.into_any();
    };
    let rights = ctx.rights.get_untracked();
    let blocked = any_remote_blocked(&message);
    let banner = rights.as_ref().and_then(|r| r.banner());
    let email = ctx
        .session
        .get_untracked()
        .map(|s| s.email)
        .unwrap_or_default();
    let no_copy = rights.as_ref().is_some_and(|r| !r.copy);
    let composing = Memo::new(move |_| ctx.draft.with(|d| d.as_ref().map(|d| d.kind)));
    view! {
        <div class="toolbar">
            <p class="muted">"Signed in as " <strong data-testid="signed-in-as">{email}</strong></p>
            <div class="actions">
                <button class="secondary" on:click=move |_| app::start_over(ctx)>"Open another message"</button>
                <button class="secondary" on:click=move |_| app::sign_out(ctx)>"Sign out"</button>
            </div>
        </div>
        <SentNotice/>
        {move || match composing.get() {
            Some(kind) => view! { <ComposePage kind=kind/> }.into_any(),
            None => view! { <ReplyActions/> }.into_any(),
        }}
        {banner.map(|(title, text)| view! {
            <aside class="dnf-banner" data-testid="dnf-banner" aria-labelledby="dnf-title">
                <h2 id="dnf-title">{title}</h2>
                <p>{text}</p>
            </aside>
        })}
        {move || (blocked && !ctx.remote_allowed.get()).then(|| view! {
            <div class="remote-notice">
                <p>"Remote images were blocked to protect your privacy: loading them tells the sender's servers when and where you read this message."</p>
                <button class="secondary" data-testid="load-remote" on:click=move |_| {
                    ctx.remote_allowed.set(true);
                    ctx.announce("Remote images are loading.");
                }>"Load remote images"</button>
            </div>
        })}
        <article class="card message" class:no-select=no_copy data-testid="message-view" aria-labelledby="msg-subject"
            data-decrypt-path=ctx.decrypt_path.get_untracked().map(DecryptPath::as_str)>
            {render_message(message, true)}
        </article>
    }
    .into_any()
}

fn field(label: &'static str, testid: &'static str, value: String) -> impl IntoView {
    (!value.is_empty()).then(|| {
        view! {
            <dt>{label}</dt>
            <dd data-testid=testid>{value}</dd>
        }
    })
}

fn render_message(m: Arc<MessageView>, top: bool) -> AnyView {
    let ctx = expect_context::<Ctx>();
    let allow_copy = ctx.rights.get_untracked().is_none_or(|r| r.copy);
    let may_download = ctx.rights.get_untracked().is_some_and(|r| r.download);
    let subject = if m.subject.is_empty() {
        "(no subject)".to_string()
    } else {
        m.subject.clone()
    };
    let heading = if top {
        view! { <h1 id="msg-subject" tabindex="-1" data-autofocus data-testid="field-subject">{subject}</h1> }
            .into_any()
    } else {
        view! { <h2 data-testid="field-subject">{subject}</h2> }.into_any()
    };
    let bodies = m
        .bodies
        .iter()
        .cloned()
        .map(|b| match b {
            Body::Text(t) => {
                view! { <pre class="body-text" data-testid="body-text">{t}</pre> }.into_any()
            }
            Body::Html(raw) => {
                let inline = Arc::clone(&m.inline);
                let doc = move || {
                    html_document(
                        &raw,
                        &inline,
                        RenderOptions {
                            allow_remote_images: ctx.remote_allowed.get(),
                            allow_copy,
                        },
                    )
                    .document
                };
                view! {
                    <iframe
                        class="body-frame"
                        data-testid="body-html-frame"
                        title="Message body"
                        sandbox="allow-popups allow-popups-to-escape-sandbox"
                        referrerpolicy="no-referrer"
                        srcdoc=doc
                    ></iframe>
                }
                .into_any()
            }
        })
        .collect_view();
    let attachments = (!m.attachments.is_empty()).then(|| {
        let items = m
            .attachments
            .iter()
            .cloned()
            .map(|a| attachment(a, may_download))
            .collect_view();
        view! {
            <section class="attachments" aria-label="Attachments">
                <h3>"Attachments"</h3>
                <ul>{items}</ul>
                {(!may_download).then(|| view! {
                    <p class="muted small">"The sender did not allow downloading the attachments."</p>
                })}
            </section>
        }
    });
    let nested = m
        .nested
        .iter()
        .cloned()
        .map(|n| {
            view! {
                <section class="nested" data-testid="nested-message" aria-label="Attached message">
                    <p class="muted small">"Attached message"</p>
                    {render_message(Arc::new(n), false)}
                </section>
            }
        })
        .collect_view();
    view! {
        {heading}
        <dl class="fields">
            {field("From", "field-from", m.from.clone())}
            {field("To", "field-to", m.to.clone())}
            {field("Cc", "field-cc", m.cc.clone())}
            {field("Date", "field-date", m.date.clone())}
        </dl>
        <div class="bodies">{bodies}</div>
        {attachments}
        {nested}
    }
    .into_any()
}

fn attachment(a: Attachment, may_download: bool) -> impl IntoView {
    let size = a.size();
    let label = format!("Download {}", a.name);
    let file = a.clone();
    view! {
        <li class="attachment" data-testid="attachment" data-name=a.name.clone() data-size=size.to_string() data-type=a.content_type.clone()>
            <span class="file-icon" aria-hidden="true"></span>
            <span class="file-meta">
                <span class="file-name">{a.name.clone()}</span>
                <span class="muted small">{format!("{} · {}", a.content_type, human_size(size))}</span>
            </span>
            {may_download.then(|| view! {
                <button class="secondary" data-testid="attachment-download" aria-label=label on:click=move |_| {
                    browser::download(&file.name, &file.content_type, &file.data);
                }>"Download"</button>
            })}
        </li>
    }
}
