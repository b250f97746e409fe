//! The OpenAPI 3.1 document, generated from the handlers' annotations and served at
//! `/v1/openapi.json`. Each operation's error responses come from one list of error codes
//! ([`super::error::ERROR_CODES`]), grouped by status, so the document, the code and
//! docs/api.md name the same codes.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, Header, Object, Ref, RefOr, Response, ResponseBuilder, Type,
};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use super::error::{ErrorBody, ErrorCode, code};
use super::oidc;
use super::{admin, gateway, ops, recipient};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sealpost key service",
        description = "Recipient sign-in by one-time passcode, rewrap of share B, revocation and audit, \
                       and the mail gateway's reply authorization and transport decryption. \
                       Every error is JSON `{\"error\", \"message\"}`; see docs/api.md."
    ),
    paths(
        recipient::tenant_info,
        recipient::otp_start,
        recipient::otp_verify,
        recipient::rewrap,
        oidc::oidc_start,
        oidc::oidc_finish,
        admin::revoke,
        admin::audit,
        gateway::authorize_reply,
        gateway::transport_rewrap,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi,
    ),
    components(schemas(ErrorBody, ClientMarker)),
    modifiers(&BearerSchemes),
    tags(
        (name = "recipient", description = "Used by the portal in the recipient's browser."),
        (name = "admin", description = "Tenant administration, with an admin token."),
        (name = "gateway", description = "Used by the tenant's mail gateway, with a gateway token."),
        (name = "operations", description = "Health, readiness, metrics and this document."),
    )
)]
struct ApiDoc;

/// The OpenAPI document as JSON (built once).
pub fn openapi_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    })
}

/// The `X-Sealpost-Client` header's only value (schema only).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(super) enum ClientMarker {
    /// `1`.
    #[schema(rename = "1")]
    One,
}

struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            let mut http = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
            http.description = Some(what.to_string());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            "session",
            bearer("A session token from /v1/otp/verify (`sps_…`)."),
        );
        components.add_security_scheme(
            "admin",
            bearer("A tenant admin token from `sealpost admin token create` (`spa_…`)."),
        );
        components.add_security_scheme(
            "gateway",
            bearer("A tenant gateway token from `sealpost admin token create --role gateway` (`spg_…`)."),
        );
    }
}

/// The responses for a set of error codes: one per status, listing its codes.
fn error_responses(codes: &[ErrorCode]) -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for c in codes {
        by_status.entry(c.status).or_default().push(*c);
    }
    by_status
        .into_iter()
        .map(|(status, codes)| {
            let lines: Vec<String> = codes
                .iter()
                .map(|c| format!("- `{}`: {}", c.code, c.meaning))
                .collect();
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            let mut response = ResponseBuilder::new()
                .description(format!(
                    "Error (`error` is one of the codes below).\n\n{}",
                    lines.join("\n")
                ))
                .content("application/json", content);
            if matches!(status, 429 | 503) {
                let mut retry = Header::new(Object::with_type(Type::Integer));
                retry.description = Some(
                    "Seconds to wait before retrying (not sent with `too_many_attempts`).".into(),
                );
                response = response.header("Retry-After", retry);
            }
            if status == 401 {
                response = response.header("WWW-Authenticate", Header::default());
            }
            (status.to_string(), RefOr::T(response.build()))
        })
        .collect()
}

/// Errors any API route can give.
const ANY_ROUTE: [ErrorCode; 3] = [code::OVERLOADED, code::REQUEST_TIMEOUT, code::INTERNAL];
/// Errors any POST route can give before its handler runs.
const ANY_POST: [ErrorCode; 4] = [
    code::BAD_REQUEST,
    code::MISSING_CLIENT_HEADER,
    code::UNSUPPORTED_MEDIA_TYPE,
    code::TOO_LARGE,
];

