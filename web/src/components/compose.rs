//! The composer (`compose`), shown above the open message: To and Cc (read-only for reply and
//! reply-all), Subject, the formatting toolbar (Bold, Italic, Bulleted list), Message, Attach
//! files with the list of attachments (`compose-attachment`, each with Remove), the protection
//! note (`compose-protection`), progress (`compose-progress`), problems (`compose-error`), Send
//! (`compose-send`) and Cancel; the reply buttons of the message view (`reply-actions`); and
//! the notice after sending (`compose-success`).
//!
//! Every decision is in [`crate::compose`]; every action calls [`crate::compose::flow`].

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::app::Ctx;
use crate::compose::text::{self, Style};
use crate::compose::{self, Kind, Status, flow};
use crate::render::mime::human_size;

/// Reply, Reply all and Forward, as the rights and the organization allow; or why not.
#[component]
pub fn ReplyActions() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let offer = move || {
        let original = ctx.original.get()?;
        let reply_url = ctx.tenant.get().and_then(|t| t.reply_url);
        let kinds = compose::offered(original.rights, reply_url.as_deref());
        let any_right = Kind::ALL
            .iter()
            .any(|k| original.rights.contains(k.right()));
        Some((kinds, any_right))
    };
    move || match offer() {
        Some((kinds, _)) if !kinds.is_empty() => {
            let buttons = kinds
                .into_iter()
                .map(|kind| {
                    view! {
                        <button class="secondary" data-testid=format!("compose-{}", kind.as_str().replace('_', "-"))
                            on:click=move |_| flow::start(ctx, kind)>{kind.label()}</button>
                    }
                })
                .collect_view();
            view! { <div class="actions reply-actions" data-testid="reply-actions" role="group" aria-label="Answer securely">{buttons}</div> }
                .into_any()
        }
        Some((_, true)) => {
            let org = ctx.tenant.get().map(|t| t.display_name).unwrap_or_default();
            view! {
                <p class="muted small" data-testid="reply-unavailable">
                    {format!("{org} has not set up secure replies from this portal, so this message cannot be answered here.")}
                </p>
            }
            .into_any()
        }
        _ => ().into_any(),
    }
}

/// The notice after a reply was sent.
#[component]
pub fn SentNotice() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    move || match ctx.compose_status.get() {
        status @ Status::Sent { .. } if ctx.draft.with(Option::is_none) => Some(view! {
            <div class="sent-notice" data-testid="compose-success" role="status">
                <p>{status.announcement()}</p>
                <button class="secondary" on:click=move |_| ctx.compose_status.set(Status::Editing)>"Dismiss"</button>
            </div>
        }),
        _ => None,
    }
}

fn field(ctx: Ctx, get: fn(&compose::Draft) -> String) -> Memo<String> {
    Memo::new(move |_| ctx.draft.with(|d| d.as_ref().map(get).unwrap_or_default()))
}

