//! The app: its state, the steps from envelope to message, and mounting.
//!
//! ```text
//! Starting → Intake | Waiting (for message.html's postMessage)
//!          → Checking (key service allowed? tenant info, signature)
//!          → SignIn (passcode) → Opening (rewrap, decrypt with progress) → Reading
//! any step → Failed(page)
//! ```
//!
//! Each step is an async function over [`Ctx`], the signals the components read. The steps
//! call the plain modules for every decision and `net`/`browser` for the browser; the
//! components in `components/` only show the state and call these functions.

use std::sync::Arc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{
    self, OtpStarted, PageKind, RewrapAnswer, RewrapFailure, RewrapRequest, TenantInfo,
};
use crate::browser;
use crate::components::Shell;
use crate::compose;
use crate::config::PortalConfig;
use crate::intake::{self, Fragment};
use crate::net;
use crate::open::{self, DecryptPath, EnvelopeInfo, PayloadDecryptor, Progress, RewrapKey};
use crate::render::{self, MessageView};
use crate::rights::UiRights;
use crate::session::Session;

/// Ciphertext fed to the decryptor between two yields to the browser.
pub const SLICE: usize = 4 << 20;

/// Where the recipient is.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Loading `config.json`.
    Starting,
    /// Waiting for a file, a link, or a drop.
    Intake,
    /// Waiting for `message.html` to hand the envelope over.
    Waiting,
    /// Checking the envelope with the key service's public information.
    Checking,
    /// Verified; signing in (or signed in, ready to open).
    SignIn,
    /// Getting share B and decrypting.
    Opening,
    /// Showing the message.
    Reading,
    /// An error page.
    Failed(PageKind),
}

/// The passcode step of sign-in.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    /// From `/v1/otp/start`.
    pub id: String,
    /// The address the code was requested for.
    pub email: String,
    /// Seconds it is valid.
    pub expires_in: u64,
}

/// The app's state, shared with every component by context.
#[derive(Clone, Copy)]
pub struct Ctx {
    /// The current step.
    pub stage: RwSignal<Stage>,
    /// `config.json`.
    pub config: RwSignal<Option<PortalConfig>>,
    /// The envelope bytes.
    pub envelope: RwSignal<Option<Arc<[u8]>>>,
    /// The verified header.
    pub info: RwSignal<Option<EnvelopeInfo>>,
    /// The organization.
    pub tenant: RwSignal<Option<TenantInfo>>,
    /// The session with the envelope's key service.
    pub session: RwSignal<Option<Session>>,
    /// The passcode step, once a code was requested.
    pub challenge: RwSignal<Option<Challenge>>,
    /// The sign-in problem shown in `signin-error`.
    pub signin_error: RwSignal<Option<String>>,
    /// A sign-in request is in flight.
    pub busy: RwSignal<bool>,
    /// Decryption progress.
    pub progress: RwSignal<Option<Progress>>,
    /// Which implementation decrypted the open message.
    pub decrypt_path: RwSignal<Option<DecryptPath>>,
    /// The message.
    pub message: RwSignal<Option<Arc<MessageView>>>,
    /// Its rights.
    pub rights: RwSignal<Option<UiRights>>,
    /// The recipient chose to load remote images.
    pub remote_allowed: RwSignal<bool>,
    /// The intake page's problem.
    pub intake_error: RwSignal<Option<String>>,
    /// The polite status region's text.
    pub status: RwSignal<String>,
    /// What Reply, Reply all and Forward need from the open message (`compose`).
    pub original: RwSignal<Option<Arc<compose::Original>>>,
    /// The reply being written; kept through a new sign-in, dropped with the message.
    pub draft: RwSignal<Option<compose::Draft>>,
    /// Where the composer is (sealing, sending, sent, a problem).
    pub compose_status: RwSignal<compose::Status>,
}

