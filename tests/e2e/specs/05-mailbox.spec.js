// The demo's development mailbox (`sealpost serve --demo`): a person clicks a mail's
// message.html, opens the portal from it, and takes the passcode from the same mailbox page,
// all in one browser.
const fs = require('node:fs');
const path = require('node:path');
const { test, expect } = require('@playwright/test');
const S = require('../lib/sealpost');

test('mailbox → message.html → portal → passcode from the mailbox → message', async ({ context }) => {
  const email = 'mia-mailbox@example.org';
  const text = 'Read through the development mailbox.\r\n';
  const wrapper = S.encrypt(S.makeMail({ to: email, subject: 'Via the mailbox', text }));
  const dir = path.join(S.E.data(), 'demo-mailbox');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'e2e-mailbox.eml'), wrapper);

  const mailbox = await context.newPage();
  await mailbox.goto('/dev/mailbox');
  await expect(mailbox.getByTestId('demo-banner')).toContainText('demo mode only');
  const item = mailbox.locator('[data-testid="mailbox-mail"][data-file="e2e-mailbox.eml"]');
  await expect(item).toContainText('Via the mailbox');
  await S.checkPage(mailbox, 'dev-mailbox');

  // The .eml download is the wrapper mail itself.
  const [download] = await Promise.all([mailbox.waitForEvent('download'), item.getByTestId('download-eml').click()]);
  expect(fs.readFileSync(await download.path()).equals(wrapper)).toBe(true);

  await item.getByTestId('open-message-html').click();
  await expect(mailbox.locator('#sp-open')).toBeVisible();
  await expect(mailbox.locator('#sp-status')).toContainText('Select the button');
  const [portal] = await Promise.all([context.waitForEvent('page'), mailbox.locator('#sp-open').click()]);
  await portal.waitForFunction(() => window.__sealpostReady === true);
  await portal.getByTestId('email-input').fill(email);
  await portal.getByTestId('send-code').click();
  await expect(portal.getByTestId('code-input')).toBeVisible();

  await mailbox.goto('/dev/mailbox');
  const code = mailbox.locator(`[data-testid="passcode-mail"][data-to="${email}"] [data-testid="passcode"]`).first();
  await expect(code).toHaveText(/^\d{6,}$/);
  await portal.getByTestId('code-input').fill(await code.textContent());
  await portal.getByTestId('verify-code').click();
  await expect(portal.getByTestId('message-view')).toBeVisible();
  expect((await portal.getByTestId('body-text').textContent()).replace(/\r\n/g, '\n').trimEnd())
    .toBe(text.replace(/\r\n/g, '\n').trimEnd());
});
