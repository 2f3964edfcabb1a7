import type { RequestHandler } from 'express';
import type { ClientRepository } from '../store/clients.ts';
import type { TokenEngine } from '../token-server/engine.ts';
import { RealmgateError } from '../errors.ts';

/** The scope an access token needs for the admin API. */
export const ADMIN_SCOPE = 'admin';

const REALM = 'Bearer realm="realmgate-admin"';

/** The subset of oidc-provider's token models the check reads. */
interface IssuedToken {
  clientId?: string | undefined;
  scope?: string | undefined;
  isExpired: boolean;
  jkt?: string | undefined;
  'x5t#S256'?: string | undefined;
}

function unauthorized(detail: string, error?: string): RealmgateError {
  const challenge = error ? `${REALM}, error="${error}", error_description="${detail.replace(/"/g, "'")}"` : REALM;
  return new RealmgateError('unauthorized', { safeMessage: detail, headers: { 'www-authenticate': challenge } });
}

function insufficientScope(detail: string): RealmgateError {
  return new RealmgateError('forbidden', { safeMessage: detail, headers: { 'www-authenticate': `${REALM}, error="insufficient_scope", scope="${ADMIN_SCOPE}"` } });
}

/** Finds an opaque access token issued by this node's engine: client credentials first, then user tokens. */
async function findToken(engine: TokenEngine, value: string): Promise<IssuedToken | undefined> {
  const { ClientCredentials, AccessToken } = engine.provider;
  return ((await ClientCredentials.find(value)) ?? (await AccessToken.find(value))) as IssuedToken | undefined;
}

/**
 * Accepts `Authorization: Bearer <token>` where the token was issued by Realmgate, is unexpired,
 * carries the `admin` scope and belongs to a client that still exists and is registered with the
 * `admin` scope in its `scope` metadata (so no client gets admin by default). Stores the token's
 * client_id as the actor of every change. Sender-constrained (DPoP, mTLS) tokens are refused:
 * the admin API does not verify proofs of possession.
 */
export function requireAdminToken(deps: { engine: TokenEngine; clients: ClientRepository }): RequestHandler {
  return async (req, res, next) => {
    const header = req.get('authorization');
    if (!header) throw unauthorized('An access token with the admin scope is required.');
    const match = /^Bearer +([\w.~+/-]+=*) *$/i.exec(header);
    if (!match) throw unauthorized('The Authorization header must be "Bearer <access token>".', 'invalid_request');
    const token = await findToken(deps.engine, match[1]!);
    if (!token || token.isExpired || !token.clientId) throw unauthorized('The access token is unknown, expired or revoked.', 'invalid_token');
    if (token.jkt || token['x5t#S256']) throw unauthorized('Sender-constrained access tokens are not accepted here.', 'invalid_token');
    const client = await deps.clients.get(token.clientId);
    if (!client) throw unauthorized('The client the access token was issued to no longer exists.', 'invalid_token');
    if (!(token.scope ?? '').split(' ').includes(ADMIN_SCOPE)) throw insufficientScope('The access token lacks the admin scope.');
    // Admin is opt-in per client: the engine already refuses the scope to others; check again here.
    if (!String(client.metadata.scope ?? '').split(' ').includes(ADMIN_SCOPE)) {
      throw insufficientScope(`The client ${token.clientId} is not registered with the admin scope.`);
    }
    res.locals.adminActor = token.clientId;
    next();
  };
}