impl Ctx {
    /// Fresh state: starting, nothing loaded.
    pub(crate) fn new() -> Ctx {
        Ctx {
            stage: RwSignal::new(Stage::Starting),
            config: RwSignal::new(None),
            envelope: RwSignal::new(None),
            info: RwSignal::new(None),
            tenant: RwSignal::new(None),
            session: RwSignal::new(None),
            challenge: RwSignal::new(None),
            signin_error: RwSignal::new(None),
            busy: RwSignal::new(false),
            progress: RwSignal::new(None),
            decrypt_path: RwSignal::new(None),
            message: RwSignal::new(None),
            rights: RwSignal::new(None),
            remote_allowed: RwSignal::new(false),
            intake_error: RwSignal::new(None),
            status: RwSignal::new(String::new()),
            original: RwSignal::new(None),
            draft: RwSignal::new(None),
            compose_status: RwSignal::new(compose::Status::Editing),
        }
    }

    /// Puts a sentence in the status region (read out by screen readers).
    pub fn announce(&self, text: &str) {
        self.status.set(text.to_string());
    }

    fn go(&self, stage: Stage) {
        self.stage.set(stage);
        browser::focus_step();
    }

    fn fail(&self, kind: PageKind) {
        self.go(Stage::Failed(kind));
    }

    fn key_service(&self) -> Option<String> {
        self.info
            .get_untracked()
            .map(|i| i.key_service_url.trim_end_matches('/').to_string())
    }

    /// Keeps `session` for the tab (for this message's key service and tenant).
    pub fn keep_session(&self, session: &Session) {
        if let Some(info) = self.info.get_untracked() {
            browser::save_session(&info, session);
        }
    }

    /// Forgets the kept session for this message's key service and tenant.
    pub fn forget_session(&self) {
        if let Some(info) = self.info.get_untracked() {
            browser::clear_session(&info);
        }
    }
}

/// Mounts the portal on `<body>` and starts it.
pub fn mount() {
    browser::restore_clock();
    leptos::mount::mount_to_body(App);
    browser::mark_ready();
}

/// Mounts only the message view for `message` with `rights` into `parent`, as the app shows
/// it once a message is open (for the component tests; nothing is fetched or decrypted).
pub fn mount_message(
    parent: web_sys::HtmlElement,
    message: MessageView,
    rights: UiRights,
    email: &str,
) {
    let email = email.to_string();
    let handle = leptos::mount::mount_to(parent, move || {
        let ctx = Ctx::new();
        ctx.rights.set(Some(rights));
        ctx.message.set(Some(Arc::new(message)));
        ctx.session.set(Some(Session {
            token: String::new(),
            email,
            expires_at: u64::MAX,
            idle_timeout: u64::MAX,
            last_used: 0,
        }));
        provide_context(ctx);
        view! { <crate::components::MessagePage/> }
    });
    handle.forget();
}

#[component]
fn App() -> impl IntoView {
    let ctx = Ctx::new();
    provide_context(ctx);
    spawn_local(start(ctx));
    view! { <Shell/> }
}

async fn start(ctx: Ctx) {
    let config = match net::get_text(&browser::relative_url("config.json")).await {
        Ok(text) => PortalConfig::parse(&text).ok(),
        Err(_) => None,
    };
    let Some(config) = config else {
        ctx.fail(PageKind::Unavailable);
        return;
    };
    ctx.config.set(Some(config));
    match intake::parse_fragment(&browser::fragment()) {
        Fragment::Nothing => ctx.go(Stage::Intake),
        Fragment::Envelope(bytes) => {
            browser::clear_fragment();
            accept(ctx, bytes.into()).await;
        }
        Fragment::Broken => {
            browser::clear_fragment();
            ctx.intake_error
                .set(Some(intake::IntakeError::BadLink.to_string()));
            ctx.go(Stage::Intake);
        }
        Fragment::AwaitEnvelope => {
            browser::clear_fragment();
            await_handoff(ctx);
        }
    }
}

