/**
 * The upstream IdP of the federated logins: a real oidc-provider 9 in memory on 127.0.0.1 that
 * signs ID tokens with ES256 and signs its one user in at once (no form, consent implied), so a
 * login costs the gateways what a real upstream round trip costs and nothing for a person.
 * Env: BENCH_PORT, BENCH_CLIENTS (JSON array of client metadata).
 */
import crypto from 'node:crypto';
import http from 'node:http';
import Provider, { type ClientMetadata, type Configuration } from 'oidc-provider';
import { es256Jwk } from './keys.ts';

const port = Number(process.env.BENCH_PORT);
const clients = JSON.parse(process.env.BENCH_CLIENTS ?? '[]') as ClientMetadata[];
const issuer = `http://127.0.0.1:${port}`;
const user = { sub: 'bench-user-0001', email: 'ada@up.bench', email_verified: true, name: 'Ada Bench', given_name: 'Ada', family_name: 'Bench' };

const configuration: Configuration = {
  clients,
  jwks: { keys: [(await es256Jwk()) as NonNullable<Configuration['jwks']>['keys'][number]] },
  // Cookies are scoped by host, not port: these names must not collide with the gateway's.
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')], names: { session: '_up_session', interaction: '_up_interaction', resume: '_up_interaction_resume' } },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'given_name', 'family_name'] },
  enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
  clientDefaults: { grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: 'ES256' },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  // Consent is implied: every requested scope is granted.
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
    const grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
    grant!.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
    await grant!.save();
    return grant;
  },
  findAccount: async (_ctx, sub) => (sub === user.sub ? { accountId: sub, claims: async () => user } : undefined),
};
const provider = new Provider(issuer, configuration);
const engine = provider.callback();

http
  .createServer((req, res) => {
    // The login interaction: the one user signs in at once.
    if (req.method === 'GET' && req.url?.startsWith('/interaction/')) {
      provider
        .interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false })
        .catch((error: unknown) => {
          res.statusCode = 500;
          res.end(String(error));
        });
      return;
    }
    engine(req, res);
  })
  .listen(port, '127.0.0.1');
