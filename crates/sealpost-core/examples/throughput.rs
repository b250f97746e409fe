//! Streaming payload throughput, for `bench/throughput.sh`.
//!
//! Encrypts and decrypts a 64 MiB message with [`Encryptor`]/[`Decryptor`], fed in 64 KiB
//! pieces (the output buffer is emptied after each piece, as if written to a socket), a few
//! times, and prints the best run as machine-readable lines:
//!
//! ```text
//! size_bytes=67108864
//! piece_bytes=65536
//! reps=5
//! encrypt_MBps=1234.5
//! decrypt_MBps=1234.5
//! ```
//!
//! MB is 10^6 bytes, the unit `openssl speed` uses. Usage:
//! `throughput [--size-mib N] [--reps N]` (defaults: 64 MiB, 5 repetitions).
//! Build with `cargo build --release --example throughput -p sealpost-core`.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use sealpost_core::chunked::{Decryptor, Encryptor};

const PIECE: usize = 64 * 1024;
const INPUT_KEY: [u8; 32] = [0x42; 32];
const CONTEXT: &[u8] = b"sealpost throughput context";

fn usage() -> ExitCode {
    eprintln!("usage: throughput [--size-mib N] [--reps N]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut size_mib: usize = 64;
    let mut reps: usize = 5;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&v| v > 0);
        match (arg.as_str(), value) {
            ("--size-mib", Some(v)) => size_mib = v,
            ("--reps", Some(v)) => reps = v,
            _ => return usage(),
        }
    }
    let size = size_mib * 1024 * 1024;

    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let mut plaintext = vec![0u8; size];
    rng.fill_bytes(&mut plaintext);
    let ciphertext = sealpost_core::chunked::encrypt(&INPUT_KEY, CONTEXT, &plaintext, &mut rng)
        .expect("encrypt");

    let mut out = Vec::with_capacity(2 * PIECE);
    let mut best_enc = Duration::MAX;
    let mut best_dec = Duration::MAX;
    for _ in 0..reps {
        let start = Instant::now();
        let mut enc = Encryptor::new(&INPUT_KEY, CONTEXT, &mut rng);
        let mut produced = 0;
        for piece in plaintext.chunks(PIECE) {
            out.clear();
            enc.update(piece, &mut out).expect("encrypt");
            produced += black_box(&out).len();
        }
        out.clear();
        enc.finish(&mut out).expect("encrypt");
        produced += black_box(&out).len();
        best_enc = best_enc.min(start.elapsed());
        assert_eq!(produced, ciphertext.len());

        let start = Instant::now();
        let mut dec = Decryptor::new(&INPUT_KEY, CONTEXT);
        let mut released = 0;
        for piece in ciphertext.chunks(PIECE) {
            out.clear();
            dec.update(piece, &mut out).expect("decrypt");
            released += black_box(&out).len();
        }
        out.clear();
        dec.finish(&mut out).expect("decrypt");
        released += black_box(&out).len();
        best_dec = best_dec.min(start.elapsed());
        assert_eq!(released, size);
    }

    let mbps = |d: Duration| size as f64 / d.as_secs_f64() / 1e6;
    println!("size_bytes={size}");
    println!("piece_bytes={PIECE}");
    println!("reps={reps}");
    println!("encrypt_MBps={:.1}", mbps(best_enc));
    println!("decrypt_MBps={:.1}", mbps(best_dec));
    ExitCode::SUCCESS
}
