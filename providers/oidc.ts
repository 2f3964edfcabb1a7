/**
 * Upstream OpenID Connect providers, on openid-client: discovery once per opened version,
 * authorization code with PKCE, state and nonce, the ID token validated in full (claims by
 * openid-client, signature by jose against the upstream JWKS, refetched when an unknown key
 * appears), userinfo when enabled, RP-initiated logout upstream.
 */
import crypto from 'node:crypto';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { z } from 'zod';
import {
  ProviderError,
  UpstreamRequestError,
  type CallbackInput,
  type LoginRequest,
  type LoginStart,
  type OpenContext,
  type OpenedProvider,
  type Problem,
  type ProviderReadinessCheck,
  type ProviderType,
  type StoredProvider,
  type UpstreamIdentity,
  type AcceptedUpstreamLogout,
  type LogoutStart,
  type ReceivesUpstreamLogout,
  type ReplayStore,
  type SignsOutUpstream,
  type UpstreamLogoutInput,
  type UpstreamSession,
} from './types.ts';
import { verifyLogoutToken } from './oidc/logout-token.ts';

/** The JWS algorithms Realmgate verifies an upstream's signatures with. */
export const SIGNING_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

/** Authorization parameters Realmgate sets itself; `authorization_params` may not override them. */
const RESERVED_PARAMS = new Set([
  'client_id', 'redirect_uri', 'response_type', 'response_mode', 'scope', 'state', 'nonce',
  'code_challenge', 'code_challenge_method', 'login_hint', 'max_age', 'request', 'request_uri',
]);

const isLoopbackHost = (host: string) => host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '[::1]';

const settingsSchema = z.strictObject({
  /** Issuer identifier; discovery reads `<issuer>/.well-known/openid-configuration`. https, or http on a loopback host. */
  issuer: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://idp.example.com' })
    .refine((v) => v.startsWith('https:') || isLoopbackHost(new URL(v).hostname), 'must use https (http only for a loopback host: localhost, 127.0.0.1, [::1])')
    .refine((v) => !new URL(v).search && !new URL(v).hash, 'must not have a query or fragment'),
  /** Realmgate's client id at the upstream. */
  client_id: z.string({ error: 'is required' }).min(1, 'is required'),
  /** Scopes requested upstream; must include `openid`. */
  scopes: z
    .array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'must be a scope token without spaces'))
    .refine((s) => s.includes('openid'), 'must include openid')
    .default(['openid', 'email', 'profile']),
  /** How Realmgate authenticates at the upstream token endpoint. */
  token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']).default('client_secret_basic'),
  /** JWS algorithm of the private_key_jwt assertion; derived from the key when absent. */
  token_endpoint_auth_signing_alg: z.enum(SIGNING_ALGS).optional(),
  /**
   * Algorithm the upstream signs ID tokens with. Absent: taken from the upstream's discovery
   * (`id_token_signing_alg_values_supported`: RS256 when listed, as OpenID Connect defaults to it,
   * else the first listed one Realmgate verifies).
   */
  id_token_signed_response_alg: z.enum(SIGNING_ALGS).optional(),
  /** `query` (default) or `form_post`: how the upstream returns to `/federation/<alias>/callback`. */
  response_mode: z.enum(['query', 'form_post']).default('query'),
  /** Extra authorization request parameters, e.g. `{ "hd": "example.com" }` or `{ "prompt": "select_account" }`. */
  authorization_params: z
    .record(z.string(), z.string({ error: 'values must be strings' }))
    .refine((p) => Object.keys(p).every((k) => !RESERVED_PARAMS.has(k)), {
      error: (issue) => `may not set ${Object.keys(issue.input as object).filter((k) => RESERVED_PARAMS.has(k)).join(', ')}: Realmgate sets them`,
    })
    .default({}),
  /** Fetch userinfo after the code exchange (many IdPs serve profile claims only there). */
  fetch_userinfo: z.boolean({ error: 'must be true or false' }).default(true),
  /** Send the browser to the upstream's end_session_endpoint when the user signs out. */
  upstream_logout: z.boolean({ error: 'must be true or false' }).default(true),
});

