//! The composer's steps in the browser (wasm32 only): open a draft, add files, seal and send,
//! sign in again without losing the draft, close.
//!
//! Each decision is a call into the plain modules of [`crate::compose`]; this module only
//! moves values between them, the app's signals ([`Ctx`]), the browser's CSPRNG and `fetch`.
//! The message is built and sealed here, in memory (1 MiB at a time, the browser painting and
//! handling input in between); what `fetch` sends is the sealed envelope,
//! the original envelope as it arrived, the addresses and the threading ids. Nothing is
//! logged.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::message::{FileItem, MAX_MESSAGE_BYTES, build};
use super::submit::{self, OriginalJson, ReplyQueued, ReplyRequest, SendProblem};
use super::{Draft, Kind, Status};
use crate::app::{Ctx, Stage};
use crate::{browser, net};

fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

fn signed_in_address(ctx: Ctx) -> Option<String> {
    ctx.session.get_untracked().map(|s| s.email)
}

/// Opens the composer for `kind` with a fresh draft.
pub fn start(ctx: Ctx, kind: Kind) {
    let (Some(original), Some(me)) = (ctx.original.get_untracked(), signed_in_address(ctx)) else {
        return;
    };
    ctx.draft.set(Some(Draft::new(kind, &original, &me)));
    ctx.compose_status.set(Status::Editing);
    ctx.announce(&format!("{} opened.", kind.heading()));
    browser::focus_step();
}

/// Closes the composer and drops the draft.
pub fn cancel(ctx: Ctx) {
    ctx.draft.set(None);
    ctx.compose_status.set(Status::Editing);
    ctx.announce("The draft was discarded.");
    browser::focus_step();
}

/// Changes the draft.
pub fn edit(ctx: Ctx, f: impl FnOnce(&mut Draft)) {
    ctx.draft.update(|d| {
        if let Some(d) = d {
            f(d);
        }
    });
    if matches!(ctx.compose_status.get_untracked(), Status::Problem(_)) {
        ctx.compose_status.set(Status::Editing);
    }
}

/// Reads picked files into the draft (refusing what would make it too large).
pub fn attach(ctx: Ctx, files: Vec<web_sys::File>) {
    spawn_local(async move {
        for file in files {
            let current = ctx
                .draft
                .with_untracked(|d| d.as_ref().map(Draft::content_len))
                .unwrap_or(0);
            if current + file.size() as usize > MAX_MESSAGE_BYTES {
                ctx.compose_status.set(Status::Problem(format!(
                    "“{}” was not attached: text and attachments together may be at most 19 MB.",
                    file.name()
                )));
                return;
            }
            let Some(bytes) = browser::read_file(&file).await else {
                ctx.compose_status.set(Status::Problem(format!(
                    "“{}” could not be read. Try again.",
                    file.name()
                )));
                return;
            };
            let item = FileItem::picked(&file.name(), &file.type_(), bytes.to_vec());
            let name = item.name.clone();
            edit(ctx, |d| d.attachments.push(item));
            ctx.announce(&format!("{name} attached."));
        }
    });
}

/// Leaves the composer for sign-in, keeping the draft: after signing in, the message opens
/// again with the composer as it was.
pub fn sign_in_again(ctx: Ctx) {
    ctx.forget_session();
    ctx.session.set(None);
    ctx.signin_error.set(Some(
        "Your sign-in has ended. Sign in again; your message is kept and you can send it afterwards."
            .into(),
    ));
    ctx.compose_status.set(Status::Problem(
        "You are signed in again. Check your message and press Send.".into(),
    ));
    ctx.stage.set(Stage::SignIn);
    browser::focus_step();
}

/// Seals the draft and sends it to the gateway's reply endpoint.
pub fn send(ctx: Ctx) {
    if ctx.compose_status.get_untracked().busy() {
        return;
    }
    spawn_local(async move {
        let status = send_draft(ctx).await;
        if let Status::Sent { .. } = &status {
            ctx.draft.set(None);
        }
        ctx.announce(&status.announcement());
        ctx.compose_status.set(status);
        browser::focus_step();
    });
}

/// Feeds `plaintext` to `sealing` a part at a time, yielding to the browser between parts.
async fn seal_in_parts(
    sealing: Result<submit::Sealing, submit::SealProblem>,
    plaintext: &[u8],
) -> Result<Vec<u8>, submit::SealProblem> {
    let mut sealing = sealing?;
    for part in plaintext.chunks(submit::SEAL_PART) {
        sealing.update(part)?;
        browser::next_tick().await;
    }
    sealing.finish()
}

