//! The page frame: a banner with the organization's branding, the main region that shows the
//! current step, a footer, and the polite status region screen readers announce.

use leptos::prelude::*;

use super::intake::{IntakePage, WaitingPage};
use super::message::MessagePage;
use super::pages::{CheckingPage, ErrorPage, OpeningPage};
use super::signin::{SenderCard, SignInPage};
use crate::app::{Ctx, Stage};

/// The whole app.
#[component]
pub fn Shell() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let brand_name = move || {
        ctx.tenant
            .get()
            .map(|t| t.display_name)
            .unwrap_or_else(|| "Secure message portal".into())
    };
    let tagline = move || ctx.tenant.get().and_then(|t| t.branding.tagline);
    let body = move || match ctx.stage.get() {
        Stage::Starting => view! { <p class="muted">"Loading…"</p> }.into_any(),
        Stage::Intake => view! { <IntakePage/> }.into_any(),
        Stage::Waiting => view! { <WaitingPage/> }.into_any(),
        Stage::Checking => view! { <CheckingPage/> }.into_any(),
        Stage::SignIn => view! { <SenderCard/> <SignInPage/> }.into_any(),
        Stage::Opening => view! { <SenderCard/> <OpeningPage/> }.into_any(),
        Stage::Reading => view! { <MessagePage/> }.into_any(),
        Stage::Failed(kind) => view! { <ErrorPage kind=kind/> }.into_any(),
    };
    view! {
        <a class="skip" href="#main">"Skip to content"</a>
        <header class="banner" data-testid="brand">
            <div class="banner-inner">
                <span class="logo" aria-hidden="true"></span>
                <div>
                    <p class="org">{brand_name}</p>
                    {move || tagline().map(|t| view! { <p class="tagline">{t}</p> })}
                </div>
            </div>
        </header>
        <main id="main" tabindex="-1">{body}</main>
        <footer class="footer">
            <p>"Protected by Sealpost. The message is decrypted in this browser; no server sees it."</p>
        </footer>
        <div class="visually-hidden" role="status" aria-live="polite">{move || ctx.status.get()}</div>
    }
}
