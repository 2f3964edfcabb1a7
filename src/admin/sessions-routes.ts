import type { Router } from 'express';
import { z } from 'zod';
import { endEngineSession } from '../token-server/end-session.ts';
import type { LoginSessionRecord } from '../token-server/login-sessions.ts';
import { actorOf, type AdminDeps, type ChangeActor } from './context.ts';
import { pageQuery, toPage } from './paging.ts';
import { notFound } from './problems.ts';
import { param, parseQuery } from './request.ts';

const listQuery = z.strictObject({
  ...pageQuery,
  account_id: z.uuid({ error: 'must be an account id (the sub of its tokens, a UUID)' }).optional(),
  idp: z.string().optional(),
});

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
          session_index: session.upstream.sessionIndex ?? null,
        }
      : null,
    created_at: session.createdAt.toISOString(),
    expires_at: session.expiresAt.toISOString(),
  };
}

/**
 * Ends a session as a sign-out would: the engine's session goes first, telling each application
 * of the session over the back channel and revoking grants that do not outlive logout (so a
 * failure later leaves nothing signed in, and a retry finishes the job); then the login row and
 * the audit entry in one transaction.
 */
async function endSession(deps: AdminDeps, actor: ChangeActor, uid: string): Promise<void> {
  const { engine, loginSessions, db, logger } = deps.services;
  const record = await loginSessions.get(uid);
  const ended = await endEngineSession(engine, uid, logger);
  if (!record && !ended) throw notFound('session', uid);
  await db.transaction(async (trx) => {
    await loginSessions.delete(uid, trx);
    await deps.audit.record(
      {
        ...actor,
        action: 'end',
        resourceType: 'session',
        resourceId: uid,
        before: { id: uid, account_id: record?.accountId ?? ended?.accountId ?? null, idp: record?.idp ?? null },
        after: null,
      },
      trx,
    );
  });
  logger.info({ session_uid: uid, notified: ended?.notified ?? [], failed: ended?.failed ?? [] }, 'session ended through the admin API');
}

/** `sessions` (login sessions, filtered by account or provider) and `DELETE sessions/:id` to end one. */
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

  router.delete('/sessions/:id', async (req, res) => {
    await endSession(deps, actorOf(res), param(req, 'id'));
    res.status(204).end();
  });
}
