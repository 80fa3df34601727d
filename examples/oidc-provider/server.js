// An OpenID Connect issuer on panva's oidc-provider whose tokens carry what claimsmith's rules
// decide: it posts each login to `claimsmith serve`'s `outcome` hook and puts the answer into the
// ID token (findAccount(..).claims()) and the JWT access token (extraTokenClaims and the JWT
// customizer, for scopes). A denial ends the login with access_denied at the client; anything
// else that is not a 200 (a rule failure, a timeout, claimsmith down) fails the login.
// See README.md beside this file.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const env = (name, fallback) => {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : value;
};

const HOST = env('HOST', '127.0.0.1');
const PORT = Number(env('PORT', '3000'));
const CLAIMSMITH_URL = env('CLAIMSMITH_URL', 'http://127.0.0.1:8787/hooks/oidc-provider');
const HOOK_KEY = env('CLAIMSMITH_HOOK_KEY');
const HOOK_HEADER = env('CLAIMSMITH_HOOK_HEADER', 'X-Claimsmith-Key');
// Keep it above claimsmith's [server] request_timeout_ms (2000 in claimsmith.toml).
const HOOK_TIMEOUT_MS = Number(env('CLAIMSMITH_TIMEOUT_MS', '3000'));
const API = env('API_RESOURCE', 'https://api.example.com');
const API_SCOPES = env('API_SCOPES', 'read:reports write:reports admin:users').split(/\s+/);
const CLIENT_ID = env('CLIENT_ID', 'example-app');
const REDIRECT_URI = env('REDIRECT_URI', 'http://127.0.0.1:8080/callback');
// The claims the rules may put in the ID token. oidc-provider only puts a claim in an ID token
// when the `claims` configuration maps a granted scope to it, so these ride on `openid`.
const RULE_ID_TOKEN_CLAIMS = env('ID_TOKEN_CLAIMS', 'https://example.com/roles').split(/[\s,]+/);
const ACCOUNTS_FILE = env('ACCOUNTS', new URL('./accounts.json', import.meta.url));

if (!HOOK_KEY) {
  console.error('CLAIMSMITH_HOOK_KEY is not set: it is the key claimsmith.toml\'s hook expects');
  process.exit(2);
}
if (!Number.isInteger(HOOK_TIMEOUT_MS) || HOOK_TIMEOUT_MS <= 0) {
  console.error('CLAIMSMITH_TIMEOUT_MS must be a positive integer (milliseconds)');
  process.exit(2);
}

const accounts = Object.fromEntries(
  Object.entries(JSON.parse(readFileSync(ACCOUNTS_FILE, 'utf8'))).filter(([id]) => !id.startsWith('_')),
);

// The account's own (standard) claims, by OIDC scope in `claims` below.
function standardClaims(id, user) {
  return {
    sub: id,
    email: user.email,
    email_verified: Boolean(user.email_verified),
    name: user.name,
    given_name: user.given_name,
    family_name: user.family_name,
    nickname: user.nickname,
  };
}

// Auth0's `transaction.protocol` for the request in `ctx`.
function protocol(ctx) {
  switch (ctx.oidc.params?.grant_type) {
    case undefined:
    case 'authorization_code':
      return 'oidc-basic-profile';
    case 'refresh_token':
      return 'oauth2-refresh-token';
    case 'urn:ietf:params:oauth:grant-type:device_code':
      return 'oauth2-device-code';
    default:
      return ctx.oidc.params.grant_type;
  }
}

