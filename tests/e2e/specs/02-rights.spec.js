// Do-Not-Forward in the UI: a banner, no download, printing shows nothing of the message,
// copy and cut are cancelled and the text cannot be selected.
const crypto = require('node:crypto');
const { test, expect } = require('@playwright/test');
const S = require('../lib/sealpost');

test('Do-Not-Forward blocks download, print and copy', async ({ context }) => {
  const email = 'dana-dnf@example.org';
  const text = 'Confidential: do not forward.\r\n';
  const wrapper = S.encrypt(
    S.makeMail({
      to: email, subject: 'Lab results', text,
      attachments: [{ name: 'results.pdf', type: 'application/pdf', bytes: crypto.randomBytes(2000) }],
    }),
    'Do-Not-Forward',
  );
  const portal = await S.openMessageHtml(context, S.messageHtml(wrapper));
  await S.signIn(portal, email);
  await expect(portal.getByTestId('message-view')).toBeVisible();
  await expect(portal.getByTestId('dnf-banner')).toBeVisible();

  // Listed, but no download button.
  await expect(portal.getByTestId('attachment')).toHaveCount(1);
  await expect(portal.getByTestId('attachment')).toHaveAttribute('data-name', 'results.pdf');
  await expect(portal.getByTestId('attachment-download')).toHaveCount(0);

  // Copy and cut are cancelled; the text cannot be selected.
  const body = portal.getByTestId('body-text');
  await expect(body).toContainText('Confidential');
  const blocked = await body.evaluate((el) => {
    const results = {};
    for (const type of ['copy', 'cut']) {
      const ev = new ClipboardEvent(type, { bubbles: true, cancelable: true, clipboardData: new DataTransfer() });
      el.dispatchEvent(ev);
      results[type] = ev.defaultPrevented;
    }
    results.userSelect = getComputedStyle(el).userSelect;
    return results;
  });
  expect(blocked).toEqual({ copy: true, cut: true, userSelect: 'none' });

  // Printing shows a notice, not the message.
  await portal.emulateMedia({ media: 'print' });
  await expect(portal.getByTestId('message-view')).toBeHidden();
  await portal.emulateMedia({ media: 'screen' });
  await expect(portal.getByTestId('message-view')).toBeVisible();
  await S.checkPage(portal, 'message-do-not-forward');
});
