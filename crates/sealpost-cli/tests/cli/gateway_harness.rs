//! The pieces of the gateway's real-MTA and crash tests (`gateway_postfix`, `gateway_crash`):
//! an exact SMTP sink, a private Postfix instance, `sealpost gateway` as a child process that
//! can be killed and restarted, and a small SMTP client.
//!
//! Every running thing is a guard that stops it when dropped, so a failing test leaves no
//! Postfix, sink or gateway behind. The sink is Debian's `python3-aiosmtpd` with a handler that
//! stores each message exactly as received (`envelope.original_content`: CRLF line ends,
//! dot-unstuffed, nothing re-encoded), because the tests compare bytes. Postfix runs through
//! `scripts/postfix.sh`. This module checks nothing about the gateway itself.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PYTHON: &str = "/usr/bin/python3";
const POSTFIX_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/postfix.sh");

/// Whether CI is set: then a missing tool fails the test instead of skipping it.
fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// True when the tools `needs` names are installed ("postfix", "aiosmtpd"). Otherwise prints a
/// skip line and returns false, or panics when `CI` is set.
pub fn tools_available(test: &str, needs: &[&str]) -> bool {
    let mut missing = Vec::new();
    for &tool in needs {
        let found = match tool {
            "postfix" => Path::new("/usr/sbin/postfix").exists(),
            "aiosmtpd" => Command::new(PYTHON)
                .args(["-c", "import aiosmtpd"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            other => panic!("unknown tool {other}"),
        };
        if !found {
            missing.push(tool);
        }
    }
    if missing.is_empty() {
        return true;
    }
    let hint = "`scripts/postfix.sh install` and `scripts/smtp-sink.sh` install them";
    assert!(
        !in_ci(),
        "CI is set but {missing:?} is missing ({hint}): {test} must run in CI"
    );
    eprintln!("{missing:?} not installed ({hint}): {test} skipped");
    false
}

/// A temporary directory the `postfix` user can enter (Postfix's daemons drop root).
pub fn open_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Waits until 127.0.0.1:`port` greets with a 220 line; false on timeout.
pub fn wait_greeting(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut line = String::new();
            if BufReader::new(&s).read_line(&mut line).is_ok() && line.starts_with("220") {
                let _ = (&s).write_all(b"QUIT\r\n");
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

const SINK_PY: &str = r#"
import asyncio, json, os, sys
from aiosmtpd.smtp import SMTP
port, out = int(sys.argv[1]), sys.argv[2]
for d in ("tmp", "new"):
    os.makedirs(os.path.join(out, d), exist_ok=True)
count = 0
class Store:
    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        name = "%06d" % count
        tmp = os.path.join(out, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(json.dumps({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}).encode() + b"\n")
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(out, "new", name))
        return "250 2.0.0 stored " + name
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
factory = lambda: SMTP(Store(), enable_SMTPUTF8=True, hostname="sink.test")
loop.run_until_complete(loop.create_server(factory, "127.0.0.1", port))
loop.run_forever()
"#;

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub mail_from: String,
    pub recipients: Vec<String>,
    pub data: Vec<u8>,
}

/// The exact SMTP sink, killed when dropped.
pub struct Sink {
    child: Child,
    dir: PathBuf,
}

impl Sink {
    pub fn start(port: u16, dir: &Path) -> Sink {
        let child = Command::new(PYTHON)
            .args(["-c", SINK_PY])
            .arg(port.to_string())
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the python3-aiosmtpd sink");
        let sink = Sink {
            child,
            dir: dir.to_path_buf(),
        };
        assert!(
            wait_greeting(port, Duration::from_secs(20)),
            "the SMTP sink did not come up on port {port}"
        );
        sink
    }

    /// Everything received so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.join("new"))
            .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .map(|p| {
                let raw = std::fs::read(p).unwrap();
                let nl = raw.iter().position(|&b| b == b'\n').unwrap();
                let meta: serde_json::Value = serde_json::from_slice(&raw[..nl]).unwrap();
                // aiosmtpd gives the null sender as "<>".
                let from = meta["mail_from"].as_str().unwrap_or("");
                Delivery {
                    mail_from: from
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string(),
                    recipients: meta["rcpt_tos"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap().to_string())
                        .collect(),
                    data: raw[nl + 1..].to_vec(),
                }
            })
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private Postfix instance (scripts/postfix.sh), stopped when dropped.
pub struct Postfix {
    dir: PathBuf,
}

/// How a Postfix instance hands mail to the gateway (scripts/postfix.sh).
#[derive(Debug, Clone, Copy)]
pub enum Filter {
    /// After queue: `content_filter` to the gateway, which re-injects into `reinject`.
    AfterQueue {
        /// The gateway's SMTP port.
        gateway: u16,
        /// Postfix's re-injection port.
        reinject: u16,
    },
    /// Before queue: `smtpd_proxy_filter` to the gateway, whose 250 is the client's 250.
    BeforeQueue {
        /// The gateway's SMTP port.
        gateway: u16,
        /// Postfix's re-injection port.
        reinject: u16,
    },
}

impl Postfix {
    /// Starts an instance in `dir` accepting on `listen` and relaying to `relay`; with a
    /// `filter` every mail goes through the gateway.
    pub fn start(dir: &Path, listen: u16, relay: u16, filter: Option<Filter>) -> Postfix {
        let mut cmd = Command::new("bash");
        cmd.arg(POSTFIX_SH).arg("start").arg(dir);
        cmd.args([
            "--listen",
            &listen.to_string(),
            "--relay",
            &relay.to_string(),
        ]);
        let (how, gateway, reinject) = match filter {
            None => ("", 0, 0),
            Some(Filter::AfterQueue { gateway, reinject }) => ("--filter", gateway, reinject),
            Some(Filter::BeforeQueue { gateway, reinject }) => ("--proxy", gateway, reinject),
        };
        if !how.is_empty() {
            cmd.args([how, &gateway.to_string()]);
            cmd.args(["--reinject", &reinject.to_string()]);
        }
        // The guard exists before the start, so even a half-started instance is stopped.
        let postfix = Postfix {
            dir: dir.to_path_buf(),
        };
        let out = cmd.output().expect("run scripts/postfix.sh");
        assert!(
            out.status.success(),
            "scripts/postfix.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        postfix
    }

    /// Postfix's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(POSTFIX_SH)
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

/// The `[gateway]` table of a test configuration (paths relative to the file).
pub fn gateway_table(listen: u16, next_hop: u16, metrics: u16, extra: &str) -> String {
    format!(
        "[gateway]\nlisten = \"127.0.0.1:{listen}\"\nhostname = \"gateway.acme.example\"\n\
         next_hop = \"smtp://127.0.0.1:{next_hop}\"\nspool_dir = \"spool\"\ntenant = \"tenant\"\n\
         max_message_size = \"10MB\"\nmetrics_listen = \"127.0.0.1:{metrics}\"\n{extra}\n"
    )
}

/// `sealpost gateway --config FILE` as a child process; its stderr is appended to a log file
/// across restarts. Killed when dropped.
pub struct Gateway {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
    port: u16,
    /// How many times it was started.
    pub starts: usize,
}

impl Gateway {
    /// Starts the gateway and waits for its greeting.
    pub fn start(config: &Path, log: &Path, port: u16) -> Gateway {
        let mut g = Gateway {
            child: None,
            config: config.to_path_buf(),
            log: log.to_path_buf(),
            port,
            starts: 0,
        };
        g.spawn();
        g.wait_up(Duration::from_secs(60));
        g
    }

    /// Starts the process without waiting for it to listen.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "the gateway is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sealpost"))
            .arg("gateway")
            .arg("--config")
            .arg(&self.config)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start sealpost gateway");
        self.child = Some(child);
        self.starts += 1;
    }

    /// Waits for the greeting; panics with the log's end if the process exits or is too slow.
    pub fn wait_up(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "sealpost gateway exited ({status}) at start #{}: {}",
                    self.starts,
                    self.log_tail()
                );
            }
            if wait_greeting(self.port, Duration::from_millis(100)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sealpost gateway did not greet on port {} within {timeout:?}: {}",
                self.port,
                self.log_tail()
            );
        }
    }

    /// SIGKILL (std's `Child::kill`), then reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The whole log, ANSI colours removed.
    pub fn log_text(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// An SMTP reply: code and full text.
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

/// A minimal SMTP submission client (EHLO, MAIL, RCPT, DATA with dot-stuffing).
pub struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    /// Connects, reads the greeting and says EHLO; any non-2xx is an error.
    pub fn connect(port: u16) -> std::io::Result<Client> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let w = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        w.set_read_timeout(Some(Duration::from_secs(30)))?;
        w.set_nodelay(true)?;
        let mut c = Client {
            r: BufReader::new(w.try_clone()?),
            w,
        };
        let greeting = c.reply()?;
        if greeting.code != 220 {
            return Err(std::io::Error::other(format!(
                "greeting: {}",
                greeting.text
            )));
        }
        let ehlo = c.command("EHLO client.acme.example")?;
        if ehlo.code != 250 {
            return Err(std::io::Error::other(format!("EHLO: {}", ehlo.text)));
        }
        Ok(c)
    }

    fn reply(&mut self) -> std::io::Result<Reply> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            text.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                return Ok(Reply { code, text });
            }
        }
    }

    fn command(&mut self, line: &str) -> std::io::Result<Reply> {
        self.w.write_all(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// One transaction; returns the reply that ended it (the final one after DATA, or the
    /// first refusal). All recipients must be accepted.
    pub fn send(&mut self, from: &str, to: &[&str], data: &[u8]) -> std::io::Result<Reply> {
        let r = self.command(&format!("MAIL FROM:<{from}>"))?;
        if r.code != 250 {
            return Ok(r);
        }
        for rcpt in to {
            let r = self.command(&format!("RCPT TO:<{rcpt}>"))?;
            if r.code != 250 {
                self.command("RSET")?;
                return Ok(r);
            }
        }
        let r = self.command("DATA")?;
        if r.code != 354 {
            return Ok(r);
        }
        self.w.write_all(&dot_stuff(data))?;
        self.reply()
    }
}

/// `data` as SMTP carries it: lines starting with '.' doubled, ending in CRLF . CRLF.
fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut line_start = true;
    for &b in data {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The value of the first header field `name` (unfolded, trimmed), if any.
pub fn header_value(mail: &[u8], name: &str) -> Option<String> {
    sealpost_core::mail::rfc5322::fields(mail)
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(name))
        .map(|f| {
            let field = String::from_utf8_lossy(&mail[f.range.clone()]);
            let value = field.split_once(':').map_or("", |(_, v)| v);
            value.split_whitespace().collect::<Vec<_>>().join(" ")
        })
}

/// If `delivered` is `original` with only `Received:` fields in front of it (what each MTA hop
/// prepends), returns how many; `None` otherwise.
pub fn received_prefix(delivered: &[u8], original: &[u8]) -> Option<usize> {
    let prefix = delivered.strip_suffix(original)?;
    let text = std::str::from_utf8(prefix).ok()?;
    let mut fields = 0;
    for line in text.split_inclusive("\r\n") {
        if !line.ends_with("\r\n") {
            return None;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if fields == 0 {
                return None;
            }
        } else if line.len() > 9 && line[..9].eq_ignore_ascii_case("Received:") {
            fields += 1;
        } else {
            return None;
        }
    }
    Some(fields)
}

/// Whether a mail is a gateway wrapper (its header carries `X-Sealpost-Envelope`).
pub fn is_wrapper(mail: &[u8]) -> bool {
    header_value(mail, "X-Sealpost-Envelope").is_some()
}