// The login event claimsmith's rules see (docs/writing-rules.md), as `claimsmith run` takes it.
function loginEvent(ctx, id, user) {
  const { params = {}, entities } = ctx.oidc;
  // The grant being exchanged at the token endpoint; the request itself at the authorization one.
  const source = entities.AuthorizationCode ?? entities.RefreshToken ?? entities.DeviceCode;
  const scope = params.scope ?? source?.scope ?? '';
  let resource = params.resource ?? source?.resource ?? API;
  if (Array.isArray(resource)) [resource] = resource;
  return {
    user: {
      user_id: id,
      email: user.email,
      email_verified: Boolean(user.email_verified),
      name: user.name,
      given_name: user.given_name,
      family_name: user.family_name,
      nickname: user.nickname,
      app_metadata: user.app_metadata ?? {},
      user_metadata: user.user_metadata ?? {},
    },
    authorization: { roles: user.roles ?? [], permissions: user.permissions ?? [] },
    client: { client_id: ctx.oidc.client.clientId, name: ctx.oidc.client.clientName },
    connection: { name: 'oidc-provider', strategy: 'oidc-provider' },
    request: {
      ip: ctx.ip,
      user_agent: ctx.get('user-agent'),
      hostname: ctx.hostname,
      method: ctx.method,
    },
    transaction: {
      requested_scopes: scope.split(' ').filter(Boolean),
      protocol: protocol(ctx),
      redirect_uri: params.redirect_uri ?? source?.redirectUri,
    },
    resource_server: { identifier: resource },
  };
}

// Post `event` to claimsmith's outcome hook: the rules' decision on a 200, AccessDenied on a
// 403, and an error (a failed login) on anything else, including no answer in time.
async function askClaimsmith(event) {
  let status;
  let body;
  try {
    const response = await fetch(CLAIMSMITH_URL, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [HOOK_HEADER]: HOOK_KEY },
      body: JSON.stringify(event),
      // The signal covers reading the body too.
      signal: AbortSignal.timeout(HOOK_TIMEOUT_MS),
    });
    status = response.status;
    const text = await response.text();
    try {
      body = JSON.parse(text);
    } catch {
      body = { error: 'not_json', error_description: text.slice(0, 200) };
    }
  } catch (err) {
    throw new Error(`claimsmith did not answer: ${err.name === 'TimeoutError' ? `no answer within ${HOOK_TIMEOUT_MS} ms` : err.message}`);
  }
  if (status === 403) {
    console.error(`claimsmith: rule ${body.rule ?? '?'} denied the login`);
    throw new errors.AccessDenied(body.error_description ?? 'denied by a rule');
  }
  if (status !== 200) {
    throw new Error(`claimsmith answered ${status}: ${body.error ?? ''} ${body.error_description ?? ''} (rule ${body.rule ?? '-'})`);
  }
  for (const field of ['id_token', 'access_token', 'app_metadata', 'user_metadata']) {
    if (body[field] === null || typeof body[field] !== 'object' || Array.isArray(body[field])) {
      throw new Error(`claimsmith's answer has no object ${field}`);
    }
  }
  for (const field of ['scopes_added', 'scopes_removed', 'mfa', 'id_token_removed', 'access_token_removed']) {
    if (!Array.isArray(body[field])) throw new Error(`claimsmith's answer has no list ${field}`);
  }
  // This issuer keeps its users in a file and has no MFA step: a rule asking for either must
  // not be ignored, so the login fails instead.
  if (body.mfa.length) throw new Error('a rule asked for MFA, which this issuer cannot do');
  if (Object.keys(body.app_metadata).length || Object.keys(body.user_metadata).length) {
    throw new Error('a rule updated user metadata, which this issuer cannot store');
  }
  for (const claim of Object.keys(body.id_token)) {
    if (!RULE_ID_TOKEN_CLAIMS.includes(claim)) {
      throw new Error(`a rule set the ID token claim ${claim}, which is not in ID_TOKEN_CLAIMS: oidc-provider would drop it`);
    }
  }
  return body;
}

