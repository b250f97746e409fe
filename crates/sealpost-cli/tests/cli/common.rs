//! Helpers shared by every module: running the binary, checking the shape of its failures,
//! making tenants, reading fixtures and taking wrapper mails apart.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sealpost_core::mail::rfc5322;
use sealpost_core::{LicenseSecretKey, SigningKey};
use tempfile::TempDir;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/mail");

/// What one run of the binary produced.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs `sealpost ARGS` with `stdin` piped in.
pub fn sealpost(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sealpost binary starts");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    // A command that fails before reading stdin closes the pipe: that write error is fine.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().expect("sealpost runs");
    writer.join().unwrap();
    Run {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts success and returns stdout.
pub fn ok(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let r = sealpost(args, stdin);
    assert_eq!(r.code, Some(0), "sealpost {args:?} failed: {}", r.stderr);
    assert!(
        !r.stderr.contains("panicked"),
        "sealpost {args:?}: {}",
        r.stderr
    );
    r.stdout
}

/// Asserts the shape of a failure and returns its one stderr line (without the newline).
pub fn fails(args: &[&str], stdin: &[u8]) -> String {
    let r = sealpost(args, stdin);
    check_failure(&r, args);
    r.stderr.trim_end_matches('\n').to_string()
}

pub fn check_failure(r: &Run, args: &[&str]) {
    assert!(
        !r.stderr.contains("panicked"),
        "sealpost {args:?} panicked: {}",
        r.stderr
    );
    assert_eq!(
        r.code,
        Some(1),
        "sealpost {args:?}: exit status; stderr: {}",
        r.stderr
    );
    assert!(
        r.stdout.is_empty(),
        "sealpost {args:?} wrote {} bytes to stdout on failure",
        r.stdout.len()
    );
    assert!(
        r.stderr.ends_with('\n') && r.stderr.matches('\n').count() == 1,
        "sealpost {args:?}: stderr is not exactly one line: {:?}",
        r.stderr
    );
    assert!(
        r.stderr.starts_with("sealpost: error: "),
        "sealpost {args:?}: {:?}",
        r.stderr
    );
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// Makes a tenant for `domain` in `parent/name` and returns its directory.
pub fn tenant(parent: &TempDir, name: &str, domain: &str, extra: &[&str]) -> PathBuf {
    let dir = parent.path().join(name);
    let mut args = vec!["tenant", "init", "--dir", s(&dir), "--domain", domain];
    args.extend_from_slice(extra);
    let out = ok(&args, b"");
    assert!(String::from_utf8_lossy(&out).contains(&domain.to_ascii_lowercase()));
    dir
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .expect("tests/fixtures/mail exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    names.sort();
    names
}

pub fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The header block of a mail, up to its first empty line.
pub fn header_block(mail: &[u8]) -> &[u8] {
    let end = find(mail, b"\r\n\r\n")
        .or_else(|| find(mail, b"\n\n"))
        .unwrap_or(mail.len());
    &mail[..end]
}

pub fn has_bcc_field(mail: &[u8]) -> bool {
    rfc5322::fields(mail)
        .iter()
        .any(|f| f.name.eq_ignore_ascii_case("bcc"))
}

/// The inspect report as JSON.
pub fn inspect(path: &Path) -> serde_json::Value {
    let out = ok(&["inspect", s(path)], b"");
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "inspect output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out)
        )
    })
}

/// The tenant's private keys, read the way an auditor would.
pub fn tenant_keys(dir: &Path) -> (LicenseSecretKey, SigningKey) {
    let mut license = None;
    let mut signing = None;
    for e in std::fs::read_dir(dir.join("keys")).unwrap() {
        let path = e.unwrap().path();
        let pem = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("license-") {
            license = Some(LicenseSecretKey::from_pem(&pem).unwrap());
        } else if name.starts_with("signing-") {
            signing = Some(SigningKey::from_pem(&pem).unwrap());
        }
    }
    (
        license.expect("a license key"),
        signing.expect("a signing key"),
    )
}

/// The message.html attachment of a wrapper mail, as the recipient's mail client decodes it.
pub struct Attachment {
    /// The decoded message.html.
    pub html: Vec<u8>,
    /// For each byte of `html`, a position in the wrapper holding one base64 character whose
    /// change alters that byte or its neighbour.
    pub at: Vec<usize>,
    /// Every position in the wrapper that carries a character of the attachment body.
    pub body: Vec<usize>,
}

/// Finds the message.html attachment. A body labelled base64 that is not base64 (see the
/// report: `wrap` once wrote message.html raw) is taken as it stands, so these tests still
/// damage the envelope block itself.
pub fn attachment(wrapper: &[u8]) -> Attachment {
    let named = find(wrapper, b"filename=\"message.html\"").expect("message.html attachment");
    let start = named + find(&wrapper[named..], b"\r\n\r\n").unwrap() + 4;
    let end = start + find(&wrapper[start..], b"\r\n--").unwrap();
    let body: Vec<usize> = (start..end)
        .filter(|&i| !wrapper[i].is_ascii_whitespace())
        .collect();
    let text: Vec<u8> = body.iter().map(|&i| wrapper[i]).collect();
    match B64.decode(&text) {
        Ok(html) => {
            let at = (0..html.len()).map(|k| body[k / 3 * 4 + 1]).collect();
            let body = body.into_iter().filter(|&i| wrapper[i] != b'=').collect();
            Attachment { html, at, body }
        }
        Err(_) => Attachment {
            html: wrapper[start..end].to_vec(),
            at: (start..end).collect(),
            body,
        },
    }
}

/// Byte positions in `html` of the characters of its envelope block, in order.
pub fn envelope_block(html: &[u8]) -> Vec<usize> {
    let marker = find(html, b"type=\"application/x-sealpost-envelope\"").unwrap();
    let open = marker + find(&html[marker..], b">").unwrap() + 1;
    let close = open + find(&html[open..], b"</script>").unwrap();
    (open..close)
        .filter(|&k| !html[k].is_ascii_whitespace())
        .collect()
}

/// The PostgreSQL URL of the test cluster (`SEALPOST_TEST_POSTGRES_URL`, set by
/// scripts/test.sh). `None` means "skip" on a developer machine; with `CI` set, a missing URL
/// is a failure, so CI never silently skips the PostgreSQL tests.
pub fn test_postgres_url(test: &str) -> Option<String> {
    let url = std::env::var("SEALPOST_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "CI is set but SEALPOST_TEST_POSTGRES_URL is not: {test} must run in CI"
        );
        eprintln!("SEALPOST_TEST_POSTGRES_URL is not set: {test} skipped");
    }
    url
}

/// The passcode in the mail of `sealpost outbox list` output that names `reference`.
pub fn passcode_for(outbox: &str, reference: &str) -> String {
    let mail = outbox
        .split("--- #")
        .find(|m| m.contains(reference))
        .unwrap_or_else(|| panic!("no passcode mail names {reference}:\n{outbox}"));
    mail.lines()
        .map(str::trim)
        .find(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no 8-digit passcode in the mail:\n{mail}"))
        .to_string()
}
