//! OpenID Connect sign-in: the providers an operator configures (`[[keyservice.oidc]]`), their
//! presets, and the rule that turns a validated ID token's claims into an address. Pure rules:
//! no network and no database (the flow is `service/oidc.rs`, the flow state `store/oidc.rs`).
//!
//! What it deliberately does not do: talk to a provider, or decide anything from claims other
//! than `email`, `email_verified` and Microsoft's `xms_edov` (docs/oidc.md says why).

use std::fmt;
use std::path::{Path, PathBuf};

use sealpost_core::policy::{is_plausible_address, normalize_address};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Which kind of provider an entry is; sets the defaults and the e-mail rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Google accounts (`https://accounts.google.com`).
    Google,
    /// Microsoft Entra ID and Microsoft accounts (needs the directory: `ms_tenant`).
    Microsoft,
    /// Yahoo accounts (`https://api.login.yahoo.com`).
    Yahoo,
    /// Any other OpenID provider (issuer and display name required).
    Generic,
}

impl Preset {
    /// The name used in the configuration and the API.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Google => "google",
            Preset::Microsoft => "microsoft",
            Preset::Yahoo => "yahoo",
            Preset::Generic => "generic",
        }
    }

    fn default_display_name(self) -> Option<&'static str> {
        match self {
            Preset::Google => Some("Google"),
            Preset::Microsoft => Some("Microsoft"),
            Preset::Yahoo => Some("Yahoo"),
            Preset::Generic => None,
        }
    }

    fn default_issuer(self) -> Option<&'static str> {
        match self {
            Preset::Google => Some("https://accounts.google.com"),
            Preset::Yahoo => Some("https://api.login.yahoo.com"),
            Preset::Microsoft | Preset::Generic => None,
        }
    }
}

/// One `[[keyservice.oidc]]` entry as written in the file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderToml {
    /// Slug used in URLs and API calls (`a-z`, `0-9`, `-`).
    pub id: Option<String>,
    /// `google`, `microsoft`, `yahoo` or `generic`.
    pub preset: Option<Preset>,
    /// Shown on the portal's button ("Sign in with …"); default from the preset.
    pub display_name: Option<String>,
    /// The issuer, exactly as the provider's ID tokens name it; default from the preset.
    pub issuer: Option<String>,
    /// Microsoft only: the directory (tenant) id, a GUID, whose issuer to trust.
    pub ms_tenant: Option<String>,
    /// The client id registered at the provider.
    pub client_id: Option<String>,
    /// The client secret (prefer `client_secret_file`); neither for a public client.
    pub client_secret: Option<String>,
    /// A file holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// The portal URL registered at the provider as redirect URI.
    pub redirect_url: Option<String>,
    /// Scopes to ask for; default `["openid", "email"]`.
    pub scopes: Option<Vec<String>>,
}

/// A checked provider, ready for the service.
#[derive(Clone, PartialEq, Eq)]
pub struct OidcProvider {
    /// Slug used in URLs and API calls.
    pub id: String,
    /// The preset.
    pub preset: Preset,
    /// Shown on the portal's button.
    pub display_name: String,
    /// The exact issuer.
    pub issuer: String,
    /// The client id (also the only audience accepted in ID tokens).
    pub client_id: String,
    /// The client secret; `None` for a public client (PKCE only).
    pub client_secret: Option<Zeroizing<String>>,
    /// The redirect URI sent to the provider.
    pub redirect_url: String,
    /// Scopes asked for (always with `openid` and `email`).
    pub scopes: Vec<String>,
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("id", &self.id)
            .field("preset", &self.preset)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .finish_non_exhaustive()
    }
}

/// Microsoft's multi-tenant endpoints: their ID tokens name each user's own directory as
/// issuer, so no single issuer can be checked exactly.
const MS_MULTI_TENANT: [&str; 3] = ["common", "organizations", "consumers"];

