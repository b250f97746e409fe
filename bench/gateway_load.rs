//! The load generator and sink of `bench/gateway.sh`: one run pushes N messages of one size
//! into an SMTP server (Postfix) over C concurrent connections and receives them, wherever they
//! were relayed, at its own SMTP sink, then prints throughput and latency.
//!
//! Standard library only, so `bench/gateway.sh` compiles it with plain `rustc -O` in a second
//! (no Cargo project, no dependencies). It is deliberately small and fast rather than a
//! complete SMTP implementation: the client speaks just enough ESMTP to submit (EHLO, pipelined
//! MAIL/RCPT/DATA, dot-stuffed data, QUIT), and the sink answers every command a relaying MTA
//! sends (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and keeps only the arrival time of
//! each message, found by its `Message-ID` (`<N.PID@bench.acme.example>`), which the gateway's
//! wrapper mail keeps.
//!
//! Latency of a message is the time from the start of its SMTP transaction (before MAIL FROM)
//! to the final dot arriving at the sink; both clocks are this process's monotonic clock.
//! Throughput is messages / (last arrival − first submission start).
//!
//! ```text
//! gateway_load --submit 127.0.0.1:P --sink 127.0.0.1:Q --count N --size BYTES
//!              [--concurrency C] [--rate MSGS_PER_S] [--subject TEXT] [--to ADDR]
//!              [--timeout SECS]
//! ```
//! Without `--rate` the C clients send back to back (saturation); with it, message i starts at
//! i / rate seconds (open loop), so latency is measured at a load both paths sustain.
//! Prints one line: `sent=… delivered=… duplicates=… secs=… msgs_per_s=… p50_ms=… p99_ms=…
//! max_ms=…`; exits 1 if a message was refused or did not arrive before the timeout.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Opts {
    submit: SocketAddr,
    sink: SocketAddr,
    count: usize,
    size: usize,
    concurrency: usize,
    rate: Option<f64>,
    subject: String,
    to: String,
    timeout: Duration,
}

fn usage(msg: &str) -> ! {
    eprintln!("gateway_load: {msg}");
    eprintln!(
        "usage: gateway_load --submit ADDR --sink ADDR --count N --size BYTES \
         [--concurrency C] [--rate R] [--subject TEXT] [--to ADDR] [--timeout SECS]"
    );
    std::process::exit(2)
}

fn value<T: std::str::FromStr>(flag: &str, v: &str) -> T {
    v.parse()
        .unwrap_or_else(|_| usage(&format!("bad value for {flag}: {v:?}")))
}

fn parse_opts() -> Opts {
    let mut args = std::env::args().skip(1);
    let mut o = Opts {
        submit: "127.0.0.1:25".parse().unwrap(),
        sink: "127.0.0.1:0".parse().unwrap(),
        count: 0,
        size: 0,
        concurrency: 20,
        rate: None,
        subject: "benchmark".into(),
        to: "bench@outside.example".into(),
        timeout: Duration::from_secs(300),
    };
    let (mut have_submit, mut have_sink) = (false, false);
    while let Some(flag) = args.next() {
        let v = args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--submit" => (o.submit, have_submit) = (value(&flag, &v), true),
            "--sink" => (o.sink, have_sink) = (value(&flag, &v), true),
            "--count" => o.count = value(&flag, &v),
            "--size" => o.size = value(&flag, &v),
            "--concurrency" => o.concurrency = value(&flag, &v),
            "--rate" => o.rate = Some(value(&flag, &v)),
            "--subject" => o.subject = v.clone(),
            "--to" => o.to = v.clone(),
            "--timeout" => o.timeout = Duration::from_secs(value(&flag, &v)),
            _ => usage(&format!("unknown option {flag}")),
        }
    }
    if !have_submit || !have_sink || o.count == 0 || o.size == 0 || o.concurrency == 0 {
        usage("--submit, --sink, --count and --size are required");
    }
    o
}

