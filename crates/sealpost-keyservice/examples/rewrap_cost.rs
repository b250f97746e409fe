//! What one rewrap costs in CPU, step by step, on one core and without a database or socket:
//!
//! ```text
//! cargo run --release -p sealpost-keyservice --example rewrap_cost [-- --iterations N]
//! ```
//!
//! Prints the mean time of each cryptographic step the key service does for a rewrap (see
//! `service/rewrap.rs`) and the rate one core could sustain doing only those steps. Times are
//! CPU time of the measuring thread (on Linux), so other work on the machine slows the
//! wall-clock figure printed beside it but hardly the CPU figure:
//!
//! - `kek_unwrap`: decrypting the tenant's license key from the database row with the
//!   key-encryption key (AES-256-GCM) and reading the scalar (which computes its public key);
//! - `license_open`: HPKE open of the license (decapsulation) and decoding the policy;
//! - `client_key`: reading the portal's public key (SEC1 decoding, on-curve check);
//! - `seal_share`: HPKE seal of share B to the portal's key (an ephemeral key pair and one
//!   Diffie-Hellman).
//!
//! The key service builds the core with `native-p256`, so the two HPKE steps run on AWS-LC's
//! P-256, as in `sealpost serve`; `kek_unwrap` (the public half of the decrypted key) and
//! `client_key` (the point check) stay on RustCrypto's `p256`.
//!
//! Used for docs/benchmarks.md, to tell the cost of the cryptography from that of the
//! database and HTTP. Nothing here is secret: the keys come from fixed seeds.

#![forbid(unsafe_code)]

use std::hint::black_box;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::keys::KeyEncryptionKey;
use sealpost_core::policy::Template;
use sealpost_core::rewrap::{ClientPublicKey, ClientSecretKey, seal_share};
use sealpost_core::{Envelope, LicenseSecretKey, Sealer, SigningKey};

fn main() {
    let mut iterations = 2000u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--iterations", Some(n)) if n > 0 => iterations = n,
            _ => {
                eprintln!("usage: rewrap_cost [--iterations N]");
                std::process::exit(2);
            }
        }
    }

    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let license_key = LicenseSecretKey::generate(&mut rng);
    let signing = SigningKey::generate(&mut rng);
    let kek = KeyEncryptionKey::generate(&mut rng);
    let pk = license_key.public_key();
    let key_id = pk.key_id();
    let wrapped = kek.wrap("bench.example", &license_key, &mut rng);
    let sealer = Sealer {
        tenant_id: "bench.example",
        key_service_url: "https://keys.bench.example",
        license_key: &pk,
        signing_key: &signing,
    };
    let policy =
        Template::encrypt_only().policy("alice@bench.example", &["bob@example.org".into()], 0);
    let envelope = sealpost_core::seal(
        &sealer,
        &policy,
        None,
        0,
        b"Subject: x\r\n\r\nHi\r\n",
        &mut rng,
    )
    .expect("sealing the sample message");
    let envelope = Envelope::parse(&envelope).expect("a valid envelope");
    let header = envelope.header_bytes().to_vec();
    let license = envelope.license().to_vec();
    let client = ClientSecretKey::derive(&[0x5e; 32]).public_key().to_bytes();
    let opened = sealpost_core::license::open(&license_key, &header, &license).expect("opens");

    let time = |name: &str, f: &mut dyn FnMut()| -> f64 {
        for _ in 0..iterations.min(100) {
            f();
        }
        let (wall, cpu) = (Instant::now(), thread_cpu_ns());
        for _ in 0..iterations {
            f();
        }
        let n = f64::from(iterations);
        let wall_us = wall.elapsed().as_secs_f64() * 1e6 / n;
        let cpu_us = match (cpu, thread_cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e3 / n,
            _ => wall_us,
        };
        println!("{name:<14} {cpu_us:>9.1} µs CPU {wall_us:>9.1} µs wall");
        cpu_us
    };
    println!(
        "mean per call, {iterations} calls, one thread (CPU time of this thread, and wall time):"
    );
    let total = time("kek_unwrap", &mut || {
        black_box(
            kek.unwrap("bench.example", &key_id, black_box(&wrapped))
                .unwrap(),
        );
    }) + time("license_open", &mut || {
        black_box(
            sealpost_core::license::open(&license_key, &header, black_box(&license)).unwrap(),
        );
    }) + time("client_key", &mut || {
        black_box(ClientPublicKey::from_bytes(black_box(&client)).unwrap());
    }) + time("seal_share", &mut || {
        let c = ClientPublicKey::from_bytes(&client).unwrap();
        black_box(seal_share(&c, &header, &opened.share_b, &mut rng).unwrap());
    });
    println!("{:<14} {total:>9.1} µs CPU", "total");
    println!("rewraps_per_core_per_s={:.0}", 1e6 / total);
}

/// CPU time this thread has run, in nanoseconds (Linux: the first field of
/// /proc/thread-self/schedstat); `None` elsewhere, and then wall time is reported twice.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}
