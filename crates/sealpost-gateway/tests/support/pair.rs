//! A real key service and a real gateway in one test process, for the reply endpoint and
//! transport decryption: the key service (`sealpost-keyservice`'s router on SQLite in a temp
//! dir, tenant `acme.example` imported, a gateway token made) on a loopback port, and the
//! gateway (`daemon::run_until`) relaying to the SMTP sink of `support/mod.rs`. Both clocks
//! stand at [`T0`]. Also: sealing originals and reply submissions as the tenant and the portal
//! would, signing in a recipient with a passcode, and reading metrics.
//!
//! It checks nothing about the gateway itself.

#![allow(dead_code)] // each test target uses its own part

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::keys::KeyEncryptionKey;
use sealpost_core::mail::WrapperSettings;
use sealpost_core::policy::Template;
use sealpost_core::{
    Envelope, LicenseSecretKey, Sealer, SigningKey, SubmissionSealer, seal, seal_submission,
};
use sealpost_gateway::config::load_str;
use sealpost_gateway::daemon::{Options, run_until};
use sealpost_gateway::keyservice::{GatewayToken, KeyServiceClient};
use sealpost_gateway::process::{Processor, Protector};
use sealpost_keyservice::clock::ManualClock;
use sealpost_keyservice::service::{
    Branding, Entropy, KeyService, Limits, TenantImport, TenantSettings, TokenRole,
};
use tokio::sync::watch;

use crate::support::{Received, Sink, free_port, wait_for_port};

/// Both clocks' time.
pub const T0: u64 = 1_800_000_000;
/// The tenant.
pub const TENANT: &str = "acme.example";
/// The portal origin the reply endpoint allows.
pub const PORTAL: &str = "https://portal.acme.example";
/// The key-service URL written into envelopes.
pub const KS_URL_IN_HEADERS: &str = "https://keys.acme.example";
/// The gateway's `reply_from`.
pub const REPLY_FROM: &str = "noreply@acme.example";

/// The rules: protect what goes outside.
pub const RULES: &str = r#"
[organization]
domains = ["acme.example"]

[[rules]]
name = "Protect outside"
conditions = { recipient_scope = "outside" }
actions = { encrypt = "Encrypt-Only" }
"#;

/// A running key service.
pub struct Ks {
    pub url: String,
    pub svc: Arc<KeyService>,
    pub clock: ManualClock,
    pub license: LicenseSecretKey,
    pub signing: SigningKey,
    pub token: String,
    rt: std::sync::Mutex<Option<tokio::runtime::Runtime>>,
    _dir: tempfile::TempDir,
}

impl Drop for Ks {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.lock().unwrap().take() {
            rt.shutdown_background();
        }
    }
}

