// The browser half of bench/portal.sh (run it through that script, which starts the server
// and makes the messages): headless Chromium (playwright-core from tests/e2e/node_modules)
// signs in once per decryption mode, then opens each message REPS times and loads the portal
// LOADS times.
//
// Open time: inside the page, performance.now() at the file input's `change` event, and then
// (MutationObserver) when the progress bar first says "Decrypting", when it reaches 100 %, when
// `message-view` holds the attachment `data.bin` with the expected decoded size, and at the
// frame after that (requestAnimationFrame then a task): "rendered". The key-service calls
// (GET /v1/tenants/…, POST /v1/rewrap) are placed with Resource Timing, which splits the open
// into intake, tenant + verify, rewrap, and "after rewrap"; that last one is split further into
// unlock + decrypt (to the bar at 100 %) and parse + view when the bar was drawn.
//
// First render: a new browser context per load (cold cache), navigation start to the moment
// the portal sets `window.__sealpostReady = true` (a setter installed before the page's scripts
// run), and the `first-contentful-paint` entry; then one reload in the same context (warm
// cache). The peak resident memory of the tab's renderer process is sampled every 100 ms from
// /proc during each open, and its CPU time (user + system, all threads) over the open is taken
// from /proc/PID/stat: on a busy machine that is steadier than the wall time.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'tests', 'e2e', 'package.json'));
const { chromium } = require('playwright-core');

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run bench/portal.sh`);
  return v;
}
const BIN = env('SEALPOST_BIN');
const URL = env('BENCH_URL');
const DATA = env('BENCH_DATA');
const SIZES = JSON.parse(env('BENCH_SIZES'));
const REPS = Number(env('BENCH_REPS'));
const LOADS = Number(env('BENCH_LOADS'));
const TIMEOUT_MS = Number(env('BENCH_TIMEOUT_S')) * 1000;
const INPUT = env('BENCH_INPUT');
// "auto": the portal picks its decryption path; "rust": SubtleCrypto hidden from the page.
const MODES = env('BENCH_DECRYPT').split(/\s+/).filter(Boolean);
// PROFILE=DIR (bench/portal.sh): a V8 CPU profile of every open, DIR/MODE-SIZEMiB-N.cpuprofile
// (open it in Chromium's DevTools), and the functions with the most self time printed. A bundle
// built with its names section (see bench/portal.sh) shows Rust function names.
const PROFILE = process.env.BENCH_PROFILE || '';
const EMAIL = 'bob@example.org';

// As tests/e2e/playwright.config.js.
const LAUNCH = {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};
const CONTEXT = { viewport: { width: 1280, height: 900 } };

const log = (s) => process.stderr.write(`==> ${s}\n`);
const median = (xs) => {
  const s = xs.filter((x) => x != null).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const ms = (x) => (x == null || Number.isNaN(x) ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const sleep = (t) => new Promise((r) => setTimeout(r, t));

// --- passcode from the outbox ----------------------------------------------------------------
function outboxCodes(email) {
  const out = execFileSync(BIN, ['outbox', 'list', '--data', DATA, '--limit', '100'], { encoding: 'utf8' });
  const codes = [];
  // Newest first: "--- #N TIME to ADDRESS [STATE]" then the mail.
  for (const block of out.split(/^--- /m).slice(1)) {
    const to = block.split('\n', 1)[0].match(/^#\d+ \S+ to (\S+)/);
    const code = block.match(/^\s+(\d{6,})\s*$/m);
    if (to && to[1] === email && code) codes.push(code[1]);
  }
  return codes;
}

async function signIn(page, file) {
  await page.goto(URL + '/');
  await page.waitForFunction(() => window.__sealpostReady === true);
  await page.getByTestId('file-input').setInputFiles(file);
  await page.getByTestId('email-input').waitFor({ timeout: TIMEOUT_MS });
  await page.getByTestId('email-input').fill(EMAIL);
  const before = outboxCodes(EMAIL).length;
  await page.getByTestId('send-code').click();
  await page.getByTestId('code-input').waitFor();
  const deadline = Date.now() + 20_000;
  let codes = outboxCodes(EMAIL);
  while (codes.length <= before) {
    if (Date.now() > deadline) throw new Error(`no passcode mail to ${EMAIL} in the outbox`);
    await sleep(200);
    codes = outboxCodes(EMAIL);
  }
  await page.getByTestId('code-input').fill(codes[0]);
  await page.getByTestId('verify-code').click();
  await page.getByTestId('message-view').waitFor({ timeout: TIMEOUT_MS });
}

// --- renderer memory -------------------------------------------------------------------------
function rendererPids(browserPid) {
  const children = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch { /* the process ended */ }
  }
  const out = [];
  const stack = [browserPid];
  while (stack.length) {
    const p = stack.pop();
    for (const c of children.get(p) || []) {
      stack.push(c);
      try {
        if (fs.readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('--type=renderer')) out.push(c);
      } catch { /* the process ended */ }
    }
  }
  return out;
}

function rssMiB(pid) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU time (user + system) a process has used, in ms. */
function cpuMs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return 0;
  }
}
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** Samples the renderers' resident memory (peak) and CPU time (used between start and stop). */
function rendererSampler(browserPid) {
  let peak = 0;
  let pids = rendererPids(browserPid);
  const cpu0 = new Map(pids.map((p) => [p, cpuMs(p)]));
  let n = 0;
  const sample = () => { for (const p of pids) peak = Math.max(peak, rssMiB(p)); };
  const timer = setInterval(() => {
    if (++n % 10 === 0) pids = rendererPids(browserPid);
    sample();
  }, 100);
  return {
    stop: () => {
      clearInterval(timer);
      pids = rendererPids(browserPid);
      sample();
      const cpu = pids.reduce((sum, p) => sum + cpuMs(p) - (cpu0.get(p) ?? 0), 0);
      return { peak, cpu };
    },
  };
}

// --- one open --------------------------------------------------------------------------------
/** Installed in the page before the file is picked; fills window.__bench. */
function instrument(expectedSize) {
  const b = (window.__bench = { start: null, decrypting: null, firstPercent: null, decrypted: null, dom: null, frame: null, error: null });
  document.addEventListener('change', (e) => {
    if (b.start == null && e.target && e.target.getAttribute('data-testid') === 'file-input') b.start = performance.now();
  }, true);
  const check = () => {
    if (b.dom != null || b.error != null) return;
    // The Opening page's bar: "Decrypting: N%" once the decryptor runs, value 100 when the
    // whole payload went through it (the portal yields to the browser between 4 MiB slices).
    const bar = document.querySelector('[data-testid="progress"]');
    if (bar) {
      const now = performance.now();
      const value = bar.querySelector('progress');
      if (b.decrypting == null && /Decrypting/.test(bar.textContent)) {
        b.decrypting = now;
        b.firstPercent = Number(value && value.getAttribute('value'));
      }
      if (b.decrypting != null && b.decrypted == null && value && value.getAttribute('value') === '100') b.decrypted = now;
    }
    const err = document.querySelector('[data-testid="error-page"]');
    if (err) {
      b.error = 'error page ' + err.getAttribute('data-kind');
      return;
    }
    if (document.querySelector('[data-testid="email-input"]')) {
      b.error = 'asked to sign in again';
      return;
    }
    const view = document.querySelector('[data-testid="message-view"]');
    const att = view && document.querySelector('[data-testid="attachment"][data-name="data.bin"]');
    if (!att) return;
    b.dom = performance.now();
    // Which decryption ran (portals with a WebCrypto path say so; older ones do not).
    b.path = view.getAttribute('data-decrypt-path') || 'rust (not shown)';
    const size = att.getAttribute('data-size');
    if (size !== String(expectedSize)) b.error = `attachment size ${size}, expected ${expectedSize}`;
    requestAnimationFrame(() => setTimeout(() => { b.frame = performance.now(); }, 0));
  };
  new MutationObserver(check).observe(document.body, { childList: true, subtree: true, attributes: true, characterData: true });
}

/** Self time per function of a V8 CPU profile, the `top` largest, as printable lines. */
function topSelfTime(profile, top) {
  const self = new Map();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const dt = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const n = byId.get(profile.samples[i]);
    const f = n.callFrame;
    const name = `${f.functionName || '(anonymous)'} ${f.url ? f.url.split('/').pop() : ''}`.trim();
    self.set(name, (self.get(name) || 0) + (dt[i] || 0) / 1000);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  return [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([name, t]) => `${t.toFixed(0).padStart(6)} ms ${(100 * t / total).toFixed(1).padStart(5)} %  ${name.slice(0, 140)}`);
}

async function openOnce(page, browserPid, size, label) {
  const payload = size.payload;
  await page.goto(URL + '/');
  await page.waitForFunction(() => window.__sealpostReady === true);
  await page.evaluate(instrument, size.bytes);
  let cdp = null;
  if (PROFILE) {
    cdp = await page.context().newCDPSession(page);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
    await cdp.send('Profiler.start');
  }
  const sampler = rendererSampler(browserPid);
  let used = { peak: 0, cpu: 0 };
  try {
    await page.getByTestId('file-input').setInputFiles(size.file, { timeout: TIMEOUT_MS });
    await page.waitForFunction(() => window.__bench.frame != null || window.__bench.error != null,
      null, { timeout: TIMEOUT_MS, polling: 50 }).catch((e) => {
      if (e.name !== 'TimeoutError') throw e;
      throw new Error(`the message was not shown within ${TIMEOUT_MS / 1000} s (TIMEOUT_S)`);
    });
  } finally {
    used = sampler.stop();
    if (cdp) {
      const { profile } = await cdp.send('Profiler.stop');
      await cdp.detach().catch(() => {});
      fs.mkdirSync(PROFILE, { recursive: true });
      fs.writeFileSync(path.join(PROFILE, `${label}.cpuprofile`), JSON.stringify(profile));
      log(`profile ${label}: most self time\n${topSelfTime(profile, 25).join('\n')}`);
    }
  }
  const b = await page.evaluate(() => {
    // The key-service calls of this open (Resource Timing): when they started and ended.
    const call = (part) => performance.getEntriesByType('resource')
      .find((e) => e.name.includes(part) && e.startTime >= window.__bench.start);
    const t = call('/v1/tenants/');
    const r = call('/v1/rewrap');
    return { ...window.__bench, tenantStart: t && t.startTime, rewrapStart: r && r.startTime, rewrapEnd: r && r.responseEnd };
  });
  if (b.error) throw new Error(b.error);
  if (b.start == null) throw new Error('no change event from the file input');
  if (b.tenantStart == null || b.rewrapStart == null) {
    throw new Error('no tenant or rewrap request seen during the open');
  }
  // Without a bar at 100 % (a decryption that never yielded to the browser), unlock + decrypt
  // and parse + view are left blank.
  const barSeen = b.decrypting != null && b.decrypted != null;
  return {
    // file read, envelope found in the file, parsed, key service checked against config.json
    intake: b.tenantStart - b.start,
    // GET /v1/tenants/{id}, then the signature check (SHA-256 over the envelope + ECDSA)
    verify: b.rewrapStart - b.tenantStart,
    // POST /v1/rewrap round trip
    rewrap: b.rewrapEnd - b.rewrapStart,
    // answer read, share B opened, decryptor made, the payload through the decryptor (4 MiB
    // slices, yielding to the browser between them), until the bar shows 100 %
    decrypt: barSeen ? b.decrypted - b.rewrapEnd : null,
    // The bar is first drawn after the first slice: the rate is taken over the slices after
    // it (MB/s, 10^6 bytes), when there are any.
    rate: barSeen && b.firstPercent < 100 && b.decrypted > b.decrypting
      ? (payload * (100 - b.firstPercent) / 100) / ((b.decrypted - b.decrypting) * 1000)
      : null,
    // the decryptor's end checked, the mail parsed (mail-parser), the message view built
    view: barSeen ? b.dom - b.decrypted : null,
    // everything after the rewrap answer, whether or not the bar was seen
    after: b.dom - b.rewrapEnd,
    path: b.path,
    dom: b.dom - b.start,
    total: b.frame - b.start,
    rss: used.peak,
    cpu: used.cpu,
  };
}

/** Init script of the "rust" mode: no `crypto.subtle` in the page. */
function hideSubtleCrypto() {
  Object.defineProperty(Crypto.prototype, 'subtle', { configurable: true, get: () => undefined });
}

// --- first render ----------------------------------------------------------------------------
function readySetter() {
  let v;
  Object.defineProperty(window, '__sealpostReady', {
    configurable: true,
    get: () => v,
    set: (x) => {
      v = x;
      if (x === true && window.__benchReadyAt == null) window.__benchReadyAt = performance.now();
    },
  });
}

async function loadTimes(page, nav) {
  await nav();
  await page.waitForFunction(() => window.__benchReadyAt != null
    && performance.getEntriesByName('first-contentful-paint').length > 0, null, { timeout: 30_000 });
  return page.evaluate(() => ({
    ready: window.__benchReadyAt,
    fcp: performance.getEntriesByName('first-contentful-paint')[0].startTime,
  }));
}

// --- main ------------------------------------------------------------------------------------
const browser = await chromium.launch(LAUNCH);
// Chromium is a child of this process: its renderers are among our descendants.
const browserPid = process.pid;
const results = [];
let failed = false;
try {
  for (const mode of MODES) {
    // A context per mode: "rust" hides SubtleCrypto from the page, so a portal that has a
    // WebCrypto path falls back to the pure-Rust one.
    const context = await browser.newContext(CONTEXT);
    if (mode === 'rust') await context.addInitScript(hideSubtleCrypto);
    let page = await context.newPage();
    let crashed = false;
    const watch = (p) => p.on('crash', () => { crashed = true; });
    watch(page);
    log(`[${mode}] signing in as ${EMAIL} (with the ${SIZES[0].mib} MiB message, not timed)`);
    await signIn(page, SIZES[0].file);

    for (const size of SIZES) {
      const runs = [];
      let error = null;
      for (let i = 0; i < REPS && !error; i++) {
        try {
          const r = await openOnce(page, browserPid, size, `${mode}-${size.mib}MiB-${i + 1}`);
          runs.push(r);
          log(`[${mode}] ${size.mib} MiB, open ${i + 1}/${REPS}: ${ms(r.total)} ms, path ${r.path} (intake ${ms(r.intake)}, tenant+verify ${ms(r.verify)}, rewrap ${ms(r.rewrap)}, after rewrap ${ms(r.after)}: unlock+decrypt ${ms(r.decrypt)} (${r.rate == null ? '-' : r.rate.toFixed(1) + ' MB/s'}), parse+view ${ms(r.view)}; renderer CPU ${ms(r.cpu)}, peak RSS ${r.rss.toFixed(0)} MiB)`);
        } catch (e) {
          error = crashed ? `the tab crashed (${e.message.split('\n')[0]})` : e.message.split('\n')[0];
          log(`[${mode}] ${size.mib} MiB, open ${i + 1}/${REPS}: FAILED: ${error}`);
        }
      }
      results.push({ mode, size, runs, error });
      if (error) {
        failed = true;
        // A crashed or stuck tab: a new one, signed in again, for the next size.
        await page.close().catch(() => {});
        crashed = false;
        page = await context.newPage();
        watch(page);
        if (size !== SIZES[SIZES.length - 1]) await signIn(page, SIZES[0].file);
      }
    }
    await context.close();
  }

  const cold = [];
  const warm = [];
  for (let i = 0; i < LOADS; i++) {
    const ctx = await browser.newContext(CONTEXT);
    await ctx.addInitScript(readySetter);
    const p = await ctx.newPage();
    cold.push(await loadTimes(p, () => p.goto(URL + '/')));
    warm.push(await loadTimes(p, () => p.reload()));
    await ctx.close();
  }

  // --- report (Markdown tables) -------------------------------------------------------------
  const row = (...c) => console.log('| ' + c.join(' | ') + ' |');
  const med = (runs, k) => ms(median(runs.map((r) => r[k])));
  const picked = INPUT === 'html' ? 'message.html' : 'wrapper .eml';
  console.log(`\nOpen (${picked} picked in the file input): median of ${REPS}, ms from the input's change event\n`);
  row('decrypt', 'message', 'picked file', 'intake', 'tenant + verify', 'rewrap', 'after rewrap', 'unlock + decrypt', 'decrypt rate', 'parse + view', '**rendered**', 'runs (rendered)', 'renderer CPU', 'peak renderer RSS');
  row('---', '---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:');
  for (const { mode, size, runs } of results) {
    const paths = [...new Set(runs.map((r) => r.path))].join(', ');
    const fileMiB = (fs.statSync(size.file).size / 1048576).toFixed(1) + ' MiB';
    if (!runs.length) {
      row(mode, `${size.mib} MiB`, fileMiB, 'FAILED', '', '', '', '', '', '', '', '', '', '');
      continue;
    }
    const rates = runs.map((r) => r.rate).filter((x) => x != null);
    row(`${mode}: ${paths}`, `${size.mib} MiB`, fileMiB, med(runs, 'intake'), med(runs, 'verify'), med(runs, 'rewrap'), med(runs, 'after'), med(runs, 'decrypt'),
      rates.length ? median(rates).toFixed(1) + ' MB/s' : '-', med(runs, 'view'), `**${med(runs, 'total')}**`, runs.map((r) => ms(r.total)).join(' / '), med(runs, 'cpu'),
      Math.max(...runs.map((r) => r.rss)).toFixed(0) + ' MiB');
  }
  for (const { mode, size, runs, error } of results) {
    if (error) console.log(`\n[${mode}] ${size.mib} MiB FAILED after ${runs.length} good run(s): ${error}`);
  }
  for (const t25 of results.filter((r) => r.size.mib === 25 && r.runs.length)) {
    const m = median(t25.runs.map((r) => r.total));
    console.log(`\n[${t25.mode}] 25 MiB target < 1000 ms: ${ms(m)} ms = ${(m / 1000).toFixed(2)} × target (${m < 1000 ? 'met' : 'NOT met'})`);
  }
  console.log(`\nFirst render on loopback: median of ${LOADS} loads, ms from navigation start\n`);
  row('cache', '`__sealpostReady`', 'first-contentful-paint', 'loads (ready)', 'loads (FCP)');
  row('---', '---:', '---:', '---:', '---:');
  for (const [name, xs] of [['cold (new context)', cold], ['warm (reload)', warm]]) {
    row(name, ms(median(xs.map((x) => x.ready))), ms(median(xs.map((x) => x.fcp))),
      xs.map((x) => ms(x.ready)).join(' / '), xs.map((x) => ms(x.fcp)).join(' / '));
  }
  const r = median(cold.map((x) => x.ready));
  const f = median(cold.map((x) => x.fcp));
  console.log(`\nfirst render target < 300 ms (cold): __sealpostReady ${ms(r)} ms = ${(r / 300).toFixed(2)} × target, `
    + `FCP ${ms(f)} ms = ${(f / 300).toFixed(2)} × target (${Math.max(r, f) < 300 ? 'met' : 'NOT met'})`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
