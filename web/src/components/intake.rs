//! Intake: drop a file, pick one, or paste a link (`drop-zone`, `file-input`, `paste-link`,
//! `paste-open`); and the page shown while `message.html` hands the envelope over.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::app::{self, Ctx};

/// The intake page.
#[component]
pub fn IntakePage() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let dragging = RwSignal::new(false);
    let link = RwSignal::new(String::new());

    let over = window_event_listener(leptos::ev::dragover, move |e: web_sys::DragEvent| {
        e.prevent_default();
        dragging.set(true);
    });
    let leave = window_event_listener(leptos::ev::dragleave, move |_| dragging.set(false));
    let dropped = window_event_listener(leptos::ev::drop, move |e: web_sys::DragEvent| {
        e.prevent_default();
        dragging.set(false);
        if let Some(file) = e
            .data_transfer()
            .and_then(|d| d.files())
            .and_then(|f| f.get(0))
        {
            app::accept_file(ctx, file);
        }
    });
    on_cleanup(move || {
        over.remove();
        leave.remove();
        dropped.remove();
    });

    let picked = move |e: leptos::ev::Event| {
        let input: Option<web_sys::HtmlInputElement> = e.target().and_then(|t| t.dyn_into().ok());
        if let Some(file) = input
            .as_ref()
            .and_then(|i| i.files())
            .and_then(|f| f.get(0))
        {
            app::accept_file(ctx, file);
        }
        if let Some(i) = input {
            i.set_value("");
        }
    };
    let open_link = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        app::accept_link(ctx, &link.get_untracked());
    };

    view! {
        <section class="card" aria-labelledby="intake-title">
            <h1 id="intake-title" tabindex="-1" data-autofocus>"Open a protected message"</h1>
            <p>
                "Open the " <strong>"message.html"</strong>
                " attachment of the e-mail you received: it brings you here with the message. Or give the portal the file yourself:"
            </p>
            <div class="drop-zone" class:dragging=move || dragging.get() data-testid="drop-zone">
                <p class="drop-title">"Drop message.html or the whole e-mail (.eml) here"</p>
                <label for="file-input">"or choose the file"</label>
                <input
                    id="file-input"
                    type="file"
                    data-testid="file-input"
                    accept=".html,.htm,.eml,.sealpost,text/html,message/rfc822"
                    on:change=picked
                />
            </div>
            <form class="paste" on:submit=open_link>
                <label for="paste-link">"Or paste the portal link from the message"</label>
                <div class="row">
                    <input
                        id="paste-link"
                        type="text"
                        inputmode="url"
                        autocomplete="off"
                        spellcheck="false"
                        placeholder="https://…/#envelope=…"
                        data-testid="paste-link"
                        prop:value=move || link.get()
                        on:input=move |e| link.set(event_target_value(&e))
                    />
                    <button type="submit" class="primary" data-testid="paste-open">"Open"</button>
                </div>
            </form>
            {move || ctx.intake_error.get().map(|e| view! { <p class="problem" role="alert">{e}</p> })}
            <p class="muted small">
                "The message is decrypted in this browser. Nothing you drop here is uploaded."
            </p>
        </section>
    }
}

/// Waiting for `message.html` to send the envelope.
#[component]
pub fn WaitingPage() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    view! {
        <section class="card" aria-busy="true">
            <h1 tabindex="-1" data-autofocus>"Receiving the message…"</h1>
            <p>"The page you came from is handing the message to the portal."</p>
            <p class="muted">"Nothing happening? Drop message.html here instead."</p>
            <button class="secondary" on:click=move |_| app::start_over(ctx)>"Choose the file myself"</button>
        </section>
    }
}
