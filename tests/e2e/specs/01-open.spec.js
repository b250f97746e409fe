// Opening protected mail: message.html → portal (postMessage for a large envelope, the URL
// fragment for a small one), drag-and-drop, the file picker and a pasted link; the body and
// every attachment must come out identical to what was sealed.
const crypto = require('node:crypto');
const fs = require('node:fs');
const { test, expect } = require('@playwright/test');
const S = require('../lib/sealpost');

const norm = (s) => s.replace(/\r\n/g, '\n').trimEnd();

/** Checks each attachment's listing and that its download is byte-identical. */
async function expectAttachments(page, expected) {
  await expect(page.getByTestId('attachment')).toHaveCount(expected.length);
  for (const a of expected) {
    const item = page.locator(`[data-testid="attachment"][data-name="${a.name}"]`);
    await expect(item).toHaveAttribute('data-size', String(a.bytes.length));
    await expect(item).toHaveAttribute('data-type', new RegExp('^' + a.type.replace('/', '\\/')));
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      item.getByTestId('attachment-download').click(),
    ]);
    const got = fs.readFileSync(await download.path());
    expect(got.equals(a.bytes), `${a.name} downloaded byte for byte`).toBe(true);
  }
}

test('message.html → portal (postMessage), sign in, body and attachments identical', async ({ context }) => {
  const email = 'erin-open@example.org';
  const text = 'Hello Erin,\r\n\r\nthe figures are attached.\r\nUmlauts: grüße, ça va?\r\n';
  const attachments = [
    // Large enough that the envelope exceeds the fragment limit: message.html uses postMessage.
    { name: 'figures.bin', type: 'application/octet-stream', bytes: crypto.randomBytes(80_000) },
    { name: 'table.csv', type: 'text/csv', bytes: Buffer.from('a,b\r\n1,2\r\n') },
  ];
  const wrapper = S.encrypt(S.makeMail({ to: email, subject: 'Figures Q3', text, attachments }));
  const header = S.inspect(wrapper);
  const portal = await S.openMessageHtml(context, S.messageHtml(wrapper));

  await expect(portal.getByTestId('sender')).toContainText('alice@example.com');
  await expect(portal.getByTestId('organization')).toContainText('Example Corp');
  await expect(portal.getByTestId('reference')).toContainText(header.reference);
  expect(portal.url()).not.toContain('envelope=');
  await S.checkPage(portal, 'signin');

  await S.signIn(portal, email, 'signin-code');
  await expect(portal.getByTestId('message-view')).toBeVisible();
  await expect(portal.getByTestId('signed-in-as')).toContainText(email);
  await expect(portal.getByTestId('field-subject')).toHaveText('Figures Q3');
  await expect(portal.getByTestId('field-from')).toContainText('alice@example.com');
  await expect(portal.getByTestId('field-to')).toContainText(email);
  await expect(portal.getByTestId('dnf-banner')).toHaveCount(0);
  expect(norm(await portal.getByTestId('body-text').textContent())).toBe(norm(text));
  await expectAttachments(portal, attachments);
  await S.checkPage(portal, 'message-encrypt-only');
});

test('a small envelope travels in the fragment; HTML with inline cid: images renders', async ({ context }) => {
  const email = 'erin-html@example.org';
  const png = fs.readFileSync(require.resolve('../fixtures/dot.png'));
  const html = '<h1>Newsletter</h1><p>Inline image:</p><img id="logo" src="cid:logo@e2e" alt="logo">';
  const wrapper = S.encrypt(S.makeMail({
    to: email, subject: 'Newsletter', text: 'Newsletter (text version)', html,
    inline: [{ cid: 'logo@e2e', type: 'image/png', bytes: png }],
  }));
  const page = await context.newPage();
  await page.goto('file://' + S.tempFile('message.html', S.messageHtml(wrapper)));
  const href = await page.locator('#sp-open').getAttribute('href');
  expect(href).toContain('#envelope=');
  const portal = await S.openMessageHtml(context, S.messageHtml(wrapper));
  await S.signIn(portal, email);
  const frame = portal.frameLocator('[data-testid="body-html-frame"]');
  await expect(frame.locator('h1')).toHaveText('Newsletter');
  const img = frame.locator('img');
  await expect(img).toHaveCount(1);
  expect(await img.getAttribute('src')).toMatch(/^(data|blob):/);
  await expect.poll(() => img.evaluate((i) => i.complete && i.naturalWidth)).toBeGreaterThan(0);
  await expect(portal.getByTestId('load-remote')).toHaveCount(0);
  await S.checkPage(portal, 'message-html');
});

test('drag-and-drop of message.html onto the portal', async ({ page }) => {
  const email = 'erin-drop@example.org';
  const text = 'Dropped and read.\r\n';
  const wrapper = S.encrypt(S.makeMail({ to: email, subject: 'Dropped', text }));
  await page.goto('/');
  await page.waitForFunction(() => window.__sealpostReady === true);
  await expect(page.getByTestId('drop-zone')).toBeVisible();
  await S.checkPage(page, 'intake');
  await page.evaluate(({ b64, name }) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, { type: 'text/html' }));
    const zone = document.querySelector('[data-testid="drop-zone"]');
    for (const type of ['dragenter', 'dragover', 'drop']) {
      zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
    }
  }, { b64: S.messageHtml(wrapper).toString('base64'), name: 'message.html' });
  await S.signIn(page, email);
  expect(norm(await page.getByTestId('body-text').textContent())).toBe(norm(text));
});

test('the file picker takes the whole .eml', async ({ page }) => {
  const email = 'erin-picker@example.org';
  const text = 'Picked from a file.\r\n';
  const wrapper = S.encrypt(S.makeMail({ to: email, subject: 'Picked', text }));
  await page.goto('/');
  await page.waitForFunction(() => window.__sealpostReady === true);
  await page.getByTestId('file-input').setInputFiles(S.tempFile('wrapper.eml', wrapper));
  await S.signIn(page, email);
  expect(norm(await page.getByTestId('body-text').textContent())).toBe(norm(text));
});

test('a pasted portal link opens the message', async ({ page }) => {
  const email = 'erin-paste@example.org';
  const text = 'Opened from a pasted link.\r\n';
  const wrapper = S.encrypt(S.makeMail({ to: email, subject: 'Pasted', text }));
  const link = S.fragmentUrl(S.envelopeOf(S.messageHtml(wrapper)));
  await page.goto('/');
  await page.waitForFunction(() => window.__sealpostReady === true);
  await page.getByTestId('paste-link').fill(link);
  await page.getByTestId('paste-open').click();
  await S.signIn(page, email);
  expect(norm(await page.getByTestId('body-text').textContent())).toBe(norm(text));
});
