// Sign-in with an account (OpenID Connect) instead of a passcode, against the real test
// provider scripts/e2e.sh started (npm oidc-provider, tests/oidc/provider.mjs): the portal
// opens the provider in a popup, the provider sends the browser back to the portal with a code,
// and the key service exchanges it (PKCE, state, nonce, issuer and audience checks) for the
// same kind of session a passcode gives.
const { test, expect } = require('@playwright/test');
const S = require('../lib/sealpost');

const PROVIDER = 'Sign in with Test Provider';

/** Clicks the provider button on `portal` and signs in as `email` in the popup it opens. */
async function signInWithProvider(context, portal, email) {
  const [popup] = await Promise.all([
    context.waitForEvent('page'),
    portal.getByRole('button', { name: PROVIDER }).click(),
  ]);
  await popup.waitForLoadState('domcontentloaded');
  await popup.getByTestId('oidc-login-email').fill(email);
  await popup.getByTestId('oidc-login-submit').click();
  return popup;
}

test('a recipient signs in with an account and reads the message', async ({ context }) => {
  const email = 'bob@example.org';
  const wrapper = S.encrypt(S.makeMail({ to: email, subject: 'Via an account', text: 'Signed in with an account.\r\n' }));
  const portal = await S.openMessageHtml(context, S.messageHtml(wrapper));
  await expect(portal.getByRole('button', { name: PROVIDER })).toBeVisible();
  // The passcode form is still offered beside it.
  await expect(portal.getByTestId('email-input')).toBeVisible();
  await S.checkPage(portal, 'signin-with-providers');
  await signInWithProvider(context, portal, email);
  await expect(portal.getByTestId('message-view')).toBeVisible();
  await expect(portal.getByTestId('body-text')).toContainText('Signed in with an account.');
});

test('an account whose e-mail address is not verified is refused', async ({ context }) => {
  const email = 'unverified@example.org';
  const wrapper = S.encrypt(S.makeMail({ to: email, subject: 'Unverified', text: 'Should not open.\r\n' }));
  const portal = await S.openMessageHtml(context, S.messageHtml(wrapper));
  await signInWithProvider(context, portal, email);
  await expect(portal.getByRole('alert')).toContainText(/no verified e-mail address/i);
  await expect(portal.getByTestId('message-view')).toHaveCount(0);
});
