// Messages that cannot be read get their own page: revoked, expired, tampered (damaged),
// and one naming a key service the portal does not know.
const path = require('node:path');
const { test, expect } = require('@playwright/test');
const S = require('../lib/sealpost');

/** Loads `envelope` and signs in if the portal asks; returns the error page locator. */
async function openExpectingError(page, envelope, email) {
  await page.goto('about:blank'); // a new document, not a same-document fragment change
  await page.goto(S.fragmentUrl(envelope));
  const error = page.getByTestId('error-page');
  const email_input = page.getByTestId('email-input');
  await expect(error.or(email_input)).toBeVisible();
  if (await email_input.isVisible()) {
    await email_input.fill(email);
    await page.getByTestId('send-code').click();
    const code_input = page.getByTestId('code-input');
    await expect(error.or(code_input)).toBeVisible();
    if (await code_input.isVisible()) {
      await code_input.fill(await S.passcodeFor(email));
      await page.getByTestId('verify-code').click();
    }
  }
  await expect(error).toBeVisible();
  return error;
}

const sealed = (email, template = 'Encrypt-Only') =>
  S.envelopeOf(S.messageHtml(S.encrypt(S.makeMail({ to: email, subject: 'Gone', text: 'secret\r\n' }), template)));

test('a revoked message shows the revoked page', async ({ page }) => {
  const email = 'rita-revoked@example.org';
  const wrapper = S.encrypt(S.makeMail({ to: email, subject: 'Revoked', text: 'secret\r\n' }));
  const id = S.inspect(wrapper).message_id;
  const out = S.sealpost(['revoke', '--url', S.E.url(), '--token', S.adminToken(), id]).toString();
  expect(out).toContain('revoked');
  const error = await openExpectingError(page, S.envelopeOf(S.messageHtml(wrapper)), email);
  await expect(error).toHaveAttribute('data-kind', 'revoked');
  await expect(page.getByTestId('message-view')).toHaveCount(0);
  await S.checkPage(page, 'error-revoked');
});

test('an expired message shows the expired page', async ({ page }) => {
  const email = 'ed-expired@example.org';
  // The e2e tenant's "Expires-Fast" template: expires 2 seconds after sealing.
  const envelope = sealed(email, 'Expires-Fast');
  await new Promise((r) => setTimeout(r, 3000));
  const error = await openExpectingError(page, envelope, email);
  await expect(error).toHaveAttribute('data-kind', 'expired');
  await S.checkPage(page, 'error-expired');
});

test('a tampered envelope shows the damaged page', async ({ page }) => {
  const email = 'tom-tampered@example.org';
  for (const where of [0.5, 0.95]) {
    const envelope = Buffer.from(sealed(email));
    const i = Math.floor(envelope.length * where);
    envelope[i] ^= 0x01;
    const error = await openExpectingError(page, envelope, email);
    await expect(error).toHaveAttribute('data-kind', 'damaged');
    await expect(page.getByTestId('message-view')).toHaveCount(0);
  }
  await S.checkPage(page, 'error-damaged');
});

test('an envelope naming an unknown key service shows its page', async ({ page }) => {
  const tenant = path.join(S.tempDir(), 'tenant');
  S.sealpost(['tenant', 'init', '--dir', tenant, '--domain', 'other.example', '--key-service-url',
    'http://127.0.0.1:9', '--portal-url', S.E.url() + '/']);
  const mail = S.makeMail({ to: 'uma@example.org', subject: 'Elsewhere', text: 'x\r\n' });
  const wrapper = S.sealpost(['encrypt', '--tenant', tenant], mail);
  await page.goto(S.fragmentUrl(S.envelopeOf(S.messageHtml(wrapper))));
  await expect(page.getByTestId('error-page')).toHaveAttribute('data-kind', 'unknown-key-service');
  await S.checkPage(page, 'error-unknown-key-service');
});

test('a signed-in address that is not a recipient gets the not-a-recipient page', async ({ page }) => {
  const reader = 'nina-reader@example.org';
  const mine = sealed(reader);
  const notMine = sealed('someone-else@example.org');
  // Sign in for a message of hers; the session stays for the tab.
  await page.goto(S.fragmentUrl(mine));
  await S.signIn(page, reader);
  await expect(page.getByTestId('message-view')).toBeVisible();
  await page.goto('about:blank');
  await page.goto(S.fragmentUrl(notMine));
  await expect(page.getByTestId('error-page')).toHaveAttribute('data-kind', 'not-a-recipient');
  await expect(page.getByTestId('message-view')).toHaveCount(0);
  await S.checkPage(page, 'error-not-a-recipient');
});
