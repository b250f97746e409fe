// Helpers shared by the specs: the `sealpost` CLI, mails made in the test, the wrapper's
// message.html, the passcode from the outbox, sign-in, accessibility checks and screenshots.
// Everything runs against the server scripts/e2e.sh started (SEALPOST_E2E_* variables).
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { expect } = require('@playwright/test');
const AxeBuilder = require('@axe-core/playwright').default;

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the suite with scripts/e2e.sh`);
  return v;
}

const E = {
  bin: () => env('SEALPOST_BIN'),
  url: () => env('SEALPOST_E2E_URL'),
  tenant: () => env('SEALPOST_E2E_TENANT'),
  data: () => env('SEALPOST_E2E_DATA'),
  screenshots: () => env('SEALPOST_E2E_SCREENSHOTS'),
};

/** Runs `sealpost ARGS...` with `input` on stdin; returns stdout as a Buffer. */
function sealpost(args, input) {
  return execFileSync(E.bin(), args, { input, maxBuffer: 256 << 20, stdio: ['pipe', 'pipe', 'pipe'] });
}

const CRLF = '\r\n';

/**
 * A MIME mail: `text` (plain body), optional `html` (alternative), `attachments`
 * ([{name, type, bytes}]), optional `inline` images ([{cid, type, bytes}]) for the HTML.
 */
function makeMail({ from = 'Alice Sender <alice@example.com>', to, subject, text, html, attachments = [], inline = [] }) {
  const head = [
    `From: ${from}`,
    `To: ${to}`,
    `Subject: ${subject}`,
    'Date: Sat, 28 Nov 2026 10:00:00 +0000',
    `Message-ID: <${Math.random().toString(16).slice(2)}@e2e.example.com>`,
    'MIME-Version: 1.0',
  ];
  const b64 = (buf) => buf.toString('base64').replace(/.{1,76}/g, (l) => l + CRLF).trimEnd();
  const textPart = ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', text].join(CRLF);
  let body = textPart;
  if (html !== undefined) {
    const htmlPart = ['Content-Type: text/html; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', html].join(CRLF);
    body = ['Content-Type: multipart/alternative; boundary="alt"', '', '--alt', textPart, '--alt', htmlPart, '--alt--'].join(CRLF);
    if (inline.length) {
      const parts = inline.map((i) =>
        ['--rel', `Content-Type: ${i.type}`, `Content-ID: <${i.cid}>`, 'Content-Disposition: inline',
          'Content-Transfer-Encoding: base64', '', b64(i.bytes)].join(CRLF));
      body = ['Content-Type: multipart/related; boundary="rel"', '', '--rel', body, ...parts, '--rel--'].join(CRLF);
    }
  }
  if (attachments.length) {
    const parts = attachments.map((a) =>
      ['--mix', `Content-Type: ${a.type}; name="${a.name}"`, `Content-Disposition: attachment; filename="${a.name}"`,
        'Content-Transfer-Encoding: base64', '', b64(a.bytes)].join(CRLF));
    body = ['Content-Type: multipart/mixed; boundary="mix"', '', '--mix', body, ...parts, '--mix--'].join(CRLF);
  }
  // `body` starts with its own Content-Type header line(s) and a blank line.
  return Buffer.from(head.join(CRLF) + CRLF + body + CRLF, 'utf8');
}

/** Protects `mail` with the e2e tenant; returns the wrapper mail. */
function encrypt(mail, template = 'Encrypt-Only') {
  return sealpost(['encrypt', '--tenant', E.tenant(), '--template', template], mail);
}

/** The message.html attachment of a wrapper mail (as `sealpost encrypt` writes it). */
function messageHtml(wrapper) {
  const text = wrapper.toString('latin1');
  const at = text.indexOf('filename="message.html"');
  if (at < 0) throw new Error('no message.html in the wrapper');
  const start = text.indexOf('\r\n\r\n', at) + 4;
  const end = text.indexOf('\r\n--', start);
  return Buffer.from(text.slice(start, end).replace(/\s+/g, ''), 'base64');
}

/** The envelope inside a message.html. */
function envelopeOf(html) {
  const m = html.toString('latin1').match(/<script type="application\/x-sealpost-envelope"[^>]*>([^<]*)<\/script>/);
  if (!m) throw new Error('no envelope block in message.html');
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
}

/** The readable header (`sealpost inspect`) of a wrapper mail or message.html. */
function inspect(file) {
  return JSON.parse(sealpost(['inspect', '-'], file).toString('utf8'));
}

/** A new temporary directory inside the run's (scripts/e2e.sh removes it afterwards). */
function tempDir() {
  return fs.mkdtempSync(path.join(process.env.SEALPOST_E2E_TMP || os.tmpdir(), 'sealpost-e2e-'));
}

/** Writes `bytes` to a new temporary file named `name`; returns its path. */
function tempFile(name, bytes) {
  const dir = tempDir();
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  return p;
}

/** The newest passcode mailed to `email` after `since` outbox entries (polls the outbox). */
async function passcodeFor(email, { timeoutMs = 20_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = sealpost(['outbox', 'list', '--data', E.data(), '--limit', '50']).toString('utf8');
    // Mails are printed newest first: "--- #N TIME to ADDRESS [STATE]" then the mail.
    for (const block of out.split(/^--- /m).slice(1)) {
      if (recipientOf(block) === email) {
        const code = block.match(/^\s+(\d{6,})\s*$/m);
        if (code) return code[1];
      }
    }
    if (Date.now() > deadline) throw new Error(`no passcode mail to ${email} in the outbox`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Signs in on the portal page as `email` (the envelope is already loaded). With `codeStep`,
 * the code-entry step is checked (axe) and photographed under that name.
 */
async function signIn(page, email, codeStep) {
  await page.getByTestId('email-input').fill(email);
  const before = countOutbox(email);
  await page.getByTestId('send-code').click();
  await expect(page.getByTestId('code-input')).toBeVisible();
  if (codeStep) await checkPage(page, codeStep);
  const code = await waitForNewPasscode(email, before);
  await page.getByTestId('code-input').fill(code);
  await page.getByTestId('verify-code').click();
}

function countOutbox(email) {
  const out = sealpost(['outbox', 'list', '--data', E.data(), '--limit', '1000']).toString('utf8');
  return out.split(/^--- /m).slice(1).filter((b) => recipientOf(b) === email).length;
}

/** The address of one `outbox list` entry ("#N TIME to ADDRESS [STATE]..."). */
function recipientOf(block) {
  const m = block.split('\n', 1)[0].match(/^#\d+ \S+ to (\S+)/);
  return m ? m[1] : null;
}

async function waitForNewPasscode(email, before) {
  const deadline = Date.now() + 20_000;
  while (countOutbox(email) <= before) {
    if (Date.now() > deadline) throw new Error(`no new passcode mail to ${email}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return passcodeFor(email);
}