impl Ks {
    /// A key service whose tenant allows transport decryption when `transport` is true.
    pub async fn start(transport: bool) -> Ks {
        let dir = tempfile::tempdir().unwrap();
        let store = sealpost_keyservice::store::Store::sqlite_in_dir(dir.path(), 4)
            .await
            .unwrap();
        let clock = ManualClock::new(T0 as i64);
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let license = LicenseSecretKey::generate(&mut rng);
        let signing = SigningKey::generate(&mut rng);
        let svc = KeyService::new(
            store,
            Arc::new(clock.clone()),
            Entropy::seeded(3),
            KeyEncryptionKey::generate(&mut rng),
            Limits {
                per_ip_per_minute: 10_000,
                ..Limits::default()
            },
        )
        .await
        .unwrap();
        svc.import_tenant(TenantImport {
            tenant_id: TENANT.into(),
            display_name: "Acme".into(),
            settings: TenantSettings {
                domains: vec![TENANT.into()],
                allowed_origins: vec![PORTAL.into()],
                branding: Branding::default(),
                reply_url: None,
                transport_decryption: transport,
            },
            license_keys: vec![(license.clone(), "active".into())],
            signing_keys: vec![(signing.verifying_key(), "active".into())],
        })
        .await
        .unwrap();
        let token = svc
            .create_token(TENANT, "gateway", TokenRole::Gateway)
            .await
            .unwrap()
            .to_string();
        let svc = Arc::new(svc);
        let router = sealpost_keyservice::http::router(svc.clone(), Default::default());
        let port = free_port();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        // A runtime of its own, so that stopping it ends the listener and every connection.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ =
                sealpost_keyservice::http::serve(listener, router, std::future::pending()).await;
        });
        wait_for_port(port);
        Ks {
            url: format!("http://127.0.0.1:{port}"),
            svc,
            clock,
            license,
            signing,
            token,
            rt: std::sync::Mutex::new(Some(rt)),
            _dir: dir,
        }
    }

    /// Stops answering: the listener and every connection are dropped.
    pub async fn stop(&self) {
        if let Some(rt) = self.rt.lock().unwrap().take() {
            rt.shutdown_background();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// A message from `from` to `to` under `template`, sealed and signed by the tenant.
    pub fn seal(
        &self,
        template: &Template,
        from: &str,
        to: &[&str],
        subject: Option<&str>,
        body: &[u8],
        seed: u64,
    ) -> Vec<u8> {
        let pk = self.license.public_key();
        let sealer = Sealer {
            tenant_id: TENANT,
            key_service_url: KS_URL_IN_HEADERS,
            license_key: &pk,
            signing_key: &self.signing,
        };
        let to: Vec<String> = to.iter().map(|s| s.to_string()).collect();
        let policy = template.policy(from, &to, T0);
        seal(
            &sealer,
            &policy,
            subject,
            T0,
            body,
            &mut ChaCha20Rng::seed_from_u64(seed),
        )
        .unwrap()
    }

    /// A reply to `original` sealed as the portal does (an unsigned submission): same
    /// template and rights, `from` as sender, `to` as recipients.
    pub fn submission(
        &self,
        original: &[u8],
        from: &str,
        to: &[&str],
        subject: Option<&str>,
        body: &[u8],
        seed: u64,
    ) -> Vec<u8> {
        let o = Envelope::parse(original).unwrap();
        let lic = o.open_license(&self.license).unwrap();
        let pk = self.license.public_key();
        let sealer = SubmissionSealer {
            tenant_id: TENANT,
            key_service_url: KS_URL_IN_HEADERS,
            license_key: &pk,
            signing_key_id: self.signing.verifying_key().key_id(),
        };
        let mut policy = lic.policy.clone();
        policy.sender = from.to_string();
        policy.recipients = to.iter().map(|s| s.to_string()).collect();
        policy.expires = lic.policy.expires.map(|e| T0 + (e - o.header().created));
        seal_submission(
            &sealer,
            &policy,
            subject,
            T0,
            body,
            &mut ChaCha20Rng::seed_from_u64(seed),
        )
        .unwrap()
    }

    /// Signs `email` in with a passcode for `envelope` (they must be one of its recipients).
    pub async fn session(&self, envelope: &[u8], email: &str) -> String {
        let env = Envelope::parse(envelope).unwrap();
        let started = self
            .svc
            .start_otp(env.header_bytes(), env.license(), email, None)
            .await
            .unwrap();
        let mails = self.svc.store().outbox(1000).await.unwrap();
        let to = email.to_ascii_lowercase();
        let code = mails
            .into_iter()
            .find(|m| m.to_addr == to)
            .and_then(|m| {
                m.body
                    .lines()
                    .map(str::trim)
                    .find(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
                    .map(String::from)
            })
            .expect("a passcode was mailed");
        self.svc
            .verify_otp(&started.challenge, &code, None)
            .await
            .unwrap()
            .session
    }

    /// The audit events (event, email, detail) of a message.
    pub async fn audit(&self, message_id: &str) -> Vec<(String, Option<String>, String)> {
        self.svc
            .store()
            .audit_for_message(TENANT, message_id, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.event, r.email, r.detail))
            .collect()
    }
}

/// The message id of an envelope, as hex.
pub fn message_id(env: &[u8]) -> String {
    Envelope::parse(env).unwrap().header().message_id.to_hex()
}

/// A running gateway with its reply endpoint.
pub struct Gw {
    pub smtp: u16,
    pub reply: u16,
    pub metrics: u16,
    pub spool: tempfile::TempDir,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Gw {
    /// A gateway for `ks`'s tenant relaying to `sink_port`, with transport decryption on when
    /// `transport`, and `extra` lines in `[gateway]`.
    pub async fn start(ks: &Ks, sink_port: u16, transport: bool, extra: &str) -> Gw {
        let (smtp, reply, metrics) = (free_port(), free_port(), free_port());
        let spool = tempfile::tempdir().unwrap();
        let text = format!(
            "[gateway]\nlisten = \"127.0.0.1:{smtp}\"\nmetrics_listen = \"127.0.0.1:{metrics}\"\n\
             next_hop = \"smtp://127.0.0.1:{sink_port}\"\ntenant = \"tenant\"\n\
             hostname = \"gateway.acme.example\"\nspool_dir = \"{}\"\n\
             retry_first = \"1s\"\nretry_max = \"2s\"\n\
             reply_listen = \"127.0.0.1:{reply}\"\nreply_from = \"{REPLY_FROM}\"\n\
             reply_allowed_origins = [\"{PORTAL}\"]\nkey_service_url = \"{}\"\n\
             key_service_token_file = \"token\"\n{extra}\n{RULES}",
            spool.path().display(),
            ks.url,
        );
        let loaded = load_str(&text, Path::new("/nonexistent")).expect("the test config loads");
        let processor = Processor {
            rules: loaded.rules,
            protector: Protector {
                tenant_id: TENANT.into(),
                key_service_url: KS_URL_IN_HEADERS.into(),
                license_key: ks.license.public_key(),
                signing_key: ks.signing.clone(),
                verifying_keys: vec![ks.signing.verifying_key()],
                wrapper: WrapperSettings {
                    organization: "Acme".into(),
                    portal_url: format!("{PORTAL}/"),
                    show_subject: true,
                    replacement_subject: "Protected message".into(),
                },
            },
            broken_mime: loaded.gateway.broken_mime,
            transport_decryption: transport,
        };
        let client = KeyServiceClient::new(
            loaded.gateway.key_service_url.as_deref().unwrap(),
            GatewayToken::new(&ks.token).unwrap(),
            Duration::from_secs(5),
        )
        .unwrap();
        let clock = Arc::new(AtomicU64::new(T0));
        let opts = Options {
            config: loaded.gateway,
            processor,
            clock: Arc::new(move || clock.load(Ordering::SeqCst)),
            key_service: Some(client),
        };
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            run_until(opts, rx).await.expect("the gateway runs");
        });
        wait_for_port(smtp);
        wait_for_port(reply);
        Gw {
            smtp,
            reply,
            metrics,
            spool,
            stop,
            task,
        }
    }

    /// Stops the gateway and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the gateway stops")
            .unwrap();
    }

    /// The reply endpoint's URL.
    pub fn replies_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/replies", self.reply)
    }

    /// The metrics text.
    pub async fn metrics_text(&self) -> String {
        reqwest::get(format!("http://127.0.0.1:{}/metrics", self.metrics))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// One series' value (`name{labels}` exactly as written).
    pub async fn metric(&self, series: &str) -> u64 {
        let text = self.metrics_text().await;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{series} ")))
            .unwrap_or_else(|| panic!("{series} missing in:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// Entries in the spool.
    pub fn queued(&self) -> usize {
        sealpost_gateway::spool::Spool::open(self.spool.path())
            .unwrap()
            .list()
            .unwrap()
            .len()
    }

    /// Sends `raw` over SMTP.
    pub async fn send(&self, from: &str, to: &[&str], raw: &[u8]) {
        use lettre::address::Envelope as SmtpEnvelope;
        use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
        let t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(self.smtp)
            .timeout(Some(Duration::from_secs(60)))
            .build();
        let env = SmtpEnvelope::new(
            Some(from.parse::<Address>().unwrap()),
            to.iter().map(|t| t.parse().unwrap()).collect(),
        )
        .unwrap();
        let raw = raw.strip_suffix(b"\r\n").unwrap_or(raw);
        t.send_raw(&env, raw)
            .await
            .expect("the gateway accepts the message");
    }
}

/// Waits up to 30 s until `sink` has received `n` messages, and returns them.
pub async fn wait_received(sink: &Sink, n: usize) -> Vec<Received> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = sink.received();
        if got.len() >= n {
            return got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sink received {} of {n} messages",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
