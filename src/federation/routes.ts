import express, { type Request, type Response, type Router } from 'express';
import { RealmgateError } from '../errors.ts';
import { startUrl } from '../interaction/login-page.ts';
import { acceptUpstreamAnswer, type FederationDeps } from './login-flow.ts';
import { aliasParam, upstreamAnswerHandler } from './upstream-answer.ts';

/** What the federation routes need: the flow's deps and Realmgate's issuer. */
export interface FederationRouteDeps extends FederationDeps {
  /** Realmgate's issuer, to rebuild the full callback URL. */
  issuer: string;
}

/** Upstream answers posted back (OIDC form_post, SAML POST binding) can be large. */
const upstreamForm = express.urlencoded({ extended: false, limit: '512kb', parameterLimit: 50 });

const UID = /^[\w-]{1,64}$/;

/**
 * The upstream half of a federated login: `GET /federation/:alias/start?interaction=<uid>` hands
 * the browser to the interaction's own start URL (where its interaction cookie must name that
 * interaction: a uid alone starts nothing), and `/federation/:alias/callback` takes the
 * upstream's answer and sends the browser back to its interaction.
 */
export function federationRoutes(deps: FederationRouteDeps): Router {
  const router = express.Router();
  const noStore = (_req: Request, res: Response, next: () => void) => {
    res.set('cache-control', 'no-store');
    next();
  };

  router.get('/federation/:alias/start', noStore, (req, res) => {
    const alias = aliasParam(req);
    const uid = typeof req.query.interaction === 'string' ? req.query.interaction : '';
    if (!UID.test(uid)) throw new RealmgateError('interaction_expired', { detail: `start without a well-formed interaction (${JSON.stringify(uid.slice(0, 40))})` });
    res.redirect(303, startUrl(alias, uid));
  });

  // The upstream's answer goes through the one Passport strategy for every provider.
  const callback = upstreamAnswerHandler(deps.issuer, 'state', (alias, state, input) => acceptUpstreamAnswer(deps, alias, state, input));
  router.get('/federation/:alias/callback', noStore, callback);
  router.post('/federation/:alias/callback', noStore, upstreamForm, callback);

  return router;
}
