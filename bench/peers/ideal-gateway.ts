/**
 * The "ideal chain" gateway: bare oidc-provider 9 in memory whose login interaction does the
 * upstream leg with openid-client (PKCE, state, nonce; code exchange, ES256 ID token validation and
 * userinfo, as Realmgate does by default) against the same upstream, then finishes the
 * interaction. Everything in memory: what a federated login costs with no storage at all.
 * Env: BENCH_PORT, BENCH_UPSTREAM (issuer), BENCH_UPSTREAM_CLIENT_ID/SECRET, BENCH_APP_REDIRECT_URI.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import Provider, { type Configuration } from 'oidc-provider';
import * as oidc from 'openid-client';
import { es256Jwk } from './keys.ts';

const port = Number(process.env.BENCH_PORT);
const issuer = `http://127.0.0.1:${port}`;
const callback = `${issuer}/cb`;
const upstream = await oidc.discovery(new URL(process.env.BENCH_UPSTREAM!), process.env.BENCH_UPSTREAM_CLIENT_ID!, process.env.BENCH_UPSTREAM_CLIENT_SECRET!, undefined, {
  execute: [oidc.allowInsecureRequests],
});

/** Upstream legs in flight, by state: which interaction they finish and their checks. */
const pending = new Map<string, { uid: string; codeVerifier: string; nonce: string }>();
/** Accounts met upstream, by upstream subject (the gateway's own `sub` is the same). */
const accounts = new Map<string, Record<string, unknown>>();

const configuration: Configuration = {
  clients: [
    {
      client_id: 'app',
      client_secret: 'app-secret-0123456789abcdef',
      redirect_uris: [process.env.BENCH_APP_REDIRECT_URI!],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: { keys: [(await es256Jwk()) as NonNullable<Configuration['jwks']>['keys'][number]] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'given_name', 'family_name'] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
    const grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
    grant!.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
    await grant!.save();
    return grant;
  },
  findAccount: async (_ctx, sub) => {
    const claims = accounts.get(sub);
    return claims ? { accountId: sub, claims: async () => ({ ...claims, sub }) } : undefined;
  },
};
const provider = new Provider(issuer, configuration);
const engine = provider.callback();

/** Interaction: send the browser to the upstream. */
async function startUpstream(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  pending.set(state, { uid: details.uid, codeVerifier, nonce });
  const url = oidc.buildAuthorizationUrl(upstream, {
    redirect_uri: callback,
    scope: 'openid email profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  res.writeHead(303, { location: url.href }).end();
}

/** Upstream callback: redeem the code, validate the ID token, read userinfo, finish the interaction. */
async function finishUpstream(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const current = new URL(req.url!, issuer);
  const state = current.searchParams.get('state') ?? '';
  const leg = pending.get(state);
  if (!leg) return void res.writeHead(400).end('unknown state');
  pending.delete(state);
  const tokens = await oidc.authorizationCodeGrant(upstream, current, { pkceCodeVerifier: leg.codeVerifier, expectedState: state, expectedNonce: leg.nonce });
  const sub = tokens.claims()!.sub;
  const userinfo = await oidc.fetchUserInfo(upstream, tokens.access_token, sub);
  accounts.set(sub, { ...userinfo });
  const interaction = await provider.Interaction.find(leg.uid);
  if (!interaction) return void res.writeHead(400).end('interaction expired');
  interaction.result = { login: { accountId: sub } };
  await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
  res.writeHead(303, { location: interaction.returnTo }).end();
}

const fail = (res: http.ServerResponse) => (error: unknown) => {
  res.statusCode = 500;
  res.end(String(error));
};

http
  .createServer((req, res) => {
    if (req.method === 'GET' && req.url?.startsWith('/interaction/')) return void startUpstream(req, res).catch(fail(res));
    if (req.method === 'GET' && req.url?.startsWith('/cb?')) return void finishUpstream(req, res).catch(fail(res));
    engine(req, res);
  })
  .listen(port, '127.0.0.1');
