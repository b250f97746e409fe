//! `mail::extract_envelope` on arbitrary bytes (a wrapper `.eml` or a `message.html`, or
//! anything else): it must never panic, and what it returns is handed to `Envelope::parse`
//! as the portal would.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost_core::Envelope;
use sealpost_core::mail::{ExtractError, extract_envelope};

fuzz_target!(|data: &[u8]| {
    let result: Result<Vec<u8>, ExtractError> = extract_envelope(data);
    match result {
        Ok(bytes) => {
            let _ = Envelope::parse(&bytes);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
