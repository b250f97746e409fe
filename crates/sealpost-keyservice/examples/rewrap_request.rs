//! Helper for `bench/rewrap.sh`, two commands:
//!
//! ```text
//! rewrap_request bodies --email ADDR --out DIR < wrapper.eml
//! rewrap_request released --database-url URL --tenant-id ID --message-id HEX
//! ```
//!
//! `bodies` reads a wrapper mail (or a `message.html`, or a raw envelope) on standard input
//! and writes the request bodies a portal would send for it:
//!
//! - `DIR/otp_start.json`: `{"header", "license", "email"}` for `POST /v1/otp/start`;
//! - `DIR/rewrap.json`: `{"header", "license", "client_public_key"}` for `POST /v1/rewrap`,
//!   with the public half of a fixed ephemeral P-256 key (a benchmark needs a valid point,
//!   not a secret one);
//! - `DIR/reference.txt`: the message reference the passcode mail names;
//! - `DIR/message_id.txt` and `DIR/tenant_id.txt`: from the header.
//!
//! It only reads the envelope's structure (no key, nothing verified); the key service does
//! the checking.
//!
//! `released` opens the key service's database (`sqlite://DIR/sealpost.db` or
//! `postgres://…`) and prints how many `share_released` audit events the message has, so the
//! benchmark can check that every share it received has its durable audit record.
//!
//! Errors go to standard error with exit code 1.

#![forbid(unsafe_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine;
use sealpost_core::Envelope;
use sealpost_core::rewrap::ClientSecretKey;
use sealpost_keyservice::store::Store;

const USAGE: &str = "usage: rewrap_request bodies --email ADDR --out DIR < wrapper.eml\n       \
     rewrap_request released --database-url URL --tenant-id ID --message-id HEX";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bodies") => flags(&args[1..], &["--email", "--out"]).and_then(|v| {
            let [email, out] = <[String; 2]>::try_from(v).expect("two flags");
            bodies(&email, &PathBuf::from(out))
        }),
        Some("released") => flags(
            &args[1..],
            &["--database-url", "--tenant-id", "--message-id"],
        )
        .and_then(|v| {
            let [url, tenant, message] = <[String; 3]>::try_from(v).expect("three flags");
            released(&url, &tenant, &message)
        }),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rewrap_request: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The values of `names`, each given once as `--name VALUE`, in the order of `names`.
fn flags(args: &[String], names: &[&str]) -> Result<Vec<String>, String> {
    let mut values: Vec<Option<String>> = vec![None; names.len()];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(i) = names.iter().position(|n| n == a) else {
            return Err(format!("unexpected argument {a:?}\n{USAGE}"));
        };
        values[i] = Some(
            it.next()
                .ok_or(format!("{a} needs a value\n{USAGE}"))?
                .clone(),
        );
    }
    values
        .into_iter()
        .zip(names)
        .map(|(v, n)| v.ok_or(format!("{n} is required\n{USAGE}")))
        .collect()
}

fn bodies(email: &str, out: &std::path::Path) -> Result<(), String> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    let raw = sealpost_core::mail::extract_envelope(&input)
        .map_err(|e| format!("no envelope on standard input: {e}"))?;
    let envelope = Envelope::parse(&raw).map_err(|e| format!("not a valid envelope: {e}"))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let header = b64.encode(envelope.header_bytes());
    let license = b64.encode(envelope.license());
    let client = ClientSecretKey::derive(&[0x5e; 32]);
    let client_public_key = b64.encode(client.public_key().to_bytes());

    let write = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(
        "otp_start.json",
        serde_json::json!({ "header": header, "license": license, "email": email }).to_string(),
    )?;
    write(
        "rewrap.json",
        serde_json::json!({
            "header": header,
            "license": license,
            "client_public_key": client_public_key,
        })
        .to_string(),
    )?;
    let h = envelope.header();
    write("reference.txt", format!("{}\n", h.message_id.reference()))?;
    write("message_id.txt", format!("{}\n", h.message_id.to_hex()))?;
    write("tenant_id.txt", format!("{}\n", h.tenant_id))?;
    Ok(())
}

fn released(url: &str, tenant_id: &str, message_id: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let n = runtime.block_on(async {
        let store = Store::connect(url, 1)
            .await
            .map_err(|e| format!("cannot open {url}: {e}"))?;
        let rows = store
            .audit_for_message(tenant_id, message_id, i64::MAX)
            .await
            .map_err(|e| format!("cannot read the audit log: {e}"))?;
        store.close().await;
        Ok::<_, String>(rows.iter().filter(|r| r.event == "share_released").count())
    })?;
    println!("{n}");
    Ok(())
}