/// Shared record of the run: per message, when its submission started and when it arrived.
struct Record {
    started: Vec<Option<Instant>>,
    arrived: Vec<Option<Instant>>,
    duplicates: usize,
    delivered: usize,
}

fn main() {
    let o = parse_opts();
    let record = Arc::new(Mutex::new(Record {
        started: vec![None; o.count],
        arrived: vec![None; o.count],
        duplicates: 0,
        delivered: 0,
    }));
    let listener = TcpListener::bind(o.sink).unwrap_or_else(|e| {
        eprintln!("gateway_load: cannot listen on {}: {e}", o.sink);
        std::process::exit(1)
    });
    {
        let record = record.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || {
                    let _ = sink_session(stream, &record);
                });
            }
        });
    }

    let body = body(o.size);
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let opts = Arc::new(o);
    let body = Arc::new(body);
    let mut clients = Vec::new();
    for _ in 0..opts.concurrency {
        let (opts, body, next, record, failures) = (
            opts.clone(),
            body.clone(),
            next.clone(),
            record.clone(),
            failures.clone(),
        );
        clients.push(std::thread::spawn(move || {
            if let Err(e) = client(&opts, &body, &next, &record, t0) {
                eprintln!("gateway_load: client: {e}");
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for c in clients {
        let _ = c.join();
    }
    let o = opts;
    let deadline = Instant::now() + o.timeout;
    loop {
        let delivered = record.lock().unwrap().delivered;
        if delivered >= o.count || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = record.lock().unwrap();
    let first = r.started.iter().flatten().min().copied().unwrap_or(t0);
    let last = r.arrived.iter().flatten().max().copied().unwrap_or(first);
    let mut lat: Vec<f64> = r
        .started
        .iter()
        .zip(&r.arrived)
        .filter_map(|(s, a)| Some(a.as_ref()?.duration_since(*s.as_ref()?).as_secs_f64() * 1e3))
        .collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        lat[((p / 100.0) * (lat.len() - 1) as f64).round() as usize]
    };
    let secs = last.duration_since(first).as_secs_f64();
    let sent = r.started.iter().flatten().count();
    println!(
        "sent={sent} delivered={} duplicates={} secs={secs:.3} msgs_per_s={:.1} p50_ms={:.1} p99_ms={:.1} max_ms={:.1}",
        r.delivered,
        r.duplicates,
        r.delivered as f64 / secs.max(1e-9),
        pct(50.0),
        pct(99.0),
        pct(100.0)
    );
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 || r.delivered < o.count {
        eprintln!(
            "gateway_load: {} of {} messages arrived, {failed} client(s) failed",
            r.delivered, o.count
        );
        std::process::exit(1);
    }
}

/// A message body of about `size` bytes: 76-character lines of a repeating pattern.
fn body(size: usize) -> Vec<u8> {
    let line: Vec<u8> = (0..76)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36])
        .collect();
    let mut b = Vec::with_capacity(size + 80);
    while b.len() < size {
        b.extend_from_slice(&line);
        b.extend_from_slice(b"\r\n");
    }
    b
}

fn reply(r: &mut impl BufRead) -> std::io::Result<(u16, String)> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        text.push_str(&line);
        let b = line.as_bytes();
        if b.len() < 4 || b[3] != b'-' {
            let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            return Ok((code, text));
        }
    }
}

fn expect(r: &mut impl BufRead, want: u16, what: &str) -> std::io::Result<()> {
    let (code, text) = reply(r)?;
    if code != want {
        return Err(std::io::Error::other(format!(
            "{what}: {}",
            text.trim_end()
        )));
    }
    Ok(())
}

