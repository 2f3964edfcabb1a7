import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import * as jose from 'jose';
import Provider, { type Adapter, type AdapterPayload, type ClientMetadata, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';

/** A person who can sign in at the upstream IdP. */
export interface UpstreamUser {
  sub: string;
  password: string;
  email: string;
  email_verified: boolean;
  name: string;
  given_name: string;
  family_name: string;
  groups: string[];
}

/** The two people every upstream test IdP knows unless told otherwise. */
export const UPSTREAM_USERS: readonly UpstreamUser[] = [
  {
    sub: 'alice-0001',
    password: 'alice-password',
    email: 'alice@acme.example',
    email_verified: true,
    name: 'Alice Example',
    given_name: 'Alice',
    family_name: 'Example',
    groups: ['engineering', 'admins'],
  },
  {
    sub: 'bob-0002',
    password: 'bob-password',
    email: 'bob@acme.example',
    email_verified: false,
    name: 'Bob Example',
    given_name: 'Bob',
    family_name: 'Example',
    groups: ['sales'],
  },
];

/** Ways a test makes the upstream misbehave; every field is off unless set. */
export interface UpstreamTampering {
  /** Changes each ID token the token endpoint returns; it is re-signed with the upstream's current key. */
  idTokenClaims?: ((claims: jose.JWTPayload) => jose.JWTPayload) | undefined;
  /** Re-signs each ID token with a key the upstream does not publish (same `kid`). */
  signWithForeignKey?: boolean | undefined;
  /** The token endpoint never answers (until the IdP closes or this is switched off). */
  stallTokenEndpoint?: boolean | undefined;
}

/** A real oidc-provider on 127.0.0.1 acting as an external IdP, with its own users, keys and login page. */
export interface UpstreamIdp {
  /** Issuer URL, `http://127.0.0.1:<port>`. */
  readonly issuer: string;
  readonly users: readonly UpstreamUser[];
  /** Registers (or replaces) a client, e.g. Realmgate with its callback URL. */
  addClient(metadata: ClientMetadata): void;
  /** Replaces the signing key with a new one (new `kid`); the old one is no longer published. */
  rotateSigningKey(): Promise<void>;
  /** The `kid` ID tokens are signed with now. */
  readonly signingKid: string;
  /** Misbehaviour switches; assign fields to change what the next request sees. */
  tamper: UpstreamTampering;
  /**
   * Signs `claims` as a JWT with the upstream's current key (header `typ: logout+jwt`), or with a
   * key it does not publish: for hand-made logout tokens.
   */
  signJwt(claims: jose.JWTPayload, options?: { foreignKey?: boolean }): Promise<string>;
  /** Number of requests each path received (`/token`, `/jwks`, `/.well-known/openid-configuration`...). */
  readonly hits: Map<string, number>;
  close(): Promise<void>;
}

type StoredPayload = { payload: AdapterPayload; expiresAt: number | undefined };

/** oidc-provider storage in a Map, one per IdP instance, kept across key rotations. */
function memoryAdapterFactory(store: Map<string, StoredPayload>) {
  const live = (key: string): AdapterPayload | undefined => {
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt < Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry.payload;
  };
  return class MemoryAdapter implements Adapter {
    readonly #model: string;
    constructor(model: string) {
      this.#model = model;
    }
    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      store.set(`${this.#model}:${id}`, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
      if (payload.uid && this.#model === 'Session') store.set(`uid:${payload.uid}`, { payload: { id } as AdapterPayload, expiresAt: undefined });
    }
    async find(id: string): Promise<AdapterPayload | undefined> {
      return live(`${this.#model}:${id}`);
    }
    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const ref = live(`uid:${uid}`) as { id?: string } | undefined;
      return ref?.id ? live(`${this.#model}:${ref.id}`) : undefined;
    }
    async findByUserCode(): Promise<AdapterPayload | undefined> {
      return undefined;
    }
    async consume(id: string): Promise<void> {
      const payload = live(`${this.#model}:${id}`);
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string): Promise<void> {
      store.delete(`${this.#model}:${id}`);
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      for (const [key, entry] of store) if (entry.payload.grantId === grantId) store.delete(key);
    }
  };
}

/** The ID token algorithms a test upstream can sign with. */
export type UpstreamSigningAlg = 'RS256' | 'ES256';

async function newSigningKey(alg: UpstreamSigningAlg = 'RS256'): Promise<{ privateJwk: jose.JWK; privateKey: jose.CryptoKey }> {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const privateJwk = { ...(await jose.exportJWK(privateKey)), kid: crypto.randomUUID(), alg, use: 'sig' };
  return { privateJwk, privateKey };
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid: string, error?: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Upstream IdP sign-in</title></head><body>
<h1>Upstream IdP</h1>${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label>Username <input id="login" name="login" autocomplete="username"></label>
<label>Password <input id="password" type="password" name="password" autocomplete="current-password"></label>
<button type="submit" id="upstream-sign-in">Sign in</button>
</form>
<form method="post" action="/interaction/${uid}/abort"><button type="submit" id="upstream-cancel">Cancel</button></form>
</body></html>`;
}

/**
 * Starts an upstream OpenID Connect IdP on a free port of 127.0.0.1: a real oidc-provider with
 * users who sign in with `login` (their email or sub) and password, consent granted automatically,
 * profile claims served from userinfo only (as oidc-provider does by default).
 */
export async function startUpstreamIdp(
  options: {
    users?: readonly UpstreamUser[];
    clients?: ClientMetadata[];
    /** The only ID token algorithm it offers and signs with (RS256 unless set). */
    signingAlg?: UpstreamSigningAlg;
    /** The token endpoint authentication methods it accepts (oidc-provider's defaults unless set). */
    clientAuthMethods?: NonNullable<Configuration['clientAuthMethods']>;
    /** The scopes it knows, for a plain OAuth 2.0 server (OpenID Connect's unless set). */
    scopes?: string[];
    /** Whether every authorization request must carry PKCE (true unless set). */
    pkceRequired?: boolean;
    /** Routes served beside the provider (an API taking its access tokens), given the provider of the moment. */
    routes?: (provider: () => Provider) => express.Router;
  } = {},
): Promise<UpstreamIdp> {
  const signingAlg = options.signingAlg ?? 'RS256';
  const users = options.users ?? UPSTREAM_USERS;
  const store = new Map<string, StoredPayload>();
  const Adapter = memoryAdapterFactory(store);
  const cookieKeys = [crypto.randomBytes(32).toString('base64url')];
  const foreign = await newSigningKey(signingAlg);
  const hits = new Map<string, number>();
  let current = await newSigningKey(signingAlg);
  const tamper: UpstreamTampering = {};
  const stalled = new Set<() => void>();

  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const resign = async (idToken: string): Promise<string> => {
    let claims = jose.decodeJwt(idToken);
    if (tamper.idTokenClaims) claims = tamper.idTokenClaims(claims);
    const key = tamper.signWithForeignKey ? foreign.privateKey : current.privateKey;
    return new jose.SignJWT(claims).setProtectedHeader({ alg: signingAlg, typ: 'JWT', kid: current.privateJwk.kid! }).sign(key);
  };

  const build = (): Provider => {
    const configuration: Configuration = {
      adapter: Adapter,
      // Back-channel logout tokens go to Realmgate on 127.0.0.1, which oidc-provider's SSRF protection refuses.
      fetch: (url, options) => {
        delete (options as { dispatcher?: unknown }).dispatcher;
        return globalThis.fetch(url, options);
      },
      jwks: { keys: [current.privateJwk as NonNullable<Configuration['jwks']>['keys'][number]] },
      // Browsers scope cookies by host, not port: the upstream's names must not collide with Realmgate's.
      cookies: { keys: cookieKeys, names: { session: '_upstream_session', interaction: '_upstream_interaction', resume: '_upstream_interaction_resume' } },
      scopes: options.scopes ?? ['openid', 'email', 'profile', 'groups', 'offline_access'],
      claims: {
        openid: ['sub'],
        email: ['email', 'email_verified'],
        profile: ['name', 'given_name', 'family_name'],
        groups: ['groups'],
      },
      pkce: { required: () => options.pkceRequired ?? true },
      enabledJWA: { idTokenSigningAlgValues: [signingAlg] },
      ...(options.clientAuthMethods ? { clientAuthMethods: options.clientAuthMethods } : {}),
      clientDefaults: { grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: signingAlg },
      ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 3600, IdToken: 600, Interaction: 600, Session: 3600 },
      features: {
        devInteractions: { enabled: false },
        backchannelLogout: { enabled: true },
        rpInitiatedLogout: { enabled: true },
      },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      // Consent is implied: the test IdP grants every requested scope.
      loadExistingGrant: async (ctx) => {
        const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
        const grant = grantId
          ? await ctx.oidc.provider.Grant.find(grantId)
          : new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
        grant!.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
        await grant!.save();
        return grant;
      },
      findAccount: async (_ctx, sub) => {
        const user = users.find((u) => u.sub === sub);
        if (!user) return undefined;
        const { password: _password, ...claims } = user;
        return { accountId: sub, claims: async () => claims };
      },
    };
    const provider = new Provider(issuer, configuration);
    provider.use(async (ctx: KoaContextWithOIDC, next) => {
      hits.set(ctx.path, (hits.get(ctx.path) ?? 0) + 1);
      if (tamper.stallTokenEndpoint && ctx.path === '/token') {
        await new Promise<void>((resolve) => stalled.add(resolve));
        ctx.status = 503;
        return;
      }
      await next();
      const body = ctx.body as { id_token?: string } | undefined;
      if (ctx.path === '/token' && body?.id_token && (tamper.idTokenClaims || tamper.signWithForeignKey)) {
        ctx.body = { ...body, id_token: await resign(body.id_token) };
      }
    });
    return provider;
  };

  let provider = build();
  let handler = provider.callback();

  const app = express();
  const form = express.urlencoded({ extended: false });
  app.get('/interaction/:uid', async (req, res) => {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'login') return void res.type('html').send(loginPage(details.uid));
    // Any other prompt (consent) is granted at once.
    const grant = new provider.Grant({ clientId: String(details.params.client_id), accountId: details.session!.accountId });
    grant.addOIDCScope(String(details.params.scope));
    await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
  });
  app.post('/interaction/:uid/login', form, async (req, res) => {
    const details = await provider.interactionDetails(req, res);
    const body = req.body as { login?: string; password?: string };
    const user = users.find((u) => (u.email === body.login || u.sub === body.login) && u.password === body.password);
    if (!user) return void res.status(401).type('html').send(loginPage(details.uid, 'Wrong username or password.'));
    await provider.interactionFinished(req, res, { login: { accountId: user.sub, amr: ['pwd'] } }, { mergeWithLastSubmission: false });
  });
  app.post('/interaction/:uid/abort', async (req, res) => {
    await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'The user cancelled.' }, { mergeWithLastSubmission: false });
  });
  if (options.routes) app.use(options.routes(() => provider));
  app.use((req, res) => handler(req, res));
  server.on('request', app);

  const idp: UpstreamIdp = {
    issuer,
    users,
    hits,
    tamper,
    get signingKid() {
      return current.privateJwk.kid!;
    },
    signJwt(claims, options = {}) {
      const key = options.foreignKey ? foreign.privateKey : current.privateKey;
      return new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'logout+jwt', kid: current.privateJwk.kid! }).sign(key);
    },
    addClient(metadata) {
      store.set(`Client:${metadata.client_id}`, { payload: metadata as unknown as AdapterPayload, expiresAt: undefined });
    },
    async rotateSigningKey() {
      current = await newSigningKey(signingAlg);
      provider = build();
      handler = provider.callback();
    },
    async close() {
      tamper.stallTokenEndpoint = false;
      for (const release of stalled) release();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
  for (const client of options.clients ?? []) idp.addClient(client);
  return idp;
}
