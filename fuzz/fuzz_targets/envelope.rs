//! `Envelope::parse` on arbitrary bytes, and everything a reader does next: the header, the
//! signature check, opening the license with the tenant key and decrypting the payload. Nothing
//! may panic; a parsed header must re-encode to exactly the bytes it was read from.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost_core::{Envelope, open_with_tenant_keys};
use sealpost_fuzz::{LICENSE_KEY, VERIFYING_KEY};

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::parse(data) else {
        return;
    };
    let header = envelope.header();
    assert_eq!(
        header.encode(),
        envelope.header_bytes(),
        "a header has exactly one encoding"
    );
    let _ = header.message_id.reference();
    let _ = envelope.header_hash();
    let _ = format!("{envelope:?}");

    let verified = envelope.verify(&VERIFYING_KEY).is_ok();
    if let Ok(license) = envelope.open_license(&LICENSE_KEY) {
        let _ = license.policy.is_recipient("bob@example.org");
        let decrypted = envelope.decrypt(&license.share_b);
        if let Ok(ra) = envelope.random_access(&license.share_b) {
            for i in 0..ra.chunk_count() {
                let _ = ra.decrypt_chunk(i);
            }
        }
        let opened = open_with_tenant_keys(
            &envelope,
            std::slice::from_ref(&*VERIFYING_KEY),
            std::slice::from_ref(&*LICENSE_KEY),
        );
        // The recovery path is verify + open license + decrypt.
        match (&opened, verified, &decrypted) {
            (Ok(o), true, Ok(plaintext)) => assert_eq!(&o.plaintext[..], &plaintext[..]),
            (Err(_), false, _) | (Err(_), _, Err(_)) => {}
            _ => panic!("open_with_tenant_keys disagrees with verify + open_license + decrypt"),
        }
    } else {
        // A wrong share B must fail cleanly.
        let _ = envelope.decrypt(&[0; 32]);
    }
});
