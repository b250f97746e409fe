//! Sign-in with OpenID Connect: start (an authorization URL with PKCE S256, state and nonce,
//! the flow kept in the database) and finish (take the flow once, exchange the code, validate
//! the ID token, accept a verified e-mail, open a session exactly like a passcode's).
//!
//! The `openidconnect` crate does discovery, PKCE, the token exchange and the ID-token checks:
//! exact issuer, audience = client id (no other audience), nonce, signature by a key of the
//! provider's JWKS, expiry against the service's [`Clock`](crate::clock::Clock). Discovery
//! documents are cached for [`METADATA_TTL`] seconds and fetched again once when a signature
//! does not verify (key rotation). State, nonce and verifier come from [`Entropy`](super::Entropy).
//!
//! What it deliberately does not do: use the access token or the userinfo endpoint, or trust
//! any claim but the validated ID token's `email` (with `email_verified`, see
//! [`crate::oidc::verified_email`]). Failures tell the client only which kind of failure; the
//! log says which check.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl,
    LoginHint, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use rand_core::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{KeyService, SessionIssued};
use crate::oidc::{OidcProvider, verified_email};
use crate::session;
use crate::store::{OidcFlowRow, SessionRow, StoreError, TakenFlow};

/// Seconds a started sign-in stays good.
pub const FLOW_LIFETIME_SECS: i64 = 600;

/// Seconds a provider's discovery document (and its keys) is reused.
pub const METADATA_TTL: i64 = 3600;

/// The claims we read besides the standard ones: Microsoft's `xms_edov`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct ExtraClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xms_edov: Option<serde_json::Value>,
}

impl AdditionalClaims for ExtraClaims {}

type Fields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<Fields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The configured providers and the HTTP client that talks to them.
pub struct OidcProviders {
    providers: Vec<Provider>,
    http: reqwest::Client,
}

struct Provider {
    config: OidcProvider,
    /// The discovery document and when it was fetched.
    metadata: Mutex<Option<(i64, CoreProviderMetadata)>>,
}

/// A provider as the portal lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OidcProviderInfo {
    /// The provider's id, for `/v1/oidc/start`.
    pub id: String,
    /// "Sign in with …".
    pub display_name: String,
    /// `google`, `microsoft`, `yahoo` or `generic`.
    pub preset: &'static str,
}

impl OidcProviders {
    /// The providers, with an HTTP client that follows no redirects (discovery and token
    /// endpoints answer directly) and gives up after 10 s.
    pub fn new(providers: Vec<OidcProvider>) -> Result<OidcProviders, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client for OpenID Connect: {e}"))?;
        Ok(OidcProviders {
            providers: providers
                .into_iter()
                .map(|config| Provider {
                    config,
                    metadata: Mutex::new(None),
                })
                .collect(),
            http,
        })
    }

    /// None configured.
    pub fn none() -> OidcProviders {
        OidcProviders {
            providers: Vec::new(),
            http: reqwest::Client::new(),
        }
    }

    fn get(&self, id: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.config.id == id)
    }
}

/// A started sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OidcStarted {
    /// Where to send the browser (the popup).
    pub authorization_url: String,
    /// The state the provider will hand back with the code.
    pub state: String,
}

/// Why a sign-in could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OidcStartError {
    /// No provider with this id is configured.
    #[error("no such sign-in provider")]
    UnknownProvider,
    /// No such tenant here.
    #[error("unknown tenant")]
    UnknownTenant,
    /// The login hint is not an e-mail address.
    #[error("the login hint is not an e-mail address")]
    BadAddress,
    /// The provider's discovery document could not be fetched or is not valid.
    #[error("the sign-in provider cannot be reached; try again later or use a passcode")]
    ProviderUnavailable,
    /// The database is unreachable or overloaded; retry later.
    #[error("the service is temporarily unavailable")]
    Unavailable,
    /// Too many requests from this address; retry after the given seconds.
    #[error("too many requests; retry in {0} s")]
    RateLimited(i64),
}

