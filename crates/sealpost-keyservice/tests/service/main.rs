//! The key service's rules, end to end through the logic layer (`KeyService`, no HTTP), with
//! time moved by a manual clock. Each test runs on both backends (`THEME::sqlite::*` and
//! `THEME::postgres::*`, see `support/db.rs`), each on a fresh database; the fixture is
//! `support/fixture.rs`.

use sealpost_core::Envelope;

#[macro_use]
#[path = "../support/db.rs"]
mod db;
#[path = "../support/fixture.rs"]
mod fixture;
#[path = "../support/reply.rs"]
mod reply;

mod gateway;
mod otp;
mod rewrap;
mod transport;

use fixture::Fixture;

/// Signs `email` in by passcode for the message in `env`; returns the session token.
async fn sign_in(f: &Fixture, env: &[u8], email: &str) -> String {
    let e = Envelope::parse(env).unwrap();
    let started = f
        .svc
        .start_otp(e.header_bytes(), e.license(), email, None)
        .await
        .unwrap();
    let code = f.mailed_code(email).await.expect("a code was mailed");
    f.svc
        .verify_otp(&started.challenge, &code, None)
        .await
        .unwrap()
        .session
}
