// A real OpenID Connect provider for Parley's sign-in tests: `oidc-provider` (the certified Node
// implementation) on loopback, with its development login and consent pages, one confidential client
// (`parley` / `parley-secret`) allowed back to the redirect URIs given, and PKCE required.
//
//   node tests/support/oidc.mjs PORT REDIRECT_URI...
//
// Anyone may sign in under any login; the login names the account and how the provider treats it:
// `<name>` has the verified email <name>@example.com, `unverified-<name>` the same address unverified,
// `noemail-<name>` none. Three more make the token endpoint answer with a bad ID token, so the tests can
// see Parley refuse one from a provider that misbehaves (or from someone in between): `expired-<name>`
// (signed, expired ten minutes ago), `wrongaud-<name>` (signed, for another client), `tampered-<name>`
// (its claims changed after signing).
import Provider from 'oidc-provider';
import * as jose from 'jose';

const [port, ...redirectUris] = process.argv.slice(2);
if (!port || redirectUris.length === 0) {
  console.error('usage: node oidc.mjs PORT REDIRECT_URI...');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
// A key id of this run's own: a provider started again has rotated its keys.
const kid = `key-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
const key = { ...(await jose.exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };

const MODES = ['unverified', 'noemail', 'expired', 'wrongaud', 'tampered'];

function parse(login) {
  const dash = login.indexOf('-');
  const mode = dash > 0 ? login.slice(0, dash) : '';
  return MODES.includes(mode) ? { mode, name: login.slice(dash + 1) } : { mode: '', name: login };
}

function claimsOf(sub) {
  const { mode, name } = parse(sub);
  const claims = { sub, name: name.charAt(0).toUpperCase() + name.slice(1), preferred_username: name };
  if (mode !== 'noemail') {
    claims.email = `${name}@example.com`;
    claims.email_verified = mode !== 'unverified';
  }
  return claims;
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'parley',
    client_secret: 'parley-secret',
    redirect_uris: redirectUris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  jwks: { keys: [key] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
  // The ID token carries the profile and email claims (Parley reads them there, not from userinfo).
  conformIdTokenClaims: false,
  findAccount: (ctx, id) => ({ accountId: id, claims: () => claimsOf(id) }),
  pkce: { required: () => true },
  cookies: { keys: ['parley-test-provider'] },
  features: { devInteractions: { enabled: true } },
});

// The misbehaving accounts: their ID token changed on its way out of the token endpoint.
provider.use(async (ctx, next) => {
  await next();
  const token = ctx.method === 'POST' && ctx.path === '/token' && ctx.body && ctx.body.id_token;
  if (!token) return;
  const claims = jose.decodeJwt(token);
  const { mode } = parse(claims.sub);
  const now = Math.floor(Date.now() / 1000);
  const resign = (changed) => new jose.SignJWT({ ...claims, ...changed })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid })
    .sign(privateKey);
  if (mode === 'expired') {
    ctx.body = { ...ctx.body, id_token: await resign({ iat: now - 1200, exp: now - 600 }) };
  } else if (mode === 'wrongaud') {
    ctx.body = { ...ctx.body, id_token: await resign({ aud: 'someone-else' }) };
  } else if (mode === 'tampered') {
    const [header, , signature] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...claims, sub: 'alice', email: 'alice@example.com' }))
      .toString('base64url');
    ctx.body = { ...ctx.body, id_token: `${header}.${forged}.${signature}` };
  }
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider on ${issuer}`);
});