async fn send_draft(ctx: Ctx) -> Status {
    let problem = |text: String| Status::Problem(text);
    let (Some(draft), Some(original), Some(tenant), Some(envelope)) = (
        ctx.draft.get_untracked(),
        ctx.original.get_untracked(),
        ctx.tenant.get_untracked(),
        ctx.envelope.get_untracked(),
    ) else {
        return problem("The message to answer is no longer open. Open it again.".into());
    };
    let Some(mut session) = ctx.session.get_untracked() else {
        return Status::Failed(SendProblem {
            text: "You are not signed in. Sign in again; your message is kept.".into(),
            sign_in_again: true,
        });
    };
    let Some(endpoint) = tenant.reply_url.as_deref().and_then(submit::reply_endpoint) else {
        return problem(
            "The sender's organization does not accept replies from the portal.".into(),
        );
    };
    let kind = draft.kind;
    let original_len = envelope.len();
    let original_b64 = B64.encode(&*envelope);
    drop(envelope);
    if !submit::fits(0, original_b64.len()) {
        return problem(
            "The original message is too large to be answered from the portal. Nothing was sent."
                .into(),
        );
    }
    let recipients = match draft.recipients(&original, &session.email) {
        Ok(r) => r,
        Err(e) => return problem(e.to_string()),
    };

    ctx.compose_status.set(Status::Sealing);
    ctx.announce(&Status::Sealing.announcement());
    browser::next_tick().await;
    let now = browser::now();
    let built = match build(
        &draft,
        &original,
        &session.email,
        &recipients,
        now,
        &mut rng(),
    ) {
        Ok(b) => b,
        Err(e) => return problem(e.to_string()),
    };
    let policy = submit::policy(&original, &session.email, &recipients, now);
    let subject = submit::header_subject(&original, &draft.subject);
    drop(draft);
    let sealed = seal_in_parts(
        submit::start_seal(
            &original,
            &tenant,
            &policy,
            subject.as_deref(),
            now,
            built.bytes.len(),
            &mut rng(),
        ),
        &built.bytes,
    )
    .await;
    let threading = built.threading.clone();
    drop(built);
    let envelope_b64 = match sealed {
        Ok(env) => B64.encode(env),
        Err(e) => return problem(e.to_string()),
    };
    if !submit::fits(envelope_b64.len(), original_b64.len()) {
        // The request carries the original too: a large original leaves less room.
        return problem(if original_len > submit::MAX_ORIGINAL_BYTES {
            "The message answered is large, so this reply must be smaller. Remove an attachment."
                .into()
        } else {
            super::message::BuildError::TooLarge.to_string()
        });
    }

    ctx.compose_status.set(Status::Sending);
    ctx.announce(&Status::Sending.announcement());
    let request = ReplyRequest::new(
        kind,
        OriginalJson {
            envelope: &original_b64,
        },
        envelope_b64,
        &recipients,
        &threading,
    );
    let answer: Result<ReplyQueued, _> =
        net::post_json(&endpoint, &request, Some(&session.token)).await;
    match answer {
        Ok(queued) => {
            session.last_used = browser::now();
            ctx.keep_session(&session);
            ctx.session.set(Some(session));
            let recipients = if queued.recipients.is_empty() {
                recipients.all()
            } else {
                queued.recipients
            };
            Status::Sent { kind, recipients }
        }
        Err(e) => Status::Failed(submit::send_problem(kind, &e)),
    }
}

/// Keeps what replies need from a message just decrypted (`app::open_message`).
pub fn keep_original(ctx: Ctx, plaintext: &[u8], answer: &crate::api::RewrapAnswer) {
    let original = ctx
        .info
        .get_untracked()
        .and_then(|info| super::Original::read(plaintext, answer, &info));
    ctx.original.set(original.map(std::sync::Arc::new));
}

/// Forgets the original, any draft and the last send's outcome (another message, sign-out,
/// starting over).
pub fn forget(ctx: Ctx) {
    ctx.original.set(None);
    ctx.draft.set(None);
    ctx.compose_status.set(Status::Editing);
}

/// An opened message as `app::open_message` leaves the app's state, for [`mount_reading`].
pub struct Opened {
    /// The envelope bytes.
    pub envelope: std::sync::Arc<[u8]>,
    /// Its verified header.
    pub info: crate::open::EnvelopeInfo,
    /// The organization's public information.
    pub tenant: crate::api::TenantInfo,
    /// The session.
    pub session: crate::session::Session,
    /// The message view.
    pub message: crate::render::MessageView,
    /// Its rights.
    pub rights: crate::rights::UiRights,
    /// What replies need.
    pub original: super::Original,
}

/// Mounts the message view of `opened` into `parent` as the app shows it once a message is
/// open, reply buttons and composer included (for the component tests: nothing is fetched or
/// decrypted to get there; Send calls `fetch` as in the app).
pub fn mount_reading(parent: web_sys::HtmlElement, opened: Opened) {
    let handle = leptos::mount::mount_to(parent, move || {
        let ctx = Ctx::new();
        ctx.envelope.set(Some(opened.envelope));
        ctx.info.set(Some(opened.info));
        ctx.tenant.set(Some(opened.tenant));
        ctx.session.set(Some(opened.session));
        ctx.rights.set(Some(opened.rights));
        ctx.message.set(Some(std::sync::Arc::new(opened.message)));
        ctx.original.set(Some(std::sync::Arc::new(opened.original)));
        ctx.stage.set(Stage::Reading);
        provide_context(ctx);
        view! { <crate::components::MessagePage/> }
    });
    handle.forget();
}
