import express, { type Request, type Response, type Router } from 'express';
import { RealmgateError } from '../errors.ts';
import { acceptUpstreamAnswer } from './login-flow.ts';
import { rememberProvider } from './login-page.ts';
import { LoginTransactionStore } from './login-transactions.ts';
import { acceptUnsolicitedAnswer, serviceProviderMetadata, type SamlFlowDeps } from './saml-flow.ts';

/** The SAML POST binding carries a base64 response with its signatures and certificates: larger than a form. */
const samlForm = express.urlencoded({ extended: false, limit: '1mb', parameterLimit: 10 });

const ALIAS = /^[a-z0-9][a-z0-9_-]{0,62}$/i;

function aliasOf(req: Request): string {
  const alias = String(req.params.alias ?? '');
  if (!ALIAS.test(alias)) throw new RealmgateError('not_found', { status: 404, detail: `malformed provider alias ${JSON.stringify(alias.slice(0, 80))}` });
  return alias;
}

/** Form fields as strings; a repeated field is dropped rather than guessed. */
function formFields(body: unknown): Record<string, string> {
  return Object.fromEntries(Object.entries((body ?? {}) as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/**
 * SAML endpoints per provider: `GET /federation/<alias>/saml/metadata` (our SP metadata) and
 * `POST /federation/<alias>/saml/acs` (the assertion consumer service, HTTP-POST binding). The
 * ACS only translates: a RelayState naming a login transaction goes to the neutral flow, any
 * other answer is unsolicited (IdP-initiated) and the provider decides whether it may be.
 */
export function samlRoutes(deps: SamlFlowDeps & { issuer: string }): Router {
  const router = express.Router();

  router.get('/federation/:alias/saml/metadata', async (req: Request, res: Response) => {
    const xml = await serviceProviderMetadata(deps, aliasOf(req));
    res.set('cache-control', 'public, max-age=300').type('application/samlmetadata+xml').send(xml);
  });

  router.post('/federation/:alias/saml/acs', samlForm, async (req: Request, res: Response) => {
    res.set('cache-control', 'no-store');
    const alias = aliasOf(req);
    const params = formFields(req.body);
    const input = { url: new URL(req.originalUrl, deps.issuer), params };
    const relayState = params.RelayState;
    if (relayState && LoginTransactionStore.isId(relayState)) {
      return res.redirect(303, await acceptUpstreamAnswer(deps, alias, relayState, input));
    }
    const next = await acceptUnsolicitedAnswer(deps, alias, input);
    rememberProvider(res, alias, deps.issuer.startsWith('https:'));
    res.redirect(303, next);
  });

  return router;
}