type OidcSettings = z.infer<typeof settingsSchema>;

/** A JWS algorithm Realmgate verifies upstream ID tokens with. */
type SigningAlg = (typeof SIGNING_ALGS)[number];

const SECRET_NAMES = ['client_secret', 'private_key'] as const;

/** Reads a private key from PEM (PKCS#8) or a JWK in JSON; throws with a readable message. */
function readPrivateKey(text: string): crypto.KeyObject {
  const trimmed = text.trim();
  const key = trimmed.startsWith('{')
    ? crypto.createPrivateKey({ key: JSON.parse(trimmed) as crypto.JsonWebKey, format: 'jwk' })
    : crypto.createPrivateKey(trimmed);
  if (key.type !== 'private') throw new Error('is not a private key');
  return key;
}

/** The JWS algorithm a private key signs with by default. */
function defaultAlgFor(key: crypto.KeyObject): (typeof SIGNING_ALGS)[number] | undefined {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec') {
    return ({ prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' } as const)[key.asymmetricKeyDetails?.namedCurve ?? ''];
  }
  return undefined;
}

function checkSecrets(settings: Partial<OidcSettings>, secrets: Record<string, string>): Problem[] {
  const problems: Problem[] = [];
  for (const name of Object.keys(secrets)) {
    if (!(SECRET_NAMES as readonly string[]).includes(name)) problems.push({ field: `secrets.${name}`, message: 'is not a secret of oidc providers (client_secret, private_key)' });
  }
  const method = settings.token_endpoint_auth_method ?? 'client_secret_basic';
  if ((method === 'client_secret_basic' || method === 'client_secret_post') && !secrets.client_secret) {
    problems.push({ field: 'secrets.client_secret', message: `is required with token_endpoint_auth_method ${method}` });
  }
  if (method === 'private_key_jwt') {
    if (!secrets.private_key) {
      problems.push({ field: 'secrets.private_key', message: 'is required with token_endpoint_auth_method private_key_jwt (PKCS#8 PEM or JWK)' });
    } else {
      try {
        const key = readPrivateKey(secrets.private_key);
        if (!settings.token_endpoint_auth_signing_alg && !defaultAlgFor(key)) {
          problems.push({ field: 'settings.token_endpoint_auth_signing_alg', message: 'is required for this key type' });
        }
      } catch (error) {
        problems.push({ field: 'secrets.private_key', message: `cannot be read as a PKCS#8 PEM or JWK private key (${(error as Error).message})` });
      }
    }
  }
  return problems;
}

/** Parses settings; every problem at once, fields named `settings.<path>`. */
function parseSettings(settings: unknown): { settings?: OidcSettings; problems: Problem[] } {
  const parsed = settingsSchema.safeParse(settings ?? {});
  if (parsed.success) return { settings: parsed.data, problems: [] };
  const problems = parsed.error.issues.flatMap((issue): Problem[] => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: ['settings', ...issue.path, key].join('.'), message: 'is not a setting of oidc providers' }));
    }
    const message = issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message;
    return [{ field: ['settings', ...issue.path.map(String)].join('.'), message }];
  });
  return { problems };
}

async function clientAuthentication(settings: OidcSettings, secrets: Record<string, string>): Promise<oidc.ClientAuth> {
  switch (settings.token_endpoint_auth_method) {
    case 'client_secret_basic':
      return oidc.ClientSecretBasic(secrets.client_secret);
    case 'client_secret_post':
      return oidc.ClientSecretPost(secrets.client_secret);
    case 'none':
      return oidc.None();
    case 'private_key_jwt': {
      const keyObject = readPrivateKey(secrets.private_key!);
      const alg = settings.token_endpoint_auth_signing_alg ?? defaultAlgFor(keyObject)!;
      const jwk = keyObject.export({ format: 'jwk' });
      const kid = secrets.private_key!.trim().startsWith('{') ? (JSON.parse(secrets.private_key!) as { kid?: string }).kid : undefined;
      const key = (await jose.importJWK(jwk as jose.JWK, alg)) as jose.CryptoKey;
      return oidc.PrivateKeyJwt(kid ? { key, kid } : key);
    }
  }
}