fn await_handoff(ctx: Ctx) {
    let Some(opener) = browser::opener() else {
        ctx.intake_error.set(Some(
            "The page that opened the portal is gone. Open message.html again, or drop it here."
                .into(),
        ));
        ctx.go(Stage::Intake);
        return;
    };
    ctx.go(Stage::Waiting);
    let expected = opener.clone();
    let handle = window_event_listener(leptos::ev::message, move |e: web_sys::MessageEvent| {
        if ctx.stage.get_untracked() != Stage::Waiting {
            return;
        }
        let from_opener = e
            .source()
            .is_some_and(|s| js_sys::Object::is(s.as_ref(), &expected));
        if !from_opener {
            return;
        }
        let (kind, version, envelope) = browser::handoff_fields(&e.data());
        match intake::parse_handoff(kind.as_deref(), version, envelope.as_deref()) {
            Ok(bytes) => spawn_local(accept(ctx, bytes.into())),
            Err(err) if kind.as_deref() == Some(intake::ENVELOPE_MESSAGE_TYPE) => {
                ctx.intake_error.set(Some(err.to_string()));
                ctx.go(Stage::Intake);
            }
            Err(_) => {}
        }
    });
    // The listener lives as long as the page; it ignores everything after the first hand-off.
    std::mem::forget(handle);
    browser::post_ready(&opener);
}

/// Reads a file the recipient dropped or picked.
pub fn accept_file(ctx: Ctx, file: web_sys::File) {
    spawn_local(async move {
        let Some(bytes) = browser::read_file(&file).await else {
            ctx.intake_error
                .set(Some("The file could not be read. Try again.".into()));
            return;
        };
        match intake::read_file_js(&bytes) {
            Ok(envelope) => accept(ctx, envelope.into()).await,
            Err(e) => {
                ctx.intake_error.set(Some(e.to_string()));
                ctx.announce(&e.to_string());
            }
        }
    });
}

/// Reads a pasted portal link.
pub fn accept_link(ctx: Ctx, link: &str) {
    match intake::parse_link(link) {
        Ok(bytes) => spawn_local(accept(ctx, bytes.into())),
        Err(e) => {
            ctx.intake_error.set(Some(e.to_string()));
            ctx.announce(&e.to_string());
        }
    }
}

async fn accept(ctx: Ctx, bytes: Arc<[u8]>) {
    ctx.intake_error.set(None);
    ctx.tenant.set(None);
    ctx.envelope.set(Some(Arc::clone(&bytes)));
    ctx.message.set(None);
    ctx.rights.set(None);
    compose::flow::forget(ctx);
    ctx.challenge.set(None);
    ctx.signin_error.set(None);
    ctx.remote_allowed.set(false);
    browser::apply_rights(None, move |_| {});
    let Ok(info) = open::read_envelope(&bytes) else {
        ctx.fail(PageKind::Damaged);
        return;
    };
    let allowed = ctx
        .config
        .get_untracked()
        .is_some_and(|c| c.allows(&info.key_service_url));
    ctx.info.set(Some(info.clone()));
    if !allowed {
        ctx.fail(PageKind::UnknownKeyService);
        return;
    }
    ctx.go(Stage::Checking);
    let base = info.key_service_url.trim_end_matches('/').to_string();
    let url = format!("{base}/v1/tenants/{}", net::encode_path(&info.tenant_id));
    let tenant: TenantInfo = match net::get_json(&url).await {
        Ok(t) => t,
        Err(e) => {
            ctx.fail(api::tenant_failure(&e));
            return;
        }
    };
    if tenant.tenant_id != info.tenant_id
        || open::verify_webcrypto(&bytes, &tenant.signing_keys)
            .await
            .is_err()
    {
        ctx.fail(PageKind::Damaged);
        return;
    }
    browser::set_accent(tenant.branding.safe_accent().as_deref());
    ctx.tenant.set(Some(tenant));
    let session = browser::load_session(&info);
    let signed_in = session.is_some();
    ctx.session.set(session);
    if signed_in {
        open_message(ctx).await;
    } else {
        ctx.go(Stage::SignIn);
    }
}

