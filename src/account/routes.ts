/**
 * `/account`: the signed-in person's own page. It signs in through Realmgate like any
 * application (the built-in public client `realmgate-account`, code flow with PKCE), then shows
 * the profile and sign-in methods, links another provider (a fresh federated sign-in whose
 * identity is added on return) and unlinks one, never the last; its security settings (second
 * factors, recovery codes) are in `mfa-routes.ts`, its active sessions in `session-routes.ts`. Every form carries a CSRF token
 * bound to the engine session.
 */
import crypto from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import { linkIdentity, signInMethods, unlinkIdentity, type LinkingDeps } from '../accounts/linking.ts';
import type { Account } from '../store/accounts.ts';
import type { Services } from '../app.ts';
import { RealmgateError, isRealmgateError } from '../errors.ts';
import { startAccountLink, takeCompletedLogin, type FederationDeps } from '../federation/login-flow.ts';
import { ALIAS, aliasParam } from '../federation/upstream-answer.ts';
import { PICKER_MAX_PROVIDERS } from '../federation/home-realm.ts';
import { readCookie } from '../interaction/login-page.ts';
import { sendStart } from '../interaction/upstream-start.ts';
import type { TotpDeps } from '../accounts/totp.ts';
import { factorsView, registerMfaRoutes, type AccountNotice } from './mfa-routes.ts';
import type { WebauthnDeps } from '../accounts/webauthn.ts';
import { registerWebauthnRoutes } from './webauthn-routes.ts';
import { registerSessionRoutes, sessionsView } from './session-routes.ts';

/** The built-in client the account page signs in with. */
export const ACCOUNT_CLIENT_ID = 'realmgate-account';

/** The account client's registration for an issuer: public, code flow, its callback under `/account`. */
export function accountClientMetadata(issuer: string) {
  return {
    client_id: ACCOUNT_CLIENT_ID,
    client_name: 'Your account',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [`${issuer}/account/callback`],
    post_logout_redirect_uris: [`${issuer}/account`],
    token_endpoint_auth_method: 'none',
    scope: 'openid',
    require_consent: false,
  };
}

const LOGIN_COOKIE = 'rg_account_login';
const LOGIN_COOKIE_MAX_AGE_MS = 10 * 60 * 1000;

const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });

/** What the account page needs. */
export interface AccountPageDeps {
  services: Services;
  linking: LinkingDeps;
  federation: FederationDeps;
  displayName(alias: string): string;
  /** Second factors and recovery codes (the security settings). */
  totp: TotpDeps;
  /** Passkeys (registered from the account page). */
  webauthn: WebauthnDeps;
}

/** The engine session of this browser and its account, when signed in and the account is usable. */
interface SignedIn {
  sessionUid: string;
  account: Account;
}

