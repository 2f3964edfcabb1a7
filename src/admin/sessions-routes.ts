import type { Router } from 'express';
import { z } from 'zod';
import { endSessionByUidIn } from '../logout/session-end.ts';
import type { LoginSessionRecord } from '../store/login-sessions.ts';
import { actorOf, type AdminDeps, type ChangeActor } from './context.ts';
import { deliveryJson } from './logout-deliveries-routes.ts';
import { pageQuery, toPage } from './paging.ts';
import { invalidFields, notFound } from './problems.ts';
import { param, parseQuery } from './request.ts';

const listQuery = z.strictObject({
  ...pageQuery,
  account_id: z.uuid({ error: 'must be an account id (the sub of its tokens, a UUID)' }).optional(),
  idp: z.string().optional(),
});

const bulkQuery = z.strictObject({
  account_id: z.uuid({ error: 'must be an account id (the sub of its tokens, a UUID)' }).optional(),
  idp: z.string().min(1, 'must not be empty').optional(),
});

/** Sessions read per page while ending many at once. */
const BULK_PAGE = 100;

/** A login session as the admin API shows it. */
export function sessionJson(session: LoginSessionRecord): Record<string, unknown> {
  return {
    id: session.sessionUid,
    account_id: session.accountId,
    idp: session.idp,
    amr: session.amr,
    upstream: session.upstream
      ? {
          issuer: session.upstream.issuer ?? null,
          subject: session.upstream.subject ?? null,
          session_id: session.upstream.sessionId ?? null,
          name_id: session.upstream.nameId ?? null,
          name_id_format: session.upstream.nameIdFormat ?? null,
          session_index: session.upstream.sessionIndex ?? null,
        }
      : null,
    created_at: session.createdAt.toISOString(),
    expires_at: session.expiresAt.toISOString(),
    started_from: session.origin.ip || session.origin.userAgent ? { ip: session.origin.ip, user_agent: session.origin.userAgent } : null,
  };
}

/**
 * Ends a session as a sign-out would, in one transaction: grants that do not outlive logout are
 * revoked with their tokens, the engine's session and the login row go, a back-channel logout
 * notice is queued for each application of the session (delivered by the outbox), and the audit
 * entry is written. False when there was no such session.
 */
async function endSession(deps: AdminDeps, actor: ChangeActor, uid: string): Promise<boolean> {
  const { loginSessions, store, logger } = deps.services;
  const record = await loginSessions.get(uid);
  const ended = await store.transaction(async (tx) => {
    const result = await endSessionByUidIn(tx, uid, 'admin');
    const deleted = await tx.loginSessions.delete(uid);
    if (!result && !deleted) return undefined;
    await tx.audit.record(
      {
        ...actor,
        action: 'end',
        resourceType: 'session',
        resourceId: uid,
        before: { id: uid, account_id: record?.accountId ?? result?.accountId ?? null, idp: record?.idp ?? null },
        after: null,
      },
    );
    return result ?? { ended: false, notified: [], clients: [] };
  });
  if (!ended) return false;
  logger.info({ session_uid: uid, notified: ended.notified }, 'session ended through the admin API');
  return true;
}

/**
 * `sessions` (login sessions, filtered by account or provider), `GET sessions/:id` with its logout
 * deliveries, `DELETE sessions/:id` to end one, and `DELETE sessions?account_id=|idp=` to end
 * every session of an account or of a provider (the kill switch for a compromised IdP).
 */
export function registerSessionRoutes(router: Router, deps: AdminDeps): void {
  router.get('/sessions', async (req, res) => {
    const query = parseQuery(listQuery, req);
    const rows = await deps.services.loginSessions.list({
      limit: query.limit + 1,
      afterUid: query.cursor === undefined ? undefined : String(query.cursor),
      accountId: query.account_id,
      idp: query.idp,
    });
    res.json(toPage(rows, query.limit, (s) => s.sessionUid, sessionJson));
  });

  router.delete('/sessions', async (req, res) => {
    const query = parseQuery(bulkQuery, req);
    if (!query.account_id && !query.idp) {
      throw invalidFields([{ field: 'account_id', message: 'or idp is required: name the account or the provider whose sessions to end' }]);
    }
    const actor = actorOf(res);
    let ended = 0;
    // Each session ends in its own transaction; ended sessions drop out of the list, so read from the start again.
    for (;;) {
      const page = await deps.services.loginSessions.list({ limit: BULK_PAGE, accountId: query.account_id, idp: query.idp });
      for (const session of page) if (await endSession(deps, actor, session.sessionUid)) ended++;
      if (page.length < BULK_PAGE) break;
    }
    deps.services.logger.info({ account_id: query.account_id, idp: query.idp, ended }, 'sessions ended in bulk through the admin API');
    res.json({ ended });
  });

  router.get('/sessions/:id', async (req, res) => {
    const uid = param(req, 'id');
    const [active] = await deps.services.loginSessions.list({ limit: 1, afterUid: undefined, uid });
    const deliveries = await deps.services.outbox.list({ sessionUid: uid, limit: 1000 });
    const record = active ?? (await deps.services.loginSessions.record(uid));
    if (!record && !deliveries.length) throw notFound('session', uid);
    res.json({
      ...(record ? sessionJson(record) : { id: uid }),
      active: !!active,
      logout_deliveries: deliveries.map(deliveryJson),
    });
  });

  router.delete('/sessions/:id', async (req, res) => {
    const uid = param(req, 'id');
    if (!(await endSession(deps, actorOf(res), uid))) throw notFound('session', uid);
    res.status(204).end();
  });
}
