import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import * as jose from 'jose';

/** How the stand-in authenticates Realmgate at its token endpoint. */
export type StandInClientAuth =
  | { method: 'client_secret_basic' | 'client_secret_post'; clientId: string; clientSecret: string }
  /** Apple: `client_secret` is an ES256 JWT, verified with the developer key's public half. */
  | { method: 'apple_jwt'; clientId: string; publicKey: crypto.KeyObject; teamId: string; keyId: string };

/** What the stand-in's endpoints answer; a test sets the fields before each login. */
export interface StandInAnswers {
  /** The JSON of `GET /userinfo` (and `/me`), when the provider has one. */
  userinfo?: Record<string, unknown>;
  /** The JSON of `GET /user/emails` (GitHub). */
  emails?: unknown[];
  /** Claims of an ID token in the token response (signed with the stand-in's key, `aud` and `nonce` filled in). */
  idToken?: Record<string, unknown>;
  /** `form_post`: the `user` field Apple posts on a first authorization. */
  appleUser?: Record<string, unknown>;
}

/**
 * A stand-in for a social provider on 127.0.0.1, answering like its documentation says: an
 * authorization endpoint that signs its one person in at once, a token endpoint checking client
 * authentication, the code, the redirect URI and PKCE, and userinfo-style JSON APIs taking the
 * access token. It records every authorization request and token request it received.
 */
export interface StandIn {
  readonly url: string;
  answers: StandInAnswers;
  /** Authorization requests received, as their query parameters. */
  readonly authorizations: URLSearchParams[];
  /** Token requests received: form fields and the Authorization header. */
  readonly tokenRequests: { fields: Record<string, string>; authorization: string | undefined }[];
  /** Queries of protected-resource requests, by path. */
  readonly resourceQueries: Map<string, URLSearchParams>;
  close(): Promise<void>;
}

/** Starts a stand-in whose token endpoint authenticates Realmgate with `auth`; `githubErrors`: errors answered with HTTP 200, as GitHub does. */
export async function startStandIn(auth: StandInClientAuth, options: { githubErrors?: boolean } = {}): Promise<StandIn> {
  const { privateKey, publicKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'standin-1', alg: 'RS256', use: 'sig' };
  const codes = new Map<string, { redirectUri: string; challenge: string | undefined; nonce: string | undefined }>();
  const tokens = new Set<string>();
  const authorizations: URLSearchParams[] = [];
  const tokenRequests: StandIn['tokenRequests'] = [];
  const resourceQueries = new Map<string, URLSearchParams>();
  const standIn = { answers: {} as StandInAnswers };

  const app = express();
  app.get('/authorize', (req, res) => {
    const params = new URL(req.originalUrl, 'http://standin').searchParams;
    authorizations.push(params);
    const code = crypto.randomBytes(16).toString('base64url');
    const redirectUri = params.get('redirect_uri')!;
    codes.set(code, { redirectUri, challenge: params.get('code_challenge') ?? undefined, nonce: params.get('nonce') ?? undefined });
    const answer: Record<string, string> = { code, state: params.get('state') ?? '' };
    if (params.get('response_mode') === 'form_post') {
      if (standIn.answers.appleUser) answer.user = JSON.stringify(standIn.answers.appleUser);
      const inputs = Object.entries(answer).map(([k, v]) => `<input type="hidden" name="${k}" value="${v.replace(/&/g, '&amp;').replace(/"/g, '&quot;')}">`).join('');
      return void res.type('html').send(`<!doctype html><form method="post" action="${redirectUri}">${inputs}<button>Continue</button></form>`);
    }
    const back = new URL(redirectUri);
    for (const [k, v] of Object.entries(answer)) back.searchParams.set(k, v);
    res.redirect(302, back.href);
  });

  const oauthError = (res: express.Response, status: number, error: string) => res.status(options.githubErrors ? 200 : status).json({ error, error_description: `stand-in refused: ${error}` });
  app.post('/token', express.urlencoded({ extended: false }), async (req, res) => {
    const fields = req.body as Record<string, string>;
    const authorization = req.get('authorization');
    tokenRequests.push({ fields, authorization });
    if (!(await clientAuthenticated(auth, fields, authorization))) return void oauthError(res, 401, 'invalid_client');
    const issued = codes.get(fields.code ?? '');
    codes.delete(fields.code ?? '');
    if (!issued || fields.grant_type !== 'authorization_code' || fields.redirect_uri !== issued.redirectUri) return void oauthError(res, 400, options.githubErrors ? 'bad_verification_code' : 'invalid_grant');
    if (issued.challenge) {
      const computed = crypto.createHash('sha256').update(fields.code_verifier ?? '').digest('base64url');
      if (computed !== issued.challenge) return void oauthError(res, 400, 'invalid_grant');
    }
    const accessToken = crypto.randomBytes(16).toString('base64url');
    tokens.add(accessToken);
    const body: Record<string, unknown> = { access_token: accessToken, token_type: 'bearer', expires_in: 3600, scope: 'granted' };
    if (standIn.answers.idToken) {
      const now = Math.floor(Date.now() / 1000);
      body.id_token = await new jose.SignJWT({ aud: auth.clientId, iat: now, exp: now + 600, ...(issued.nonce ? { nonce: issued.nonce } : {}), ...standIn.answers.idToken })
        .setProtectedHeader({ alg: 'RS256', kid: jwk.kid })
        .sign(privateKey);
    }
    res.json(body);
  });

  app.get('/jwks', (_req, res) => void res.json({ keys: [jwk] }));
  const resource = (answer: () => unknown) => (req: express.Request, res: express.Response) => {
    resourceQueries.set(req.path, new URL(req.originalUrl, 'http://standin').searchParams);
    const token = /^Bearer (\S+)$/i.exec(req.get('authorization') ?? '')?.[1];
    if (!token || !tokens.has(token)) return void res.status(401).json({ message: 'Bad credentials' });
    const body = answer();
    if (body === undefined) return void res.status(404).json({ message: 'Not Found' });
    res.json(body);
  };
  app.get(['/userinfo', '/me'], resource(() => standIn.answers.userinfo));
  app.get('/user/emails', resource(() => standIn.answers.emails));

  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(standIn, {
    url,
    authorizations,
    tokenRequests,
    resourceQueries,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  });
}

async function clientAuthenticated(auth: StandInClientAuth, fields: Record<string, string>, authorization: string | undefined): Promise<boolean> {
  if (auth.method === 'client_secret_basic') {
    const [id, secret] = Buffer.from(authorization?.replace(/^Basic /, '') ?? '', 'base64').toString().split(':').map(decodeURIComponent);
    return !!authorization?.startsWith('Basic ') && id === auth.clientId && secret === auth.clientSecret;
  }
  if (auth.method === 'client_secret_post') return !authorization && fields.client_id === auth.clientId && fields.client_secret === auth.clientSecret;
  if (auth.method !== 'apple_jwt' || fields.client_id !== auth.clientId || !fields.client_secret) return false;
  try {
    const { protectedHeader } = await jose.jwtVerify(fields.client_secret, auth.publicKey, {
      algorithms: ['ES256'],
      issuer: auth.teamId,
      subject: auth.clientId,
      audience: 'https://appleid.apple.com',
      requiredClaims: ['iat', 'exp'],
    });
    return protectedHeader.kid === auth.keyId;
  } catch {
    return false;
  }
}
