import type { IncomingMessage, ServerResponse } from 'node:http';
import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { UpstreamSession } from '../../providers/types.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { AccountRepository } from '../store/accounts.ts';
import { RealmgateError, newReference } from '../errors.ts';
import { logFailure } from '../errors/handler.ts';
import { errorPageHtml } from '../errors/render.ts';
import type { Views } from '../interaction/views.ts';
import type { AdapterFactory } from '../store/oidc-adapter.ts';
import type { ResourceServerRepository } from '../store/resource-servers.ts';
import type { SigningKeyStore, KeySet } from '../store/signing-keys.ts';
import type { LoginSessionRepository } from '../store/login-sessions.ts';
import { pinToIssuer } from './issuer-origin.ts';
import { TTL } from './ttl.ts';
import { isProfileClaim, PROFILE_CLAIM_NAMES } from '../interaction/steps/profile-claims.ts';
import { accountStepsPending, secondFactorPending, STEPS_PENDING_REASON } from '../interaction/steps/account-steps.ts';
import type { MfaFactorRepository } from '../store/mfa-factors.ts';
import type { TermsAcceptanceRepository } from '../store/terms-acceptances.ts';
import { ACR_MFA, ACR_SINGLE_FACTOR } from '../interaction/steps/mfa.ts';
import { routeEngineLogoutThroughOutbox, sessionTtl } from '../logout/engine-hooks.ts';
import type { Store } from '../store/store.ts';

/** Custom client metadata Realmgate understands, beside the standard OpenID Connect fields. */
export const EXTRA_CLIENT_METADATA = [
  'allowed_providers', 'local_login', 'require_consent', 'claims_in_id_token', 'frontchannel_logout_uri', 'frontchannel_logout_session_required',
  'terms_uri', 'terms_version', 'required_claims', 'registration', 'mfa',
] as const;

/** Claims of the `openid` scope: what every ID token carries about the user. */
const OPENID_CLAIMS = ['sub', 'idp', 'amr', 'acr'] as const;

/**
 * True when the client asked for the claims of its granted scopes in the ID token too
 * (`claims_in_id_token`, default false); otherwise they are served by userinfo only.
 */
function wantsClaimsInIdToken(ctx: KoaContextWithOIDC): boolean {
  return (ctx.oidc?.client?.metadata() as { claims_in_id_token?: unknown } | undefined)?.claims_in_id_token === true;
}

/** Authorization parameters naming the upstream provider to use (home-realm discovery). */
export const HOME_REALM_PARAMS = ['idp_hint', 'kc_idp_hint'] as const;

/** Scopes the engine knows; resource servers add their own. */
export const SCOPES = ['openid', 'offline_access', 'profile', 'email', 'admin'] as const;

/** What the interaction routes put into `interactionFinished` besides `login`, read back on resume. */
export interface RealmgateLoginResult {
  idp: string;
  amr: string[];
  upstream?: UpstreamSession | undefined;
}

/** An interaction's result as the engine resumes with it: the login and how it signed in. */
type LoginResult = { login?: { accountId: string }; realmgate?: RealmgateLoginResult };

/** The request's child logger (with its request_id), which Express put on the response it handed over; else `fallback`. */
function requestLog(ctx: KoaContextWithOIDC, fallback: Logger): Logger {
  return (ctx.res as { locals?: { log?: Logger } }).locals?.log ?? fallback;
}

/** Everything the token engine needs, built once by the server. */
export interface EngineDeps {
  issuer: string;
  trustProxy: boolean;
  /** Lets back-channel logout and other engine requests reach loopback and private addresses. */
  allowPrivateNetwork: boolean;
  /** Operator-chosen local claims released with the `profile` scope besides the standard ones. */
  extraClaims: readonly string[];
  /** The engine's own storage (`oidc_payloads`), reading clients through the version-checked client cache. */
  adapter: AdapterFactory;
  keys: SigningKeyStore;
  accounts: AccountRepository;
  /** Terms each account accepted (the login prompt asks signed-in browsers for pending steps). */
  termsAcceptances: TermsAcceptanceRepository;
  loginSessions: LoginSessionRepository;
  /** Second factors: a signed-in session without one still passes the MFA step a client asks for. */
  mfaFactors: Pick<MfaFactorRepository, 'hasFactor'>;
  /** Read on each JWT access token: the cache by change notice (`ResourceServerCache`). */
  resourceServers: Pick<ResourceServerRepository, 'get'>;
  /** The store: an ended session, its revoked grants and its back-channel notices share one of its transactions. */
  store: Store;
  /** Session lifetime from sign-in, and inactivity timeout. */
  session: { lifetimeSeconds: number; idleTimeoutSeconds: number };
  cookieKeys: Buffer[];
  views: Views;
  logger: Logger;
  metrics: Metrics;
}