/** The first error of a kind in a cause chain. */
function findCause<T>(error: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  for (let e = error, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof type) return e;
  }
  return undefined;
}

/** Turns whatever openid-client or jose threw into a ProviderError with a stable code. */
export function classify(alias: string, step: string, error: unknown): ProviderError {
  if (error instanceof ProviderError) return error;
  const request = findCause(error, UpstreamRequestError);
  if (request) return new ProviderError('upstream_unreachable', { alias, detail: `${step}: ${request.message}`, cause: error });
  if (error instanceof oidc.AuthorizationResponseError || error instanceof oidc.ResponseBodyError || error instanceof oidc.WWWAuthenticateChallengeError) {
    const upstreamError = error instanceof oidc.WWWAuthenticateChallengeError ? error.cause[0]?.parameters.error : error.error;
    const description = error instanceof oidc.WWWAuthenticateChallengeError ? error.message : error.error_description;
    return new ProviderError('upstream_error', { alias, upstreamError, detail: `${step}: upstream answered ${upstreamError ?? 'an error'}${description ? ` (${description})` : ''}`, cause: error });
  }
  if (error instanceof oidc.ClientError || error instanceof jose.errors.JOSEError) {
    const inner = (error.cause as Error | undefined)?.message;
    const detail = inner && inner !== error.message ? `${error.message} (${inner})` : error.message;
    return new ProviderError('response_invalid', { alias, detail: `${step}: ${detail}`, cause: error });
  }
  return new ProviderError('upstream_error', { alias, detail: `${step}: ${(error as Error)?.message ?? String(error)}`, cause: error });
}

/** Clock difference with an upstream tolerated when checking ID token times (`exp`, `nbf`, `iat`). */
const CLOCK_SKEW_SECONDS = 30;

/**
 * The ID token algorithm to expect: the configured one, else the upstream's choice from its
 * discovery document. Undefined when the upstream lists none that Realmgate verifies.
 */
export function idTokenAlgFor(settings: Pick<OidcSettings, 'id_token_signed_response_alg'>, server: oidc.ServerMetadata): SigningAlg | undefined {
  if (settings.id_token_signed_response_alg) return settings.id_token_signed_response_alg;
  const listed = server.id_token_signing_alg_values_supported;
  if (!Array.isArray(listed) || !listed.length) return 'RS256';
  if (listed.includes('RS256')) return 'RS256';
  return listed.find((alg): alg is SigningAlg => (SIGNING_ALGS as readonly string[]).includes(alg));
}

/** The token endpoint authentication methods an upstream accepts (`client_secret_basic` when it does not say). */
function authMethodsOf(server: oidc.ServerMetadata): string[] {
  const listed = server.token_endpoint_auth_methods_supported;
  return Array.isArray(listed) && listed.length ? listed : ['client_secret_basic'];
}

/** Claims of an ID token that only serve the protocol; they are not kept with the identity. */
const PROTOCOL_CLAIMS = new Set(['aud', 'azp', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'at_hash', 'c_hash', 's_hash']);

/** What `startLogin` stores and `finishLogin` reads back. */
interface OidcTransaction {
  state: string;
  nonce: string;
  codeVerifier: string;
  maxAge?: number | undefined;
}

function readTransaction(alias: string, transaction: Record<string, unknown>): OidcTransaction {
  const { state, nonce, codeVerifier, maxAge } = transaction;
  if (typeof state !== 'string' || typeof nonce !== 'string' || typeof codeVerifier !== 'string') {
    throw new ProviderError('transaction_invalid', { alias, detail: 'login transaction lacks state, nonce or PKCE verifier' });
  }
  return { state, nonce, codeVerifier, maxAge: typeof maxAge === 'number' ? maxAge : undefined };
}