macro_rules! operation_errors {
    ($($(#[$doc:meta])* $name:ident = [$($extra:expr),* $(,)?] $(+ $group:ident)*;)*) => {$(
        $(#[$doc])*
        pub(super) struct $name;
        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                let mut codes: Vec<ErrorCode> = ANY_ROUTE.to_vec();
                $(codes.extend($group);)*
                codes.extend([$($extra),*]);
                error_responses(&codes)
            }
        }
    )*};
}

operation_errors! {
    /// `GET /v1/tenants/{tenant_id}`.
    TenantErrors = [code::BAD_REQUEST, code::UNKNOWN_TENANT, code::UNAVAILABLE];
    /// `POST /v1/otp/start`.
    OtpStartErrors = [
        code::MALFORMED, code::BAD_ADDRESS, code::UNKNOWN_TENANT, code::UNKNOWN_KEY, code::LOCKED,
        code::TOO_MANY_CODES, code::RATE_LIMITED, code::UNAVAILABLE,
    ] + ANY_POST;
    /// `POST /v1/otp/verify`.
    OtpVerifyErrors = [
        code::WRONG_CODE, code::CODE_EXPIRED, code::LOCKED, code::TOO_MANY_ATTEMPTS,
        code::RATE_LIMITED, code::UNAVAILABLE,
    ] + ANY_POST;
    /// `POST /v1/rewrap`.
    RewrapErrors = [
        code::MALFORMED_LICENSE, code::BAD_CLIENT_KEY, code::NOT_SIGNED_IN, code::NOT_A_RECIPIENT,
        code::UNKNOWN_TENANT, code::REVOKED, code::EXPIRED, code::UNKNOWN_KEY, code::RATE_LIMITED,
        code::UNAVAILABLE,
    ] + ANY_POST;
    /// `POST /v1/oidc/start`.
    OidcStartErrors = [
        code::UNKNOWN_PROVIDER, code::UNKNOWN_TENANT, code::BAD_ADDRESS, code::PROVIDER_UNAVAILABLE,
        code::RATE_LIMITED, code::UNAVAILABLE,
    ] + ANY_POST;
    /// `POST /v1/oidc/finish`.
    OidcFinishErrors = [
        code::OIDC_STATE_INVALID, code::OIDC_FAILED, code::EMAIL_NOT_VERIFIED,
        code::PROVIDER_UNAVAILABLE, code::RATE_LIMITED, code::UNAVAILABLE,
    ] + ANY_POST;
    /// `POST /v1/admin/revoke`.
    RevokeErrors = [code::BAD_MESSAGE_ID, code::UNAUTHORIZED, code::UNAVAILABLE] + ANY_POST;
    /// `GET /v1/admin/messages/{message_id}/audit`.
    AuditErrors = [code::BAD_REQUEST, code::BAD_MESSAGE_ID, code::UNAUTHORIZED, code::UNAVAILABLE];
    /// `POST /v1/gateway/replies/authorize`.
    ReplyAuthorizeErrors = [
        code::UNAUTHORIZED, code::NOT_SIGNED_IN, code::MALFORMED_LICENSE, code::UNKNOWN_KEY,
        code::REVOKED, code::EXPIRED, code::NOT_A_RECIPIENT, code::RIGHT_NOT_GRANTED,
        code::REPLY_POLICY_INVALID, code::SENDER_MISMATCH, code::RECIPIENTS_NOT_ALLOWED,
        code::UNAVAILABLE,
    ] + ANY_POST;
    /// `POST /v1/gateway/transport/rewrap`.
    TransportRewrapErrors = [
        code::UNAUTHORIZED, code::TRANSPORT_DECRYPTION_DISABLED, code::BAD_CLIENT_KEY,
        code::MALFORMED_LICENSE, code::UNKNOWN_KEY, code::NOT_INTERNAL, code::NOT_A_RECIPIENT,
        code::REVOKED, code::EXPIRED, code::UNAVAILABLE,
    ] + ANY_POST;
}