/// Why a sign-in could not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OidcFinishError {
    /// The state is unknown, used already, or older than ten minutes.
    #[error("this sign-in is unknown, expired or already used; start again")]
    StateInvalid,
    /// The code exchange or the ID token's validation failed (the log says which check).
    #[error("the sign-in with the provider failed")]
    Failed,
    /// The provider did not vouch for an e-mail address.
    #[error("the provider did not confirm a verified e-mail address for this account")]
    EmailNotVerified,
    /// The provider could not be reached.
    #[error("the sign-in provider cannot be reached; try again later or use a passcode")]
    ProviderUnavailable,
    /// The database is unreachable or overloaded; retry later.
    #[error("the service is temporarily unavailable")]
    Unavailable,
    /// Too many requests from this address; retry after the given seconds.
    #[error("too many requests; retry in {0} s")]
    RateLimited(i64),
}

impl From<StoreError> for OidcStartError {
    fn from(e: StoreError) -> Self {
        super::error::log_store_error(&e);
        OidcStartError::Unavailable
    }
}

impl From<StoreError> for OidcFinishError {
    fn from(e: StoreError) -> Self {
        super::error::log_store_error(&e);
        OidcFinishError::Unavailable
    }
}

/// Why the provider's answer was refused, for the log and the audit detail.
enum Refusal {
    Unavailable(String),
    Failed(String),
}

impl KeyService {
    /// The providers the portal may offer.
    pub fn oidc_providers(&self) -> Vec<OidcProviderInfo> {
        self.oidc
            .providers
            .iter()
            .map(|p| OidcProviderInfo {
                id: p.config.id.clone(),
                display_name: p.config.display_name.clone(),
                preset: p.config.preset.name(),
            })
            .collect()
    }

