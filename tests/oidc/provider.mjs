// A local OpenID provider for Sealpost's OpenID Connect tests and the demo: npm `oidc-provider`
// on 127.0.0.1, with a login page where you type an account's e-mail address (no password),
// and no consent screen. Never for real users.
//
// Options (flag, else environment variable, else default):
//   --port N              OIDC_PORT            9400
//   --issuer URL          OIDC_ISSUER          http://127.0.0.1:PORT
//   --redirect URL        OIDC_REDIRECT_URIS   http://127.0.0.1:8080/   (flag repeatable; env comma-separated)
//   --account ADDR[:unverified]
//                         OIDC_ACCOUNTS        bob@example.org,unverified@example.org:unverified
//   --secret S            OIDC_CLIENT_SECRET   sealpost-test-secret
//   --exit-with-stdin     exit when standard input closes (a test that spawns it dies: so does it)
//
// Clients (all with the redirect URIs above):
//   sealpost            confidential (client_secret_basic or _post, the secret above)
//   sealpost-public     public (no secret; PKCE only)
//   sealpost-wrong-aud  confidential; its ID tokens are re-signed with the provider's own key
//                       with `aud` set to "someone-else" (tests the relying party's audience check)
//
// Accounts: each address signs in as itself (`sub` = address); `email_verified` is false for
// those marked `:unverified`. Login: GET /interaction/UID shows a form; POST
// /interaction/UID/login with `email=ADDR` signs in (303 back to the authorization endpoint).
// An unknown address shows the form again with an error (HTTP 400).
//
// On start it prints one line `oidc-provider listening: ISSUER` to stdout.

import http from 'node:http';
import { parseArgs } from 'node:util';

import { SignJWT, decodeJwt, exportJWK, generateKeyPair, importJWK } from 'jose';
import Provider from 'oidc-provider';

const { values: flags } = parseArgs({
  options: {
    port: { type: 'string' },
    issuer: { type: 'string' },
    redirect: { type: 'string', multiple: true },
    account: { type: 'string', multiple: true },
    secret: { type: 'string' },
    'exit-with-stdin': { type: 'boolean' },
  },
});

const list = (s) => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean);
const port = Number(flags.port ?? process.env.OIDC_PORT ?? 9400);
const issuer = flags.issuer ?? process.env.OIDC_ISSUER ?? `http://127.0.0.1:${port}`;
const redirectUris = flags.redirect ?? (list(process.env.OIDC_REDIRECT_URIS).length
  ? list(process.env.OIDC_REDIRECT_URIS) : ['http://127.0.0.1:8080/']);
const secret = flags.secret ?? process.env.OIDC_CLIENT_SECRET ?? 'sealpost-test-secret';
const accounts = new Map();
for (const a of flags.account ?? (list(process.env.OIDC_ACCOUNTS).length
  ? list(process.env.OIDC_ACCOUNTS) : ['bob@example.org', 'unverified@example.org:unverified'])) {
  const [email, mark] = a.split(':');
  accounts.set(email.toLowerCase(), { email: email.toLowerCase(), verified: mark !== 'unverified' });
}
const WRONG_AUD_CLIENT = 'sealpost-wrong-aud';

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await exportJWK(privateKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };
const signingKey = await importJWK(signingJwk, 'RS256');

const provider = new Provider(issuer, {
  clients: [
    { client_id: 'sealpost', client_secret: secret, redirect_uris: redirectUris },
    {
      client_id: 'sealpost-public', token_endpoint_auth_method: 'none', redirect_uris: redirectUris,
    },
    { client_id: WRONG_AUD_CLIENT, client_secret: secret, redirect_uris: redirectUris },
  ],
  jwks: { keys: [signingJwk] },
  cookies: { keys: ['sealpost-test-oidc-provider'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  // Scope claims go into the ID token itself (the relying party reads only the ID token).
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // No consent screen: every client here is first-party.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope ?? 'openid');
    await grant.save();
    return grant;
  },
  async findAccount(ctx, id) {
    const account = accounts.get(id);
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: account.email, email_verified: account.verified };
      },
    };
  },
});

// The wrong-audience client: re-sign its ID tokens with `aud` changed.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/token' && ctx.oidc?.client?.clientId === WRONG_AUD_CLIENT
      && ctx.body && typeof ctx.body === 'object' && ctx.body.id_token) {
    const claims = decodeJwt(ctx.body.id_token);
    claims.aud = 'someone-else';
    ctx.body.id_token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: signingJwk.kid })
      .sign(signingKey);
  }
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, clientId, error, hint) {
  const known = [...accounts.values()]
    .map((a) => `<li><code>${escape(a.email)}</code>${a.verified ? '' : ' (e-mail not verified)'}</li>`)
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test OpenID provider: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}
input,button{font:inherit;padding:.4rem;margin:.3rem 0}.error{color:#a00}</style></head><body>
<h1>Test OpenID provider</h1>
<p>Signing in to <strong>${escape(clientId)}</strong>. This provider is for tests and the demo: type one of its accounts' e-mail address, no password.</p>
${error ? `<p class="error" role="alert" data-testid="oidc-login-error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>E-mail address<br><input type="email" name="email" autofocus required value="${escape(hint ?? '')}" data-testid="oidc-login-email"></label><br>
<button type="submit" data-testid="oidc-login-submit">Sign in</button>
</form>
<p>Accounts:</p><ul>${known}</ul></body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10000) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const clientId = details.params.client_id;
  const send = (status, html) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  };
  if (req.method === 'GET' && !action) {
    send(200, loginPage(uid, clientId, null, details.params.login_hint));
    return;
  }
  if (req.method === 'POST' && action === 'login') {
    const email = (await readForm(req)).get('email')?.trim().toLowerCase() ?? '';
    if (!accounts.has(email)) {
      send(400, loginPage(uid, clientId, `No account ${email} here.`, email));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: email } }, { mergeWithLastSubmission: false });
    return;
  }
  send(405, 'method not allowed');
}

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?$/.exec(new URL(req.url, issuer).pathname);
  if (!m) {
    callback(req, res);
    return;
  }
  try {
    await interaction(req, res, m[1], m[2]);
  } catch (e) {
    res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`sign-in failed: ${e.message}\n`);
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening: ${issuer}`);
});
if (flags['exit-with-stdin']) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