// One rules run per provider request: the token endpoint asks in findAccount's claims() and in
// extraTokenClaims, and both get the same answer. A failure is logged here with its cause; the
// client is told only that the login failed: at the authorization endpoint a redirect with
// error=server_error (RFC 6749 4.1.2.1: a 500 cannot reach the client through a redirect), at
// the token endpoint a 500 server_error.
const decisions = new WeakMap();
function decide(ctx, id) {
  let decision = decisions.get(ctx);
  if (!decision) {
    decision = askClaimsmith(loginEvent(ctx, id, accounts[id])).catch((err) => {
      if (err instanceof errors.AccessDenied) throw err;
      console.error(`login failed: ${err.message}`);
      if (['authorization', 'resume'].includes(ctx.oidc.route)) {
        throw new errors.CustomOIDCProviderError('server_error', 'the login rules could not be run');
      }
      throw err;
    });
    decisions.set(ctx, decision);
  }
  return decision;
}

async function findAccount(ctx, id, token) {
  const user = Object.hasOwn(accounts, id) ? accounts[id] : undefined;
  if (!user) return undefined;
  // At the authorization endpoint, once the user is known: the login gate. A denial here
  // redirects to the client with error=access_denied, a failure with error=server_error.
  if (!token && ['authorization', 'resume'].includes(ctx.oidc.route)) {
    await decide(ctx, id);
  }
  return {
    accountId: id,
    async claims(use) {
      const claims = standardClaims(id, user);
      if (use !== 'id_token' && use !== 'userinfo') return claims;
      const decision = await decide(ctx, id);
      for (const name of decision.id_token_removed) delete claims[name];
      return { ...claims, ...decision.id_token };
    },
  };
}

// The issuer's signing keys: a private JWK set from JWKS_FILE, or a new RSA key at each start.
function signingKeys() {
  if (env('JWKS_FILE')) return JSON.parse(readFileSync(env('JWKS_FILE'), 'utf8'));
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `ephemeral-${randomBytes(4).toString('hex')}`;
  return { keys: [{ ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' }] };
}

const configuration = {
  clients: [{
    client_id: CLIENT_ID,
    client_name: 'Example app (public client, PKCE)',
    token_endpoint_auth_method: 'none',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  jwks: signingKeys(),
  cookies: { keys: [env('COOKIE_KEY', randomBytes(32).toString('base64url'))] },
  findAccount,
  claims: {
    openid: ['sub', ...RULE_ID_TOKEN_CLAIMS],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'nickname'],
  },
  scopes: ['openid', 'profile', 'email'],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf ?? API,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, indicator) => {
        if (indicator !== API) throw new errors.InvalidTarget();
        return {
          scope: API_SCOPES.join(' '),
          audience: API,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  async extraTokenClaims(ctx, token) {
    if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
    return { ...(await decide(ctx, token.accountId)).access_token };
  },
  formats: {
    customizers: {
      // The rules' scope changes, on the JWT and on the token response's `scope`.
      async jwt(ctx, token, jwt) {
        if (!token.accountId) return;
        const decision = await decide(ctx, token.accountId);
        for (const name of decision.access_token_removed) delete jwt.payload[name];
        const scopes = new Set((jwt.payload.scope ?? '').split(' ').filter(Boolean));
        for (const scope of decision.scopes_removed) scopes.delete(scope);
        for (const scope of decision.scopes_added) {
          if (!API_SCOPES.includes(scope)) {
            throw new Error(`a rule added the scope ${scope}, which ${API} does not define`);
          }
          scopes.add(scope);
        }
        jwt.payload.scope = [...scopes].join(' ') || undefined;
        token.scope = jwt.payload.scope;
      },
    },
  },
  ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 600, Session: 3600, Grant: 3600 },
};

const server = createServer();
server.listen(PORT, HOST, () => {
  const { port } = server.address();
  const issuer = env('ISSUER', `http://${HOST}:${port}`);
  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (ctx, err) => console.error(`server error: ${err.message}`));
  provider.on('grant.error', (ctx, err) => {
    if (!err.expose) console.error(`token request failed: ${err.message}`);
  });
  server.on('request', provider.callback());
  console.error(`listening on http://${HOST}:${port}`);
  console.error(`issuer ${issuer}, client ${CLIENT_ID}, hook ${CLAIMSMITH_URL}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)).closeAllConnections());
}
