//! A per-client-IP request limit: a fixed one-minute window per address, in memory.
//!
//! Each key-service instance counts on its own (behind a load balancer the effective limit
//! is the per-instance limit times the number of instances); the per-address limits that
//! protect passcodes live in the database and are shared by all instances.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Counts requests per IP address per minute.
#[derive(Debug)]
pub struct IpLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl IpLimiter {
    /// Allows `per_minute` requests per address per minute (0 disables the limit).
    pub fn new(per_minute: u32) -> IpLimiter {
        IpLimiter {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request from `ip` at `now`; `Err(seconds until the window ends)` if over.
    pub fn check(&self, ip: Option<IpAddr>, now: i64) -> Result<(), i64> {
        let (Some(ip), true) = (ip, self.per_minute > 0) else {
            return Ok(());
        };
        let window = now - now.rem_euclid(60);
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (w, _)| *w == window);
        }
        let entry = map.entry(ip).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= self.per_minute {
            return Err(window + 60 - now);
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_limits_and_resets() {
        let l = IpLimiter::new(3);
        let ip = Some("192.0.2.1".parse().unwrap());
        for _ in 0..3 {
            assert!(l.check(ip, 120).is_ok());
        }
        assert_eq!(l.check(ip, 150), Err(30));
        assert!(l.check(Some("192.0.2.2".parse().unwrap()), 150).is_ok());
        assert!(l.check(ip, 180).is_ok(), "new window");
        assert!(IpLimiter::new(0).check(ip, 0).is_ok());
    }
}
