import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { InteractionResults } from 'oidc-provider';
import type { AccountRepository } from '../accounts/accounts.ts';
import { signInWithPassword } from '../accounts/local-login.ts';
import type { LoginThrottle } from '../accounts/throttle.ts';
import { RealmgateError, newReference } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { RealmgateLoginResult, TokenEngine } from '../token-server/engine.ts';
import type { CsrfTokens } from './csrf.ts';
import type { Views } from './views.ts';

/** Human descriptions of scopes on the consent page. */
const SCOPE_DESCRIPTIONS: Record<string, string> = {
  openid: 'Know who you are',
  profile: 'See your name',
  email: 'See your email address',
  offline_access: 'Stay signed in when you are not using it',
};

type Details = Awaited<ReturnType<TokenEngine['provider']['interactionDetails']>>;
/** An interaction as oidc-provider describes it to our pages. */
export type InteractionDetails = Details;

/** What the login page of one interaction offers; federation adds providers to it. */
export interface LoginPage {
  providers: { alias: string; display_name: string }[];
  emailFirst: boolean;
  localLogin: boolean;
  /** A sentence shown above the forms, e.g. why a typed email found no provider. */
  notice?: string | undefined;
}

/** An OAuth error the application gets back instead of a login page (e.g. a hint naming a provider it may not use). */
export interface LoginPageError {
  error: string;
  errorDescription: string;
}

/** Decides the login page for an interaction; may answer with a redirect (home-realm discovery) or an OAuth error instead. */
export type LoginPagePolicy = (
  details: Details,
  client: Record<string, unknown>,
  req: Request,
) => Promise<LoginPage | { redirect: string } | LoginPageError>;

/** What the interaction routes need. */
export interface InteractionDeps {
  engine: TokenEngine;
  accounts: AccountRepository;
  throttle: LoginThrottle;
  csrf: CsrfTokens;
  views: Views;
  logger: Logger;
  metrics: Metrics;
  loginPage: LoginPagePolicy;
}

const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });

/** Loads the interaction, turning an unknown or expired one into a clear error. */
export async function loadInteraction(deps: Pick<InteractionDeps, 'engine'>, req: Request, res: Response): Promise<Details> {
  try {
    const details = await deps.engine.provider.interactionDetails(req, res);
    if (details.uid !== req.params.uid) throw new Error('interaction uid does not match the interaction cookie');
    return details;
  } catch (cause) {
    throw new RealmgateError('interaction_expired', { status: 400, detail: 'interaction not found, expired or not bound to this browser', cause });
  }
}

/** Refuses a form post whose CSRF token was not issued for this interaction. */
export function requireCsrf(deps: Pick<InteractionDeps, 'csrf'>, req: Request): void {
  if (!deps.csrf.verify(String(req.params.uid), (req.body as Record<string, unknown> | undefined)?.csrf)) {
    throw new RealmgateError('csrf_invalid', { status: 403, detail: 'CSRF token missing or invalid' });
  }
}

/** The metadata of the interaction's client, or a clear error when it was deleted meanwhile. */
export async function clientMetadata(deps: Pick<InteractionDeps, 'engine'>, clientId: unknown): Promise<Record<string, unknown>> {
  const client = await deps.engine.provider.Client.find(String(clientId));
  if (!client) throw new RealmgateError('bad_request', { detail: `client ${String(clientId)} no longer exists` });
  return client.metadata() as Record<string, unknown>;
}

