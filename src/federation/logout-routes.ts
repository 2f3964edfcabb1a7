/**
 * Upstream logout endpoints per provider:
 * - `POST /federation/<alias>/backchannel-logout`: an OIDC logout token; 200, or 400 with the
 *   OAuth JSON error (never a page), per Back-Channel Logout 1.0 §2.8.
 * - `GET /federation/<alias>/frontchannel-logout?iss=&sid=`: ends the sessions and renders a page
 *   whose frames load each application's `frontchannel_logout_uri`.
 * - `GET|POST /federation/<alias>/saml/slo`: a SAML LogoutRequest from the IdP (answered with a
 *   signed LogoutResponse, by redirect or auto-posting form as the IdP's metadata says), or the
 *   IdP's LogoutResponse to our own LogoutRequest, over HTTP-Redirect or HTTP-POST.
 * - `GET /federation/<alias>/logged-out?state=`: back from an OIDC upstream's end_session.
 * Routes translate; the provider validates; `src/logout/` ends sessions and queues notices.
 */
import express, { type Request, type Response, type Router } from 'express';
import { ProviderError, receivesUpstreamLogout, type AcceptedUpstreamLogout, type UpstreamLogoutInput } from '../../providers/types.ts';
import type { Services } from '../app.ts';
import { RealmgateError, isRealmgateError, newReference } from '../errors.ts';
import { logFailure } from '../errors/handler.ts';
import type { ClientRepository } from '../store/clients.ts';
import { endUpstreamSessions } from '../logout/upstream-logout.ts';
import { browserSend, finishUpstreamSignOut, type UpstreamSignOutDeps } from '../logout/upstream-signout.ts';
import type { SessionEndedByUid } from '../logout/session-end.ts';
import type { ProviderCache } from './provider-cache.ts';
import { aliasParam, stringParams } from './upstream-answer.ts';

/** What the logout routes need. */
export interface LogoutRouteDeps extends UpstreamSignOutDeps {
  cache: ProviderCache;
  services: Pick<Services, 'store' | 'metrics'>;
  clients: Pick<ClientRepository, 'get'>;
  issuer: string;
}

const tokenForm = express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 5 });
/** A SAML logout message carries one signed XML document, far smaller than a response with assertions. */
const samlForm = express.urlencoded({ extended: false, limit: '256kb', parameterLimit: 10 });

/**
 * A refused upstream logout message means "nothing was signed out", not "you are not signed in":
 * the provider's refusal becomes `upstream_logout_refused` (its cause kept for the log). An
 * unreachable provider, an unknown one and anything else keep their own code.
 */
function logoutPageError(error: unknown): unknown {
  if (!(error instanceof ProviderError) || error.code === 'upstream_unreachable') return error;
  return new RealmgateError('upstream_logout_refused', { alias: error.alias, detail: `${error.code}: ${error.message}`, cause: error });
}

/** Validates an upstream logout message with the provider, or throws a ProviderError. */
async function accept(deps: LogoutRouteDeps, alias: string, input: UpstreamLogoutInput): Promise<AcceptedUpstreamLogout> {
  const provider = await deps.cache.get(alias);
  if (!receivesUpstreamLogout(provider.opened)) {
    throw new ProviderError('response_invalid', { alias, detail: `provider ${alias} does not receive upstream logout` });
  }
  return provider.opened.acceptLogout(input);
}

/** The front-channel logout frames for the applications of the ended sessions (`iss` and `sid` when the application asks). */
async function frontchannelFrames(deps: LogoutRouteDeps, ended: SessionEndedByUid[]): Promise<string[]> {
  const frames: string[] = [];
  for (const { clients } of ended) {
    for (const { clientId, sid } of clients) {
      const metadata = (await deps.clients.get(clientId))?.metadata;
      const uri = metadata?.frontchannel_logout_uri;
      if (typeof uri !== 'string' || !URL.canParse(uri)) continue;
      const url = new URL(uri);
      if (metadata?.frontchannel_logout_session_required === true && sid) {
        url.searchParams.set('iss', deps.issuer);
        url.searchParams.set('sid', sid);
      }
      frames.push(url.toString());
    }
  }
  return [...new Set(frames)];
}

/** The page's policy: nothing but the applications' frames; the upstream's page may frame it. */
function frontchannelCsp(frames: string[], upstreamOrigin: string | undefined): string {
  const origins = [...new Set(frames.map((f) => new URL(f).origin))];
  return [
    "default-src 'none'",
    "style-src 'self'",
    `frame-src ${origins.length ? origins.join(' ') : "'none'"}`,
    `frame-ancestors ${upstreamOrigin ?? "'none'"}`,
  ].join('; ');
}