/// Asks for a passcode for `email`.
pub fn request_code(ctx: Ctx, email: String) {
    let (Some(bytes), Some(base)) = (ctx.envelope.get_untracked(), ctx.key_service()) else {
        return;
    };
    let email = email.trim().to_string();
    if !sealpost_core::policy::is_plausible_address(&email) {
        ctx.signin_error.set(Some(
            "Enter the e-mail address this message was sent to, like name@example.com.".into(),
        ));
        return;
    }
    ctx.busy.set(true);
    ctx.signin_error.set(None);
    spawn_local(async move {
        let Ok((header, license)) = open::license_fields(&bytes) else {
            ctx.fail(PageKind::Damaged);
            return;
        };
        let body = api::OtpStart {
            header: &header,
            license: &license,
            email: &email,
        };
        let answer: Result<OtpStarted, _> =
            net::post_json(&format!("{base}/v1/otp/start"), &body, None).await;
        ctx.busy.set(false);
        match answer {
            Ok(started) => {
                ctx.challenge.set(Some(Challenge {
                    id: started.challenge,
                    email: email.clone(),
                    expires_in: started.expires_in,
                }));
                ctx.announce(&format!(
                    "If {email} may read this message, a sign-in code is on its way to it."
                ));
                browser::focus_step();
            }
            Err(e) => {
                let p = api::start_problem(&e);
                match p.page {
                    Some(kind) => ctx.fail(kind),
                    None => ctx.signin_error.set(Some(p.text)),
                }
            }
        }
    });
}

/// Checks the passcode; on success keeps the session and opens the message.
pub fn verify_code(ctx: Ctx, code: String) {
    let (Some(challenge), Some(base)) = (ctx.challenge.get_untracked(), ctx.key_service()) else {
        return;
    };
    if code.trim().is_empty() {
        ctx.signin_error
            .set(Some("Enter the code from the sign-in e-mail.".into()));
        return;
    }
    ctx.busy.set(true);
    ctx.signin_error.set(None);
    spawn_local(async move {
        let body = api::OtpVerify {
            challenge: &challenge.id,
            code: code.trim(),
        };
        let answer: Result<api::OtpVerified, _> =
            net::post_json(&format!("{base}/v1/otp/verify"), &body, None).await;
        ctx.busy.set(false);
        match answer {
            Ok(verified) => {
                browser::learn_server_time(verified.server_time);
                let session = Session::from_verified(&verified, browser::now());
                ctx.keep_session(&session);
                ctx.session.set(Some(session));
                ctx.challenge.set(None);
                open_message(ctx).await;
            }
            Err(e) => {
                let p = api::verify_problem(&e);
                if p.need_new_code {
                    ctx.challenge.set(None);
                }
                ctx.signin_error.set(Some(p.text));
                browser::focus_step();
            }
        }
    });
}

/// Forgets the session (sign out, or "use another address").
pub fn sign_out(ctx: Ctx) {
    ctx.forget_session();
    ctx.session.set(None);
    ctx.challenge.set(None);
    ctx.signin_error.set(None);
    ctx.message.set(None);
    ctx.rights.set(None);
    compose::flow::forget(ctx);
    browser::apply_rights(None, |_| {});
    if ctx.envelope.get_untracked().is_some() {
        ctx.go(Stage::SignIn);
    } else {
        ctx.go(Stage::Intake);
    }
}

/// Starts over with another message.
pub fn start_over(ctx: Ctx) {
    ctx.envelope.set(None);
    ctx.info.set(None);
    ctx.tenant.set(None);
    ctx.message.set(None);
    ctx.rights.set(None);
    compose::flow::forget(ctx);
    ctx.challenge.set(None);
    ctx.signin_error.set(None);
    ctx.progress.set(None);
    browser::set_accent(None);
    browser::apply_rights(None, |_| {});
    ctx.go(Stage::Intake);
}

/// Retries after a temporary failure: opening again if the envelope was verified and the
/// recipient is signed in, else the whole check again.
pub fn retry(ctx: Ctx) {
    let verified = ctx.tenant.get_untracked().is_some();
    match (ctx.envelope.get_untracked(), ctx.session.get_untracked()) {
        (Some(_), Some(_)) if verified => spawn_local(open_message(ctx)),
        (Some(bytes), _) => spawn_local(accept(ctx, bytes)),
        (None, _) if ctx.config.get_untracked().is_none() => spawn_local(start(ctx)),
        (None, _) => ctx.go(Stage::Intake),
    }
}

