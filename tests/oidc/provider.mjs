// A real OAuth 2.0 / OIDC authorization server for keyfob's tests (tests/test_oidc_provider.py).
// node-oidc-provider v9 (npm: oidc-provider), loopback only, plain http. Adapted from the
// verified recipe (shared/recipes/oidc-provider): `GET /lab/token-requests` lists every
// request that reached the token endpoint (grant, client, how the client authenticated,
// status), so tests can count token requests and see client_secret_basic vs _post.
// Install: bash scripts/setup-oidc.sh
//
//   PORT=9090 node tests/oidc/provider.mjs
//
// Env knobs (all optional):
//   PORT                     listen port (default 9090); 0 = any free port (issuer printed on stdout)
//   HOST                     bind address (default 127.0.0.1)
//   ISSUER_HOST              host name put in the issuer (default HOST), e.g. localhost
//   ACCESS_TOKEN_TTL         seconds, for access tokens from code/refresh/device (default 3600)
//   CLIENT_CREDENTIALS_TTL   seconds, for client_credentials tokens (default 600)
//   DEVICE_CODE_TTL          seconds a device code (RFC 8628) lives (default 600)
//   RT_REQUIRE_OFFLINE=1     use the library default refresh-token policy
//                            (needs scope offline_access + prompt=consent); otherwise a
//                            refresh token is issued whenever the client may use refresh_token
//   DEFAULT_RESOURCE=urn:lab:jwt-api   make that resource the default when no `resource`
//                            parameter is sent (then every client_credentials token is a JWT)
//   LAB_CLIENTS=FILE         a JSON list of more client metadata (a private_key_jwt client with
//                            its public `jwks`, a tls_client_auth client), made by the tests
//   TLS_CERT, TLS_KEY        PEM files: serve https (the issuer is then https://...), asking
//                            every client for a certificate (requestCert) and enabling
//                            tls_client_auth (features.mTLS); TLS_CA: the CA of client certificates
//   REQUIRE_CLIENT_CERT=1    end the TLS handshake of a client without a certificate of TLS_CA
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';

import * as oidc from 'oidc-provider';

const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number(process.env.PORT ?? 9090);
const AT_TTL = Number(process.env.ACCESS_TOKEN_TTL || 3600);
const CC_TTL = Number(process.env.CLIENT_CREDENTIALS_TTL || 600);
const DEVICE_TTL = Number(process.env.DEVICE_CODE_TTL || 600);
// The polling interval the device authorization answer asks for (RFC 8628 §3.2; absent: 5 s).
const DEVICE_INTERVAL = process.env.DEVICE_INTERVAL ? Number(process.env.DEVICE_INTERVAL) : undefined;

// Resource servers (RFC 8707 resource indicators). Only these produce JWT access tokens;
// without a `resource` parameter the provider issues opaque tokens.
const RESOURCE_SERVERS = {
  'urn:lab:jwt-api': {
    scope: 'api:read api:write',
    audience: 'urn:lab:jwt-api',
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  },
  'urn:lab:opaque-api': {
    scope: 'api:read api:write',
    accessTokenFormat: 'opaque',
  },
};

const GRANTS_ALL = [
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'urn:ietf:params:oauth:grant-type:device_code',
];

const TLS = Boolean(process.env.TLS_CERT);
const MORE_CLIENTS = process.env.LAB_CLIENTS
  ? JSON.parse(fs.readFileSync(process.env.LAB_CLIENTS, 'utf8')) : [];

// The client certificate of a request, as oidc-provider's features.mTLS wants it (PEM).
function peerCertificate(ctx) {
  const peer = ctx.socket?.getPeerCertificate?.();
  if (!peer || !peer.raw) return undefined;
  return new crypto.X509Certificate(peer.raw).toString();
}

