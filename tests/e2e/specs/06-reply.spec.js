// Encrypted replies from the portal, through the real gateway and a real Postfix: the reply is
// built and sealed in the browser (no plaintext in what it submits), the gateway's reply
// endpoint has the key service authorize it, counter-signs it and sends it on; the original
// sender (inside the organization) receives it decrypted by transport decryption, threaded
// under the original; reply-all reaches everyone allowed; Do-Not-Forward offers no Forward and
// a forged forward is refused and audited; a browser whose clock is wrong still answers a
// message that expires (the reply's lifetime is counted on the key service's clock).
const crypto = require('node:crypto');
const { test, expect } = require('@playwright/test');
const S = require('../lib/sealpost');

const REPLIES = /\/v1\/replies$/;

/** Opens a protected mail to bob as bob; returns { portal, original (the plain mail), wrapper }. */
async function openAsBob(context, { template = 'Encrypt-Only', cc, subject }) {
  const mail = S.makeMail({
    to: 'Bob Outside <bob@example.org>' + (cc ? `\r\nCc: ${cc}` : ''),
    subject,
    text: 'Please review and answer.\r\n',
  });
  const wrapper = S.encrypt(mail, template);
  const portal = await S.openMessageHtml(context, S.messageHtml(wrapper));
  await S.signIn(portal, 'bob@example.org');
  await expect(portal.getByTestId('message-view')).toBeVisible();
  return { portal, original: mail.toString('utf8'), wrapper };
}

/** Records the body of every request to the reply endpoint. */
function recordSubmissions(page) {
  const bodies = [];
  page.on('request', (req) => {
    if (REPLIES.test(req.url()) && req.method() === 'POST') bodies.push(req.postDataBuffer());
  });
  return bodies;
}

test('a reply with an attachment reaches the sender decrypted and threaded; no plaintext leaves the browser', async ({ context }) => {
  const { portal, original } = await openAsBob(context, { subject: 'Contract draft' });
  const originalId = S.headerOf(original, 'Message-ID');
  const submissions = recordSubmissions(portal);

  await portal.getByRole('button', { name: 'Reply', exact: true }).click();
  await expect(portal.locator('#compose-to')).toHaveValue(/alice@example\.com/);
  const secret = `Signed copy attached ${crypto.randomBytes(8).toString('hex')}`;
  await portal.locator('#compose-body').fill(`${secret}\nBest, Bob`);
  const attachment = crypto.randomBytes(3000);
  await portal.locator('#compose-files').setInputFiles({ name: 'signed.pdf', mimeType: 'application/pdf', buffer: attachment });
  await S.checkPage(portal, 'compose-reply');
  const [response] = await Promise.all([
    portal.waitForResponse((r) => REPLIES.test(r.url()) && r.request().method() === 'POST'),
    portal.getByRole('button', { name: 'Send' }).click(),
  ]);
  expect(response.status()).toBe(202);
  await expect(portal.getByTestId('compose-success')).toBeVisible();

  // What left the browser: JSON with the envelope; neither holds the reply's plaintext.
  expect(submissions).toHaveLength(1);
  const json = submissions[0];
  const body = JSON.parse(json.toString('utf8'));
  const envelope = Buffer.from(body.envelope, 'base64');
  for (const bytes of [json, envelope]) {
    expect(bytes.includes(Buffer.from(secret))).toBe(false);
    expect(bytes.includes(attachment.subarray(100, 132))).toBe(false);
    expect(bytes.includes(Buffer.from(attachment.subarray(0, 300).toString('base64').slice(0, 64)))).toBe(false);
  }
  expect(body.kind).toBe('reply');

  // Alice's mailbox, behind Postfix: the reply itself, decrypted by the gateway.
  const mail = await S.waitForDelivery('alice@example.com', (raw) => raw.includes(secret));
  const raw = mail.data.toString('utf8');
  expect(S.headerOf(raw, 'X-Sealpost-Decrypted')).toMatch(/^[0-9a-f]{32}$/);
  expect(S.headerOf(raw, 'X-Sealpost-Envelope')).toBeNull();
  expect(S.headerOf(raw, 'From')).toContain('bob@example.org');
  expect(S.headerOf(raw, 'In-Reply-To')).toBe(originalId);
  expect(S.headerOf(raw, 'References')).toContain(originalId);
  expect(S.headerOf(raw, 'Subject')).toBe('Re: Contract draft');
  expect(raw).toContain('signed.pdf');
  expect(raw.replace(/\s+/g, '')).toContain(attachment.toString('base64').replace(/=+$/, '').slice(0, 200));
  expect(mail.meta.mail_from).toBe('noreply@example.com');
});

