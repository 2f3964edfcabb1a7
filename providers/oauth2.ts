/**
 * Upstream OAuth 2.0 providers (social login), on openid-client's OAuth 2.0 functions:
 * authorization code with state (and PKCE unless turned off), the token exchange, then a GET
 * with the access token to the userinfo endpoint (and a GitHub-style emails endpoint) whose JSON
 * is read by JSON pointers. Where the provider signs an ID token (Microsoft, Apple) and `jwks_uri`
 * is set, Realmgate verifies it itself with jose, as the issuer may depend on the token (`tid`).
 * Presets (`providers/oauth2/presets.ts`) fill the settings for the big social providers.
 */
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { SIGNING_ALGS, classify } from './oidc.ts';
import { appleClientSecret, appleFirstLoginName, applePrivateKeyProblem } from './oauth2/apple.ts';
import { emailFromList, isTrue, readPointer, subjectFrom } from './oauth2/identity.ts';
import { expectedIssuer, tenantProblem } from './oauth2/microsoft.ts';
import { probeOAuth2Provider } from './oauth2/probe.ts';
import { OAUTH2_SECRET_NAMES, presetOf, resolveSettings, type OAuth2Settings } from './oauth2/settings.ts';
import {
  ProviderError,
  type CallbackInput,
  type LinkingPolicy,
  type LoginRequest,
  type LoginStart,
  type OpenContext,
  type OpenedProvider,
  type Problem,
  type ProviderReadinessCheck,
  type ProviderType,
  type StoredProvider,
  type UpstreamIdentity,
} from './types.ts';

/** Clock difference with an upstream tolerated when checking ID token times. */
const CLOCK_SKEW_SECONDS = 30;

/** Claims of an ID token that only serve the protocol; they are not kept with the identity. */
const PROTOCOL_CLAIMS = new Set(['aud', 'azp', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'at_hash', 'c_hash', 's_hash', 'auth_time']);

/** What `startLogin` stores and `finishLogin` reads back. */
interface OAuth2Transaction {
  state: string;
  codeVerifier?: string | undefined;
  nonce?: string | undefined;
}

function readTransaction(alias: string, transaction: Record<string, unknown>): OAuth2Transaction {
  const { state, codeVerifier, nonce } = transaction;
  if (typeof state !== 'string') throw new ProviderError('transaction_invalid', { alias, detail: 'login transaction lacks state' });
  return { state, codeVerifier: typeof codeVerifier === 'string' ? codeVerifier : undefined, nonce: typeof nonce === 'string' ? nonce : undefined };
}

const invalid = (alias: string, detail: string, cause?: unknown) => new ProviderError('response_invalid', { alias, detail, cause });

/** The text of a fetch target, whatever form openid-client passes it in. */
const urlOf = (input: Parameters<typeof fetch>[0]) => (input instanceof Request ? input.url : String(input));

