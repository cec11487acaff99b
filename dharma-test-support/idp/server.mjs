// A real OpenID provider (panva/oidc-provider) for dharma's integration tests.
// Listens on an ephemeral port of 127.0.0.1 and prints {"issuer": ...} on its first
// stdout line. Client credentials with a resource indicator give RFC 9068 JWT access
// tokens (typ at+jwt) or opaque tokens, depending on the resource. RFC 8693 token
// exchange is added with registerGrantType: svc-client may exchange an access token the
// provider issued for a new opaque one, its scope narrowed to what the subject held.
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
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const RESOURCES = {
  'urn:dharma:orders': { format: 'jwt' },
  'urn:dharma:other': { format: 'jwt' },
  'urn:dharma:opaque': { format: 'opaque' },
  'urn:dharma:elsewhere': { format: 'opaque' },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'svc-client',
      client_secret: 'svc-secret',
      grant_types: ['client_credentials', TOKEN_EXCHANGE],
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
// RFC 8693 as the provider's extension point allows: the subject token must be an
// access token this provider issued and still holds; the new token is an opaque client
// credentials token for the calling client, with the requested scope narrowed to the
// subject's (invalid_scope when nothing is left). Bad subject tokens are invalid_request
// (RFC 8693 section 2.2.2).
provider.registerGrantType(
  TOKEN_EXCHANGE,
  async (ctx) => {
    const { params, client } = ctx.oidc;
    if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest('unsupported subject_token_type');
    }
    const subject = (await provider.ClientCredentials.find(params.subject_token))
      || (await provider.AccessToken.find(params.subject_token));
    if (!subject) {
      throw new errors.InvalidRequest('subject_token is not active');
    }
    const held = new Set((subject.scope || '').split(' ').filter(Boolean));
    const asked = params.scope ? params.scope.split(' ') : [...held];
    const scope = asked.filter((s) => held.has(s));
    if (params.scope && scope.length === 0) {
      throw new errors.InvalidScope('none of the requested scopes is held by the subject');
    }
    const token = new provider.ClientCredentials({
      client,
      scope: scope.join(' ') || undefined,
      extra: { audience: params.audience, act: { sub: client.clientId } },
    });
    const value = await token.save();
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: token.expiration,
      scope: token.scope,
    };
  },
  ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'scope', 'actor_token', 'actor_token_type'],
);
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
