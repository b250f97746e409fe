//! A tenant directory on disk: `tenant.toml` (settings, public keys, custom templates) and
//! `keys/` (PKCS#8 PEM private keys, mode 0600, directory 0700).
//!
//! This module reads and writes files; all key handling is `sealpost-core`'s.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sealpost_core::mail::WrapperSettings;
use sealpost_core::policy::{Template, template_key};
use sealpost_core::{KeyId, LicensePublicKey, LicenseSecretKey, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::error::{CliError, CliResult, io_error};

/// The settings file's name inside a tenant directory.
pub const SETTINGS_FILE: &str = "tenant.toml";

/// Whether a key may still be used for new messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Used for new messages and accepted for old ones.
    Active,
    /// Only accepted for messages sealed before it was retired.
    Retired,
}

/// A public key entry in `tenant.toml`; the private half is in `keys/`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// Key id (16 hex digits).
    pub id: String,
    /// Base64 SEC1 public key.
    pub public: String,
    /// Active or retired.
    pub status: KeyStatus,
}

/// `tenant.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Tenant id (the primary domain).
    pub tenant_id: String,
    /// Display name shown to recipients.
    pub display_name: String,
    /// The organization's own mail domains.
    pub domains: Vec<String>,
    /// Key-service base URL written into every envelope.
    pub key_service_url: String,
    /// Where recipients open messages.
    pub portal_url: String,
    /// Show the original subject on the wrapper and in the envelope header.
    #[serde(default)]
    pub show_subject: bool,
    /// Wrapper subject when the original is hidden.
    pub replacement_subject: String,
    /// Template used when none is named.
    pub default_template: String,
    /// Base URL of the gateway's encrypted-reply endpoint (`[gateway] reply_listen`); without
    /// it recipients cannot send encrypted replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_url: Option<String>,
    /// Let the gateway decrypt this tenant's protected mail for the organization's own
    /// recipients (the key service enforces it).
    #[serde(default)]
    pub transport_decryption: bool,
    /// License (HPKE) keys.
    pub license_keys: Vec<KeyEntry>,
    /// Signing keys.
    pub signing_keys: Vec<KeyEntry>,
    /// Custom templates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<Template>,
}

/// A loaded tenant directory.
pub struct Tenant {
    /// Where it lives.
    pub dir: PathBuf,
    /// Its settings.
    pub settings: Settings,
}

fn key_path(dir: &Path, kind: &str, id: &str) -> PathBuf {
    dir.join("keys").join(format!("{kind}-{id}.pem"))
}

/// Writes `contents` to `path` through a temporary file and a rename, with `mode` on Unix.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> CliResult<()> {
    let tmp = path.with_extension("tmp");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let _ = fs::remove_file(&tmp);
    let mut f = opts.open(&tmp).map_err(|e| io_error("create", &tmp, e))?;
    f.write_all(contents)
        .map_err(|e| io_error("write", &tmp, e))?;
    f.sync_all().map_err(|e| io_error("sync", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_error("rename into place", path, e))
}

/// Checks that every key entry's id is the id of its public key.
fn check_key_ids(path: &Path, s: &Settings) -> CliResult<()> {
    let bad = |id: &str| {
        CliError::new(
            format!("{}: key {id} does not match its public key", path.display()),
            "restore tenant.toml from backup; key ids are computed from the keys",
        )
    };
    for k in &s.license_keys {
        let pk = LicensePublicKey::from_base64(&k.public).map_err(|_| bad(&k.id))?;
        if pk.key_id().to_string() != k.id {
            return Err(bad(&k.id));
        }
    }
    for k in &s.signing_keys {
        let vk = VerifyingKey::from_base64(&k.public).map_err(|_| bad(&k.id))?;
        if vk.key_id().to_string() != k.id {
            return Err(bad(&k.id));
        }
    }
    Ok(())
}

