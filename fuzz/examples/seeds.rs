//! Writes seed inputs for the fuzz targets, made with the targets' fixed keys, so that
//! mutations start from inputs that get past the key-id and commitment checks.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds -- fuzz/corpus
//! ```
//!
//! Writes `<dir>/envelope/seed-*` (sealed envelopes), `<dir>/message_html/seed-*` (their
//! wrapper mails and `message.html` attachments) and `<dir>/chunked/seed-*` (a piece-size byte
//! followed by a chunked ciphertext). The corpus directory is not kept in git.

use std::path::{Path, PathBuf};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use sealpost_core::chunked;
use sealpost_core::mail::{WrapperSettings, message_html, wrap};
use sealpost_core::{Envelope, Sealer, Template, seal};
use sealpost_fuzz::{CHUNK_CONTEXT, CHUNK_KEY, LICENSE_KEY, SIGNING_KEY};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn main() -> std::io::Result<()> {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("fuzz/corpus"));
    let mut rng = ChaCha20Rng::from_seed([3; 32]);

    let license_public = LICENSE_KEY.public_key();
    let sealer = Sealer {
        tenant_id: "example.com",
        key_service_url: "https://keys.example.com",
        license_key: &license_public,
        signing_key: &SIGNING_KEY,
    };
    let now = 1_790_000_000;
    let recipients = [
        "bob@example.org".to_string(),
        "carol@example.net".to_string(),
    ];
    let templates = [Template::encrypt_only(), Template::do_not_forward()];
    let messages: [(&[u8], Option<&str>); 3] = [
        (b"", None),
        (b"Subject: hi\r\n\r\nhello\r\n", Some("hi")),
        (&[b'x'; 3000], None),
    ];
    let dir = root.join("envelope");
    let mut n = 0;
    for (i, (message, subject)) in messages.iter().enumerate() {
        let policy = templates[i % 2].policy("alice@example.com", &recipients[..=i % 2], now);
        let envelope = seal(&sealer, &policy, *subject, now, message, &mut rng).expect("seal");
        write(&dir, &format!("seed-{i}"), &envelope)?;
        let header = Envelope::parse(&envelope).expect("parse").header().clone();
        let settings = WrapperSettings {
            organization: "Example Corp".into(),
            portal_url: "https://portal.example.com".into(),
            show_subject: subject.is_some(),
            replacement_subject: "Protected message".into(),
        };
        let original = [
            b"From: alice@example.com\r\nTo: bob@example.org\r\n".as_slice(),
            message,
        ]
        .concat();
        let html_dir = root.join("message_html");
        let wrapper = wrap(&original, &envelope, &header, &settings);
        write(&html_dir, &format!("seed-{i}.eml"), &wrapper)?;
        let html = message_html(&envelope, &header, &settings);
        write(&html_dir, &format!("seed-{i}.html"), html.as_bytes())?;
        n += 3;
    }

    let dir = root.join("chunked");
    let lengths = [0usize, 1, 100, 16383, 16384, 16385, 40000];
    for (i, len) in lengths.into_iter().enumerate() {
        let plaintext = vec![0xa5u8; len];
        let ciphertext =
            chunked::encrypt(&CHUNK_KEY, CHUNK_CONTEXT, &plaintext, &mut rng).expect("encrypt");
        let selector = [0u8, 17, 127, 128, 159, 200, 255][i];
        let input = [&[selector][..], &ciphertext].concat();
        write(&dir, &format!("seed-{len}"), &input)?;
        n += 1;
    }
    println!("wrote {n} seeds under {}", root.display());
    Ok(())
}
