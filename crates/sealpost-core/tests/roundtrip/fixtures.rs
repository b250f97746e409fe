//! Where the inputs are, the test tenant, and a sample sealed wrapper.

use std::path::{Path, PathBuf};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::mail::{WrapperSettings, message_html, wrap};
use sealpost_core::policy::Template;
use sealpost_core::{Envelope, LicenseSecretKey, Sealer, SigningKey, seal};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/mail");
pub const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
pub const NOW: u64 = 1_800_000_000;

pub struct TestTenant {
    pub license: LicenseSecretKey,
    pub signing: SigningKey,
}

impl TestTenant {
    pub fn new(seed: u8) -> TestTenant {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        TestTenant {
            license: LicenseSecretKey::generate(&mut rng),
            signing: SigningKey::generate(&mut rng),
        }
    }
}

pub fn settings(show_subject: bool) -> WrapperSettings {
    WrapperSettings {
        organization: "Example & Co <Test>".into(),
        portal_url: "https://portal.sealpost.test/open".into(),
        show_subject,
        replacement_subject: "Encrypted message from Example & Co".into(),
    }
}

/// Every regular file under `dir`, recursively, sorted.
pub fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

pub fn fixture_paths() -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(Path::new(FIXTURES), &mut out);
    out.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    out
}

/// A wrapper built for `extract_envelope`'s negative tests.
pub fn sample_wrapper() -> (Vec<u8>, Vec<u8>, String) {
    let tenant = TestTenant::new(3);
    let pk = tenant.license.public_key();
    let sealer = Sealer {
        tenant_id: "example.com",
        key_service_url: "https://keys.sealpost.test",
        license_key: &pk,
        signing_key: &tenant.signing,
    };
    let m = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: s\r\n\r\nbody\r\n";
    let policy = Template::encrypt_only().policy("a@example.com", &["b@example.org".into()], NOW);
    let envelope = seal(
        &sealer,
        &policy,
        None,
        NOW,
        m,
        &mut ChaCha20Rng::seed_from_u64(1),
    )
    .unwrap();
    let header = Envelope::parse(&envelope).unwrap().header().clone();
    let wrapper = wrap(m, &envelope, &header, &settings(false));
    let html = message_html(&envelope, &header, &settings(false));
    (envelope, wrapper, html)
}