impl Tenant {
    /// Loads `DIR/tenant.toml` and checks it.
    pub fn load(dir: &Path) -> CliResult<Tenant> {
        let path = dir.join(SETTINGS_FILE);
        let text = fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CliError::new(
                    format!("{} is not a tenant directory (no {SETTINGS_FILE})", dir.display()),
                    "create one with `sealpost tenant init --dir DIR --domain DOMAIN` or pass the right --tenant",
                )
            } else {
                io_error("read", &path, e)
            }
        })?;
        let settings: Settings = toml::from_str(&text).map_err(|e| {
            CliError::new(
                format!("{} is not valid: {}", path.display(), e.message()),
                "fix the file (see docs/cli.md for its fields)",
            )
        })?;
        check_key_ids(&path, &settings)?;
        for t in &settings.templates {
            t.validate().map_err(|e| {
                CliError::new(
                    format!("{}: {e}", path.display()),
                    "fix the template definition",
                )
            })?;
        }
        Ok(Tenant {
            dir: dir.to_path_buf(),
            settings,
        })
    }

    /// Writes a new tenant directory; refuses to overwrite one.
    pub fn create(
        dir: &Path,
        settings: Settings,
        license: &LicenseSecretKey,
        signing: &SigningKey,
    ) -> CliResult<Tenant> {
        if dir.join(SETTINGS_FILE).exists() {
            return Err(CliError::new(
                format!("{} already holds a tenant", dir.display()),
                "choose another --dir; sealpost never overwrites tenant keys",
            ));
        }
        let keys = dir.join("keys");
        fs::create_dir_all(&keys).map_err(|e| io_error("create", &keys, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&keys, fs::Permissions::from_mode(0o700))
                .map_err(|e| io_error("protect", &keys, e))?;
        }
        let lid = license.public_key().key_id().to_string();
        let sid = signing.verifying_key().key_id().to_string();
        write_atomic(
            &key_path(dir, "license", &lid),
            license.to_pem().as_bytes(),
            0o600,
        )?;
        write_atomic(
            &key_path(dir, "signing", &sid),
            signing.to_pem().as_bytes(),
            0o600,
        )?;
        let text = format!(
            "# Sealpost tenant settings. Private keys live in keys/ (mode 0600): never share them.\n{}",
            toml::to_string_pretty(&settings).expect("settings serialize to TOML")
        );
        write_atomic(&dir.join(SETTINGS_FILE), text.as_bytes(), 0o644)?;
        Ok(Tenant {
            dir: dir.to_path_buf(),
            settings,
        })
    }

    fn active<'a>(&self, entries: &'a [KeyEntry], what: &str) -> CliResult<&'a KeyEntry> {
        entries
            .iter()
            .find(|k| k.status == KeyStatus::Active)
            .ok_or_else(|| {
                CliError::new(
                    format!(
                        "tenant {} has no active {what} key",
                        self.settings.tenant_id
                    ),
                    format!(
                        "mark one of the {what} keys in {SETTINGS_FILE} as status = \"active\""
                    ),
                )
            })
    }

    fn read_pem(&self, kind: &str, id: &str) -> CliResult<String> {
        let path = key_path(&self.dir, kind, id);
        fs::read_to_string(&path).map_err(|e| io_error("read private key", &path, e))
    }

    /// The active license public key.
    pub fn license_public_key(&self) -> CliResult<LicensePublicKey> {
        let entry = self.active(&self.settings.license_keys, "license")?;
        LicensePublicKey::from_base64(&entry.public).map_err(|e| self.bad_key(e))
    }

    /// The active signing key.
    pub fn signing_key(&self) -> CliResult<SigningKey> {
        let entry = self.active(&self.settings.signing_keys, "signing")?;
        SigningKey::from_pem(&self.read_pem("signing", &entry.id)?).map_err(|e| self.bad_key(e))
    }

    /// The license private key with this id (active or retired), if the tenant has it.
    pub fn license_secret_key(&self, id: &KeyId) -> CliResult<Option<LicenseSecretKey>> {
        let id = id.to_string();
        let Some(entry) = self.settings.license_keys.iter().find(|k| k.id == id) else {
            return Ok(None);
        };
        let key = LicenseSecretKey::from_pem(&self.read_pem("license", &entry.id)?)
            .map_err(|e| self.bad_key(e))?;
        Ok(Some(key))
    }

    /// Every signing public key, active and retired.
    pub fn verifying_keys(&self) -> CliResult<Vec<VerifyingKey>> {
        self.settings
            .signing_keys
            .iter()
            .map(|k| VerifyingKey::from_base64(&k.public).map_err(|e| self.bad_key(e)))
            .collect()
    }

    fn bad_key(&self, e: sealpost_core::KeyError) -> CliError {
        CliError::new(
            format!("tenant {}: {e}", self.dir.display()),
            "the tenant directory is damaged; restore it from backup",
        )
    }

    /// The template called `name` (built-in or custom), or the default.
    pub fn template(&self, name: Option<&str>) -> CliResult<Template> {
        let name = name.unwrap_or(&self.settings.default_template);
        let key = template_key(name);
        if let Some(t) = self
            .settings
            .templates
            .iter()
            .find(|t| template_key(&t.name) == key)
        {
            return Ok(t.clone());
        }
        Template::builtin(name).ok_or_else(|| {
            let mut names = vec![
                sealpost_core::policy::ENCRYPT_ONLY.to_string(),
                sealpost_core::policy::DO_NOT_FORWARD.to_string(),
            ];
            names.extend(self.settings.templates.iter().map(|t| t.name.clone()));
            CliError::new(
                format!("unknown template {name:?}"),
                format!("use one of: {}", names.join(", ")),
            )
        })
    }

    /// How wrapper mails look for this tenant.
    pub fn wrapper_settings(&self) -> WrapperSettings {
        WrapperSettings {
            organization: self.settings.display_name.clone(),
            portal_url: self.settings.portal_url.clone(),
            show_subject: self.settings.show_subject,
            replacement_subject: self.settings.replacement_subject.clone(),
        }
    }
}
