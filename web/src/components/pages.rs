//! The small pages: checking, opening (with `progress`), and the error pages
//! (`error-page`, with `data-kind`).

use leptos::prelude::*;

use crate::api::PageKind;
use crate::app::{self, Ctx};

/// While the envelope is checked.
#[component]
pub fn CheckingPage() -> impl IntoView {
    view! {
        <section class="card" aria-busy="true">
            <h1 tabindex="-1" data-autofocus>"Checking the message…"</h1>
            <p class="muted">"Verifying the sender's signature with their organization's key service."</p>
        </section>
    }
}

/// While share B is fetched and the message decrypted.
#[component]
pub fn OpeningPage() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let percent = move || ctx.progress.get().map(|p| p.percent()).unwrap_or(0);
    view! {
        <section class="card" aria-busy="true">
            <h1 tabindex="-1" data-autofocus>"Opening the message…"</h1>
            <div data-testid="progress" class="progress-wrap">
                <progress max="100" value=move || percent().to_string() aria-label="Decrypting"></progress>
                <span class="muted">{move || match ctx.progress.get() {
                    Some(_) => format!("Decrypting: {}%", percent()),
                    None => "Unlocking with the key service…".to_string(),
                }}</span>
            </div>
        </section>
    }
}

/// An error page.
#[component]
pub fn ErrorPage(kind: PageKind) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let key_service = move || {
        (kind == PageKind::UnknownKeyService)
            .then(|| ctx.info.get().map(|i| i.key_service_url))
            .flatten()
    };
    view! {
        <section class="card error" data-testid="error-page" data-kind=kind.kind() role="alert">
            <h1 tabindex="-1" data-autofocus>{kind.title()}</h1>
            <p>{kind.explanation()}</p>
            {move || key_service().map(|u| view! {
                <p class="muted">"Key service named in the message: " <code>{u}</code></p>
            })}
            <div class="actions">
                {kind.retryable().then(|| view! {
                    <button class="primary" on:click=move |_| app::retry(ctx)>"Try again"</button>
                })}
                {(kind == PageKind::NotARecipient).then(|| view! {
                    <button class="primary" on:click=move |_| app::sign_out(ctx)>"Sign in with another address"</button>
                })}
                <button class="secondary" on:click=move |_| app::start_over(ctx)>"Open another message"</button>
            </div>
        </section>
    }
}
