//! Payload and envelope throughput.
//!
//! Run with `cargo bench -p sealpost-core --bench payload`. What is measured:
//!
//! - `chunked_encrypt/<size>` and `chunked_decrypt/<size>`: the streaming API
//!   ([`Encryptor`]/[`Decryptor`] `update` + `finish`) fed in 64 KiB pieces, the way a mail
//!   server streams a message. The output buffer is emptied after every piece, as if it had
//!   been written to a socket, so memory stays bounded and no message-sized buffer is
//!   allocated per iteration. Key derivation (HKDF) is included in every iteration.
//! - `envelope/seal`: [`sealpost_core::seal`] of a 1 MiB message (HPKE license, chunked
//!   payload, SHA-256 over the envelope, ECDSA signature).
//! - `envelope/parse_verify_decrypt`: [`Envelope::parse`] + [`Envelope::verify`] +
//!   [`Envelope::decrypt`] of that envelope, with share B already known (as in the portal,
//!   which gets share B from the key service).
//! - `envelope/open_with_tenant_keys`: the tenant's recovery path, which also opens the HPKE
//!   license.
//!
//! Sizes: 16 KiB, 1 MiB and 64 MiB for the payload layer; 1 MiB for whole envelopes. The
//! 64 MiB cases use 10 samples so that the whole run stays within a few minutes on 2 cores.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use sealpost_core::chunked::{Decryptor, Encryptor};
use sealpost_core::{
    Envelope, LicenseSecretKey, Sealer, SigningKey, Template, open_with_tenant_keys, seal,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// The size of the pieces the streaming APIs are fed with.
const PIECE: usize = 64 * KIB;
const SIZES: [(usize, &str); 3] = [(16 * KIB, "16KiB"), (MIB, "1MiB"), (64 * MIB, "64MiB")];

const INPUT_KEY: [u8; 32] = [0x42; 32];
const CONTEXT: &[u8] = b"sealpost benchmark context";

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([7; 32])
}

fn plaintext(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rng().fill_bytes(&mut data);
    data
}

/// Streams `plaintext` through an encryptor in `PIECE`-sized pieces; returns the number of
/// ciphertext bytes produced.
fn stream_encrypt(plaintext: &[u8], rng: &mut ChaCha20Rng, out: &mut Vec<u8>) -> usize {
    let mut enc = Encryptor::new(&INPUT_KEY, CONTEXT, rng);
    let mut total = 0;
    for piece in plaintext.chunks(PIECE) {
        out.clear();
        enc.update(piece, out).expect("encrypt");
        total += black_box(&*out).len();
    }
    out.clear();
    enc.finish(out).expect("finish");
    total + black_box(&*out).len()
}

/// Streams `ciphertext` through a decryptor in `PIECE`-sized pieces; returns the number of
/// plaintext bytes released.
fn stream_decrypt(ciphertext: &[u8], out: &mut Vec<u8>) -> usize {
    let mut dec = Decryptor::new(&INPUT_KEY, CONTEXT);
    let mut total = 0;
    for piece in ciphertext.chunks(PIECE) {
        out.clear();
        dec.update(piece, out).expect("decrypt");
        total += black_box(&*out).len();
    }
    out.clear();
    dec.finish(out).expect("finish");
    total + black_box(&*out).len()
}

fn configure(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    size: usize,
) {
    if size >= 64 * MIB {
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(6));
    } else {
        group.sample_size(30);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
    }
}

fn chunked(c: &mut Criterion) {
    let mut rng = rng();
    // Room for one piece's worth of output plus a pending chunk.
    let mut out = Vec::with_capacity(2 * PIECE);

    for (size, name) in SIZES {
        let data = plaintext(size);
        let mut group = c.benchmark_group("chunked_encrypt");
        configure(&mut group, size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &data, |b, data| {
            b.iter(|| stream_encrypt(data, &mut rng, &mut out))
        });
        group.finish();
    }

    for (size, name) in SIZES {
        let data = plaintext(size);
        let ciphertext =
            sealpost_core::chunked::encrypt(&INPUT_KEY, CONTEXT, &data, &mut rng).expect("encrypt");
        drop(data);
        // Sanity check outside the measurement: the streaming path returns every byte.
        assert_eq!(stream_decrypt(&ciphertext, &mut out), size);
        let mut group = c.benchmark_group("chunked_decrypt");
        configure(&mut group, size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &ciphertext, |b, ct| {
            b.iter(|| stream_decrypt(ct, &mut out))
        });
        group.finish();
    }
}

fn envelope(c: &mut Criterion) {
    let mut rng = rng();
    let license_key = LicenseSecretKey::generate(&mut rng);
    let license_public = license_key.public_key();
    let signing_key = SigningKey::generate(&mut rng);
    let verifying_key = signing_key.verifying_key();
    let sealer = Sealer {
        tenant_id: "example.com",
        key_service_url: "https://keys.example.com",
        license_key: &license_public,
        signing_key: &signing_key,
    };
    let now = 1_790_000_000;
    let policy =
        Template::encrypt_only().policy("alice@example.com", &["bob@example.org".to_string()], now);
    let data = plaintext(MIB);

    let mut group = c.benchmark_group("envelope");
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(MIB as u64));

    group.bench_function("seal/1MiB", |b| {
        b.iter(|| {
            seal(
                &sealer,
                &policy,
                Some("Quarterly numbers"),
                now,
                black_box(&data),
                &mut rng,
            )
            .expect("seal")
        })
    });

    let bytes = seal(
        &sealer,
        &policy,
        Some("Quarterly numbers"),
        now,
        &data,
        &mut rng,
    )
    .expect("seal");
    let share_b = {
        let env = Envelope::parse(&bytes).expect("parse");
        *env.open_license(&license_key).expect("license").share_b
    };

    group.bench_function("parse_verify_decrypt/1MiB", |b| {
        b.iter(|| {
            let env = Envelope::parse(black_box(&bytes)).expect("parse");
            env.verify(&verifying_key).expect("verify");
            env.decrypt(&share_b).expect("decrypt")
        })
    });

    let verifying_keys = [verifying_key.clone()];
    let license_keys = [license_key.clone()];
    group.bench_function("open_with_tenant_keys/1MiB", |b| {
        b.iter(|| {
            let env = Envelope::parse(black_box(&bytes)).expect("parse");
            open_with_tenant_keys(&env, &verifying_keys, &license_keys).expect("open")
        })
    });
    group.finish();
}

criterion_group!(benches, chunked, envelope);
criterion_main!(benches);
