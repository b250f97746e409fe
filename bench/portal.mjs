// The browser half of bench/portal.sh (run it through that script, which starts the server
// and makes the messages): headless Chromium (playwright-core from tests/e2e/node_modules)
// signs in once, then opens each message REPS times and loads the portal LOADS times.
//
// Open time: inside the page, performance.now() at the file input's `change` event, when the
// `progress` element first appears (the envelope is read, verified, and rewrap answered:
// decryption starts), when `message-view` holds the attachment `data.bin` with the expected
// decoded size (MutationObserver), and at the frame after that (requestAnimationFrame then a
// task). First render: a new browser context per load (cold cache), navigation start to the
// moment the portal sets `window.__sealpostReady = true` (a setter installed before the page's
// scripts run), and the `first-contentful-paint` entry; then one reload in the same context
// (warm cache). The peak resident memory of the tab's renderer process is sampled every 100 ms
// from /proc during each open.
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
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const ms = (x) => (x == null ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
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

function memorySampler(browserPid) {
  let peak = 0;
  let pids = rendererPids(browserPid);
  let n = 0;
  const timer = setInterval(() => {
    if (++n % 10 === 0) pids = rendererPids(browserPid);
    for (const p of pids) peak = Math.max(peak, rssMiB(p));
  }, 100);
  return { stop: () => { clearInterval(timer); return peak; } };
}

// --- one open --------------------------------------------------------------------------------
/** Installed in the page before the file is picked; fills window.__bench. */
function instrument(expectedSize) {
  const b = (window.__bench = { start: null, progress: null, dom: null, frame: null, error: null });
  document.addEventListener('change', (e) => {
    if (b.start == null && e.target && e.target.getAttribute('data-testid') === 'file-input') b.start = performance.now();
  }, true);
  const check = () => {
    if (b.dom != null || b.error != null) return;
    if (b.progress == null && document.querySelector('[data-testid="progress"]')) b.progress = performance.now();
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
    const size = att.getAttribute('data-size');
    if (size !== String(expectedSize)) b.error = `attachment size ${size}, expected ${expectedSize}`;
    requestAnimationFrame(() => setTimeout(() => { b.frame = performance.now(); }, 0));
  };
  new MutationObserver(check).observe(document.body, { childList: true, subtree: true, attributes: true });
}

async function openOnce(page, browserPid, size) {
  await page.goto(URL + '/');
  await page.waitForFunction(() => window.__sealpostReady === true);
  await page.evaluate(instrument, size.bytes);
  const mem = memorySampler(browserPid);
  let peak = 0;
  try {
    await page.getByTestId('file-input').setInputFiles(size.file, { timeout: TIMEOUT_MS });
    await page.waitForFunction(() => window.__bench.frame != null || window.__bench.error != null,
      null, { timeout: TIMEOUT_MS, polling: 50 });
  } finally {
    peak = mem.stop();
  }
  const b = await page.evaluate(() => window.__bench);
  if (b.error) throw new Error(b.error);
  if (b.start == null) throw new Error('no change event from the file input');
  return {
    checked: b.progress == null ? null : b.progress - b.start,
    dom: b.dom - b.start,
    total: b.frame - b.start,
    rss: peak,
  };
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
  const context = await browser.newContext(CONTEXT);
  let page = await context.newPage();
  let crashed = false;
  const watch = (p) => p.on('crash', () => { crashed = true; });
  watch(page);
  log(`signing in once as ${EMAIL} (with the ${SIZES[0].mib} MiB message, not timed)`);
  await signIn(page, SIZES[0].file);

  for (const size of SIZES) {
    const runs = [];
    let error = null;
    for (let i = 0; i < REPS && !error; i++) {
      try {
        const r = await openOnce(page, browserPid, size);
        runs.push(r);
        log(`${size.mib} MiB, open ${i + 1}/${REPS}: ${ms(r.total)} ms (checked+rewrap at ${ms(r.checked)} ms, peak renderer RSS ${r.rss.toFixed(0)} MiB)`);
      } catch (e) {
        error = crashed ? `the tab crashed (${e.message.split('\n')[0]})` : e.message.split('\n')[0];
        log(`${size.mib} MiB, open ${i + 1}/${REPS}: FAILED: ${error}`);
      }
    }
    results.push({ size, runs, error });
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

  // --- report --------------------------------------------------------------------------------
  const line = (...c) => console.log(c.map((x, i) => String(x)[i ? 'padStart' : 'padEnd'](i ? 14 : 10)).join(''));
  console.log(`\nOpen (pure-Rust decryption; ${INPUT === 'html' ? 'message.html' : 'wrapper .eml'} picked in the file input), median of ${REPS}, ms:`);
  line('message', 'picked file', 'to decrypt', 'to DOM', 'to frame', 'runs (frame)', 'peak RSS MiB');
  for (const { size, runs, error } of results) {
    const fileMiB = (fs.statSync(size.file).size / 1048576).toFixed(1) + ' MiB';
    if (!runs.length) {
      line(`${size.mib} MiB`, fileMiB, 'FAILED', '', '', '', '');
    } else {
      line(`${size.mib} MiB`, fileMiB, ms(median(runs.map((r) => r.checked))), ms(median(runs.map((r) => r.dom))),
        ms(median(runs.map((r) => r.total))), runs.map((r) => ms(r.total)).join('/'),
        Math.max(...runs.map((r) => r.rss)).toFixed(0));
    }
    if (error) console.log(`    ${size.mib} MiB FAILED after ${runs.length} good run(s): ${error}`);
  }
  const t25 = results.find((r) => r.size.mib === 25 && r.runs.length);
  if (t25) {
    const m = median(t25.runs.map((r) => r.total));
    console.log(`25 MiB target < 1000 ms: ${ms(m)} ms = ${(m / 1000).toFixed(2)} × target (${m < 1000 ? 'met' : 'NOT met'})`);
  }
  console.log(`\nFirst render on loopback, median of ${LOADS} loads, ms (navigation start → ...):`);
  line('cache', '__sealpostReady', 'FCP', 'all ready', 'all FCP');
  for (const [name, xs] of [['cold', cold], ['warm', warm]]) {
    line(name, ms(median(xs.map((x) => x.ready))), ms(median(xs.map((x) => x.fcp))),
      xs.map((x) => ms(x.ready)).join('/'), xs.map((x) => ms(x.fcp)).join('/'));
  }
  const r = median(cold.map((x) => x.ready));
  console.log(`first render target < 300 ms (cold, __sealpostReady): ${ms(r)} ms = ${(r / 300).toFixed(2)} × target (${r < 300 ? 'met' : 'NOT met'})`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