/// One client connection: takes message numbers until all are taken.
fn client(
    o: &Opts,
    body: &[u8],
    next: &AtomicUsize,
    record: &Mutex<Record>,
    t0: Instant,
) -> std::io::Result<()> {
    let stream = TcpStream::connect(o.submit)?;
    stream.set_nodelay(true)?;
    let mut r = BufReader::new(stream.try_clone()?);
    let mut w = BufWriter::with_capacity(256 * 1024, stream);
    expect(&mut r, 220, "greeting")?;
    write!(w, "EHLO bench.client\r\n")?;
    w.flush()?;
    expect(&mut r, 250, "EHLO")?;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= o.count {
            break;
        }
        if let Some(rate) = o.rate {
            let at = t0 + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
        }
        record.lock().unwrap().started[i] = Some(Instant::now());
        write!(
            w,
            "MAIL FROM:<bench@acme.example>\r\nRCPT TO:<{}>\r\nDATA\r\n",
            o.to
        )?;
        w.flush()?;
        expect(&mut r, 250, "MAIL")?;
        expect(&mut r, 250, "RCPT")?;
        expect(&mut r, 354, "DATA")?;
        write!(
            w,
            "From: Bench <bench@acme.example>\r\nTo: <{to}>\r\nSubject: {subject} {i}\r\n\
             Message-ID: <{i}.{pid}@bench.acme.example>\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
            to = o.to,
            subject = o.subject,
            pid = std::process::id()
        )?;
        // The body has no line starting with '.', so it needs no dot-stuffing.
        w.write_all(body)?;
        w.write_all(b".\r\n")?;
        w.flush()?;
        expect(&mut r, 250, "end of DATA")?;
    }
    write!(w, "QUIT\r\n")?;
    w.flush()?;
    let _ = reply(&mut r);
    Ok(())
}

/// One connection to the sink: answers a relaying MTA and records arrivals.
fn sink_session(stream: TcpStream, record: &Mutex<Record>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut r = BufReader::with_capacity(256 * 1024, stream.try_clone()?);
    let mut w = BufWriter::new(stream);
    w.write_all(b"220 bench.sink ESMTP\r\n")?;
    w.flush()?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let verb: Vec<u8> = line
            .iter()
            .take(4)
            .map(|b| b.to_ascii_uppercase())
            .collect();
        match &verb[..] {
            b"EHLO" => w.write_all(
                b"250-bench.sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 0\r\n250 SMTPUTF8\r\n",
            )?,
            b"HELO" => w.write_all(b"250 bench.sink\r\n")?,
            b"DATA" => {
                w.write_all(b"354 go ahead\r\n")?;
                w.flush()?;
                let id = read_data(&mut r)?;
                let now = Instant::now();
                {
                    let mut rec = record.lock().unwrap();
                    match id {
                        Some(i) if i < rec.arrived.len() => {
                            if rec.arrived[i].is_none() {
                                rec.arrived[i] = Some(now);
                                rec.delivered += 1;
                            } else {
                                rec.duplicates += 1;
                            }
                        }
                        _ => eprintln!("gateway_load: sink got a message without a benchmark Message-ID"),
                    }
                }
                w.write_all(b"250 2.0.0 ok\r\n")?;
            }
            b"QUIT" => {
                w.write_all(b"221 bye\r\n")?;
                w.flush()?;
                return Ok(());
            }
            _ => w.write_all(b"250 ok\r\n")?,
        }
        // Pipelined commands: answer them all before flushing.
        if r.buffer().is_empty() {
            w.flush()?;
        }
    }
}

/// Reads message data up to the final dot; returns the message number from its Message-ID.
fn read_data(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<usize>> {
    let mut id = None;
    let mut in_headers = true;
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Err(std::io::Error::other("connection closed in DATA"));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(id);
        }
        if in_headers {
            if line == b"\r\n" || line == b"\n" {
                in_headers = false;
            } else if line.len() > 13 && line[..13].eq_ignore_ascii_case(b"Message-ID: <") {
                // `<i.pid@bench.acme.example>`: kept by the gateway's wrapper mail too.
                id = std::str::from_utf8(&line[13..])
                    .ok()
                    .and_then(|s| s.split('.').next()?.parse().ok());
            }
        }
    }
}
