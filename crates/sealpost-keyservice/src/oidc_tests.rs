//! The provider configuration: presets and their defaults, every error, and the e-mail rule.

use super::*;

fn entry(preset: Preset) -> OidcProviderToml {
    OidcProviderToml {
        id: Some("p".into()),
        preset: Some(preset),
        client_id: Some("client".into()),
        redirect_url: Some("https://portal.example.com/".into()),
        ..OidcProviderToml::default()
    }
}

fn one(e: OidcProviderToml) -> Result<OidcProvider, Vec<String>> {
    check_providers(&[e], None).map(|mut v| v.remove(0))
}

#[test]
fn presets_fill_in_defaults() {
    let g = one(entry(Preset::Google)).unwrap();
    assert_eq!(g.issuer, "https://accounts.google.com");
    assert_eq!(g.display_name, "Google");
    assert_eq!(g.scopes, ["openid", "email"]);
    assert!(g.client_secret.is_none());
    let y = one(entry(Preset::Yahoo)).unwrap();
    assert_eq!(y.issuer, "https://api.login.yahoo.com");
    assert_eq!(y.display_name, "Yahoo");
    let m = one(OidcProviderToml {
        ms_tenant: Some("72F988BF-86f1-41af-91ab-2d7cd011db47".into()),
        ..entry(Preset::Microsoft)
    })
    .unwrap();
    assert_eq!(
        m.issuer,
        "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
    );
    assert_eq!(m.display_name, "Microsoft");
    let explicit = one(OidcProviderToml {
        issuer: Some("https://login.microsoftonline.com/x/v2.0".into()),
        display_name: Some("Contoso staff".into()),
        client_secret: Some(" s3cret\n".into()),
        scopes: Some(vec!["openid".into(), "email".into(), "profile".into()]),
        ..entry(Preset::Microsoft)
    })
    .unwrap();
    assert_eq!(explicit.issuer, "https://login.microsoftonline.com/x/v2.0");
    assert_eq!(explicit.display_name, "Contoso staff");
    assert_eq!(
        explicit.client_secret.as_deref().map(String::as_str),
        Some("s3cret")
    );
    assert_eq!(explicit.scopes.len(), 3);
    assert!(!format!("{explicit:?}").contains("s3cret"));
}

#[test]
fn microsoft_needs_its_directory() {
    let e = one(entry(Preset::Microsoft)).unwrap_err();
    assert!(
        e[0].contains("ms_tenant") && e[0].contains("issuer"),
        "{e:?}"
    );
    for multi in ["common", "organizations", "Consumers"] {
        let e = one(OidcProviderToml {
            ms_tenant: Some(multi.into()),
            ..entry(Preset::Microsoft)
        })
        .unwrap_err();
        assert!(e[0].contains("multi-tenant"), "{e:?}");
    }
    // A domain names the directory in the URL, but Entra's issuer is always its id.
    for not_an_id in [
        "a/b",
        "contoso.onmicrosoft.com",
        "72f988bf-86f1-41af-91ab-2d7cd011db4",
        "72f988bf-86f1-41af-91ab-2d7cd011db47-0",
        "72f988bg-86f1-41af-91ab-2d7cd011db47",
    ] {
        let e = one(OidcProviderToml {
            ms_tenant: Some(not_an_id.into()),
            ..entry(Preset::Microsoft)
        })
        .unwrap_err();
        assert!(e[0].contains("not a directory id"), "{not_an_id}: {e:?}");
    }
    let e = one(OidcProviderToml {
        ms_tenant: Some("x".into()),
        issuer: Some("https://login.microsoftonline.com/x/v2.0".into()),
        ..entry(Preset::Microsoft)
    })
    .unwrap_err();
    assert!(e[0].contains("not both"), "{e:?}");
    let e = one(OidcProviderToml {
        ms_tenant: Some("x".into()),
        ..entry(Preset::Google)
    })
    .unwrap_err();
    assert!(e[0].contains("only for preset microsoft"), "{e:?}");
}

