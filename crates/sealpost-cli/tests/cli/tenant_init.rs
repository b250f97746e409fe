//! `sealpost tenant init`: the files it writes, and what it refuses.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::common::{fails, s, tenant, tenant_keys};

#[test]
fn tenant_init_writes_settings_and_private_keys() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new().unwrap();
    let dir = tenant(
        &tmp,
        "org",
        "Example.COM",
        &["--name", "Example Inc.", "--show-subject"],
    );
    let settings = std::fs::read_to_string(dir.join("tenant.toml")).unwrap();
    assert!(
        settings.contains("tenant_id = \"example.com\""),
        "{settings}"
    );
    assert!(
        settings.contains("display_name = \"Example Inc.\""),
        "{settings}"
    );
    assert!(settings.contains("show_subject = true"), "{settings}");
    let keys = dir.join("keys");
    assert_eq!(
        std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let mut pems: Vec<String> = Vec::new();
    for e in std::fs::read_dir(&keys).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let mode = e.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
        assert!(
            std::fs::read_to_string(e.path())
                .unwrap()
                .contains("PRIVATE KEY"),
            "{name}"
        );
        pems.push(name);
    }
    pems.sort();
    assert_eq!(pems.len(), 2, "{pems:?}");
    assert!(
        pems[0].starts_with("license-") && pems[0].ends_with(".pem"),
        "{pems:?}"
    );
    assert!(
        pems[1].starts_with("signing-") && pems[1].ends_with(".pem"),
        "{pems:?}"
    );
    // The key ids in the file names are the ones in tenant.toml.
    for p in &pems {
        let id = p.trim_end_matches(".pem").rsplit('-').next().unwrap();
        assert!(
            settings.contains(&format!("id = \"{id}\"")),
            "{id} not in tenant.toml"
        );
    }
    let (license, _) = tenant_keys(&dir);
    assert!(settings.contains(&license.public_key().to_base64()));
}

#[test]
fn tenant_init_reply_url_and_transport_decryption() {
    let tmp = TempDir::new().unwrap();
    let plain = tenant(&tmp, "plain", "example.com", &[]);
    let settings = std::fs::read_to_string(plain.join("tenant.toml")).unwrap();
    assert!(!settings.contains("reply_url"), "{settings}");
    assert!(
        settings.contains("transport_decryption = false"),
        "{settings}"
    );
    let extra = [
        "--reply-url",
        "https://mail.example.com:8090/",
        "--transport-decryption",
    ];
    let dir = tenant(&tmp, "replies", "example.com", &extra);
    let settings = std::fs::read_to_string(dir.join("tenant.toml")).unwrap();
    assert!(
        settings.contains("reply_url = \"https://mail.example.com:8090\""),
        "{settings}"
    );
    assert!(
        settings.contains("transport_decryption = true"),
        "{settings}"
    );
    // tenant.toml files written before these settings existed still load.
    let old: String = settings
        .lines()
        .filter(|l| !l.starts_with("reply_url") && !l.starts_with("transport_decryption"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("tenant.toml"), old).unwrap();
    let wrapper = crate::common::ok(
        &["encrypt", "--tenant", s(&dir)],
        b"From: a@example.com\nTo: b@example.org\nSubject: s\n\nbody\n",
    );
    assert!(!wrapper.is_empty());
}

#[test]
fn tenant_init_refuses_to_overwrite() {
    let tmp = TempDir::new().unwrap();
    let dir = tenant(&tmp, "org", "example.com", &[]);
    let snapshot = |dir: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = vec![(
            dir.join("tenant.toml"),
            std::fs::read(dir.join("tenant.toml")).unwrap(),
        )];
        for e in std::fs::read_dir(dir.join("keys")).unwrap() {
            let p = e.unwrap().path();
            files.push((p.clone(), std::fs::read(&p).unwrap()));
        }
        files.sort();
        files
    };
    let before = snapshot(&dir);
    for domain in ["example.com", "other.org"] {
        // `--domain=VALUE`, so that a value starting with `-` reaches the command.
        let arg = format!("--domain={domain}");
        let err = fails(&["tenant", "init", "--dir", s(&dir), &arg], b"");
        assert!(err.contains("already holds a tenant"), "{err}");
    }
    assert_eq!(snapshot(&dir), before, "an existing tenant was modified");
}

#[test]
fn tenant_init_rejects_bad_domains_and_urls() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("t");
    for domain in [
        "",
        "bad domain",
        "-leading.example",
        "a..b",
        "under_score.example",
        "x@y.example",
        "ex\u{e4}mple.com",
    ] {
        // `--domain=VALUE`, so that a value starting with `-` reaches the command.
        let arg = format!("--domain={domain}");
        let err = fails(&["tenant", "init", "--dir", s(&dir), &arg], b"");
        assert!(err.contains("is not a mail domain"), "{domain:?}: {err}");
    }
    for flag in ["--key-service-url", "--portal-url", "--reply-url"] {
        for url in [
            "",
            "not a url",
            "ftp://files.example.com",
            "https://",
            "mailto:a@b.example",
            "/relative/path",
        ] {
            let err = fails(
                &[
                    "tenant",
                    "init",
                    "--dir",
                    s(&dir),
                    "--domain",
                    "example.com",
                    flag,
                    url,
                ],
                b"",
            );
            assert!(
                err.contains(flag) && err.contains("is not an http(s) URL"),
                "{flag} {url:?}: {err}"
            );
        }
    }
    assert!(
        !dir.join("tenant.toml").exists(),
        "a rejected init left a tenant behind"
    );
}