/** Grants what the interaction asks for: missing scopes, claims and resource scopes. */
async function grantConsent(deps: InteractionDeps, details: Details): Promise<string> {
  const { Grant } = deps.engine.provider;
  const accountId = details.session?.accountId;
  if (!accountId) throw new RealmgateError('interaction_expired', { detail: 'consent without a signed-in session' });
  const clientId = String(details.params.client_id);
  const grant = details.grantId ? await Grant.find(details.grantId) : new Grant({ accountId, clientId });
  if (!grant) throw new RealmgateError('interaction_expired', { detail: 'grant vanished during consent' });
  const missing = details.prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

async function finish(deps: InteractionDeps, req: Request, res: Response, result: InteractionResults): Promise<void> {
  await deps.engine.provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

/** Finishes a login interaction for an account; federation calls this too. */
export async function finishLogin(
  deps: Pick<InteractionDeps, 'engine'>,
  req: Request,
  res: Response,
  login: { accountId: string } & RealmgateLoginResult,
): Promise<void> {
  const { accountId, ...realmgate } = login;
  await deps.engine.provider.interactionFinished(
    req,
    res,
    { login: { accountId, amr: realmgate.amr, remember: true }, realmgate },
    { mergeWithLastSubmission: false },
  );
}

/** Renders the login page of an interaction as `page` describes it. */
export function renderLogin(
  deps: Pick<InteractionDeps, 'views' | 'csrf'>,
  res: Response,
  details: Details,
  client: Record<string, unknown>,
  page: LoginPage,
  extra: { error?: string; email?: string; status?: number } = {},
): void {
  res.status(extra.status ?? 200).type('html').send(
    deps.views.render('login.njk', {
      uid: details.uid,
      csrf: deps.csrf.issue(details.uid),
      client_name: client.client_name ?? client.client_id,
      providers: page.providers,
      email_first: page.emailFirst,
      local_login: page.localLogin,
      email: extra.email ?? (typeof details.params.login_hint === 'string' ? details.params.login_hint : ''),
      error: extra.error ?? page.notice,
    }),
  );
}

/** The login, consent and cancel pages of an interaction, under `/interaction/:uid`. */
export function interactionRoutes(deps: InteractionDeps): Router {
  const router = express.Router();

  router.get('/interaction/:uid', async (req, res) => {
    res.set('cache-control', 'no-store');
    const details = await loadInteraction(deps, req, res);
    const client = await clientMetadata(deps, details.params.client_id);
    if (details.prompt.name === 'login') {
      const page = await deps.loginPage(details, client, req);
      if ('redirect' in page) return void res.redirect(303, page.redirect);
      if ('error' in page) return finish(deps, req, res, { error: page.error, error_description: page.errorDescription });
      return renderLogin(deps, res, details, client, page);
    }
    if (details.prompt.name === 'consent') {
      if (client.require_consent === false) {
        const grantId = await grantConsent(deps, details);
        return finish(deps, req, res, { consent: { grantId } });
      }
      const requested = String(details.params.scope ?? '').split(' ').filter(Boolean);
      const resourceScopes = Object.values((details.prompt.details.missingResourceScopes ?? {}) as Record<string, string[]>).flat();
      const scopes = [...new Set([...requested.filter((s) => SCOPE_DESCRIPTIONS[s]), ...resourceScopes])];
      return void res.type('html').send(
        deps.views.render('consent.njk', {
          uid: details.uid,
          csrf: deps.csrf.issue(details.uid),
          client_name: client.client_name ?? client.client_id,
          scopes: scopes.map((s) => ({ name: s, description: SCOPE_DESCRIPTIONS[s] ?? `Use the "${s}" permission` })),
        }),
      );
    }
    throw new RealmgateError('bad_request', { detail: `unsupported prompt ${details.prompt.name}` });
  });

  router.post('/interaction/:uid/login', form, async (req, res) => {
    res.set('cache-control', 'no-store');
    const details = await loadInteraction(deps, req, res);
    requireCsrf(deps, req);
    const client = await clientMetadata(deps, details.params.client_id);
    const page = await deps.loginPage(details, client, req);
    if (!('providers' in page) || !page.localLogin || details.prompt.name !== 'login') {
      throw new RealmgateError('bad_request', { detail: 'password login is not offered for this interaction' });
    }
    // After a password attempt the page shows the password step, not the email-first step.
    const passwordStep = { ...page, emailFirst: false };
    const body = req.body as Record<string, unknown>;
    const email = typeof body.email === 'string' ? body.email.slice(0, 320) : '';
    const password = typeof body.password === 'string' ? body.password.slice(0, 1024) : '';
    if (!email || !password) {
      return renderLogin(deps, res, details, client, passwordStep, { error: 'Enter your email and password.', email, status: 400 });
    }
    const result = await signInWithPassword(deps, { email, password, ip: req.ip ?? 'unknown' });
    deps.metrics.logins.inc({ idp: 'local', outcome: result.outcome });
    if (result.outcome === 'throttled') {
      deps.logger.warn({ email_hash: email.length, ip: req.ip }, 'password sign-in throttled');
      res.set('retry-after', String(result.retryAfterSeconds));
      return renderLogin(deps, res, details, client, passwordStep, {
        error: `Too many failed attempts. Try again in ${Math.ceil(result.retryAfterSeconds / 60)} minute(s).`,
        email,
        status: 429,
      });
    }
    if (result.outcome === 'failure') {
      return renderLogin(deps, res, details, client, passwordStep, { error: 'Wrong email or password.', email, status: 401 });
    }
    return finishLogin(deps, req, res, { accountId: result.account.id, idp: 'local', amr: ['pwd'] });
  });

  router.post('/interaction/:uid/confirm', form, async (req, res) => {
    res.set('cache-control', 'no-store');
    const details = await loadInteraction(deps, req, res);
    requireCsrf(deps, req);
    if (details.prompt.name !== 'consent') throw new RealmgateError('bad_request', { detail: 'no consent is pending' });
    const grantId = await grantConsent(deps, details);
    await finish(deps, req, res, { consent: { grantId } });
  });

  router.post('/interaction/:uid/abort', form, async (req, res) => {
    res.set('cache-control', 'no-store');
    await loadInteraction(deps, req, res);
    requireCsrf(deps, req);
    await finish(deps, req, res, { error: 'access_denied', error_description: 'The user cancelled the sign-in.' });
  });

  return router;
}

/** Turns any error on our pages into the error page with a reference; the detail goes to the log. */
export function pageErrorHandler(deps: { views: Views; logger: Logger }) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const error =
      err instanceof RealmgateError
        ? err
        : new RealmgateError('internal', { status: 500, detail: err instanceof Error ? err.message : String(err), cause: err });
    const ref = newReference();
    const log = (res.locals.log as Logger | undefined) ?? deps.logger;
    log[error.status >= 500 ? 'error' : 'warn']({ ref, code: error.code, err: error.cause ?? error, path: req.path }, error.message);
    if (res.headersSent) return;
    res.status(error.status).type('html').set('cache-control', 'no-store').send(deps.views.render('error.njk', { message: error.safeMessage, ref }));
  };
}