/** `response` with a body read and rewritten: its length and encoding headers no longer hold, the rest (WWW-Authenticate, DPoP-Nonce) do. */
function rebuilt(response: Response, body: string, status: number): Response {
  const headers = new Headers(response.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  return new Response(body, { status, statusText: status === response.status ? response.statusText : '', headers });
}

/** An OAuth 2.0 provider with its settings resolved; opening does no network. */
class OpenedOAuth2Provider implements OpenedProvider {
  readonly alias: string;
  readonly version: number;
  readonly #settings: OAuth2Settings;
  readonly #secrets: Record<string, string>;
  readonly #context: OpenContext;
  readonly #redirectUri: string;
  readonly #jwks: ReturnType<typeof jose.createRemoteJWKSet> | undefined;

  constructor(provider: StoredProvider, settings: OAuth2Settings, context: OpenContext) {
    this.alias = provider.alias;
    this.version = provider.version;
    this.#settings = settings;
    this.#secrets = provider.secrets;
    this.#context = context;
    this.#redirectUri = context.endpointUrl(provider.alias, 'callback');
    this.#jwks = settings.jwks_uri
      ? jose.createRemoteJWKSet(new URL(settings.jwks_uri), { [jose.customFetch]: context.fetch, timeoutDuration: context.timeoutMs, cooldownDuration: 0, cacheMaxAge: 10 * 60 * 1000 })
      : undefined;
  }

  /**
   * An openid-client configuration of this provider. `aside` receives the ID token of a token
   * response, which is taken out before openid-client sees it: openid-client would check it
   * against one fixed issuer, and Microsoft's depends on the token's `tid`.
   */
  async #config(aside?: { idToken?: string }): Promise<oidc.Configuration> {
    const s = this.#settings;
    const server: oidc.ServerMetadata = { issuer: s.issuer, authorization_endpoint: s.authorization_endpoint, token_endpoint: s.token_endpoint };
    const secret = await this.#clientSecret();
    const auth = s.token_endpoint_auth_method === 'client_secret_post' ? oidc.ClientSecretPost(secret) : oidc.ClientSecretBasic(secret);
    const config = new oidc.Configuration(server, s.client_id, { redirect_uris: [this.#redirectUri] }, auth);
    config.timeout = Math.ceil(this.#context.timeoutMs / 1000);
    config[oidc.customFetch] = aside ? this.#tokenFetch(aside) : this.#context.fetch;
    const urls = [s.authorization_endpoint, s.token_endpoint, s.userinfo_endpoint, s.emails_endpoint].filter(Boolean) as string[];
    if (urls.some((u) => u.startsWith('http:'))) oidc.allowInsecureRequests(config);
    return config;
  }

  /** The client secret sent to the token endpoint: the stored one, or for Apple a fresh JWT signed with the stored key. */
  async #clientSecret(): Promise<string> {
    const s = this.#settings;
    return s.preset === 'apple'
      ? appleClientSecret({ pem: this.#secrets.private_key!, teamId: s.team_id!, keyId: s.key_id!, clientId: s.client_id })
      : this.#secrets.client_secret!;
  }

  /**
   * The guarded fetch, with the token endpoint's JSON answer adjusted: the ID token set aside,
   * and an error answered with status 200 (GitHub does) given status 400 so it reads as one.
   */
  #tokenFetch(aside: { idToken?: string }): typeof fetch {
    const tokenEndpoint = new URL(this.#settings.token_endpoint).href;
    return async (input, init) => {
      const response = await this.#context.fetch(input, init);
      if (new URL(urlOf(input)).href !== tokenEndpoint) return response;
      const text = await response.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return rebuilt(response, text, response.status);
      }
      let status = response.status;
      if (body && typeof body === 'object' && !Array.isArray(body)) {
        const fields = body as Record<string, unknown>;
        if (typeof fields.id_token === 'string') {
          aside.idToken = fields.id_token;
          delete fields.id_token;
        }
        if (status === 200 && typeof fields.error === 'string' && fields.access_token === undefined) status = 400;
      }
      return rebuilt(response, JSON.stringify(body), status);
    };
  }

  /** The authorization URL with state (the transaction id), PKCE (S256) unless off, and a nonce when an ID token is verified. */
  async startLogin(request: LoginRequest): Promise<LoginStart> {
    const s = this.#settings;
    const params: Record<string, string> = { ...s.authorization_params, redirect_uri: this.#redirectUri, response_type: 'code', state: request.transactionId };
    if (s.scopes.length) params.scope = s.scopes.join(' ');
    if (s.response_mode === 'form_post') params.response_mode = 'form_post';
    const transaction: OAuth2Transaction = { state: request.transactionId };
    if (s.pkce) {
      transaction.codeVerifier = oidc.randomPKCECodeVerifier();
      params.code_challenge = await oidc.calculatePKCECodeChallenge(transaction.codeVerifier);
      params.code_challenge_method = 'S256';
    }
    if (this.#jwks) params.nonce = transaction.nonce = oidc.randomNonce();
    if (request.loginHint && (s.preset === 'google' || s.preset === 'microsoft')) params.login_hint = request.loginHint;
    if (request.forceLogin && s.preset === 'microsoft') params.prompt = 'login';
    if (request.forceLogin && s.preset === 'google') params.prompt = 'select_account';
    return { type: 'redirect', url: oidc.buildAuthorizationUrl(await this.#config(), params).href, transaction: { ...transaction } };
  }

  /** Redeems the code, verifies an ID token when `jwks_uri` is set, reads userinfo (and emails), and returns the identity. */
  async finishLogin(input: CallbackInput, stored: Record<string, unknown>): Promise<UpstreamIdentity> {
    const s = this.#settings;
    const transaction = readTransaction(this.alias, stored);
    const callback = new URL(this.#redirectUri);
    for (const [name, value] of Object.entries(input.params)) if (name !== 'user') callback.searchParams.set(name, value);

    const aside: { idToken?: string } = {};
    const config = await this.#config(aside);
    let tokens: oidc.TokenEndpointResponse;
    try {
      tokens = await oidc.authorizationCodeGrant(config, callback, { expectedState: transaction.state, pkceCodeVerifier: transaction.codeVerifier, idTokenExpected: false });
    } catch (error) {
      throw classify(this.alias, 'authorization code exchange', error);
    }

    const claims: Record<string, unknown> = {};
    let issuer = s.issuer;
    if (this.#jwks) {
      const idClaims = await this.#verifyIdToken(aside.idToken, transaction.nonce);
      issuer = String(idClaims.iss);
      for (const [name, value] of Object.entries(idClaims)) if (!PROTOCOL_CLAIMS.has(name)) claims[name] = value;
    }
    if (s.userinfo_endpoint) {
      const userinfo = (await this.#getJson(config, tokens.access_token, s.userinfo_endpoint, 'userinfo', 'object')) as Record<string, unknown>;
      // Beside a verified ID token, userinfo speaks of the same person or is refused (OpenID Connect Core §5.3.2).
      if (this.#jwks && userinfo.sub !== undefined && userinfo.sub !== claims.sub) throw invalid(this.alias, 'userinfo sub is not the ID token sub');
      Object.assign(claims, userinfo);
    }

    const subject = subjectFrom(readPointer(claims, s.subject_pointer));
    if (!subject) throw invalid(this.alias, `the answer has no subject at ${s.subject_pointer}`);
    if (s.hd && claims.hd !== s.hd) throw invalid(this.alias, `hd ${JSON.stringify(claims.hd ?? null)} is not the required hosted domain ${s.hd}`);

    let email = readPointer(claims, s.email_pointer);
    let emailVerified = s.email_verified_pointer ? isTrue(readPointer(claims, s.email_verified_pointer)) : false;
    if (s.emails_endpoint) {
      const listed = emailFromList(await this.#getJson(config, tokens.access_token, s.emails_endpoint, 'emails', 'array'));
      if (listed) ({ email, verified: emailVerified } = listed);
      else emailVerified = false;
    }
    const name = readPointer(claims, s.name_pointer);
    if (s.preset === 'apple') Object.assign(claims, { ...appleFirstLoginName(input.params.user), ...(typeof name === 'string' ? { name } : {}) });
    else if (typeof name === 'string' && name) claims.name = name;
    const address = typeof email === 'string' && email.includes('@') ? email : undefined;
    claims.email = address;
    claims.email_verified = !!address && emailVerified;
    return {
      subject,
      email: address,
      emailVerified: !!address && emailVerified,
      claims,
      upstreamSession: { issuer, subject },
      // Apple sends the name on the first authorization only.
      keepWhenAbsent: s.preset === 'apple' ? ['name', 'givenName', 'familyName'] : undefined,
    };
  }

  /** Verifies the ID token set aside from the token response: signature, issuer (from `tid` for Microsoft), audience, times, nonce, tenant. */
  async #verifyIdToken(idToken: string | undefined, nonce: string | undefined): Promise<Record<string, unknown>> {
    const s = this.#settings;
    if (!idToken) throw invalid(this.alias, 'the token response has no ID token (jwks_uri is set, so one is required)');
    let payload: jose.JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(idToken, this.#jwks!, { audience: s.client_id, algorithms: [...SIGNING_ALGS], clockTolerance: CLOCK_SKEW_SECONDS, requiredClaims: ['iss', 'sub', 'exp', 'iat'] }));
    } catch (error) {
      throw classify(this.alias, 'ID token', error);
    }
    const issuer = expectedIssuer(s.issuer, payload);
    if (payload.iss !== issuer) throw invalid(this.alias, `ID token iss ${JSON.stringify(payload.iss)} is not ${issuer}`);
    if (nonce !== undefined && payload.nonce !== nonce) throw invalid(this.alias, `ID token nonce ${payload.nonce === undefined ? 'missing' : 'does not match the login'}`);
    if (s.preset === 'microsoft') {
      const problem = tenantProblem(s.tenant!, s.allowed_tenants, payload);
      if (problem) throw invalid(this.alias, `ID token tenant refused: ${problem}`);
    }
    return payload;
  }

  /** GET `url` with the access token; the JSON answer must be an object or an array as `shape` says. */
  async #getJson(config: oidc.Configuration, accessToken: string, url: string, step: string, shape: 'object' | 'array'): Promise<unknown> {
    let response: Response;
    try {
      response = await oidc.fetchProtectedResource(config, accessToken, new URL(url), 'GET', undefined, new Headers({ accept: 'application/json' }));
    } catch (error) {
      throw classify(this.alias, step, error);
    }
    if (!response.ok) throw new ProviderError('upstream_error', { alias: this.alias, detail: `${step}: ${url} answered HTTP ${response.status}` });
    let body: unknown;
    try {
      body = await response.json();
    } catch (error) {
      throw invalid(this.alias, `${step}: ${url} did not answer JSON`, error);
    }
    const ok = shape === 'array' ? Array.isArray(body) : !!body && typeof body === 'object' && !Array.isArray(body);
    if (!ok) throw invalid(this.alias, `${step}: ${url} answered JSON that is not an ${shape}`);
    return body;
  }

  /** Each endpoint answers, and the token endpoint's verdict on the client credentials; what needs a person is named, not checked. */
  async probe(): Promise<ProviderReadinessCheck[]> {
    return probeOAuth2Provider({ settings: this.#settings, fetch: this.#context.fetch, clientSecret: await this.#clientSecret(), redirectUri: this.#redirectUri });
  }

  /** What opening could not check: the endpoints a login will use, and where the identity comes from. */
  readiness(): ProviderReadinessCheck[] {
    const s = this.#settings;
    const source = [s.jwks_uri && 'a verified ID token', s.userinfo_endpoint && `userinfo ${s.userinfo_endpoint}`, s.emails_endpoint && `emails ${s.emails_endpoint}`].filter(Boolean).join(', ');
    return [{ name: 'identity_source', ok: true, detail: `subject at ${s.subject_pointer} of ${source}` }];
  }
}

/** Checks of settings and secrets beyond `resolveSettings`: Apple's key. */
function checkAll(settings: unknown, secrets: Record<string, string>): { resolved?: OAuth2Settings; problems: Problem[] } {
  const { settings: resolved, problems } = resolveSettings(settings, secrets);
  if (secrets.private_key) {
    const problem = applePrivateKeyProblem(secrets.private_key);
    if (problem) problems.push({ field: 'secrets.private_key', message: problem });
  }
  return problems.length ? { problems } : { resolved, problems };
}

/** Resolves the settings; nothing is fetched (no discovery in OAuth 2.0). */
async function open(provider: StoredProvider, context: OpenContext): Promise<OpenedProvider> {
  const { resolved, problems } = checkAll(provider.settings, provider.secrets);
  if (!resolved || problems.length) {
    throw new ProviderError('unavailable', { alias: provider.alias, detail: `invalid settings: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}` });
  }
  return new OpenedOAuth2Provider(provider, resolved, context);
}

/** Upstream OAuth 2.0 providers (`kind: "oauth2"`), generic or from a preset. */
export const oauth2ProviderType = {
  kind: 'oauth2',
  secretNames: OAUTH2_SECRET_NAMES,
  check: (settings: unknown, secrets: Record<string, string>): Problem[] => checkAll(settings, secrets).problems,
  open,
  /** A preset's email trust, for a provider created without one. */
  defaultLinkingPolicy(settings: Record<string, unknown>): Partial<LinkingPolicy> {
    const preset = presetOf(settings);
    return preset ? { emailTrust: preset.emailTrust } : {};
  },
} as const satisfies ProviderType;
