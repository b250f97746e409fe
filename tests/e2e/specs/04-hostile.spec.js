// A hostile HTML mail runs no script and makes no request to anywhere but the portal and its
// key service. A decoy HTTP server on another loopback port counts every request that would
// leak (scripts, event handlers, javascript: links, remote images, CSS url(), forms, meta
// refresh, SVG, iframes, objects, base, link preload); every request of the browser context
// is recorded too. Only after "load remote images" may remote *images* load.
const http = require('node:http');
const { test, expect } = require('@playwright/test');
const S = require('../lib/sealpost');

let decoy;
let decoyHits = [];

test.beforeAll(async () => {
  decoy = http.createServer((req, res) => {
    decoyHits.push(req.url);
    res.writeHead(200, { 'content-type': 'image/png' });
    res.end();
  });
  await new Promise((r) => decoy.listen(0, '127.0.0.1', r));
});

test.afterAll(async () => {
  await new Promise((r) => decoy.close(r));
});

function hostileHtml(d) {
  return `<!DOCTYPE html><html><head>
<meta http-equiv="refresh" content="0;url=${d}/meta-refresh">
<base href="${d}/base/">
<link rel="stylesheet" href="${d}/link-stylesheet">
<link rel="preload" as="image" href="${d}/link-preload">
<style>body{background:url(${d}/style-element)} @import url(${d}/style-import);</style>
<script>fetch('${d}/script-tag');alert('script-tag')</script>
<script src="${d}/script-src.js"></script>
</head><body onload="fetch('${d}/body-onload')">
<h1 id="title">Quarterly update</h1>
<p style="background-image:url(${d}/style-attribute)">Styled paragraph.</p>
<img src="${d}/remote-image.png" alt="remote">
<img src="x" onerror="fetch('${d}/img-onerror');alert('onerror')" alt="broken">
<img srcset="${d}/srcset.png 2x" alt="srcset">
<a id="js-link" href="javascript:fetch('${d}/javascript-link');alert('js')">click me</a>
<a href="${d}/plain-link">a normal link (not clicked)</a>
<form action="${d}/form" method="post"><input name="q" value="x"><button id="submit">Send</button></form>
<svg xmlns="http://www.w3.org/2000/svg" onload="fetch('${d}/svg-onload')"><script>fetch('${d}/svg-script')</script>
<image href="${d}/svg-image.png" width="10" height="10"/></svg>
<iframe src="${d}/iframe"></iframe>
<object data="${d}/object"></object><embed src="${d}/embed">
<video poster="${d}/video-poster" src="${d}/video"></video><audio src="${d}/audio"></audio>
<table background="${d}/table-background"><tr><td>cell</td></tr></table>
<div onmouseover="fetch('${d}/onmouseover')">hover me</div>
</body></html>`;
}

test('a hostile HTML mail runs no script and makes no outside request', async ({ context }) => {
  const email = 'hal-hostile@example.org';
  const d = `http://127.0.0.1:${decoy.address().port}`;
  const portalOrigin = new URL(S.E.url()).origin;
  const outside = [];
  const dialogs = [];
  context.on('request', (req) => {
    const url = req.url();
    // file: is the recipient's own message.html, opened by the test.
    if (!url.startsWith(portalOrigin + '/') && !/^(data|blob|about|file):/.test(url)) outside.push(url);
  });
  await context.route('**/*', (route) => route.continue());
  const wrapper = S.encrypt(S.makeMail({ to: email, subject: 'Quarterly update', text: 'text version', html: hostileHtml(d) }));
  const portal = await S.openMessageHtml(context, S.messageHtml(wrapper));
  portal.on('dialog', (dlg) => { dialogs.push(dlg.message()); dlg.dismiss(); });
  await S.signIn(portal, email);

  const frame = portal.frameLocator('[data-testid="body-html-frame"]');
  await expect(frame.locator('#title, h1').first()).toHaveText('Quarterly update');
  // The frame is sandboxed: no scripts, no same-origin.
  const sandbox = await portal.getByTestId('body-html-frame').getAttribute('sandbox');
  expect(sandbox).not.toBeNull();
  expect(sandbox).not.toContain('allow-scripts');
  expect(sandbox).not.toContain('allow-same-origin');
  // User actions that would run script or send data if anything survived.
  const jsLink = frame.locator('#js-link, a:has-text("click me")').first();
  if (await jsLink.count()) await jsLink.click({ timeout: 2000 }).catch(() => {});
  const hover = frame.locator('div:has-text("hover me")').last();
  if (await hover.count()) await hover.hover({ timeout: 2000 }).catch(() => {});
  const submit = frame.locator('button, input[type=submit]');
  if (await submit.count()) await submit.first().click({ timeout: 2000 }).catch(() => {});
  await portal.waitForTimeout(2500);

  expect(decoyHits, 'requests that reached the decoy server').toEqual([]);
  expect(outside, 'requests to anywhere but the portal and key service').toEqual([]);
  expect(dialogs, 'dialogs opened by script').toEqual([]);
  expect(portal.url().startsWith(portalOrigin)).toBe(true);
  await expect(portal.getByTestId('message-view')).toBeVisible();
  await expect(portal.getByTestId('load-remote')).toBeVisible();
  await S.checkPage(portal, 'message-hostile-html');

  // The recipient's choice loads remote images, and still nothing else.
  await portal.getByTestId('load-remote').click();
  await expect.poll(() => decoyHits.length).toBeGreaterThan(0);
  await portal.waitForTimeout(1500);
  const notImages = decoyHits.filter((u) => !/^\/(remote-image\.png|srcset\.png)$/.test(u));
  expect(notImages, 'non-image requests after "load remote images"').toEqual([]);
  expect(dialogs).toEqual([]);
});
