import crypto from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import type { LoginStart } from '../../providers/types.ts';
import { RealmgateError } from '../errors.ts';
import {
  clientMetadata,
  finishLogin,
  loadInteraction,
  renderLogin,
  requireCsrf,
  type InteractionDeps,
} from '../interaction/routes.ts';
import type { ProviderRepository } from '../store/providers.ts';
import { decideHomeRealm, homeRealmClient, loadHomeRealmProviders } from './home-realm.ts';
import { ALIAS, aliasParam, upstreamAnswerHandler } from './upstream-answer.ts';
import { acceptUpstreamAnswer, resolveFederatedLogin, startFederatedLogin, type FederationDeps } from './login-flow.ts';
import { pickerPage, rememberProvider } from './login-page.ts';

/** What the federation routes need: the flow's deps and the interaction pages' parts. */
export interface FederationRouteDeps extends FederationDeps {
  providers: Pick<ProviderRepository, 'listEnabled'>;
  interaction: Pick<InteractionDeps, 'engine' | 'csrf' | 'views'>;
  /** Realmgate's issuer, to rebuild the full callback URL. */
  issuer: string;
}

const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });
/** Upstream answers posted back (OIDC form_post, SAML POST binding) can be large. */
const upstreamForm = express.urlencoded({ extended: false, limit: '512kb', parameterLimit: 50 });

/** Sends the browser upstream: a 303, or the auto-posting form of a POST binding. */
function sendStart(deps: FederationRouteDeps, res: Response, start: LoginStart): void {
  if (start.type === 'redirect') return void res.redirect(303, start.url);
  const nonce = crypto.randomBytes(16).toString('base64');
  res
    .type('html')
    .set('content-security-policy', `default-src 'self'; script-src 'nonce-${nonce}'; frame-ancestors 'none'`)
    .send(deps.interaction.views.render('federation/post-form.njk', { action: start.action, fields: start.fields, nonce }));
}

/**
 * Federated login routes: start from the picker (`POST /interaction/:uid/federate`), from the
 * email-first form (`POST /interaction/:uid/discover`) or from home-realm discovery
 * (`GET /federation/:alias/start?interaction=<uid>`); the upstream's answer at
 * `/federation/:alias/callback`; and the return to the interaction that signs the user in.
 */
export function federationRoutes(deps: FederationRouteDeps): Router {
  const router = express.Router();
  const noStore = (_req: Request, res: Response, next: () => void) => {
    res.set('cache-control', 'no-store');
    next();
  };

  router.post('/interaction/:uid/federate', noStore, form, async (req, res) => {
    const details = await loadInteraction(deps.interaction, req, res);
    requireCsrf(deps.interaction, req);
    const alias = String((req.body as Record<string, unknown>).provider ?? '');
    if (!ALIAS.test(alias)) throw new RealmgateError('bad_request', { detail: 'no provider chosen' });
    const client = await clientMetadata(deps.interaction, details.params.client_id);
    sendStart(deps, res, await startFederatedLogin(deps, details, client, alias));
  });

  router.post('/interaction/:uid/discover', noStore, form, async (req, res) => {
    const details = await loadInteraction(deps.interaction, req, res);
    requireCsrf(deps.interaction, req);
    const client = await clientMetadata(deps.interaction, details.params.client_id);
    const raw = (req.body as Record<string, unknown>).email;
    const email = typeof raw === 'string' ? raw.trim().slice(0, 320) : '';
    const enabled = await loadHomeRealmProviders(deps.providers);
    const clientRules = homeRealmClient(client);
    const explanation = decideHomeRealm({ email }, clientRules, enabled);
    if (explanation.decision.action === 'redirect') {
      return sendStart(deps, res, await startFederatedLogin(deps, details, client, explanation.decision.provider, { loginHint: email }));
    }
    // No provider claims the email's domain: with local login, the next step is the password.
    const page = pickerPage(explanation, clientRules, enabled);
    const next = page.localLogin ? { ...page, emailFirst: false, notice: undefined } : page;
    renderLogin(deps.interaction, res, details, client, next, { email, status: 200 });
  });

  router.get('/federation/:alias/start', noStore, async (req, res) => {
    const alias = aliasParam(req);
    const uid = typeof req.query.interaction === 'string' ? req.query.interaction : '';
    const interaction = uid ? await deps.engine.provider.Interaction.find(uid) : undefined;
    if (!interaction) throw new RealmgateError('interaction_expired', { detail: `interaction ${uid.slice(0, 40)} not found or expired` });
    const client = await clientMetadata(deps.interaction, interaction.params.client_id);
    sendStart(deps, res, await startFederatedLogin(deps, interaction, client, alias));
  });

  // The upstream's answer goes through the one Passport strategy for every provider.
  const callback = upstreamAnswerHandler(deps.issuer, 'state', (alias, state, input) => acceptUpstreamAnswer(deps, alias, state, input));
  router.get('/federation/:alias/callback', noStore, callback);
  router.post('/federation/:alias/callback', noStore, upstreamForm, callback);

  router.get('/interaction/:uid/federated/:alias/:completion', noStore, async (req, res) => {
    const details = await loadInteraction(deps.interaction, req, res);
    if (details.prompt.name !== 'login') throw new RealmgateError('bad_request', { detail: 'no login is pending for this interaction' });
    const alias = aliasParam(req);
    const outcome = await resolveFederatedLogin(deps, details.uid, alias, String(req.params.completion));
    if (outcome.type === 'error') {
      return deps.engine.provider.interactionFinished(req, res, { error: outcome.error, error_description: outcome.description }, { mergeWithLastSubmission: false });
    }
    rememberProvider(res, alias, deps.issuer.startsWith('https:'));
    await finishLogin(deps, req, res, { accountId: outcome.accountId, ...outcome.result });
  });

  return router;
}