/// Rewrap, open share B, decrypt with progress, read the message.
pub async fn open_message(ctx: Ctx) {
    let (Some(bytes), Some(base), Some(mut session)) = (
        ctx.envelope.get_untracked(),
        ctx.key_service(),
        ctx.session.get_untracked(),
    ) else {
        return;
    };
    ctx.progress.set(None);
    ctx.go(Stage::Opening);
    ctx.announce("Opening the message…");
    let Ok((header, license)) = open::license_fields(&bytes) else {
        ctx.fail(PageKind::Damaged);
        return;
    };
    let key = RewrapKey::generate(&mut rand_core::UnwrapErr(getrandom::SysRng));
    let public = key.public_key_base64();
    let body = RewrapRequest {
        header: &header,
        license: &license,
        client_public_key: &public,
    };
    let answer: Result<RewrapAnswer, _> =
        net::post_json(&format!("{base}/v1/rewrap"), &body, Some(&session.token)).await;
    let answer = match answer {
        Ok(a) => {
            browser::learn_server_time(a.server_time);
            a
        }
        Err(e) => {
            match api::rewrap_failure(&e) {
                RewrapFailure::Page(kind) => ctx.fail(kind),
                RewrapFailure::SignInAgain(text) => {
                    ctx.forget_session();
                    ctx.session.set(None);
                    ctx.signin_error.set(Some(text));
                    ctx.go(Stage::SignIn);
                }
                RewrapFailure::Retry(text) => {
                    ctx.signin_error.set(Some(text));
                    ctx.go(Stage::SignIn);
                }
            }
            return;
        }
    };
    session.last_used = browser::now();
    ctx.keep_session(&session);
    ctx.session.set(Some(session));

    let Ok(share) = key.open_share(&bytes, &answer.sealed_share) else {
        ctx.fail(PageKind::Damaged);
        return;
    };
    drop(key);
    let webcrypto = open::decrypt_webcrypto(&bytes, &share, |p| ctx.progress.set(Some(p))).await;
    let (plaintext, path) = match webcrypto {
        Ok(Ok(plaintext)) => (plaintext, DecryptPath::WebCrypto),
        Ok(Err(_)) => {
            ctx.fail(PageKind::Damaged);
            return;
        }
        Err(open::Unavailable) => match decrypt_rust(ctx, &bytes, &share).await {
            Some(plaintext) => (plaintext, DecryptPath::Rust),
            None => {
                ctx.fail(PageKind::Damaged);
                return;
            }
        },
    };
    drop(share);
    let Ok(view) = render::read_message(&plaintext) else {
        ctx.fail(PageKind::Damaged);
        return;
    };
    compose::flow::keep_original(ctx, &plaintext, &answer);
    drop(plaintext);
    let rights = UiRights::new(api::rights_of(&answer), &answer.template);
    browser::apply_rights(Some(&rights), move |t: &str| ctx.announce(t));
    ctx.rights.set(Some(rights));
    ctx.decrypt_path.set(Some(path));
    ctx.message.set(Some(Arc::new(view)));
    ctx.progress.set(None);
    ctx.go(Stage::Reading);
    ctx.announce("The message is open.");
}

/// The pure-Rust path: the core's streaming decryptor a slice at a time, yielding to the
/// browser between slices. `None` if the payload does not decrypt.
async fn decrypt_rust(
    ctx: Ctx,
    bytes: &Arc<[u8]>,
    share: &open::ShareB,
) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let mut decryptor = PayloadDecryptor::new(Arc::clone(bytes), share).ok()?;
    ctx.progress.set(Some(decryptor.progress()));
    while !decryptor.is_fed() {
        ctx.progress.set(Some(decryptor.step(SLICE).ok()?));
        browser::next_tick().await;
    }
    decryptor.finish().ok()
}
