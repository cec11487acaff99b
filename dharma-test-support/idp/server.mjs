// A real OpenID provider (panva/oidc-provider) for dharma's integration tests.
// Listens on an ephemeral port of 127.0.0.1 and prints {"issuer": ...} on its first
// stdout line. Client credentials with a resource indicator give RFC 9068 JWT access
// tokens (typ at+jwt) or opaque tokens, depending on the resource.
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

function privateJwk(type, options, kid) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig' };
}

const SCOPES = 'orders:read orders:write';
const RESOURCES = {
  'urn:dharma:orders': { format: 'jwt' },
  'urn:dharma:other': { format: 'jwt' },
  'urn:dharma:opaque': { format: 'opaque' },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'svc-client',
      client_secret: 'svc-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: SCOPES,
    },
    {
      client_id: 'svc-post',
      client_secret: 'svc-post-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: SCOPES,
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  scopes: ['openid', 'offline_access', ...SCOPES.split(' ')],
  jwks: {
    keys: [
      privateJwk('rsa', { modulusLength: 2048 }, 'idp-rsa-1'),
      privateJwk('ec', { namedCurve: 'P-256' }, 'idp-ec-1'),
    ],
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resourceIndicator) => {
        const resource = RESOURCES[resourceIndicator];
        if (!resource) throw new errors.InvalidTarget();
        return {
          scope: SCOPES,
          audience: resourceIndicator,
          accessTokenTTL: 300,
          accessTokenFormat: resource.format,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
});
provider.proxy = false;
server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
// After the announcement, stdout is not read: the provider's notices go to stderr.
process.stdout.on('error', () => {});
console.log = console.error;
console.info = console.error;
// Stop with the parent: the test harness closes stdin.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
