import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { AccountRepository } from '../store/accounts.ts';
import { signInWithPassword } from '../accounts/local-login.ts';
import type { LoginThrottle } from '../store/login-throttle.ts';
import { RealmgateError } from '../errors.ts';
import { homeRealmClient, PICKER_MAX_PROVIDERS, resolveHomeRealm, type LoginDirectory } from '../federation/home-realm.ts';
import { startFederatedLogin, takeCompletedLogin, type FederationDeps } from '../federation/login-flow.ts';
import { ALIAS, aliasParam } from '../federation/upstream-answer.ts';
import type { Logger } from '../logger.ts';
import type { TokenEngine } from '../token-server/engine.ts';
import { grantConsent, renderConsent } from './consent.ts';
import { homeRealmInput, pickerPage, rememberProvider, renderLogin, type LoginPage, type LoginPagePolicy } from './login-page.ts';
import { adoptSignedInSession, advance, authenticated, pendingStep, STEPS } from './machine.ts';
import type { Interaction } from './service.ts';
import { linkConfirmationStep } from './steps/link-confirmation.ts';
import { sendStart } from './upstream-start.ts';
import type { MailPageDeps } from './mail-pages.ts';
import { registerPasswordResetRoutes } from './password-reset.ts';
import { registerRegistrationRoutes } from './registration.ts';
import { registerPasskeySignInRoutes } from './passkey-sign-in.ts';
import type { Views } from './views.ts';

/** What the interaction routes need. */
export interface InteractionDeps extends MailPageDeps {
  engine: TokenEngine;
  accounts: AccountRepository;
  throttle: LoginThrottle;
  /** Home-realm discovery's indexed provider lookups (and the picker's search). */
  directory: LoginDirectory;
  loginPage: LoginPagePolicy;
  /** The upstream login flow, to start federated logins and take completed ones. */
  federation: FederationDeps;
}

const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });

const noStore = (_req: Request, res: Response, next: NextFunction) => {
  res.set('cache-control', 'no-store');
  next();
};

const isLoginPrompt = (interaction: Interaction) => interaction.prompt === 'login' || interaction.prompt === 'select_account';

/** Refuses a form post whose CSRF token was not issued for this interaction. */
function requireCsrf(deps: Pick<InteractionDeps, 'csrf'>, req: Request): void {
  if (!deps.csrf.verify(String(req.params.uid), (req.body as Record<string, unknown> | undefined)?.csrf)) {
    throw new RealmgateError('csrf_invalid', { detail: 'CSRF token missing or invalid' });
  }
}

const bodyString = (req: Request, name: string, max: number) => {
  const value = (req.body as Record<string, unknown>)[name];
  return typeof value === 'string' ? value.trim().slice(0, max) : '';
};

/**
 * Every `/interaction/:uid` URL: the login page (home-realm discovery), password sign-in,
 * email-first discovery, federated starts and returns, the machine's step pages, consent and
 * cancel. Each loads the interaction through the interaction service, so each is bound to the
 * browser whose interaction cookie names it.
 */