test('reply-all reaches everyone allowed: internal recipients decrypted, outside ones protected', async ({ context }) => {
  const { portal } = await openAsBob(context, {
    subject: 'Meeting notes',
    cc: 'Carol <carol@example.net>, Dave <dave@example.com>',
  });
  await portal.getByRole('button', { name: 'Reply all' }).click();
  await expect(portal.locator('#compose-to')).toHaveValue(/alice@example\.com/);
  await expect(portal.locator('#compose-cc')).toHaveValue(/carol@example\.net/);
  await expect(portal.locator('#compose-cc')).toHaveValue(/dave@example\.com/);
  await expect(portal.locator('#compose-cc')).not.toHaveValue(/bob@example\.org/);
  const secret = `Reply to all ${crypto.randomBytes(8).toString('hex')}`;
  await portal.locator('#compose-body').fill(secret);
  const [response] = await Promise.all([
    portal.waitForResponse((r) => REPLIES.test(r.url()) && r.request().method() === 'POST'),
    portal.getByRole('button', { name: 'Send' }).click(),
  ]);
  expect(response.status()).toBe(202);
  const answer = await response.json();
  expect([...answer.recipients].sort()).toEqual(['alice@example.com', 'carol@example.net', 'dave@example.com']);

  for (const internal of ['alice@example.com', 'dave@example.com']) {
    const mail = await S.waitForDelivery(internal, (raw) => raw.includes(secret));
    expect(S.headerOf(mail.data.toString('utf8'), 'Subject')).toBe('Re: Meeting notes');
  }
  // Carol is outside: she gets the protected wrapper, sent by the tenant for Bob.
  const idOf = (data) => { try { return S.inspect(data).message_id; } catch { return null; } };
  const wrapper = await S.waitForDelivery('carol@example.net', (raw, m) => idOf(m.data) === answer.message_id);
  const wrapperRaw = wrapper.data.toString('utf8');
  expect(wrapperRaw).not.toContain(secret);
  expect(S.headerOf(wrapperRaw, 'X-Sealpost-Envelope')).not.toBeNull();
  expect(S.headerOf(wrapperRaw, 'X-Sealpost-Relayed-For')).toBe('<bob@example.org>');
  const header = S.inspect(wrapper.data);
  expect(JSON.stringify(header)).toContain('bob@example.org');
});

test('Do-Not-Forward offers no Forward, and a forged forward is refused and audited', async ({ context }) => {
  const { portal, wrapper } = await openAsBob(context, { template: 'Do-Not-Forward', subject: 'Lab results' });
  await expect(portal.getByRole('button', { name: 'Reply', exact: true })).toBeVisible();
  await expect(portal.getByRole('button', { name: 'Reply all' })).toBeVisible();
  await expect(portal.getByRole('button', { name: 'Forward' })).toHaveCount(0);

  // Forge: turn the reply the portal submits into a forward to an outsider.
  await portal.route(REPLIES, async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    const body = JSON.parse(route.request().postData());
    body.kind = 'forward';
    return route.continue({ postData: JSON.stringify(body) });
  });
  await portal.getByRole('button', { name: 'Reply', exact: true }).click();
  const secret = `forged ${crypto.randomBytes(6).toString('hex')}`;
  await portal.locator('#compose-body').fill(secret);
  const [response] = await Promise.all([
    portal.waitForResponse((r) => REPLIES.test(r.url()) && r.request().method() === 'POST'),
    portal.getByRole('button', { name: 'Send' }).click(),
  ]);
  expect(response.status()).toBe(403);
  expect((await response.json()).error).toBe('right_not_granted');
  await expect(portal.getByTestId('compose-error')).toBeVisible();
  await portal.unroute(REPLIES);

  // Someone else's session: a made-up token is refused before anything is looked at.
  const forged = await portal.evaluate(async (url) => {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Sealpost-Client': '1', Authorization: 'Bearer sps_forged' },
      body: JSON.stringify({ kind: 'reply', original: { envelope: 'AA==' }, envelope: 'AA==', to: ['alice@example.com'], cc: [], threading: { message_id: '<x@y>', in_reply_to: null, references: null } }),
    });
    return { status: r.status, body: await r.json() };
  }, `${process.env.SEALPOST_E2E_REPLY_URL}/v1/replies`);
  expect(forged.status).toBeGreaterThanOrEqual(400);
  expect(forged.status).toBeLessThan(500);

  // Nothing reached Alice, and the refusal is in the original's audit log.
  await new Promise((r) => setTimeout(r, 1000));
  expect(S.delivered('alice@example.com').filter((m) => m.data.toString('utf8').includes(secret))).toHaveLength(0);
  const id = S.inspect(wrapper).message_id;
  const audit = JSON.parse(S.sealpost(['audit', '--url', S.E.url(), '--token', S.adminToken(), id]).toString('utf8'));
  const refused = JSON.stringify(audit);
  expect(refused).toContain('reply_refused');
  expect(refused).toContain('right_not_granted');
});

test('a browser whose clock is two hours ahead still answers a message that expires', async ({ context }) => {
  // Every page of this context sees Date.now() two hours in the future. The reply keeps the
  // original's lifetime counted from now, which the key service checks against its own clock
  // (5 minutes either way): the portal must count on the service's clock, not this one.
  await context.addInitScript(() => {
    const real = Date.now.bind(Date);
    Date.now = () => real() + 2 * 3600 * 1000;
  });
  const { portal } = await openAsBob(context, { template: 'Week', subject: 'Clock check' });
  await portal.getByRole('button', { name: 'Reply', exact: true }).click();
  const secret = `Answer from a wrong clock ${crypto.randomBytes(8).toString('hex')}`;
  await portal.locator('#compose-body').fill(secret);
  const [response] = await Promise.all([
    portal.waitForResponse((r) => REPLIES.test(r.url()) && r.request().method() === 'POST'),
    portal.getByRole('button', { name: 'Send' }).click(),
  ]);
  expect(response.status()).toBe(202);
  await expect(portal.getByTestId('compose-success')).toBeVisible();
  await S.waitForDelivery('alice@example.com', (raw) => raw.includes(secret));
});
