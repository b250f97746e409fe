//! Sign-in with an OpenID Connect provider, in a popup.
//!
//! ```text
//! portal (opener)                        popup
//! click "Sign in with X" ── window.open ─► about:blank
//! POST /v1/oidc/start ─────────────────► location = authorization_url → provider's login
//!                                        provider redirects to the portal ?code=…&state=…
//!                                        the portal starts, sees code+state and an opener:
//! message {type:"sealpost-oidc",  ◄───── postMessage(…, own origin); window.close()
//!          code, state}
//! checks origin, source and state; POST /v1/oidc/finish → a session, as after a passcode
//! ```
//!
//! The opener accepts a message only from its own origin, from the popup it opened, and with
//! the state `/v1/oidc/start` gave it. It also watches the popup: when it is closed before a
//! code arrives the sign-in was cancelled; when the popup is back on the portal's origin but
//! could not post (a provider page cut the `window.opener` link), the opener reads the code
//! from the popup's address itself. The key service checks everything that matters (state,
//! PKCE, nonce, the ID token); these checks only keep the page from acting on another window's
//! message.
//!
//! The parsing and the texts are plain Rust, tested natively; the browser side exists only
//! on `wasm32`.

use crate::api::CallError;

/// The `type` of the message the redirect page posts to its opener.
pub const MESSAGE_TYPE: &str = "sealpost-oidc";

/// What the provider's redirect to the portal carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// Signed in at the provider: finish with these.
    Code {
        /// The authorization code.
        code: String,
        /// The state from `/v1/oidc/start`.
        state: String,
    },
    /// The provider reports an error (`access_denied` when the person cancelled).
    Error {
        /// The OAuth error code.
        error: String,
        /// The state, if the provider sent it back.
        state: String,
    },
}