export function interactionRoutes(deps: InteractionDeps): Router {
  const router = express.Router();
  const { interactions } = deps;
  const secureCookies = deps.issuer.startsWith('https:');

  /** Starts a federated login at `alias`; during link confirmation only the account's own providers, with a fresh sign-in. */
  async function federate(req: Request, res: Response, interaction: Interaction, alias: string, loginHint?: string) {
    const pending = interaction.state.pendingLink;
    if (pending && !pending.methods.some((m) => m.kind === 'provider' && m.alias === alias)) {
      throw new RealmgateError('bad_request', { detail: `provider ${alias} is not a sign-in method of the account being linked` });
    }
    const start = await startFederatedLogin(deps.federation, interaction, interaction.client, alias, {
      loginHint,
      ...(pending ? { forceLogin: true, anyProvider: true } : {}),
    });
    sendStart(deps.views, res, start);
  }

  router.get('/interaction/:uid', noStore, async (req, res) => {
    const interaction = await interactions.load(req, res);
    if (interaction.prompt === 'consent') {
      if (interaction.client.require_consent === false) return interactions.finishPrompt(req, res, async () => ({ consent: { grantId: await grantConsent(deps.engine, interaction) } }));
      return renderConsent(deps, res, interaction);
    }
    if (!isLoginPrompt(interaction)) throw new RealmgateError('bad_request', { detail: `unsupported prompt ${interaction.prompt}` });
    await adoptSignedInSession(deps, interaction);
    const step = await pendingStep(deps, interaction);
    if (step) return step.render(deps, res, interaction);
    // Signed in and every step done (say, in another tab): nothing left to ask.
    if (interaction.state.login) return advance(deps, req, res, interaction);
    const page = await deps.loginPage(interaction, req);
    if ('redirect' in page) {
      if (page.rule === 'last_used') {
        interaction.state.autoRedirectedTo = page.provider;
        await interactions.save(interaction);
      }
      return federate(req, res, interaction, page.provider);
    }
    if ('error' in page) return interactions.abort(req, res, interaction, page.error, page.errorDescription);
    renderLogin(deps, res, interaction, page);
  });

  // "Use another way to sign in": the whole choice, without following the remembered provider.
  router.get('/interaction/:uid/choose', noStore, async (req, res) => {
    const interaction = await interactions.load(req, res);
    interaction.state.chooseAnotherWay = true;
    await interactions.save(interaction);
    res.redirect(303, `/interaction/${encodeURIComponent(interaction.uid)}`);
  });

  router.post('/interaction/:uid/login', noStore, form, async (req, res) => {
    const interaction = await interactions.load(req, res);
    requireCsrf(deps, req);
    if (!isLoginPrompt(interaction)) throw new RealmgateError('bad_request', { detail: 'no login is pending for this interaction' });
    const pending = interaction.state.pendingLink;
    let passwordStep: LoginPage | undefined;
    if (pending) {
      if (!pending.methods.some((m) => m.kind === 'local')) throw new RealmgateError('bad_request', { detail: 'the account being linked has no password' });
    } else {
      const page = await deps.loginPage(interaction, req);
      if (!('providers' in page) || !page.localLogin) throw new RealmgateError('bad_request', { detail: 'password login is not offered for this interaction' });
      // After a password attempt the page shows the password step, not the email-first step.
      passwordStep = { ...page, emailFirst: false, otherMethod: true };
    }
    const again = (error: string, status: number, email: string) =>
      passwordStep ? renderLogin(deps, res, interaction, passwordStep, { error, email, status, fieldError: true }) : linkConfirmationStep.render(deps, res, interaction, error);
    const email = bodyString(req, 'email', 320);
    const password = typeof (req.body as Record<string, unknown>).password === 'string' ? String((req.body as Record<string, unknown>).password).slice(0, 1024) : '';
    if (!email || !password) return again('Enter your email and password.', 400, email);
    const result = await signInWithPassword(deps, { email, password, ip: req.ip ?? 'unknown' });
    deps.metrics.logins.inc({ idp: 'local', outcome: result.outcome });
    if (result.outcome === 'throttled') {
      deps.logger.warn({ ip: req.ip }, 'password sign-in throttled');
      res.set('retry-after', String(result.retryAfterSeconds));
      return again(`Too many failed attempts. Try again in ${Math.ceil(result.retryAfterSeconds / 60)} minute(s).`, 429, email);
    }
    if (result.outcome === 'failure') return again('Wrong email or password.', 401, email);
    await authenticated(deps, req, res, interaction, { type: 'password', account: result.account });
  });

  router.post('/interaction/:uid/discover', noStore, form, async (req, res) => {
    const interaction = await interactions.load(req, res);
    requireCsrf(deps, req);
    if (!isLoginPrompt(interaction)) throw new RealmgateError('bad_request', { detail: 'no login is pending for this interaction' });
    const email = bodyString(req, 'email', 320);
    const clientRules = homeRealmClient(interaction.client);
    const resolution = await resolveHomeRealm(deps.directory, homeRealmInput(interaction, req, email), clientRules);
    const { decision } = resolution.explanation;
    if (decision.action === 'redirect') return federate(req, res, interaction, decision.provider, email);
    // No provider claims the email's domain: with local login, the next step is the password.
    const page = pickerPage(resolution, clientRules);
    const next = page.localLogin ? { ...page, emailFirst: false, notice: undefined, otherMethod: true } : page;
    renderLogin(deps, res, interaction, next, { email, status: 200 });
  });

  // The picker's search when the client may use more providers than one page shows: by name or alias prefix.
  router.post('/interaction/:uid/search', noStore, form, async (req, res) => {
    const interaction = await interactions.load(req, res);
    requireCsrf(deps, req);
    if (!isLoginPrompt(interaction)) throw new RealmgateError('bad_request', { detail: 'no login is pending for this interaction' });
    const term = bodyString(req, 'provider_search', 100);
    const clientRules = homeRealmClient(interaction.client);
    const found = term ? await deps.directory.search(term, PICKER_MAX_PROVIDERS, clientRules.allowedProviders) : [];
    const page: LoginPage = {
      providers: found.map((p) => ({ alias: p.alias, display_name: p.displayName })),
      emailFirst: true,
      localLogin: clientRules.localLogin,
      search: true,
      searchTerm: term,
      notice: term && !found.length ? `No sign-in provider matches "${term}". Try another name, or continue with your email.` : undefined,
      otherMethod: true,
    };
    renderLogin(deps, res, interaction, page, { status: 200 });
  });

  router.post('/interaction/:uid/federate', noStore, form, async (req, res) => {
    const interaction = await interactions.load(req, res);
    requireCsrf(deps, req);
    const alias = bodyString(req, 'provider', 100);
    if (!ALIAS.test(alias)) throw new RealmgateError('bad_request', { detail: 'no provider chosen' });
    await federate(req, res, interaction, alias);
  });

  // Home-realm discovery's hand-off (and /federation/:alias/start): bound to this browser like every step.
  router.get('/interaction/:uid/start/:alias', noStore, async (req, res) => {
    const interaction = await interactions.load(req, res);
    await federate(req, res, interaction, aliasParam(req));
  });

  router.get('/interaction/:uid/federated/:alias/:completion', noStore, async (req, res) => {
    const interaction = await interactions.load(req, res);
    if (!isLoginPrompt(interaction)) throw new RealmgateError('bad_request', { detail: 'no login is pending for this interaction' });
    const alias = aliasParam(req);
    const outcome = await takeCompletedLogin(deps.federation, interaction.uid, alias, String(req.params.completion));
    const displayName = deps.displayName(alias);
    if (outcome.type === 'error') {
      const notice = `Sign-in with ${displayName} was cancelled or refused.`;
      if (interaction.state.pendingLink) return linkConfirmationStep.render(deps, res, interaction, `${notice} Choose another way to prove this account is yours, or cancel.`);
      if (interaction.state.autoRedirectedTo === alias) {
        // The remembered provider said no: show every way to sign in rather than end the login.
        interaction.state.chooseAnotherWay = true;
        await interactions.save(interaction);
        const page = await deps.loginPage(interaction, req);
        if ('providers' in page) return renderLogin(deps, res, interaction, page, { error: `${notice} Choose another way to sign in.` });
      }
      return interactions.abort(req, res, interaction, outcome.error, outcome.description);
    }
    if (!interaction.state.pendingLink) rememberProvider(res, alias, secureCookies);
    await authenticated(deps, req, res, interaction, { type: 'federated', alias, displayName, identity: outcome.identity });
  });

  // Each step's own form post; a post for a step that is no longer pending (sent twice, or the
  // login moved on) goes back to the interaction, which shows what is pending now.
  for (const step of STEPS) {
    if (!step.submit) continue;
    const { handle } = step.submit;
    router.post(`/interaction/:uid/${step.submit.path}`, noStore, form, async (req, res) => {
      const interaction = await interactions.load(req, res);
      requireCsrf(deps, req);
      if (!isLoginPrompt(interaction)) throw new RealmgateError('bad_request', { detail: 'no login is pending for this interaction' });
      if ((await pendingStep(deps, interaction)) !== step) {
        deps.logger.warn({ uid: interaction.uid, step: step.name }, 'form post for a step that is not pending');
        return res.redirect(303, `/interaction/${encodeURIComponent(interaction.uid)}`);
      }
      if (await handle(deps, req, res, interaction)) await advance(deps, req, res, interaction);
    });
  }

  // Registration and password reset (mailed single-use links).
  const mailHelpers = { form, requireCsrf: (req: Request) => requireCsrf(deps, req) };
  router.use('/interaction/:uid', noStore);
  registerRegistrationRoutes(router, deps, mailHelpers);
  registerPasswordResetRoutes(router, deps, mailHelpers);
  registerPasskeySignInRoutes(router, deps, mailHelpers);

  router.post('/interaction/:uid/confirm', noStore, form, async (req, res) => {
    const interaction = await interactions.load(req, res);
    requireCsrf(deps, req);
    if (interaction.prompt !== 'consent') throw new RealmgateError('bad_request', { detail: 'no consent is pending' });
    await interactions.finishPrompt(req, res, async () => ({ consent: { grantId: await grantConsent(deps.engine, interaction) } }));
  });

  router.post('/interaction/:uid/abort', noStore, form, async (req, res) => {
    const interaction = await interactions.load(req, res);
    requireCsrf(deps, req);
    if (interaction.state.pendingLink) deps.logger.info({ uid: interaction.uid, alias: interaction.state.pendingLink.alias }, 'link confirmation cancelled; nothing linked');
    await interactions.abort(req, res, interaction, 'access_denied', 'The user cancelled the sign-in.');
  });

  return router;
}