/// Checks every entry; relative `client_secret_file` paths are read relative to `base` (the
/// config file's directory). Every problem of every entry is listed.
pub fn check_providers(
    entries: &[OidcProviderToml],
    base: Option<&Path>,
) -> Result<Vec<OidcProvider>, Vec<String>> {
    let mut errors = Vec::new();
    let mut out: Vec<OidcProvider> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let place = match &e.id {
            Some(id) => format!("[[keyservice.oidc]] #{} (id {id:?})", i + 1),
            None => format!("[[keyservice.oidc]] #{}", i + 1),
        };
        match check_one(e, base) {
            Ok(p) if out.iter().any(|o| o.id == p.id) => {
                errors.push(format!("{place}: the id is used by an earlier entry"));
            }
            Ok(p) => out.push(p),
            Err(es) => errors.extend(es.into_iter().map(|m| format!("{place}: {m}"))),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn check_one(e: &OidcProviderToml, base: Option<&Path>) -> Result<OidcProvider, Vec<String>> {
    let mut errors = Vec::new();
    let id = e.id.clone().unwrap_or_default();
    if e.id.is_none() {
        errors.push("`id` is missing (a short slug such as \"google\")".to_string());
    } else if !is_slug(&id) {
        errors.push(format!(
            "id {id:?} must be 1 to 32 characters of a-z, 0-9 and '-', starting with a letter or digit"
        ));
    }
    let Some(preset) = e.preset else {
        errors.push("`preset` is missing (google, microsoft, yahoo or generic)".to_string());
        return Err(errors);
    };
    let issuer = issuer(preset, e, &mut errors);
    let display_name = match (&e.display_name, preset.default_display_name()) {
        (Some(d), _) if d.trim().is_empty() || d.chars().count() > 64 => {
            errors.push("display_name must be 1 to 64 characters".to_string());
            String::new()
        }
        (Some(d), _) => d.trim().to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) => {
            errors.push(
                "`display_name` is required with preset generic (it is shown as \"Sign in with <display_name>\")"
                    .to_string(),
            );
            String::new()
        }
    };
    let client_id = match &e.client_id {
        Some(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => {
            errors
                .push("`client_id` is missing (from the app registration at the provider)".into());
            String::new()
        }
    };
    let client_secret = match (&e.client_secret, &e.client_secret_file) {
        (Some(_), Some(_)) => {
            errors.push("give client_secret or client_secret_file, not both".to_string());
            None
        }
        (Some(s), None) if s.trim().is_empty() => {
            errors.push("client_secret is empty (leave it out for a public client)".to_string());
            None
        }
        (Some(s), None) => Some(Zeroizing::new(s.trim().to_string())),
        (None, Some(file)) => read_secret(file, base).map_err(|m| errors.push(m)).ok(),
        (None, None) => None,
    };
    let redirect_url = match &e.redirect_url {
        None => {
            errors.push(
                "`redirect_url` is missing (the portal's URL, registered at the provider as redirect URI)"
                    .to_string(),
            );
            String::new()
        }
        Some(u) => match check_url(u, "redirect_url") {
            Ok(()) => u.clone(),
            Err(m) => {
                errors.push(m);
                String::new()
            }
        },
    };
    let scopes = e
        .scopes
        .clone()
        .unwrap_or_else(|| vec!["openid".into(), "email".into()]);
    for required in ["openid", "email"] {
        if !scopes.iter().any(|s| s == required) {
            errors.push(format!("scopes must include {required:?}"));
        }
    }
    if let Some(bad) = scopes.iter().find(|s| {
        s.is_empty()
            || !s
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    }) {
        errors.push(format!("scope {bad:?} is not a valid scope token"));
    }
    if errors.is_empty() {
        Ok(OidcProvider {
            id,
            preset,
            display_name,
            issuer,
            client_id,
            client_secret,
            redirect_url,
            scopes,
        })
    } else {
        Err(errors)
    }
}

/// The issuer: explicit, from `ms_tenant`, or the preset's.
fn issuer(preset: Preset, e: &OidcProviderToml, errors: &mut Vec<String>) -> String {
    if e.ms_tenant.is_some() && preset != Preset::Microsoft {
        errors.push("ms_tenant is only for preset microsoft".to_string());
    }
    let issuer = match (preset, &e.issuer, &e.ms_tenant) {
        (Preset::Microsoft, Some(_), Some(_)) => {
            errors.push("give issuer or ms_tenant, not both".to_string());
            return String::new();
        }
        (_, Some(i), _) => i.clone(),
        (Preset::Microsoft, None, Some(t)) => {
            let t = t.trim();
            if MS_MULTI_TENANT.contains(&t.to_ascii_lowercase().as_str()) {
                errors.push(format!(
                    "ms_tenant {t:?} is a multi-tenant endpoint whose ID tokens carry each user's own directory as issuer, \
                     so the issuer cannot be checked exactly; give your directory (tenant) id, or \
                     9188040d-6c67-4c5b-b112-36a304b66dad for personal Microsoft accounts"
                ));
                return String::new();
            }
            // Entra's ID tokens (and its discovery document, whose issuer must equal the one
            // configured) name the directory by its id even when it is looked up by a domain.
            if !is_directory_id(t) {
                errors.push(format!(
                    "ms_tenant {t:?} is not a directory id: give the Directory (tenant) ID, a GUID such as \
                     00000000-0000-0000-0000-000000000000 (a domain does not work: Entra's ID tokens name the \
                     directory by its id, so the issuer would never match)"
                ));
                return String::new();
            }
            format!(
                "https://login.microsoftonline.com/{}/v2.0",
                t.to_ascii_lowercase()
            )
        }
        (Preset::Microsoft, None, None) => {
            errors.push(
                "preset microsoft needs the directory to trust: set ms_tenant (your Entra directory (tenant) id; \
                 9188040d-6c67-4c5b-b112-36a304b66dad for personal Microsoft accounts) or an explicit issuer \
                 https://login.microsoftonline.com/{tenant}/v2.0"
                    .to_string(),
            );
            return String::new();
        }
        (p, None, _) => match p.default_issuer() {
            Some(i) => i.to_string(),
            None => {
                errors.push(
                    "`issuer` is required with preset generic (the provider's issuer URL, exactly as in its ID tokens)"
                        .to_string(),
                );
                return String::new();
            }
        },
    };
    match check_url(&issuer, "issuer") {
        Ok(()) => issuer,
        Err(m) => {
            errors.push(m);
            String::new()
        }
    }
}

/// An absolute `https://` URL without fragment (`http://` only on a loopback host).
fn check_url(u: &str, what: &str) -> Result<(), String> {
    let url = url::Url::parse(u).map_err(|e| format!("{what} {u:?} is not a URL: {e}"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(format!(
                "{what} {u:?} must be an https:// URL (http:// only on 127.0.0.1 or localhost)"
            ));
        }
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{what} {u:?} must not have a fragment or credentials"
        ));
    }
    Ok(())
}

