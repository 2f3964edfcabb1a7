/**
 * The token endpoint reference: bare oidc-provider 9 in memory on 127.0.0.1 with one
 * client_credentials client; an opaque access token without a resource, an ES256 JWT for the
 * bench API (`resource=https://api.bench.test`), as Realmgate issues them. Env: BENCH_PORT.
 */
import http from 'node:http';
import Provider, { type Configuration } from 'oidc-provider';
import { es256Jwk } from './keys.ts';

const port = Number(process.env.BENCH_PORT);
const API = 'https://api.bench.test';

const configuration: Configuration = {
  clients: [
    { client_id: 'svc', client_secret: 'svc-secret-svc-secret', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'admin read' },
  ],
  scopes: ['openid', 'admin', 'read'],
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  jwks: { keys: [(await es256Jwk()) as NonNullable<Configuration['jwks']>['keys'][number]] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => {
        if (resource !== API) throw new Error(`unknown resource ${resource}`);
        return { scope: 'read', audience: API, accessTokenTTL: 600, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
      },
    },
  },
};
const provider = new Provider(`http://127.0.0.1:${port}`, configuration);
http.createServer(provider.callback()).listen(port, '127.0.0.1');