const configuration = {
  clients: [
    {
      // Confidential client. application_type "native" is what makes the provider accept
      // http://127.0.0.1:<ANY PORT>/callback (RFC 8252 7.3 loopback port matching).
      // Either client_secret_basic or client_secret_post is accepted for it (v9 treats both
      // as interchangeable for a secret-based client).
      client_id: 'lab-client',
      client_secret: 'lab-secret',
      client_name: 'OAuth Lab Client',
      application_type: 'native',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: GRANTS_ALL,
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback', 'http://localhost/callback'],
    },
    {
      // Same, registered as client_secret_post (also accepts Basic, see above).
      client_id: 'lab-client-post',
      client_secret: 'lab-secret-post',
      application_type: 'native',
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: GRANTS_ALL,
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
    },
    {
      // "web" client: redirect URI must match EXACTLY (port included).
      client_id: 'lab-web',
      client_secret: 'lab-web-secret',
      application_type: 'web',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1:8765/callback'],
    },
    {
      // Public client (PKCE is then mandatory), for completeness.
      client_id: 'lab-public',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
    },
    ...MORE_CLIENTS,
  ],
  ...(TLS ? {
    clientAuthMethods: [
      'client_secret_basic', 'client_secret_post', 'private_key_jwt', 'tls_client_auth', 'none',
    ],
  } : {}),

  // Any login is accepted by the built-in dev login form; the account id becomes `sub`.
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() { return { sub: id, name: `User ${id}`, email: `${id}@example.test` }; },
    };
  },

  scopes: ['openid', 'offline_access', 'profile', 'email', 'api:read', 'api:write'],
  claims: { openid: ['sub'], profile: ['name'], email: ['email'] },

  pkce: {
    // S256 is the only method v9 supports. PKCE is required for public clients by default;
    // here it is optional for confidential clients (library default), flip to `() => true` to force it.
    required: (ctx, client) => client.clientAuthMethod === 'none',
  },

  issueRefreshToken: process.env.RT_REQUIRE_OFFLINE === '1'
    ? undefined // library default: grant allows refresh_token AND scope has offline_access
    : async (ctx, client) => client.grantTypeAllowed('refresh_token'),

  ttl: {
    AccessToken: AT_TTL,
    ClientCredentials: CC_TTL,
    AuthorizationCode: 60,
    DeviceCode: DEVICE_TTL,
    IdToken: 3600,
    RefreshToken: 14 * 24 * 3600,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
  },

  features: {
    devInteractions: { enabled: true }, // built-in login/consent pages; any login+password works
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    introspection: { enabled: true },
    ...(TLS ? {
      mTLS: {
        enabled: true,
        tlsClientAuth: true,
        getCertificate: peerCertificate,
        certificateAuthorized: (ctx) => ctx.socket.authorized === true,
        // tls_client_auth_san_dns: one of the certificate's DNS names
        certificateSubjectMatches: (ctx, property, expected) => {
          if (property !== 'tls_client_auth_san_dns') return false;
          const names = (ctx.socket.getPeerCertificate().subjectaltname || '').split(', ');
          return names.includes(`DNS:${expected}`);
        },
      },
    } : {}),
    revocation: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => {
        if (oneOf) return oneOf;
        return process.env.DEFAULT_RESOURCE || undefined;
      },
      // Use the resource granted at the authorization endpoint even if the token request
      // omits `resource` (so code/device/refresh exchanges return the JWT for it).
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        const rs = RESOURCE_SERVERS[resourceIndicator];
        if (!rs) throw new oidc.errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
        return rs; // token lifetimes come from `ttl` above
      },
    },
  },
  // No `jwks`: the library then uses its built-in, quick-start development signing keys (it warns).
};

// What reached the token endpoint, oldest first (never a secret: no token, no client secret).
const tokenRequests = [];
// What reached the revocation endpoint, likewise.
const revocations = [];

// Listen first so PORT=0 works: the issuer must contain the real port.
const server = TLS
  ? https.createServer({
    cert: fs.readFileSync(process.env.TLS_CERT),
    key: fs.readFileSync(process.env.TLS_KEY),
    ca: process.env.TLS_CA ? fs.readFileSync(process.env.TLS_CA) : undefined,
    requestCert: true,
    rejectUnauthorized: process.env.REQUIRE_CLIENT_CERT === '1',
  })
  : http.createServer();
server.listen(PORT, HOST, () => {
  const t0 = process.hrtime.bigint();
  const { port } = server.address();
  const issuer = `${TLS ? 'https' : 'http'}://${process.env.ISSUER_HOST || HOST}:${port}`;
  const provider = new oidc.Provider(issuer, configuration);
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  provider.on('grant.error', (ctx, err) => console.error('grant.error', err.message, err.error_description ?? ''));
  provider.use(async (ctx, next) => {
    const basic = /^basic /i.test(ctx.get('authorization'));
    try {
      await next();
      if (DEVICE_INTERVAL && ctx.method === 'POST' && ctx.path === '/device/auth'
          && ctx.body && typeof ctx.body === 'object' && ctx.body.device_code) {
        ctx.body = { ...ctx.body, interval: DEVICE_INTERVAL };
      }
    } finally {
      if (ctx.method === 'POST' && ctx.path === '/token/revocation') {
        revocations.push({
          client_id: ctx.oidc?.client?.clientId ?? null,
          assertion: Boolean(ctx.oidc?.params?.client_assertion),
          status: ctx.status,
        });
      }
      if (ctx.method === 'POST' && ctx.path === '/token') {
        const params = ctx.oidc?.params ?? {};
        tokenRequests.push({
          grant_type: params.grant_type ?? null,
          client_id: ctx.oidc?.client?.clientId ?? params.client_id ?? null,
          client_auth: basic ? 'basic' : (params.client_secret ? 'post' : 'none'),
          status: ctx.status,
          // over https: the client's registered method (private_key_jwt, tls_client_auth),
          // whether it sent an assertion, and whether it presented a certificate
          ...(TLS ? {
            auth_method: ctx.oidc?.client?.clientAuthMethod ?? null,
            assertion: Boolean(params.client_assertion),
            client_cert: Boolean(peerCertificate(ctx)),
          } : {}),
        });
      }
    }
  });
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.method === 'GET' && req.url === '/lab/token-requests') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(tokenRequests));
      return;
    }
    if (req.method === 'GET' && req.url === '/lab/revocations') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(revocations));
      return;
    }
    callback(req, res);
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`oidc-provider ${issuer} ready (Provider constructed in ${ms.toFixed(0)} ms); discovery: ${issuer}/.well-known/openid-configuration`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
