//! The recipient's session with one key service, kept for the browser tab.
//!
//! After `/v1/otp/verify` the portal keeps the session token in `sessionStorage` (per tab,
//! gone when the tab closes) under a key naming the key service and the tenant (a session
//! opens only the messages of the tenant it was opened for), so the next message from the
//! same organization opens without a new passcode until the session ends: 12 hours after
//! sign-in or 30 minutes without use (the service's defaults, which it reports). The portal
//! forgets a session early when the service says it has ended. This module is the record and
//! its rules; reading and writing `sessionStorage` is the browser glue's job. The token is
//! never logged or shown.

use serde::{Deserialize, Serialize};

use crate::api::OtpVerified;
use crate::config::normalize_url;

/// A signed-in session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The bearer token (`sps_…`).
    pub token: String,
    /// The address it is bound to.
    pub email: String,
    /// Absolute end, Unix seconds.
    pub expires_at: u64,
    /// Idle timeout, seconds.
    pub idle_timeout: u64,
    /// When the portal last used it, Unix seconds.
    pub last_used: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("email", &self.email)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The session `/v1/otp/verify` returned at `now`.
    pub fn from_verified(v: &OtpVerified, now: u64) -> Session {
        Session {
            token: v.session.clone(),
            email: v.email.clone(),
            expires_at: v.expires_at,
            idle_timeout: v.idle_timeout,
            last_used: now,
        }
    }

    /// Whether it can still be used at `now` (a minute of margin on the idle timeout, which
    /// the service may end up to a minute early).
    pub fn is_live(&self, now: u64) -> bool {
        now < self.expires_at && now < self.last_used + self.idle_timeout.saturating_sub(60)
    }

    /// Reads a stored session.
    pub fn from_json(s: &str) -> Option<Session> {
        serde_json::from_str(s).ok()
    }

    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a session serializes")
    }
}

/// How far the key service's clock is ahead of the browser's (negative: behind), from the
/// service's `server_time` and the browser's clock when the answer arrived.
pub fn clock_offset(server_time: u64, local: u64) -> i64 {
    i64::try_from(server_time)
        .unwrap_or(i64::MAX)
        .saturating_sub(i64::try_from(local).unwrap_or(i64::MAX))
}

/// The key service's time now, from the browser's clock and the last learned offset. The
/// portal counts session timeouts and a reply's lifetime on this clock, so a browser whose
/// clock is wrong still seals replies the key service accepts.
pub fn service_now(local: u64, offset: i64) -> u64 {
    local.saturating_add_signed(offset)
}

/// The `sessionStorage` key for the sessions of `tenant` at the key service at `url`.
pub fn storage_key(url: &str, tenant: &str) -> String {
    format!("sealpost.session:{}#{tenant}", normalize_url(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_rules() {
        let v = OtpVerified {
            session: "sps_secret".into(),
            email: "bob@example.org".into(),
            expires_at: 10_000,
            idle_timeout: 1800,
            server_time: Some(1000),
        };
        let s = Session::from_verified(&v, 1000);
        assert!(s.is_live(1000) && s.is_live(2739));
        assert!(!s.is_live(2740), "idle");
        let mut used = s.clone();
        used.last_used = 9_900;
        assert!(!used.is_live(10_000), "absolute");
        assert_eq!(Session::from_json(&s.to_json()), Some(s.clone()));
        assert_eq!(Session::from_json("{}"), None);
        assert!(!format!("{s:?}").contains("sps_secret"));
        assert_eq!(
            storage_key("HTTP://K:1/", "example.com"),
            "sealpost.session:http://k:1#example.com"
        );
        assert_ne!(
            storage_key("http://k:1", "a"),
            storage_key("http://k:1", "b")
        );
    }

    #[test]
    fn the_service_clock_from_a_wrong_browser_clock() {
        // The browser is an hour behind, then ten minutes ahead.
        let behind = clock_offset(1_800_003_600, 1_800_000_000);
        assert_eq!(behind, 3600);
        assert_eq!(service_now(1_800_000_100, behind), 1_800_003_700);
        let ahead = clock_offset(1_800_000_000, 1_800_000_600);
        assert_eq!(ahead, -600);
        assert_eq!(service_now(1_800_000_600, ahead), 1_800_000_000);
        assert_eq!(service_now(5, -600), 0, "never below zero");
        assert_eq!(service_now(7, 0), 7);
    }
}