/// The composer for the open draft.
#[component]
pub fn ComposePage(kind: Kind) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let to = field(ctx, |d| d.to.clone());
    let cc = field(ctx, |d| d.cc.clone());
    let subject = field(ctx, |d| d.subject.clone());
    let body = field(ctx, |d| d.body.clone());
    let files = Memo::new(move |_| {
        ctx.draft.with(|d| {
            d.as_ref()
                .map(|d| {
                    d.attachments
                        .iter()
                        .map(|a| (a.name.clone(), a.content_type.clone(), a.data.len()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    });
    let busy = Memo::new(move |_| ctx.compose_status.with(Status::busy));
    let note = ctx
        .original
        .get_untracked()
        .map(|o| compose::submit::protection_note(&o))
        .unwrap_or_default();
    let editable = kind.editable_recipients();
    let area: NodeRef<leptos::html::Textarea> = NodeRef::new();

    let format = move |style: Style| {
        let Some(el) = area.get_untracked() else {
            return;
        };
        let value = el.value();
        let start = el.selection_start().ok().flatten().unwrap_or(0) as usize;
        let end = el.selection_end().ok().flatten().unwrap_or(0) as usize;
        let edit = text::apply(
            &value,
            text::utf16_to_byte(&value, start),
            text::utf16_to_byte(&value, end),
            style,
        );
        el.set_value(&edit.text);
        let (s, e) = (
            text::byte_to_utf16(&edit.text, edit.start) as u32,
            text::byte_to_utf16(&edit.text, edit.end) as u32,
        );
        flow::edit(ctx, |d| d.body = edit.text);
        let _ = el.focus();
        let _ = el.set_selection_range(s, e);
    };
    let tool = move |style: Style, glyph: &'static str| {
        view! {
            <button type="button" class="secondary tool" aria-label=style.label() title=style.label()
                on:mousedown=|e| e.prevent_default()
                on:click=move |_| format(style)>{glyph}</button>
        }
    };
    let pick = move |e: leptos::ev::Event| {
        let Some(input) = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let list = input.files();
        let picked: Vec<web_sys::File> = (0..list.as_ref().map_or(0, |l| l.length()))
            .filter_map(|i| list.as_ref()?.get(i))
            .collect();
        input.set_value("");
        flow::attach(ctx, picked);
    };
    let status = move || {
        let s = ctx.compose_status.get();
        match s {
            Status::Problem(_) | Status::Failed(_) => {
                let again = matches!(&s, Status::Failed(p) if p.sign_in_again);
                Some(view! {
                    <div class="problem-box" role="alert" data-testid="compose-error">
                        <p class="problem">{s.announcement()}</p>
                        {again.then(|| view! {
                            <button class="primary" on:click=move |_| flow::sign_in_again(ctx)>"Sign in again"</button>
                        })}
                    </div>
                }
                .into_any())
            }
            Status::Sealing | Status::Sending => Some(
                view! {
                    <p class="muted" data-testid="compose-progress" aria-live="polite">
                        <span class="spinner" aria-hidden="true"></span>" "{s.announcement()}
                    </p>
                }
                .into_any(),
            ),
            _ => None,
        }
    };
    let recipients_hint = if editable {
        "Separate addresses with commas. Recipients sign in to read it, like you did."
    } else {
        "A reply goes only to the people the sender allows; these addresses cannot be changed."
    };

    view! {
        <section class="card compose" data-testid="compose" data-kind=kind.as_str() aria-labelledby="compose-title" aria-busy=move || busy.get().to_string()>
            <h1 id="compose-title" tabindex="-1" data-autofocus>{kind.heading()}</h1>
            <p class="protection small" data-testid="compose-protection">{note}</p>
            <label for="compose-to">"To"</label>
            <input id="compose-to" type="text" data-testid="compose-to" autocomplete="off"
                readonly=!editable aria-describedby="compose-recipients-hint"
                prop:value=move || to.get()
                on:input=move |e| { let v = event_target_value(&e); flow::edit(ctx, |d| d.to = v) }/>
            <label for="compose-cc">"Cc"</label>
            <input id="compose-cc" type="text" data-testid="compose-cc" autocomplete="off"
                readonly=!editable aria-describedby="compose-recipients-hint"
                prop:value=move || cc.get()
                on:input=move |e| { let v = event_target_value(&e); flow::edit(ctx, |d| d.cc = v) }/>
            <p id="compose-recipients-hint" class="muted small">{recipients_hint}</p>
            <label for="compose-subject">"Subject"</label>
            <input id="compose-subject" type="text" data-testid="compose-subject" autocomplete="off"
                prop:value=move || subject.get()
                on:input=move |e| { let v = event_target_value(&e); flow::edit(ctx, |d| d.subject = v) }/>
            <label for="compose-body">"Message"</label>
            <div class="format-bar" role="toolbar" aria-label="Formatting" aria-controls="compose-body">
                {tool(Style::Bold, "B")}
                {tool(Style::Italic, "I")}
                {tool(Style::List, "• List")}
            </div>
            <textarea id="compose-body" data-testid="compose-body" rows="14" node_ref=area
                aria-describedby="compose-format-hint"
                prop:value=move || body.get()
                on:input=move |e| { let v = event_target_value(&e); flow::edit(ctx, |d| d.body = v) }></textarea>
            <p id="compose-format-hint" class="muted small">"Formatting: **bold**, _italic_, and lines starting with “- ” for a list."</p>
            <label for="compose-files">"Attach files"</label>
            <input id="compose-files" type="file" multiple data-testid="compose-files" on:change=pick/>
            <ul class="compose-files" aria-label="Attachments">
                {move || files.get().into_iter().enumerate().map(|(i, (name, ty, size))| {
                    let remove = format!("Remove {name}");
                    let removed = format!("{name} removed.");
                    view! {
                        <li class="attachment" data-testid="compose-attachment" data-name=name.clone()>
                            <span class="file-icon" aria-hidden="true"></span>
                            <span class="file-meta">
                                <span class="file-name">{name.clone()}</span>
                                <span class="muted small">{format!("{ty} · {}", human_size(size))}</span>
                            </span>
                            <button type="button" class="secondary" aria-label=remove on:click=move |_| {
                                flow::edit(ctx, |d| { if i < d.attachments.len() { d.attachments.remove(i); } });
                                ctx.announce(&removed);
                            }>"Remove"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            {status}
            <div class="actions">
                <button type="button" class="primary" data-testid="compose-send" disabled=move || busy.get()
                    on:click=move |_| flow::send(ctx)>"Send"</button>
                <button type="button" class="secondary" data-testid="compose-cancel" disabled=move || busy.get()
                    on:click=move |_| flow::cancel(ctx)>"Cancel"</button>
            </div>
        </section>
    }
}
