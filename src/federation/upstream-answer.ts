import type { Request, RequestHandler } from 'express';
import passport from 'passport';
import type { CallbackInput } from '../../providers/types.ts';
import { ALIAS_PATTERN } from '../admin/provider-json.ts';
import { RealmgateError } from '../errors.ts';

/** Provider aliases in paths: the admin API's own pattern, case-insensitive so a wrong case gets a clear 404. */
export const ALIAS = new RegExp(ALIAS_PATTERN.source, 'i');

/** Strips a parsed query or form body down to its string fields. */
export function stringParams(source: unknown): Record<string, string> {
  return Object.fromEntries(Object.entries((source ?? {}) as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** The provider alias in the path, or a 404 for a malformed one. */
export function aliasParam(req: Request): string {
  const alias = String(req.params.alias ?? '');
  if (!ALIAS.test(alias)) throw new RealmgateError('not_found', { detail: `malformed provider alias ${JSON.stringify(alias.slice(0, 80))}` });
  return alias;
}

/** Validates an upstream answer for a login transaction and returns where the browser goes next. */
export type AcceptAnswer = (alias: string, transactionId: string | undefined, input: CallbackInput) => Promise<string>;

const STRATEGY = 'realmgate-upstream';

/**
 * The one Passport strategy for every upstream answer, whatever the protocol: it reads the
 * provider alias from the path and the answer from the query or form body, and hands them to the
 * neutral flow, which resolves the provider per request (cached by version). The transaction id
 * travels as OAuth `state` or SAML `RelayState`. Nothing is registered per provider.
 */
class UpstreamAnswerStrategy extends passport.Strategy {
  override name = STRATEGY;
  // Plain fields, not #private: Passport runs each request on Object.create(strategy).
  readonly issuer: string;
  readonly transactionParam: string;
  readonly accept: AcceptAnswer;

  constructor(issuer: string, transactionParam: string, accept: AcceptAnswer) {
    super();
    this.issuer = issuer;
    this.transactionParam = transactionParam;
    this.accept = accept;
  }

  override authenticate(req: Request): void {
    const actions = this as unknown as passport.StrategyCreatedStatic;
    let alias: string;
    try {
      alias = aliasParam(req);
    } catch (error) {
      return actions.error(error as Error);
    }
    const params = stringParams(req.method === 'POST' ? req.body : req.query);
    const input = { url: new URL(req.originalUrl, this.issuer), params };
    this.accept(alias, params[this.transactionParam], input).then(
      (next) => actions.redirect(next, 303),
      (error: unknown) => actions.error(error as Error),
    );
  }
}

/**
 * Express middleware running the upstream-answer strategy through a Passport instance of its own;
 * `transactionParam` names the parameter carrying the transaction id (`state`, `RelayState`).
 */
export function upstreamAnswerHandler(issuer: string, transactionParam: 'state' | 'RelayState', accept: AcceptAnswer): RequestHandler {
  const authenticator = new passport.Authenticator();
  authenticator.use(STRATEGY, new UpstreamAnswerStrategy(issuer, transactionParam, accept));
  return authenticator.authenticate(STRATEGY, { session: false }) as RequestHandler;
}