/** An upstream OpenID Connect provider after discovery. */
class OpenedOidcProvider implements OpenedProvider, ReceivesUpstreamLogout, SignsOutUpstream {
  readonly alias: string;
  readonly version: number;
  readonly #settings: OidcSettings;
  readonly #config: oidc.Configuration;
  readonly #jwks: ReturnType<typeof jose.createRemoteJWKSet>;
  readonly #redirectUri: string;
  /** The algorithm ID tokens must be signed with: configured, or chosen from discovery. */
  readonly #idTokenAlg: SigningAlg;
  readonly #replay: ReplayStore | undefined;

  constructor(provider: StoredProvider, settings: OidcSettings, config: oidc.Configuration, jwks: ReturnType<typeof jose.createRemoteJWKSet>, redirectUri: string, idTokenAlg: SigningAlg, replay: ReplayStore | undefined) {
    this.alias = provider.alias;
    this.version = provider.version;
    this.#settings = settings;
    this.#idTokenAlg = idTokenAlg;
    this.#config = config;
    this.#jwks = jwks;
    this.#redirectUri = redirectUri;
    this.#replay = replay;
  }

  /** The authorization URL with PKCE (S256), state (the transaction id) and nonce. */
  async startLogin(request: LoginRequest): Promise<LoginStart> {
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const nonce = oidc.randomNonce();
    const params: Record<string, string> = {
      ...this.#settings.authorization_params,
      redirect_uri: this.#redirectUri,
      response_type: 'code',
      scope: this.#settings.scopes.join(' '),
      state: request.transactionId,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    };
    if (this.#settings.response_mode === 'form_post') params.response_mode = 'form_post';
    if (request.loginHint) params.login_hint = request.loginHint;
    if (request.forceLogin) params.prompt = 'login';
    if (request.maxAgeSeconds !== undefined) params.max_age = String(request.maxAgeSeconds);
    const transaction: OidcTransaction = { state: request.transactionId, nonce, codeVerifier, maxAge: request.maxAgeSeconds };
    return { type: 'redirect', url: oidc.buildAuthorizationUrl(this.#config, params).href, transaction: { ...transaction } };
  }

  /** Redeems the code and validates the ID token in full; fetches userinfo when enabled. */
  async finishLogin(input: CallbackInput, stored: Record<string, unknown>): Promise<UpstreamIdentity> {
    const transaction = readTransaction(this.alias, stored);
    const callback = new URL(this.#redirectUri);
    for (const [name, value] of Object.entries(input.params)) callback.searchParams.set(name, value);

    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(this.#config, callback, {
        expectedState: transaction.state,
        expectedNonce: transaction.nonce,
        pkceCodeVerifier: transaction.codeVerifier,
        maxAge: transaction.maxAge,
        idTokenExpected: true,
      });
    } catch (error) {
      throw classify(this.alias, 'authorization code exchange', error);
    }
    const idToken = tokens.id_token!;
    try {
      await jose.jwtVerify(idToken, this.#jwks, {
        issuer: this.#config.serverMetadata().issuer,
        audience: this.#settings.client_id,
        algorithms: [this.#idTokenAlg],
        clockTolerance: CLOCK_SKEW_SECONDS,
      });
    } catch (error) {
      throw classify(this.alias, 'ID token signature', error);
    }
    const idClaims = tokens.claims()!;
    // Neither openid-client nor jose (without maxTokenAge) refuses an ID token issued in the future.
    const nowSeconds = Math.floor(Date.now() / 1000);
    if (typeof idClaims.iat === 'number' && idClaims.iat > nowSeconds + CLOCK_SKEW_SECONDS) {
      throw new ProviderError('response_invalid', {
        alias: this.alias,
        detail: `ID token iat ${idClaims.iat} is ${idClaims.iat - nowSeconds}s in the future (clock skew tolerated: ${CLOCK_SKEW_SECONDS}s)`,
      });
    }
    let userinfo: Record<string, unknown> = {};
    if (this.#settings.fetch_userinfo && this.#config.serverMetadata().userinfo_endpoint) {
      try {
        userinfo = { ...(await oidc.fetchUserInfo(this.#config, tokens.access_token, idClaims.sub)) };
      } catch (error) {
        throw classify(this.alias, 'userinfo', error);
      }
    }
    const claims: Record<string, unknown> = Object.fromEntries(Object.entries(idClaims).filter(([name]) => !PROTOCOL_CLAIMS.has(name)));
    Object.assign(claims, userinfo);
    const email = typeof claims.email === 'string' ? claims.email : undefined;
    return {
      subject: idClaims.sub,
      email,
      emailVerified: claims.email_verified === true || claims.email_verified === 'true',
      claims,
      amr: Array.isArray(idClaims.amr) ? idClaims.amr.filter((v): v is string => typeof v === 'string') : undefined,
      upstreamSession: { issuer: idClaims.iss, subject: idClaims.sub, sessionId: typeof idClaims.sid === 'string' ? idClaims.sid : undefined, idToken },
    };
  }

  /**
   * What a login needs from this upstream beyond discovery and the JWKS: it signs ID tokens
   * with the algorithm expected, and accepts the token endpoint authentication method used.
   */
  readiness(): ProviderReadinessCheck[] {
    const server = this.#config.serverMetadata();
    const listed = server.id_token_signing_alg_values_supported;
    const algOk = !Array.isArray(listed) || !listed.length || listed.includes(this.#idTokenAlg);
    const methods = authMethodsOf(server);
    const method = this.#settings.token_endpoint_auth_method;
    return [
      algOk
        ? { name: 'id_token_signing_alg', ok: true, detail: `ID tokens signed ${this.#idTokenAlg}` }
        : { name: 'id_token_signing_alg', ok: false, detail: `the upstream signs ID tokens with ${listed!.join(', ')}, not ${this.#idTokenAlg}: remove id_token_signed_response_alg or set one of these` },
      methods.includes(method)
        ? { name: 'token_endpoint_auth_method', ok: true, detail: method }
        : { name: 'token_endpoint_auth_method', ok: false, detail: `the upstream's token endpoint accepts ${methods.join(', ')}, not ${method}` },
    ];
  }

  /**
   * Validates a back-channel logout token (§2.6, see `oidc/logout-token.ts`), or a front-channel
   * logout's `iss` and `sid` (unsigned by design: it can only end sessions, and only that `sid`).
   */
  async acceptLogout(input: UpstreamLogoutInput): Promise<AcceptedUpstreamLogout> {
    const issuer = this.#config.serverMetadata().issuer;
    if (input.channel === 'backchannel') {
      if (!this.#replay) throw new ProviderError('unavailable', { alias: this.alias, detail: 'back-channel logout needs the shared replay store in the open context' });
      const match = await verifyLogoutToken(input.logoutToken, {
        alias: this.alias,
        issuer,
        clientId: this.#settings.client_id,
        algorithms: [this.#idTokenAlg],
        jwks: this.#jwks,
        replay: this.#replay,
      });
      return { match };
    }
    if (input.channel === 'frontchannel') {
      if (input.params.iss !== issuer) throw new ProviderError('response_invalid', { alias: this.alias, detail: `front-channel logout iss ${JSON.stringify(input.params.iss ?? null)} is not ${issuer}` });
      if (!input.params.sid) throw new ProviderError('response_invalid', { alias: this.alias, detail: 'front-channel logout without sid' });
      return { match: { issuer, sessionId: input.params.sid } };
    }
    throw new ProviderError('response_invalid', { alias: this.alias, detail: 'a SAML logout message sent to an OpenID Connect provider' });
  }

  /** The upstream's end_session URL with `id_token_hint` (when kept), `client_id`, the return URL and `state`. */
  async startLogout(session: UpstreamSession, request: { transactionId: string; returnUrl: string }): Promise<LogoutStart | undefined> {
    if (!this.#settings.upstream_logout || !this.#config.serverMetadata().end_session_endpoint) return undefined;
    const params: Record<string, string> = {
      client_id: this.#settings.client_id,
      post_logout_redirect_uri: request.returnUrl,
      state: request.transactionId,
    };
    if (session.idToken) params.id_token_hint = session.idToken;
    return { type: 'redirect', url: oidc.buildEndSessionUrl(this.#config, params).href, transaction: {} };
  }

  /** Nothing to check beyond the `state` that found the transaction: the upstream sends no signed answer. */
  async finishLogout(): Promise<void> {}
}

/** Discovery and the JWKS, once; failures are `unavailable`. */
async function open(provider: StoredProvider, context: OpenContext): Promise<OpenedProvider> {
  const { settings, problems } = parseSettings(provider.settings);
  problems.push(...checkSecrets(settings ?? {}, provider.secrets));
  if (!settings || problems.length) {
    throw new ProviderError('unavailable', { alias: provider.alias, detail: `invalid settings: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}` });
  }
  const issuer = new URL(settings.issuer);
  const redirectUri = context.endpointUrl(provider.alias, 'callback');
  const execute = issuer.protocol === 'http:' ? [oidc.allowInsecureRequests] : [];
  const timeout = Math.ceil(context.timeoutMs / 1000);
  const authentication = await clientAuthentication(settings, provider.secrets);
  let discovered: oidc.Configuration;
  try {
    discovered = await oidc.discovery(issuer, settings.client_id, { redirect_uris: [redirectUri] }, authentication, { [oidc.customFetch]: context.fetch, timeout, execute });
  } catch (error) {
    throw new ProviderError('unavailable', { alias: provider.alias, detail: `discovery at ${settings.issuer} failed: ${classify(provider.alias, 'discovery', error).message}`, cause: error });
  }
  const server = discovered.serverMetadata();
  const idTokenAlg = idTokenAlgFor(settings, server);
  if (!idTokenAlg) {
    throw new ProviderError('unavailable', {
      alias: provider.alias,
      detail: `${settings.issuer} signs ID tokens only with ${server.id_token_signing_alg_values_supported!.join(', ')}; Realmgate verifies ${SIGNING_ALGS.join(', ')}`,
    });
  }
  // The client metadata (the expected ID token alg among it) is fixed at construction: build it
  // again now that discovery told us the algorithm.
  const config = new oidc.Configuration(server, settings.client_id, { id_token_signed_response_alg: idTokenAlg, redirect_uris: [redirectUri] }, authentication);
  config[oidc.customFetch] = context.fetch;
  config.timeout = timeout;
  for (const extension of execute) extension(config);
  const jwksUri = config.serverMetadata().jwks_uri;
  if (!jwksUri) throw new ProviderError('unavailable', { alias: provider.alias, detail: `${settings.issuer} publishes no jwks_uri` });
  // An ID token only ever arrives over the back channel from the token endpoint, so an unknown
  // `kid` comes from the upstream itself (a rotation): refetch at once, no cooldown.
  const jwks = jose.createRemoteJWKSet(new URL(jwksUri), {
    [jose.customFetch]: context.fetch,
    timeoutDuration: context.timeoutMs,
    cooldownDuration: 0,
    cacheMaxAge: 10 * 60 * 1000,
  });
  try {
    await jwks.reload();
  } catch (error) {
    throw new ProviderError('unavailable', { alias: provider.alias, detail: `JWKS at ${jwksUri} cannot be loaded: ${(error as Error).message}`, cause: error });
  }
  return new OpenedOidcProvider(provider, settings, config, jwks, redirectUri, idTokenAlg, context.replay);
}

/** Upstream OpenID Connect providers (`kind: "oidc"`). */
export const oidcProviderType = {
  kind: 'oidc',
  secretNames: SECRET_NAMES,
  check(settings: unknown, secrets: Record<string, string>): Problem[] {
    const parsed = parseSettings(settings);
    const raw = (settings && typeof settings === 'object' ? settings : {}) as Partial<OidcSettings>;
    return [...parsed.problems, ...checkSecrets(parsed.settings ?? raw, secrets)];
  },
  open,
} as const satisfies ProviderType;
