//! Before the message opens: the verified sender card (`sender`, `organization`,
//! `reference`) and sign-in by one-time passcode (`email-input`, `send-code`, `code-input`,
//! `verify-code`, `signin-error`, `signed-in-as`) or, beside it, with the tenant's OpenID
//! Connect providers (`oidc-providers`, one `oidc-button` each with `data-provider`).

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::app::{self, Ctx};

/// Who sent the message, verified.
#[component]
pub fn SenderCard() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let info = move || ctx.info.get();
    let org = move || ctx.tenant.get().map(|t| t.display_name).unwrap_or_default();
    view! {
        <section class="card sender" aria-label="About this message">
            <p class="verified">
                <span class="tick" aria-hidden="true">"✓"</span>
                " Signature verified: sent by this organization"
            </p>
            <dl class="facts">
                <dt>"From"</dt>
                <dd data-testid="sender">{move || info().map(|i| i.sender)}</dd>
                <dt>"Organization"</dt>
                <dd data-testid="organization">{org}</dd>
                {move || info().and_then(|i| i.subject).map(|s| view! {
                    <dt>"Subject"</dt>
                    <dd>{s}</dd>
                })}
                <dt>"Reference"</dt>
                <dd><code data-testid="reference">{move || info().map(|i| i.reference)}</code></dd>
            </dl>
        </section>
    }
}

/// Sign-in.
#[component]
pub fn SignInPage() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let error = move || {
        ctx.signin_error.get().map(|e| {
            view! { <p class="problem" role="alert" data-testid="signin-error">{e}</p> }
        })
    };
    let step = move || {
        if let Some(s) = ctx.session.get() {
            view! { <SignedIn email=s.email/> }.into_any()
        } else if ctx.challenge.get().is_some() {
            view! { <CodeForm/> }.into_any()
        } else {
            view! { <EmailForm/> <ProviderButtons/> }.into_any()
        }
    };
    view! {
        <section class="card" aria-labelledby="signin-title">
            <h1 id="signin-title">"Sign in to read it"</h1>
            {step}
            {error}
        </section>
    }
}

#[component]
fn EmailForm() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let email = RwSignal::new(String::new());
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        app::request_code(ctx, email.get_untracked());
    };
    view! {
        <form on:submit=submit novalidate>
            <p>"We send a one-time code to the address this message was sent to. Check that the code's e-mail names the same reference as above."</p>
            <label for="email-input">"Your e-mail address"</label>
            <div class="row">
                <input
                    id="email-input"
                    type="email"
                    autocomplete="email"
                    inputmode="email"
                    required
                    data-testid="email-input"
                    data-autofocus
                    prop:value=move || email.get()
                    on:input=move |e| email.set(event_target_value(&e))
                />
                <button type="submit" class="primary" data-testid="send-code" disabled=move || ctx.busy.get()>
                    {move || if ctx.busy.get() { "Sending…" } else { "Send code" }}
                </button>
            </div>
        </form>
    }
}

/// "Sign in with <provider>" buttons, when the tenant info lists providers.
#[component]
fn ProviderButtons() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    move || {
        let providers = ctx
            .tenant
            .get()
            .map(|t| t.oidc_providers)
            .unwrap_or_default();
        (!providers.is_empty()).then(|| {
            let buttons = providers
                .into_iter()
                .map(|p| {
                    let label = format!("Sign in with {}", p.display_name);
                    let id = p.id.clone();
                    view! {
                        <button
                            type="button"
                            class="secondary oidc-button"
                            data-testid="oidc-button"
                            data-provider=id
                            disabled=move || ctx.busy.get()
                            on:click=move |_| crate::oidc::sign_in_with(ctx, p.clone())
                        >
                            {label}
                        </button>
                    }
                })
                .collect_view();
            view! {
                <div class="oidc" data-testid="oidc-providers">
                    <p class="or">"Or sign in with an account that uses this address:"</p>
                    {buttons}
                </div>
            }
        })
    }
}

#[component]
fn CodeForm() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let code = RwSignal::new(String::new());
    let challenge = move || ctx.challenge.get();
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        app::verify_code(ctx, code.get_untracked());
    };
    let resend = move |_| {
        if let Some(c) = ctx.challenge.get_untracked() {
            code.set(String::new());
            app::request_code(ctx, c.email);
        }
    };
    let other = move |_| {
        ctx.challenge.set(None);
        ctx.signin_error.set(None);
    };
    view! {
        <form on:submit=submit novalidate>
            <p>
                "If " <strong>{move || challenge().map(|c| c.email)}</strong>
                " may read this message, a code is on its way to it. It works for "
                {move || challenge().map(|c| (c.expires_in / 60).max(1))}
                " minutes."
            </p>
            <label for="code-input">"Code from the e-mail"</label>
            <div class="row">
                <input
                    id="code-input"
                    type="text"
                    inputmode="numeric"
                    autocomplete="one-time-code"
                    data-testid="code-input"
                    data-autofocus
                    prop:value=move || code.get()
                    on:input=move |e| code.set(event_target_value(&e))
                />
                <button type="submit" class="primary" data-testid="verify-code" disabled=move || ctx.busy.get()>
                    {move || if ctx.busy.get() { "Checking…" } else { "Sign in" }}
                </button>
            </div>
            <div class="links">
                <button type="button" class="link" on:click=resend>"Send a new code"</button>
                <button type="button" class="link" on:click=other>"Use another address"</button>
            </div>
        </form>
    }
}

#[component]
fn SignedIn(email: String) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    view! {
        <p>"Signed in as " <strong data-testid="signed-in-as">{email}</strong></p>
        <div class="actions">
            <button class="primary" data-autofocus on:click=move |_| spawn_local(app::open_message(ctx))>
                "Open the message"
            </button>
            <button class="secondary" on:click=move |_| app::sign_out(ctx)>"Use another address"</button>
        </div>
    }
}