type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** How the browser continues after a local logout, instead of going straight to `location`. */
export type LogoutContinuation =
  | { type: 'redirect'; url: string }
  | { type: 'html'; body: string; contentSecurityPolicy?: string | undefined };

/**
 * Called after RP-initiated logout ended session `sessionUid` and was about to send the browser
 * to `location` (the application's post_logout_redirect_uri with its state, or the signed-out
 * page): answers how to continue (sign-out at the upstream first), or undefined to go on.
 */
export type AfterLogout = (sessionUid: string, location: string) => Promise<LogoutContinuation | undefined>;

const validateExtraMetadata = (_ctx: KoaContextWithOIDC | undefined, key: string, value: unknown): void => {
  if (value === undefined) return;
  if (key === 'frontchannel_logout_uri') {
    // OpenID Connect Front-Channel Logout 1.0 §2: an absolute http(s) URL without a fragment, loaded in an iframe at logout.
    const url = typeof value === 'string' && URL.canParse(value) ? new URL(value) : undefined;
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.hash) {
      throw new errors.InvalidClientMetadata('frontchannel_logout_uri must be an absolute http(s) URL without a fragment');
    }
  } else if (key === 'terms_uri') {
    const url = typeof value === 'string' && URL.canParse(value) ? new URL(value) : undefined;
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new errors.InvalidClientMetadata('terms_uri must be an absolute http(s) URL');
  } else if (key === 'terms_version') {
    if (typeof value !== 'string' || !value.trim() || value.length > 64) throw new errors.InvalidClientMetadata('terms_version must be a string of 1 to 64 characters');
  } else if (key === 'required_claims') {
    if (!Array.isArray(value) || !value.every(isProfileClaim)) throw new errors.InvalidClientMetadata(`required_claims must be an array of ${PROFILE_CLAIM_NAMES.join(', ')}`);
  } else if (key === 'mfa') {
    if (value !== 'off' && value !== 'if_enrolled' && value !== 'required') throw new errors.InvalidClientMetadata('mfa must be "off", "if_enrolled" or "required"');
  } else if (key === 'allowed_providers') {
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
      throw new errors.InvalidClientMetadata('allowed_providers must be an array of provider aliases');
    }
  } else if (typeof value !== 'boolean') {
    throw new errors.InvalidClientMetadata(`${key} must be true or false`);
  }
};

function originsOf(uris: unknown): string[] {
  if (!Array.isArray(uris)) return [];
  return uris.flatMap((u) => {
    try {
      return [new URL(String(u)).origin];
    } catch {
      return [];
    }
  });
}

/**
 * The engine's default prompts plus `select_account` (advertised in discovery's
 * `prompt_values_supported`): asked for, it shows the login page's whole choice even to a browser
 * with a session or a remembered provider.
 */
function interactionPolicyWithAccountSelection(deps: Pick<EngineDeps, 'accounts' | 'termsAcceptances' | 'loginSessions' | 'mfaFactors'>) {
  const policy = interactionPolicy.base();
  policy.add(new interactionPolicy.Prompt({ name: 'select_account', requestable: true }), 0);
  // A signed-in browser still goes through the client's terms and required claims once.
  policy.get('login')!.checks.add(
    new interactionPolicy.Check(STEPS_PENDING_REASON, 'the client asks this account for steps it has not completed', 'interaction_required', async (ctx) => {
      const accountId = ctx.oidc.session?.accountId;
      const client = ctx.oidc.client?.metadata() as Record<string, unknown> | undefined;
      if (accountId === undefined || client === undefined) return false;
      if (await accountStepsPending(deps, client, accountId)) return true;
      const sessionUid = ctx.oidc.session?.uid;
      const login = loginOfThisResume(ctx, accountId) ?? (sessionUid ? await deps.loginSessions.get(sessionUid) : undefined);
      return secondFactorPending(deps, { client, params: ctx.oidc.params as Record<string, unknown> }, accountId, login);
    }),
  );
  return policy;
}