/// Reads a redirect from a query string (`?code=…&state=…`, or `?error=…&state=…`); `None`
/// when it is not one.
pub fn parse_redirect(search: &str) -> Option<Redirect> {
    let mut code = None;
    let mut state = None;
    let mut error = None;
    for pair in search.trim_start_matches('?').split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v)?;
        match k {
            "code" => code = Some(v),
            "state" => state = Some(v),
            "error" => error = Some(v),
            _ => {}
        }
    }
    let state = state.filter(|s| !s.is_empty())?;
    match (code, error) {
        (_, Some(error)) => Some(Redirect::Error { error, state }),
        (Some(code), None) if !code.is_empty() => Some(Redirect::Code { code, state }),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` value decoding; `None` if it is not valid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The browser blocked the sign-in window.
pub const POPUP_BLOCKED: &str = "Your browser blocked the sign-in window. Allow pop-ups for this page and try again, or sign in with a code by e-mail.";

/// The text for a sign-in window closed before it finished, or an error the provider
/// reported in its redirect.
pub fn cancelled(provider: &str, error: Option<&str>) -> String {
    match error {
        None | Some("access_denied") => {
            format!(
                "Sign-in with {provider} was cancelled. Try again, or sign in with a code by e-mail."
            )
        }
        Some(_) => format!(
            "{provider} could not sign you in. Try again, or sign in with a code by e-mail."
        ),
    }
}

/// Explains a failed `/v1/oidc/start` or `/v1/oidc/finish`.
pub fn problem(e: &CallError, provider: &str) -> String {
    match e.code() {
        Some("email_not_verified") => format!(
            "The account you used at {provider} has no verified e-mail address, so it cannot show that this address is yours. Verify your address there, or sign in with a code by e-mail."
        ),
        Some("oidc_failed") => {
            format!("Sign-in with {provider} failed. Try again, or sign in with a code by e-mail.")
        }
        Some("oidc_state_invalid") => {
            "This sign-in took too long or was already used. Try again.".to_string()
        }
        Some("provider_unavailable") => format!(
            "{provider} cannot be reached right now. Try again in a moment, or sign in with a code by e-mail."
        ),
        Some("unknown_provider") => format!(
            "Sign-in with {provider} is no longer offered here. Sign in with a code by e-mail."
        ),
        Some("rate_limited") => {
            "Too many requests came from your network. Wait a minute and try again.".to_string()
        }
        _ => "The key service did not answer. Check your connection and try again in a moment."
            .to_string(),
    }
}

#[cfg(target_arch = "wasm32")]
pub use self::browser_side::{relay_redirect, sign_in_with};

#[cfg(target_arch = "wasm32")]
mod browser_side {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    use leptos::prelude::*;
    use leptos::task::spawn_local;
    use wasm_bindgen::JsCast;

    use super::{MESSAGE_TYPE, Redirect, cancelled, parse_redirect, problem};
    use crate::api::{self, OidcProvider, OtpVerified};
    use crate::app::{self, Ctx};
    use crate::browser;
    use crate::net;
    use crate::session::Session;

    fn window() -> web_sys::Window {
        web_sys::window().expect("a window")
    }

    fn own_origin() -> String {
        window().location().origin().unwrap_or_default()
    }

    /// In the sign-in popup, back from the provider: hands the code and state (or the
    /// provider's error) to the opener at the portal's own origin and closes. True if it did,
    /// so the portal does not start in this window.
    pub fn relay_redirect() -> bool {
        let w = window();
        let Some(redirect) = parse_redirect(&w.location().search().unwrap_or_default()) else {
            return false;
        };
        let Some(opener) = browser::opener() else {
            return false;
        };
        let message = js_sys::Object::new();
        let set = |k: &str, v: &str| {
            let _ = js_sys::Reflect::set(&message, &k.into(), &v.into());
        };
        set("type", MESSAGE_TYPE);
        match &redirect {
            Redirect::Code { code, state } => {
                set("code", code);
                set("state", state);
            }
            Redirect::Error { error, state } => {
                set("error", error);
                set("state", state);
            }
        }
        let target: &web_sys::Window = opener.unchecked_ref();
        if target.post_message(&message, &own_origin()).is_err() {
            return false;
        }
        let _ = w.close();
        true
    }

    /// A sign-in in progress: the popup, the state once known, the listener and the timer.
    struct Pending {
        popup: web_sys::Window,
        state: Option<String>,
        listener: Option<WindowListenerHandle>,
        timer: Option<IntervalHandle>,
        done: bool,
        /// The watch saw the popup closed once (a cancel is concluded on the next look).
        seen_closed: bool,
    }

    type Shared = Rc<RefCell<Pending>>;

    /// Starts a sign-in with `provider`: opens the popup now (inside the click, so the
    /// browser allows it), then asks the key service where to send it.
    pub fn sign_in_with(ctx: Ctx, provider: OidcProvider) {
        let (Some(info), Some(base)) = (ctx.info.get_untracked(), key_service(ctx)) else {
            return;
        };
        ctx.signin_error.set(None);
        let features = "popup,width=520,height=680";
        let popup =
            match window().open_with_url_and_target_and_features("", "sealpost-oidc", features) {
                Ok(Some(p)) => p,
                _ => {
                    ctx.signin_error.set(Some(super::POPUP_BLOCKED.into()));
                    browser::focus_step();
                    return;
                }
            };
        ctx.busy.set(true);
        let pending: Shared = Rc::new(RefCell::new(Pending {
            popup,
            state: None,
            listener: None,
            timer: None,
            done: false,
            seen_closed: false,
        }));
        let name = provider.display_name.clone();
        watch(ctx, &pending, &base, &name);
        spawn_local(async move {
            let body = api::OidcStart {
                tenant: &info.tenant_id,
                provider: &provider.id,
                login_hint: None,
            };
            let started: Result<api::OidcStarted, _> =
                net::post_json(&format!("{base}/v1/oidc/start"), &body, None).await;
            match started {
                Ok(s) => {
                    let mut p = pending.borrow_mut();
                    if p.done {
                        return;
                    }
                    p.state = Some(s.state);
                    if p.popup.location().set_href(&s.authorization_url).is_err() {
                        drop(p);
                        end(ctx, &pending, Some(super::POPUP_BLOCKED.into()));
                    }
                }
                Err(e) => end(ctx, &pending, Some(problem(&e, &name))),
            }
        });
    }

    /// Listens for the popup's message and watches whether it is closed or back on our
    /// origin.
    fn watch(ctx: Ctx, pending: &Shared, base: &str, name: &str) {
        let (p, b, n) = (pending.clone(), base.to_string(), name.to_string());
        let listener =
            window_event_listener(leptos::ev::message, move |e: web_sys::MessageEvent| {
                if e.origin() != own_origin() {
                    return;
                }
                let from_popup = {
                    let pending = p.borrow();
                    e.source()
                        .is_some_and(|s| js_sys::Object::is(s.as_ref(), pending.popup.as_ref()))
                };
                let data = e.data();
                let get = |k: &str| {
                    js_sys::Reflect::get(&data, &k.into())
                        .ok()
                        .and_then(|v| v.as_string())
                };
                if !from_popup || get("type").as_deref() != Some(MESSAGE_TYPE) {
                    return;
                }
                let redirect = match (get("code"), get("error"), get("state")) {
                    (_, Some(error), Some(state)) => Redirect::Error { error, state },
                    (Some(code), None, Some(state)) => Redirect::Code { code, state },
                    _ => return,
                };
                arrived(ctx, &p, &b, &n, redirect);
            });
        let (p, b, n) = (pending.clone(), base.to_string(), name.to_string());
        let timer = set_interval_with_handle(
            move || {
                let popup = p.borrow().popup.clone();
                if popup.closed().unwrap_or(true) {
                    // The redirect page posts its message and closes itself at once: the
                    // message may still be queued behind this tick. Only a popup found closed
                    // twice, 400 ms apart, with no answer in between, was cancelled.
                    if std::mem::replace(&mut p.borrow_mut().seen_closed, true) {
                        end(ctx, &p, Some(cancelled(&n, None)));
                    }
                    return;
                }
                // Readable only once the popup is back on our origin (else it throws).
                let search = popup.location().search().unwrap_or_default();
                if let Some(redirect) = parse_redirect(&search) {
                    arrived(ctx, &p, &b, &n, redirect);
                }
            },
            Duration::from_millis(400),
        )
        .ok();
        let mut pending = pending.borrow_mut();
        pending.listener = Some(listener);
        pending.timer = timer;
    }

    /// The provider's answer reached us: check the state, then finish.
    fn arrived(ctx: Ctx, pending: &Shared, base: &str, name: &str, redirect: Redirect) {
        let expected = pending.borrow().state.clone();
        let (Redirect::Code { state, .. } | Redirect::Error { state, .. }) = &redirect;
        if expected.as_deref() != Some(state.as_str()) || pending.borrow().done {
            return;
        }
        match redirect {
            Redirect::Error { error, .. } => end(ctx, pending, Some(cancelled(name, Some(&error)))),
            Redirect::Code { code, state } => {
                end(ctx, pending, None);
                ctx.busy.set(true);
                let (base, name) = (base.to_string(), name.to_string());
                spawn_local(async move {
                    let body = api::OidcFinish {
                        state: &state,
                        code: &code,
                    };
                    let answer: Result<OtpVerified, _> =
                        net::post_json(&format!("{base}/v1/oidc/finish"), &body, None).await;
                    ctx.busy.set(false);
                    match answer {
                        Ok(verified) => {
                            browser::learn_server_time(verified.server_time);
                            let session = Session::from_verified(&verified, browser::now());
                            ctx.keep_session(&session);
                            ctx.session.set(Some(session));
                            ctx.challenge.set(None);
                            app::open_message(ctx).await;
                        }
                        Err(e) => {
                            ctx.signin_error.set(Some(problem(&e, &name)));
                            browser::focus_step();
                        }
                    }
                });
            }
        }
    }

    /// Ends the popup part: stops listening and watching, closes the popup, and shows
    /// `error` if there is one.
    fn end(ctx: Ctx, pending: &Shared, error: Option<String>) {
        let mut p = pending.borrow_mut();
        if p.done {
            return;
        }
        p.done = true;
        if let Some(l) = p.listener.take() {
            l.remove();
        }
        if let Some(t) = p.timer.take() {
            t.clear();
        }
        let _ = p.popup.close();
        drop(p);
        ctx.busy.set(false);
        if let Some(text) = error {
            ctx.signin_error.set(Some(text));
            browser::focus_step();
        }
    }

    fn key_service(ctx: Ctx) -> Option<String> {
        ctx.info
            .get_untracked()
            .map(|i| i.key_service_url.trim_end_matches('/').to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorBody;

    #[test]
    fn redirects() {
        assert_eq!(
            parse_redirect("?code=a%2Bb&state=s1&iss=http%3A%2F%2Fidp"),
            Some(Redirect::Code {
                code: "a+b".into(),
                state: "s1".into()
            })
        );
        assert_eq!(
            parse_redirect("?error=access_denied&state=s1"),
            Some(Redirect::Error {
                error: "access_denied".into(),
                state: "s1".into()
            })
        );
        assert_eq!(parse_redirect(""), None);
        assert_eq!(parse_redirect("?code=a"), None);
        assert_eq!(parse_redirect("?code=&state=s"), None);
        assert_eq!(parse_redirect("?code=a&state=%ZZ"), None);
        assert_eq!(parse_redirect("?code=a&state=%C3"), None);
        assert_eq!(parse_redirect("?state=s"), None);
        assert_eq!(parse_redirect("?code=a&state=s%2"), None);
    }

    #[test]
    fn texts() {
        let err = |code: &str| CallError::Status {
            status: 400,
            body: ErrorBody {
                error: code.into(),
                remaining: None,
            },
            retry_after: None,
        };
        assert!(problem(&err("email_not_verified"), "Google").contains("no verified e-mail"));
        assert!(problem(&err("oidc_failed"), "Google").starts_with("Sign-in with Google failed"));
        assert!(problem(&err("oidc_state_invalid"), "Google").contains("took too long"));
        assert!(problem(&err("provider_unavailable"), "Google").contains("cannot be reached"));
        assert!(problem(&CallError::Network, "Google").contains("did not answer"));
        assert!(cancelled("Yahoo", None).contains("cancelled"));
        assert!(cancelled("Yahoo", Some("access_denied")).contains("cancelled"));
        assert!(cancelled("Yahoo", Some("server_error")).contains("could not sign you in"));
    }
}