/// A GUID in its usual form (8-4-4-4-12 hexadecimal digits), as Entra writes a directory id.
fn is_directory_id(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_slug(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

fn read_secret(file: &Path, base: Option<&Path>) -> Result<Zeroizing<String>, String> {
    let path = match base {
        Some(b) if file.is_relative() => b.join(file),
        _ => file.to_path_buf(),
    };
    let text = Zeroizing::new(
        std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read client_secret_file {}: {e}", path.display()))?,
    );
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("client_secret_file {} is empty", path.display()));
    }
    Ok(Zeroizing::new(secret.to_string()))
}

/// Why a validated ID token does not give an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailRefusal {
    /// No `email` claim (the `email` scope was not granted, or the account has none).
    Missing,
    /// The claim is there but the provider does not vouch for it.
    NotVerified,
    /// The claim is not an e-mail address.
    NotAnAddress,
}

impl EmailRefusal {
    /// For the log.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailRefusal::Missing => "no email claim",
            EmailRefusal::NotVerified => "email not verified",
            EmailRefusal::NotAnAddress => "email claim is not an address",
        }
    }
}

/// The address a validated ID token signs in, normalized.
///
/// `email` counts only when `email_verified` is true. Microsoft's ID tokens carry no
/// `email_verified`; for the Microsoft preset, `xms_edov` ("email domain owner verified", an
/// optional claim the app registration must add) true counts as verified instead. Without it
/// a Microsoft sign-in is refused, because an Entra `email` attribute can be set by a
/// directory's admin to any address.
pub fn verified_email(
    preset: Preset,
    email: Option<&str>,
    email_verified: Option<bool>,
    xms_edov: Option<bool>,
) -> Result<String, EmailRefusal> {
    let email = email.ok_or(EmailRefusal::Missing)?;
    let verified =
        email_verified == Some(true) || (preset == Preset::Microsoft && xms_edov == Some(true));
    if !verified {
        return Err(EmailRefusal::NotVerified);
    }
    let email = normalize_address(email);
    if !is_plausible_address(&email) {
        return Err(EmailRefusal::NotAnAddress);
    }
    Ok(email)
}

#[cfg(test)]
#[path = "oidc_tests.rs"]
mod tests;
