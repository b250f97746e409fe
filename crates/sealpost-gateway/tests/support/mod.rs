//! The SMTP sink shared by the relay and whole-gateway tests: `refusing_sink.py` (Debian's
//! python3-aiosmtpd) on a loopback port, killed when dropped, and what it received.
//!
//! Without python3-aiosmtpd the tests that need it print a skip line and pass, unless `CI` is
//! set: there they fail (`scripts/smtp-sink.sh` installs it).

#![allow(dead_code)] // each test target uses its own part

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PYTHON: &str = "/usr/bin/python3";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/refusing_sink.py"
);

/// The sink process, killed when dropped, and the directory it writes to.
pub struct Sink {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the sink can run; panics under `CI` when it cannot.
pub fn sink_available() -> bool {
    let found = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!(
            "the SMTP sink is missing: `apt-get install python3-aiosmtpd` (scripts/smtp-sink.sh does it)"
        );
    }
    if !found {
        eprintln!(
            "python3-aiosmtpd is not installed (apt-get install python3-aiosmtpd): SMTP test skipped"
        );
    }
    found
}

/// A loopback port nothing listens on (at the moment of asking).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits up to 20 s for a listener on `port`.
pub fn wait_for_port(port: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing came up on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The sink on `port`, offering STARTTLS when `tls` is `[cert.pem, key.pem]`.
pub fn start_sink_on(port: u16, tls: &[&Path]) -> Sink {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(PYTHON)
        .arg(SCRIPT)
        .arg(port.to_string())
        .arg(dir.path())
        .args(tls)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the sink");
    let sink = Sink { child, port, dir };
    wait_for_port(port);
    sink
}

/// The sink on a free port, or `None` (skip) when it cannot run.
pub fn start_sink_with(tls: &[&Path]) -> Option<Sink> {
    sink_available().then(|| start_sink_on(free_port(), tls))
}

/// One message the sink accepted: its bytes and envelope (mail_from, rcpt_tos, mail_options,
/// peer, tls).
pub struct Received {
    pub data: Vec<u8>,
    pub meta: serde_json::Value,
}

impl Sink {
    /// What the sink accepted, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        messages(self.dir.path())
    }
}

fn messages(dir: &Path) -> Vec<Received> {
    let mut emls: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    emls.sort();
    emls.into_iter()
        .map(|p| Received {
            data: std::fs::read(&p).unwrap(),
            meta: serde_json::from_slice(&std::fs::read(p.with_extension("json")).unwrap())
                .unwrap(),
        })
        .collect()
}