/** The upstream logout routes and the returns from upstream sign-out. */
export function logoutRoutes(deps: LogoutRouteDeps): Router {
  const router = express.Router();
  const noStore = (_req: Request, res: Response, next: () => void) => {
    res.set('cache-control', 'no-store');
    next();
  };

  router.post('/federation/:alias/backchannel-logout', noStore, tokenForm, async (req, res) => {
    const alias = aliasParam(req);
    const logoutToken = stringParams(req.body).logout_token;
    const log = deps.logger.child({ alias });
    try {
      if (!logoutToken) throw new ProviderError('response_invalid', { alias, detail: 'no logout_token in the request' });
      const { match } = await accept(deps, alias, { channel: 'backchannel', logoutToken });
      const ended = await endUpstreamSessions(deps.services, alias, match);
      log.info({ sessions: ended.length, sid: match.sessionId, sub: match.subject }, 'upstream back-channel logout');
      res.status(200).end();
    } catch (error) {
      if (!(error instanceof ProviderError) && !isRealmgateError(error, 'provider_unknown')) throw error;
      // Back-Channel Logout 1.0 §2.8 answers JSON, not a page or a problem: logged like any refusal.
      logFailure(log, error, newReference(), { path: req.path }, 'upstream back-channel logout refused');
      res.status(400).json({ error: 'invalid_request', error_description: 'The logout token is invalid or was already used.' });
    }
  });

  router.get('/federation/:alias/frontchannel-logout', noStore, async (req, res) => {
    const alias = aliasParam(req);
    const name = deps.cache.displayName(alias) ?? alias;
    let ended: SessionEndedByUid[];
    try {
      const { match } = await accept(deps, alias, { channel: 'frontchannel', params: stringParams(req.query) });
      ended = await endUpstreamSessions(deps.services, alias, match);
      deps.logger.info({ alias, sessions: ended.length, sid: match.sessionId }, 'upstream front-channel logout');
    } catch (error) {
      throw logoutPageError(error);
    }
    const frames = await frontchannelFrames(deps, ended);
    const upstream = typeof req.query.iss === 'string' && URL.canParse(req.query.iss) ? new URL(req.query.iss).origin : undefined;
    res
      .set('content-security-policy', frontchannelCsp(frames, upstream))
      .type('html')
      .send(deps.views.render('federation/frontchannel-logout.njk', { provider_name: name, ended: ended.length > 0, frames }));
  });

  const slo = async (req: Request, res: Response) => {
    const alias = aliasParam(req);
    const binding = req.method === 'POST' ? 'post' : 'redirect';
    const params = stringParams(binding === 'post' ? req.body : req.query);
    if (params.SAMLResponse) {
      // Over HTTP-POST the message is the form's alone: the URL handed on carries no query to mix with it.
      const url = binding === 'post' ? new URL(req.baseUrl + req.path, deps.issuer) : new URL(req.originalUrl, deps.issuer);
      const next = await finishUpstreamSignOut(deps, alias, params.RelayState ?? '', { url, params }).catch((error: unknown) => {
        throw logoutPageError(error);
      });
      if (next) return void res.redirect(303, next);
      return void res.type('html').send(deps.views.render('signed-out.njk', {}));
    }
    if (!params.SAMLRequest) throw new RealmgateError('bad_request', { detail: 'no SAMLRequest or SAMLResponse at the SLO endpoint' });
    let accepted: AcceptedUpstreamLogout;
    let ended: SessionEndedByUid[];
    try {
      accepted = await accept(deps, alias, { channel: 'saml', binding, params, rawQuery: req.originalUrl.split('?')[1] ?? '' });
      ended = await endUpstreamSessions(deps.services, alias, accepted.match);
    } catch (error) {
      throw logoutPageError(error);
    }
    deps.logger.info({ alias, sessions: ended.length, binding }, 'upstream SAML logout');
    const send = await accepted.respond!({ success: true });
    const next = browserSend(deps.views, send);
    if (next.type === 'redirect') return void res.redirect(303, next.url);
    res.set('content-security-policy', next.contentSecurityPolicy ?? "default-src 'self'").type('html').send(next.body);
  };
  router.get('/federation/:alias/saml/slo', noStore, slo);
  router.post('/federation/:alias/saml/slo', noStore, samlForm, slo);

  router.get('/federation/:alias/logged-out', noStore, async (req, res) => {
    const alias = aliasParam(req);
    const params = stringParams(req.query);
    const next = await finishUpstreamSignOut(deps, alias, params.state ?? '', { url: new URL(req.originalUrl, deps.issuer), params }).catch((error: unknown) => {
      throw logoutPageError(error);
    });
    if (next) return void res.redirect(303, next);
    res.type('html').send(deps.views.render('signed-out.njk', {}));
  });

  return router;
}