#[test]
fn every_problem_is_listed_with_its_entry() {
    let bad = OidcProviderToml {
        id: Some("Bad Id".into()),
        preset: Some(Preset::Generic),
        client_secret: Some("a".into()),
        client_secret_file: Some("/nonexistent".into()),
        redirect_url: Some("http://portal.example.com/".into()),
        scopes: Some(vec!["openid".into()]),
        ..OidcProviderToml::default()
    };
    let e = check_providers(&[entry(Preset::Google), bad], None).unwrap_err();
    let text = e.join("\n");
    for want in [
        "#2 (id \"Bad Id\")",
        "must be 1 to 32 characters",
        "`issuer` is required with preset generic",
        "`display_name` is required",
        "`client_id` is missing",
        "not both",
        "must be an https:// URL",
        "scopes must include \"email\"",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    assert_eq!(e.len(), 7, "{text}");
    let e = check_providers(&[OidcProviderToml::default()], None).unwrap_err();
    assert!(e.iter().any(|m| m.contains("`id` is missing")), "{e:?}");
    assert!(e.iter().any(|m| m.contains("`preset` is missing")), "{e:?}");
    let e = check_providers(&[entry(Preset::Google), entry(Preset::Yahoo)], None).unwrap_err();
    assert!(e[0].contains("used by an earlier entry"), "{e:?}");
    let e = one(OidcProviderToml {
        redirect_url: None,
        issuer: Some("https://idp.example/#x".into()),
        ..entry(Preset::Google)
    })
    .unwrap_err();
    assert!(e.iter().any(|m| m.contains("fragment")), "{e:?}");
    assert!(
        e.iter().any(|m| m.contains("`redirect_url` is missing")),
        "{e:?}"
    );
    // Loopback issuers may be plain http (tests and the demo).
    assert!(
        one(OidcProviderToml {
            issuer: Some("http://127.0.0.1:9400".into()),
            display_name: Some("Local".into()),
            ..entry(Preset::Generic)
        })
        .is_ok()
    );
}

#[test]
fn secret_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "from-file\n").unwrap();
    std::fs::write(dir.path().join("empty"), "\n").unwrap();
    let with = |f: &str| OidcProviderToml {
        client_secret_file: Some(f.into()),
        ..entry(Preset::Google)
    };
    let p = check_providers(&[with("secret")], Some(dir.path())).unwrap();
    assert_eq!(
        p[0].client_secret.as_deref().map(String::as_str),
        Some("from-file")
    );
    let e = check_providers(&[with("empty")], Some(dir.path())).unwrap_err();
    assert!(e[0].contains("is empty"), "{e:?}");
    let e = check_providers(&[with("missing")], Some(dir.path())).unwrap_err();
    assert!(e[0].contains("cannot read client_secret_file"), "{e:?}");
}

#[test]
fn read_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sealpost.toml");
    std::fs::write(
        &p,
        "[keyservice]\n[[keyservice.oidc]]\nid = \"google\"\npreset = \"google\"\nclient_id = \"c\"\n\
         redirect_url = \"https://portal.example.com/\"\n[[keyservice.oidc]]\nid = \"corp\"\npreset = \"generic\"\n\
         display_name = \"Corp SSO\"\nissuer = \"https://sso.example.com\"\nclient_id = \"d\"\n\
         redirect_url = \"https://portal.example.com/\"\n",
    )
    .unwrap();
    let file = crate::config::read_file(&p).unwrap();
    let providers = file.oidc_providers(Some(dir.path())).unwrap();
    assert_eq!(providers.len(), 2);
    assert_eq!(providers[1].display_name, "Corp SSO");
    std::fs::write(
        &p,
        "[keyservice]\n[[keyservice.oidc]]\nid = \"x\"\npreset = \"gogle\"\n",
    )
    .unwrap();
    let e = crate::config::read_file(&p).unwrap_err();
    assert!(e[0].contains("line 4") && e[0].contains("gogle"), "{e:?}");
    std::fs::write(
        &p,
        "[keyservice]\n[[keyservice.oidc]]\nid = \"x\"\nsecret = \"x\"\n",
    )
    .unwrap();
    assert!(crate::config::read_file(&p).unwrap_err()[0].contains("unknown field"));
}

#[test]
fn email_needs_verification() {
    use EmailRefusal::*;
    let v = |p, e, ev, x| verified_email(p, e, ev, x);
    assert_eq!(
        v(Preset::Google, Some("Bob@Example.ORG"), Some(true), None),
        Ok("bob@example.org".to_string())
    );
    assert_eq!(
        v(Preset::Google, Some("b@x.org"), Some(false), None),
        Err(NotVerified)
    );
    assert_eq!(
        v(Preset::Generic, Some("b@x.org"), None, None),
        Err(NotVerified)
    );
    assert_eq!(v(Preset::Yahoo, None, Some(true), None), Err(Missing));
    assert_eq!(
        v(Preset::Generic, Some("nobody"), Some(true), None),
        Err(NotAnAddress)
    );
    // Microsoft: xms_edov stands in for email_verified, and only for Microsoft.
    assert_eq!(
        v(Preset::Microsoft, Some("b@x.org"), None, None),
        Err(NotVerified)
    );
    assert_eq!(
        v(Preset::Microsoft, Some("b@x.org"), None, Some(true)),
        Ok("b@x.org".to_string())
    );
    assert_eq!(
        v(Preset::Microsoft, Some("b@x.org"), None, Some(false)),
        Err(NotVerified)
    );
    assert_eq!(
        v(Preset::Google, Some("b@x.org"), None, Some(true)),
        Err(NotVerified)
    );
}