/** Opens `html` (a message.html) from a file:// URL and follows "Open the message"; returns the portal page. */
async function openMessageHtml(context, html) {
  const file = tempFile('message.html', html);
  const page = await context.newPage();
  await page.goto('file://' + file);
  const [portal] = await Promise.all([context.waitForEvent('page'), page.locator('#sp-open').click()]);
  await portal.waitForLoadState('domcontentloaded');
  await portal.waitForFunction(() => window.__sealpostReady === true);
  return portal;
}

/** A portal URL carrying `envelope` in the fragment. */
function fragmentUrl(envelope) {
  return E.url() + '/#envelope=' + envelope.toString('base64url');
}

/**
 * Axe-core: no serious or critical violation on the page as it is now. The sandboxed message
 * frame is left out: it runs no script, so axe cannot run inside it, and its content is the
 * sender's mail.
 */
async function expectAccessible(page, name) {
  const results = await new AxeBuilder({ page }).exclude('[data-testid="body-html-frame"]').analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const summary = bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  expect(summary, `axe on ${name}`).toEqual([]);
}

/** Full-page screenshots at 1280 px and 360 px wide into SEALPOST_E2E_SCREENSHOTS. */
async function screenshots(page, name) {
  const dir = E.screenshots();
  fs.mkdirSync(dir, { recursive: true });
  const original = page.viewportSize();
  for (const width of [1280, 360]) {
    await page.setViewportSize({ width, height: width === 360 ? 780 : 900 });
    await page.screenshot({ path: path.join(dir, `${name}-${width}.png`), fullPage: true });
  }
  if (original) await page.setViewportSize(original);
}

/** Accessibility check and screenshots of one page state. */
async function checkPage(page, name) {
  await expectAccessible(page, name);
  await screenshots(page, name);
}

/**
 * Mail the gateway delivered (through Postfix, into the SMTP sink scripts/e2e.sh started) to
 * `address`: [{ data: Buffer, meta: {mail_from, rcpt_tos, ...} }] in arrival order.
 */
function delivered(address) {
  const dir = env('SEALPOST_E2E_MAILBOXES');
  return fs.readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({
      meta: JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')),
      data: fs.readFileSync(path.join(dir, f.replace(/\.json$/, '.eml'))),
    }))
    .filter((m) => m.meta.rcpt_tos.map((r) => r.toLowerCase()).includes(address.toLowerCase()));
}

/** Waits until a delivered mail to `address` satisfies `pred` (default: any); returns it. */
async function waitForDelivery(address, pred = () => true, { timeoutMs = 30_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = delivered(address).find((m) => pred(m.data.toString('utf8'), m));
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no matching mail delivered to ${address} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The value of the first header field `name` of a raw mail (unfolded), or null. */
function headerOf(raw, name) {
  const head = raw.split(/\r?\n\r?\n/, 1)[0].replace(/\r?\n[ \t]+/g, ' ');
  const re = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im');
  const m = head.match(re);
  return m ? m[1].trim() : null;
}

/** An admin token for the e2e tenant. */
function adminToken() {
  return sealpost(['admin', 'token', 'create', '--data', E.data(), '--tenant-id', 'example.com']).toString('utf8').trim();
}

module.exports = {
  E, sealpost, makeMail, encrypt, messageHtml, envelopeOf, inspect, tempDir, tempFile, passcodeFor, signIn,
  openMessageHtml, fragmentUrl, expectAccessible, screenshots, checkPage, adminToken,
  delivered, waitForDelivery, headerOf,
};
