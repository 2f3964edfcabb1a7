import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { acceptUpstreamAnswer } from './login-flow.ts';
import { rememberProvider } from '../interaction/login-page.ts';
import { LoginTransactionStore } from '../store/login-transactions.ts';
import { aliasParam, stringParams, upstreamAnswerHandler } from './upstream-answer.ts';
import { acceptUnsolicitedAnswer, serviceProviderMetadata, type SamlFlowDeps } from './saml-flow.ts';

/** The SAML POST binding carries a base64 response with its signatures and certificates: larger than a form. */
const samlForm = express.urlencoded({ extended: false, limit: '1mb', parameterLimit: 10 });

/**
 * SAML endpoints per provider: `GET /federation/<alias>/saml/metadata` (our SP metadata) and
 * `POST /federation/<alias>/saml/acs` (the assertion consumer service, HTTP-POST binding). The
 * ACS only translates: a RelayState naming a login transaction goes to the neutral flow, any
 * other answer is unsolicited (IdP-initiated) and the provider decides whether it may be.
 */
export function samlRoutes(deps: SamlFlowDeps & { issuer: string }): Router {
  const router = express.Router();

  router.get('/federation/:alias/saml/metadata', async (req: Request, res: Response) => {
    const xml = await serviceProviderMetadata(deps, aliasParam(req));
    res.set('cache-control', 'public, max-age=300').type('application/samlmetadata+xml').send(xml);
  });

  // Answers to our own AuthnRequests (RelayState names a login transaction) go through the one
  // upstream-answer strategy; anything else is unsolicited and the provider decides if it may be.
  const solicited = upstreamAnswerHandler(deps.issuer, 'RelayState', (alias, relayState, input) => acceptUpstreamAnswer(deps, alias, relayState, input));
  router.post('/federation/:alias/saml/acs', samlForm, async (req: Request, res: Response, next: NextFunction) => {
    res.set('cache-control', 'no-store');
    const alias = aliasParam(req);
    const params = stringParams(req.body);
    if (params.RelayState && LoginTransactionStore.isId(params.RelayState)) return solicited(req, res, next);
    const target = await acceptUnsolicitedAnswer(deps, alias, { url: new URL(req.originalUrl, deps.issuer), params });
    rememberProvider(res, alias, deps.issuer.startsWith('https:'));
    res.redirect(303, target);
  });

  return router;
}