    /// Starts a sign-in with `provider` from `tenant`'s portal.
    pub async fn start_oidc(
        &self,
        tenant: &str,
        provider: &str,
        login_hint: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<OidcStarted, OidcStartError> {
        self.limit_ip(ip).map_err(OidcStartError::RateLimited)?;
        let p = self
            .oidc
            .get(provider)
            .ok_or(OidcStartError::UnknownProvider)?;
        let hint = match login_hint {
            Some(h) => {
                let h = sealpost_core::policy::normalize_address(h);
                if !sealpost_core::policy::is_plausible_address(&h) {
                    return Err(OidcStartError::BadAddress);
                }
                Some(h)
            }
            None => None,
        };
        if self.store.tenant(tenant).await?.is_none() {
            return Err(OidcStartError::UnknownTenant);
        }
        let client = self.oidc_client(p, false).await.map_err(|why| {
            tracing::warn!(provider = %p.config.id, error = %why, "OpenID provider unavailable");
            OidcStartError::ProviderUnavailable
        })?;
        let (state, nonce, verifier) = {
            let mut rng = self.entropy.rng();
            (
                random_token(&mut rng),
                random_token(&mut rng),
                random_token(&mut rng),
            )
        };
        let challenge =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.clone()));
        let (state_c, nonce_c) = (state.clone(), nonce.clone());
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state_c),
                move || Nonce::new(nonce_c),
            )
            .set_pkce_challenge(challenge);
        for s in p.config.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(s.clone()));
        }
        if let Some(h) = hint {
            request = request.set_login_hint(LoginHint::new(h));
        }
        let (url, _, _) = request.url();
        let now = self.now();
        self.store
            .insert_oidc_flow(&OidcFlowRow {
                state_hash: hash_state(&state).to_vec(),
                provider: p.config.id.clone(),
                tenant_id: tenant.to_string(),
                nonce,
                pkce_verifier: verifier,
                created: now,
                expires: now + FLOW_LIFETIME_SECS,
                used: false,
            })
            .await?;
        Ok(OidcStarted {
            authorization_url: url.to_string(),
            state,
        })
    }

    /// Finishes a sign-in: the state from `/v1/oidc/start` and the code the provider sent.
    pub async fn finish_oidc(
        &self,
        state: &str,
        code: &str,
        ip: Option<IpAddr>,
    ) -> Result<SessionIssued, OidcFinishError> {
        self.limit_ip(ip).map_err(OidcFinishError::RateLimited)?;
        if state.is_empty() || state.len() > 256 {
            return Err(OidcFinishError::StateInvalid);
        }
        let flow = match self
            .store
            .take_oidc_flow(&hash_state(state), self.now())
            .await?
        {
            TakenFlow::Taken(f) => f,
            TakenFlow::Unknown => {
                tracing::info!("OpenID sign-in refused: unknown state");
                return Err(OidcFinishError::StateInvalid);
            }
            TakenFlow::Used(f) | TakenFlow::Expired(f) => {
                let why = if f.used {
                    "state used already (replay)"
                } else {
                    "state expired"
                };
                tracing::info!(provider = %f.provider, why, "OpenID sign-in refused");
                self.oidc_failed(&f, None, ip, why).await?;
                return Err(OidcFinishError::StateInvalid);
            }
        };
        let Some(p) = self.oidc.get(&flow.provider) else {
            self.oidc_failed(&flow, None, ip, "provider no longer configured")
                .await?;
            return Err(OidcFinishError::StateInvalid);
        };
        if code.is_empty() || code.len() > 4096 {
            self.oidc_failed(&flow, None, ip, "malformed code").await?;
            return Err(OidcFinishError::Failed);
        }
        let claims = match self.exchange_and_verify(p, &flow, code).await {
            Ok(c) => c,
            Err(Refusal::Unavailable(why)) => {
                tracing::warn!(provider = %p.config.id, error = %why, "OpenID provider unavailable");
                self.oidc_failed(&flow, None, ip, "provider unavailable")
                    .await?;
                return Err(OidcFinishError::ProviderUnavailable);
            }
            Err(Refusal::Failed(why)) => {
                tracing::warn!(provider = %p.config.id, check = %why, "OpenID sign-in failed");
                self.oidc_failed(&flow, None, ip, &why).await?;
                return Err(OidcFinishError::Failed);
            }
        };
        let email = match verified_email(
            p.config.preset,
            claims.email.as_deref(),
            claims.email_verified,
            claims.xms_edov,
        ) {
            Ok(e) => e,
            Err(why) => {
                tracing::info!(provider = %p.config.id, why = why.as_str(), "OpenID sign-in refused");
                let addr = claims
                    .email
                    .as_deref()
                    .map(sealpost_core::policy::normalize_address);
                self.oidc_failed(&flow, addr.as_deref(), ip, why.as_str())
                    .await?;
                return Err(OidcFinishError::EmailNotVerified);
            }
        };
        let now = self.now();
        let (token, hash) = session::new_token(&mut self.entropy.rng());
        let expires = now + self.limits.session.absolute_secs;
        self.store
            .insert_session(&SessionRow {
                token_hash: hash.to_vec(),
                email: email.clone(),
                tenant_id: flow.tenant_id.clone(),
                created: now,
                last_seen: now,
                expires,
            })
            .await?;
        self.audit(
            &flow.tenant_id,
            "oidc_verified",
            Some(&email),
            None,
            ip,
            format!("session opened; provider {}", p.config.id),
        )
        .await?;
        Ok(SessionIssued {
            session: token.to_string(),
            email,
            expires_at: expires,
            idle_timeout: self.limits.session.idle_secs,
            server_time: now,
        })
    }

    async fn oidc_failed(
        &self,
        flow: &OidcFlowRow,
        email: Option<&str>,
        ip: Option<IpAddr>,
        why: &str,
    ) -> Result<(), StoreError> {
        let detail = format!("provider {}: {why}", flow.provider);
        self.audit(&flow.tenant_id, "oidc_failed", email, None, ip, detail)
            .await
            .map(|_| ())
    }

    /// The client for a provider from its (cached) discovery document.
    async fn oidc_client(&self, p: &Provider, refresh: bool) -> Result<OidcClient, String> {
        let now = self.now();
        let cached = p
            .metadata
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|(at, _)| !refresh && now >= *at && now - at < METADATA_TTL);
        let metadata = match cached {
            Some((_, m)) => m,
            None => {
                let issuer = IssuerUrl::new(p.config.issuer.clone()).map_err(|e| e.to_string())?;
                let m = CoreProviderMetadata::discover_async(issuer, &self.oidc.http)
                    .await
                    .map_err(|e| format!("discovery: {}", error_chain(&e)))?;
                *p.metadata.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, m.clone()));
                m
            }
        };
        let auth = auth_type(&metadata);
        let redirect =
            RedirectUrl::new(p.config.redirect_url.clone()).map_err(|e| e.to_string())?;
        Ok(OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(p.config.client_id.clone()),
            p.config
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.to_string())),
        )
        .set_redirect_uri(redirect)
        .set_auth_type(auth))
    }

    /// Exchanges the code (with the PKCE verifier) and validates the ID token.
    async fn exchange_and_verify(
        &self,
        p: &Provider,
        flow: &OidcFlowRow,
        code: &str,
    ) -> Result<Claims, Refusal> {
        let client = self
            .oidc_client(p, false)
            .await
            .map_err(Refusal::Unavailable)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| Refusal::Unavailable(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&self.oidc.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::Request(e) => {
                    Refusal::Unavailable(format!("token request: {}", error_chain(&e)))
                }
                RequestTokenError::ServerResponse(r) => {
                    Refusal::Failed(format!("token endpoint refused the code: {r}"))
                }
                other => Refusal::Failed(format!("token response: {}", error_chain(&other))),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| Refusal::Failed("no ID token in the token response".into()))?;
        let nonce = Nonce::new(flow.nonce.clone());
        let verify = |client: &OidcClient| {
            let clock = self.clock.clone();
            let verifier = client.id_token_verifier().set_time_fn(move || {
                chrono::DateTime::from_timestamp(clock.now(), 0).unwrap_or_default()
            });
            id_token.claims(&verifier, &nonce).map(|c| Claims {
                email: c.email().map(|e| e.to_string()),
                email_verified: c.email_verified(),
                xms_edov: c.additional_claims().xms_edov.as_ref().and_then(truthy),
            })
        };
        match verify(&client) {
            Ok(c) => Ok(c),
            // A key we do not have yet: the provider may have rotated its keys.
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
                let fresh = self
                    .oidc_client(p, true)
                    .await
                    .map_err(Refusal::Unavailable)?;
                verify(&fresh).map_err(|e| Refusal::Failed(format!("ID token: {e}")))
            }
            Err(e) => Err(Refusal::Failed(format!("ID token: {e}"))),
        }
    }
}

/// What a validated ID token says about the address.
struct Claims {
    email: Option<String>,
    email_verified: Option<bool>,
    xms_edov: Option<bool>,
}

/// `true`, `1`, `"true"` or `"1"` (Microsoft's optional claims vary in type).
fn truthy(v: &serde_json::Value) -> Option<bool> {
    match v {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::Number(n) => Some(n.as_i64() == Some(1)),
        serde_json::Value::String(s) => Some(s == "1" || s.eq_ignore_ascii_case("true")),
        _ => None,
    }
}

/// Client authentication at the token endpoint: HTTP Basic unless the provider says it only
/// takes the secret in the body.
fn auth_type(m: &CoreProviderMetadata) -> AuthType {
    match m.token_endpoint_auth_methods_supported() {
        Some(methods)
            if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
        {
            AuthType::RequestBody
        }
        _ => AuthType::BasicAuth,
    }
}

/// 32 random bytes, base64url without padding (43 characters).
fn random_token(rng: &mut impl Rng) -> String {
    let mut raw = [0u8; 32];
    rng.fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn hash_state(state: &str) -> [u8; 32] {
    Sha256::digest(state.as_bytes()).into()
}

/// An error with its sources, for the log.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