/** Routes of the account page: `/account`, its login callback, link and unlink. */
export function accountRoutes(deps: AccountPageDeps): Router {
  const router = express.Router();
  const { engine, views, csrf, accounts, sealer, config } = deps.services;
  const secure = config.issuer.startsWith('https:');
  const csrfKey = (signedIn: SignedIn) => `account:${signedIn.sessionUid}`;

  async function signedIn(req: Request, res: Response): Promise<SignedIn | undefined> {
    const provider = engine.provider;
    const session = await provider.Session.get(provider.createContext(req, res));
    if (!session.accountId || !session.uid) return undefined;
    const account = await accounts.get(session.accountId);
    return account && !account.disabled ? { sessionUid: session.uid, account } : undefined;
  }

  async function requireSignedIn(req: Request, res: Response): Promise<SignedIn> {
    const who = await signedIn(req, res);
    if (!who) throw new RealmgateError('account_signed_out', { detail: 'account page form without a signed-in session' });
    const token = (req.body as Record<string, unknown> | undefined)?.csrf;
    if (!csrf.verify(csrfKey(who), token)) throw new RealmgateError('csrf_invalid', { detail: 'account page CSRF token missing or invalid' });
    return who;
  }

  async function render(res: Response, who: SignedIn, notice?: AccountNotice, status = 200) {
    const methods = await signInMethods(deps.linking.store, who.account);
    const linked = new Set(methods.flatMap((m) => (m.kind === 'provider' ? [m.alias] : [])));
    // At most a picker's worth of providers to link, read by index (no secrets unsealed).
    const enabled = (await deps.services.directory.page(undefined, PICKER_MAX_PROVIDERS)).providers;
    res.status(status).type('html').set('cache-control', 'no-store').send(
      views.render('account.njk', {
        csrf: csrf.issue(csrfKey(who)),
        account_client_id: ACCOUNT_CLIENT_ID,
        account: who.account,
        has_password: who.account.hasPassword,
        identities: methods.flatMap((m) => (m.kind === 'provider' ? [{ alias: m.alias, subject: m.subject, display_name: deps.displayName(m.alias) }] : [])),
        removable: methods.length > 1,
        linkable: enabled.filter((p) => !linked.has(p.alias)).map((p) => ({ alias: p.alias, display_name: p.displayName })),
        ...(await factorsView(deps.totp, who.account.id)),
        ...(await sessionsView(deps.services, who, deps.displayName)),
        error: notice?.error,
        message: notice?.message,
        field_error: notice?.fieldError,
      }),
    );
  }

  router.get('/account', async (req, res) => {
    res.set('cache-control', 'no-store');
    const who = await signedIn(req, res);
    if (who) return render(res, who);
    // Not signed in: sign in through Realmgate like any application, PKCE and state kept sealed in a cookie.
    const verifier = crypto.randomBytes(32).toString('base64url');
    const state = crypto.randomBytes(16).toString('base64url');
    res.cookie(LOGIN_COOKIE, sealer.seal(JSON.stringify({ verifier, state })), { path: '/account', httpOnly: true, sameSite: 'lax', secure, maxAge: LOGIN_COOKIE_MAX_AGE_MS });
    const url = new URL('/auth', config.issuer);
    url.search = new URLSearchParams({
      client_id: ACCOUNT_CLIENT_ID,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: `${config.issuer}/account/callback`,
      state,
      code_challenge: crypto.createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    res.redirect(303, url.pathname + url.search);
  });

  // The account client's redirect URI: the code is checked (state, PKCE, client) and used up here;
  // the engine session it came with is what the page reads.
  router.get('/account/callback', async (req, res) => {
    res.set('cache-control', 'no-store');
    const sealed = readCookie(req, LOGIN_COOKIE);
    res.clearCookie(LOGIN_COOKIE, { path: '/account' });
    let started: { verifier: string; state: string } | undefined;
    try {
      started = sealed ? (JSON.parse(sealer.open(sealed)) as { verifier: string; state: string }) : undefined;
    } catch {
      started = undefined;
    }
    const { code, state } = req.query;
    if (!started || typeof state !== 'string' || state !== started.state || typeof code !== 'string') {
      throw new RealmgateError('account_login_invalid', { detail: 'account page callback without its state cookie or with another state' });
    }
    const stored = await engine.provider.AuthorizationCode.find(code);
    const challenge = crypto.createHash('sha256').update(started.verifier).digest('base64url');
    if (!stored || stored.clientId !== ACCOUNT_CLIENT_ID || stored.codeChallenge !== challenge) {
      throw new RealmgateError('account_login_invalid', { detail: 'account page callback with an unknown code or a PKCE mismatch' });
    }
    await stored.destroy();
    res.redirect(303, '/account');
  });

  router.post('/account/link', form, async (req, res) => {
    res.set('cache-control', 'no-store');
    const who = await requireSignedIn(req, res);
    const alias = String((req.body as Record<string, unknown>).provider ?? '');
    if (!ALIAS.test(alias)) throw new RealmgateError('bad_request', { detail: 'no provider chosen to link' });
    sendStart(views, res, await startAccountLink(deps.federation, who.sessionUid, alias));
  });

  router.get('/account/linked/:alias/:completion', async (req, res) => {
    res.set('cache-control', 'no-store');
    const who = await signedIn(req, res);
    if (!who) throw new RealmgateError('account_signed_out', { detail: 'link completion without a signed-in session' });
    const alias = aliasParam(req);
    const outcome = await takeCompletedLogin(deps.federation, who.sessionUid, alias, String(req.params.completion), 'link');
    if (outcome.type === 'error') return render(res, who, { error: `Linking ${deps.displayName(alias)} was cancelled or refused. Nothing changed.` }, 400);
    const { identity } = outcome;
    try {
      const result = await linkIdentity(
        deps.linking,
        who.account.id,
        { providerAlias: alias, subject: identity.subject, profile: identity.profile, upstreamClaims: identity.claims },
        { actor: `account:${who.account.id}`, requestId: (res.locals.requestId as string | undefined) ?? null },
        'self_service',
      );
      deps.services.logger.info({ alias, account_id: who.account.id, result }, 'identity linked from the account page');
      return render(res, who, { message: result === 'linked' ? `${deps.displayName(alias)} is now linked to your account.` : `${deps.displayName(alias)} was already linked to your account.` });
    } catch (error) {
      if (!isRealmgateError(error, 'identity_taken')) throw error;
      deps.services.logger.warn({ alias, account_id: who.account.id }, 'link refused: the identity belongs to another account');
      return render(res, who, { error: error.safeSentence(deps.displayName) }, error.status);
    }
  });

  router.post('/account/unlink', form, async (req, res) => {
    res.set('cache-control', 'no-store');
    const who = await requireSignedIn(req, res);
    const body = req.body as Record<string, unknown>;
    const alias = String(body.provider ?? '');
    const subject = String(body.subject ?? '');
    if (!ALIAS.test(alias) || !subject) throw new RealmgateError('bad_request', { detail: 'unlink without a provider and subject' });
    try {
      const removed = await unlinkIdentity(deps.linking, who.account.id, alias, subject, { actor: `account:${who.account.id}`, requestId: (res.locals.requestId as string | undefined) ?? null });
      if (!removed) return render(res, who, { error: 'That sign-in method is not linked to your account.' }, 404);
      deps.services.logger.info({ alias, account_id: who.account.id }, 'identity unlinked from the account page');
      return render(res, who, { message: `${deps.displayName(alias)} is no longer linked to your account.` });
    } catch (error) {
      if (!isRealmgateError(error, 'last_sign_in_method')) throw error;
      deps.services.logger.warn({ alias, account_id: who.account.id }, 'unlink refused: last sign-in method');
      return render(res, who, { error: error.safeSentence(deps.displayName) }, error.status);
    }
  });

  const pageHelpers = { form, requireSignedIn, csrfFor: (who: SignedIn) => csrf.issue(csrfKey(who)), render };
  registerMfaRoutes(router, deps.services, deps.totp, pageHelpers);
  registerWebauthnRoutes(router, deps.services, { webauthn: deps.webauthn, totp: deps.totp }, pageHelpers);
  registerSessionRoutes(router, deps.services, { form, requireSignedIn, render });

  return router;
}