/**
 * How the session signs in when this request is the resume of a login that just finished for
 * `accountId`: what the session's login record is about to say (it is saved after the engine is
 * done), so the policy need not read the record it has not written yet.
 */
function loginOfThisResume(ctx: KoaContextWithOIDC, accountId: string): RealmgateLoginResult | undefined {
  const result = ctx.oidc.result as LoginResult | undefined;
  return result?.login?.accountId === accountId ? result.realmgate : undefined;
}

/** Builds oidc-provider's configuration from Realmgate's parts. */
function configuration(deps: EngineDeps, keySet: KeySet): Configuration {
  const { accounts, loginSessions, resourceServers, views, logger } = deps;
  return {
    adapter: deps.adapter,
    jwks: { keys: keySet.keys as NonNullable<Configuration['jwks']>['keys'] },
    cookies: {
      keys: deps.cookieKeys,
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    scopes: [...SCOPES],
    // OpenID Connect Prompt Create / Discovery: the prompts an application may send, select_account among them.
    discovery: { prompt_values_supported: ['none', 'login', 'consent', 'select_account'] },
    // The ID token's acr: `mfa` after a second factor, `sfa` otherwise (advertised in discovery).
    acrValues: [ACR_SINGLE_FACTOR, ACR_MFA],
    claims: {
      openid: [...OPENID_CLAIMS],
      email: ['email', 'email_verified'],
      profile: [...new Set(['name', 'given_name', 'family_name', 'middle_name', 'nickname', 'groups', ...deps.extraClaims])],
    },
    responseTypes: ['code'],
    // ID tokens may carry scope claims; `findAccount` releases them there only to clients with
    // `claims_in_id_token` (the others get the `openid` claims, as oidc-provider's default does).
    conformIdTokenClaims: false,
    // oidc-provider refuses special-use addresses (its SSRF guard); the operator may allow them.
    fetch: (url, options) => {
      if (deps.allowPrivateNetwork) delete (options as { dispatcher?: unknown }).dispatcher;
      return globalThis.fetch(url, options);
    },
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
    clientBasedCORS: (_ctx, origin, client) => originsOf(client.redirectUris).includes(origin),
    extraClientMetadata: { properties: [...EXTRA_CLIENT_METADATA], validator: validateExtraMetadata },
    // A client registered without `scope` may ask for the OpenID Connect scopes, never `admin`:
    // the admin scope is opt-in per client. (Resource-server scopes are governed by the resource.)
    clientDefaults: {
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: 'RS256',
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid offline_access profile email',
    },
    // Home-realm discovery hints; oidc-provider drops authorization parameters it does not know.
    extraParams: [...HOME_REALM_PARAMS],
    rotateRefreshToken: true,
    ttl: {
      // A resource server's own token lifetime wins over the defaults.
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? TTL.accessToken,
      AuthorizationCode: TTL.authorizationCode,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? TTL.clientCredentials,
      IdToken: TTL.idToken,
      RefreshToken: TTL.refreshToken,
      Interaction: TTL.interaction,
      Session: sessionTtl(deps.session),
      Grant: TTL.grant,
    },
    interactions: { url: (_ctx, interaction) => `${deps.issuer}/interaction/${interaction.uid}`, policy: interactionPolicyWithAccountSelection(deps) },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Confidential clients (resource servers among them) may introspect any token; public ones only their own.
        allowedPolicy: async (_ctx, client, token) => client.clientAuthMethod !== 'none' || token.clientId === client.clientId,
      },
      revocation: {
        enabled: true,
        // A client may revoke only the tokens issued to it.
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      userinfo: { enabled: true },
      backchannelLogout: { enabled: true },
      pushedAuthorizationRequests: { enabled: true },
      dPoP: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.type = 'html';
          ctx.body = views.render('logout.njk', { form, host: ctx.host });
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.type = 'html';
          ctx.body = views.render('signed-out.njk', { client_name: ctx.oidc.client?.clientName });
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          const server = await resourceServers.get(resourceIndicator);
          if (!server) throw new errors.InvalidTarget(`${resourceIndicator} is not a registered resource server`);
          return {
            scope: server.scopes.join(' '),
            audience: server.identifier,
            accessTokenTTL: server.accessTokenTtlSeconds,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    findAccount: async (ctx, sub, token) => {
      const sessionUid = (token as { sessionUid?: string } | undefined)?.sessionUid ?? ctx.oidc.session?.uid;
      // The account and how its session signed in, in one read.
      const found = await accounts.getWithSessionLogin(sub, sessionUid);
      const account = found?.account;
      if (!account || account.disabled) return undefined;
      return {
        accountId: account.id,
        async claims(use) {
          // Read again when it was not there yet: the session may have been recorded later in this request.
          const login = found.login ?? (sessionUid ? await loginSessions.get(sessionUid) : undefined);
          const idp = login?.idp ?? (account.hasPassword ? 'local' : undefined);
          if (use === 'id_token' && !wantsClaimsInIdToken(ctx)) return { sub: account.id, idp, amr: login?.amr };
          return {
            ...account.claims,
            sub: account.id,
            email: account.email ?? undefined,
            email_verified: account.email ? account.emailVerified : undefined,
            name: account.name ?? undefined,
            given_name: account.givenName ?? undefined,
            family_name: account.familyName ?? undefined,
            idp,
            amr: login?.amr,
          };
        },
      };
    },
    renderError: async (ctx, out, error) => {
      const ref = newReference();
      const log = requestLog(ctx, logger);
      // oidc-provider's own description is client-safe (its `expose`); a server_error shows ours.
      const failure = out.error === 'server_error'
        ? new RealmgateError('internal', { detail: `token engine: ${(error as Error).message}`, cause: error })
        : new RealmgateError('bad_request', { detail: `token engine: ${out.error}: ${(error as Error).message}`, safeMessage: out.error_description, cause: error });
      logFailure(log, failure, ref, { error: out.error, path: ctx.path }, 'token engine error page');
      ctx.type = 'html';
      ctx.body = errorPageHtml(views, failure, ref);
    },
  };
}

/**
 * oidc-provider configured for Realmgate. The engine is rebuilt when the signing keys in the
 * database change (a rotation on any node), so every node serves and signs with the same keys.
 */
export class TokenEngine {
  readonly #deps: EngineDeps;
  #provider: Provider;
  #handler: NodeHandler;
  #fingerprint: string;
  #afterLogout: AfterLogout | undefined;

  private constructor(deps: EngineDeps, keySet: KeySet) {
    this.#deps = deps;
    this.#fingerprint = keySet.fingerprint;
    this.#provider = this.#build(keySet);
    this.#handler = this.#provider.callback();
  }

  /** Loads the keys and builds the engine. */
  static async create(deps: EngineDeps): Promise<TokenEngine> {
    return new TokenEngine(deps, await deps.keys.load());
  }

  /** The current oidc-provider instance (replaced after a key rotation). */
  get provider(): Provider {
    return this.#provider;
  }

  /** Node request handler for the engine's routes. */
  readonly handle: NodeHandler = (req, res) => this.#handler(req, res);

  /** Sets what happens after an RP-initiated logout ends a session (federation signs out upstream). */
  onLogout(handler: AfterLogout): void {
    this.#afterLogout = handler;
  }

  /** Rebuilds the engine when the stored key set changed; true when it did. */
  async refreshKeys(): Promise<boolean> {
    const fingerprint = await this.#deps.keys.fingerprint();
    if (fingerprint === this.#fingerprint) return false;
    const keySet = await this.#deps.keys.load();
    this.#provider = this.#build(keySet);
    this.#handler = this.#provider.callback();
    this.#fingerprint = keySet.fingerprint;
    this.#deps.logger.info({ keys: keySet.fingerprint }, 'signing keys changed; token engine reloaded');
    return true;
  }

  /** After end_session confirm destroyed the session, lets `onLogout`'s handler take the browser on. */
  async #continueLogout(ctx: KoaContextWithOIDC): Promise<void> {
    const session = ctx.oidc?.session as { uid?: string; destroyed?: boolean } | undefined;
    const location = ctx.response.get('location');
    if (ctx.oidc?.route !== 'end_session_confirm' || ctx.status !== 303 || !session?.destroyed || !session.uid || !location || !this.#afterLogout) return;
    // An account switch logs the old account out on the way back into the authorization: not a sign-out.
    if (new URL(location, this.#deps.issuer).pathname.startsWith('/auth')) return;
    const next = await this.#afterLogout(session.uid, location);
    if (!next) return;
    if (next.type === 'redirect') {
      ctx.status = 303;
      ctx.redirect(next.url);
      return;
    }
    ctx.remove('location');
    ctx.status = 200;
    ctx.type = 'html';
    if (next.contentSecurityPolicy) ctx.set('content-security-policy', next.contentSecurityPolicy);
    ctx.body = next.body;
  }

  /** Runs `work` with the engine's storage writes held and sent in one statement at its end (see `Store.holdEngineWrites`). */
  holdWrites<T>(work: () => Promise<T>): Promise<T> {
    return this.#deps.store.holdEngineWrites(work);
  }

  /**
   * Koa middleware around every engine request: its storage writes are held and sent in one
   * statement once the engine is done, before Koa writes the response (it does so only after the
   * middleware chain resolves). When they cannot be written the request answers 500, never the
   * redirect or token that relied on them.
   */
  readonly #holdWritesUntilResponse = async (ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> => {
    try {
      await this.holdWrites(next);
    } catch (error) {
      const ref = newReference();
      const failure = new RealmgateError('internal', { detail: `token engine: ${(error as Error).message}`, cause: error });
      const log = requestLog(ctx, this.#deps.logger);
      logFailure(log, failure, ref, { path: ctx.path }, 'token engine request failed after it was handled; nothing it answered was sent');
      // The redirect and the cookies named what was not stored; the security headers stay.
      ctx.remove('location');
      ctx.remove('set-cookie');
      ctx.status = 500;
      if (ctx.accepts('html', 'json') === 'html') {
        ctx.type = 'html';
        ctx.body = errorPageHtml(this.#deps.views, failure, ref);
      } else {
        ctx.body = { error: 'server_error', error_description: `The request could not be completed (ref ${ref}).` };
      }
    }
  };

  #build(keySet: KeySet): Provider {
    const deps = this.#deps;
    const provider = new Provider(deps.issuer, configuration(deps, keySet));
    // The proxy setting now only decides which client address the engine sees (X-Forwarded-For);
    // URLs never come from the request.
    provider.proxy = deps.trustProxy;
    provider.use(pinToIssuer(deps.issuer));
    provider.use(this.#holdWritesUntilResponse);
    provider.use(async (ctx, next) => {
      await next();
      await this.#continueLogout(ctx as unknown as KoaContextWithOIDC);
      // After a login interaction resumes, remember how this session signed in (idp, amr, upstream).
      const result = ctx.oidc?.result as LoginResult | undefined;
      const session = ctx.oidc?.session;
      if (result?.login && result.realmgate && session?.uid && session.accountId === result.login.accountId) {
        await deps.loginSessions.save({
          sessionUid: session.uid,
          accountId: result.login.accountId,
          idp: result.realmgate.idp,
          amr: result.realmgate.amr,
          upstream: result.realmgate.upstream,
        }, { ip: ctx.ip || null, userAgent: ctx.get('user-agent') || null });
      }
    });
    provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
      deps.metrics.tokensIssued.inc({ grant_type: String(ctx.oidc.params?.grant_type ?? 'unknown') });
    });
    provider.on('server_error', (_ctx: KoaContextWithOIDC, err: Error) => {
      deps.logger.error({ err }, 'token engine server error');
    });
    routeEngineLogoutThroughOutbox(provider, { store: deps.store });
    return provider;
  }
}
