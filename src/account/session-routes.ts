/**
 * The account page's active sessions: every browser signed in to the account (when and from
 * where it started, how it signed in, which applications it signed in to; this browser marked),
 * and ending one of the others. Ending goes through the logout fan-out like every other way a
 * session ends (`endSessionByUidIn`): its grants that do not outlive logout are revoked and each
 * of its applications with a back-channel logout URI gets a logout token through the outbox, in
 * the transaction that deletes the session and writes the audit entry.
 */
import type { Request, Response, Router } from 'express';
import type express from 'express';
import type { Account } from '../store/accounts.ts';
import type { AccountSession } from '../store/login-sessions.ts';
import type { Services } from '../app.ts';
import { RealmgateError } from '../errors.ts';
import { endSessionByUidIn } from '../logout/session-end.ts';
import type { AccountNotice } from './mfa-routes.ts';

/** Most sessions the account page lists (newest first). */
export const ACCOUNT_SESSIONS_SHOWN = 50;

/** Engine session uids as oidc-provider makes them (nanoid, url-safe alphabet). */
const SESSION_UID = /^[A-Za-z0-9_-]{10,64}$/;

/** What the session routes get from the account page. */
export interface SessionPageHelpers {
  form: express.RequestHandler;
  requireSignedIn(req: Request, res: Response): Promise<{ sessionUid: string; account: Account }>;
  render(res: Response, who: { sessionUid: string; account: Account }, notice?: AccountNotice, status?: number): Promise<void>;
}

/** A minute-precision UTC time, as the page shows it. */
const shownTime = (at: Date) => `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

/** The sessions part of the account page's view. */
export async function sessionsView(services: Pick<Services, 'loginSessions' | 'clients'>, who: { sessionUid: string; account: Account }, displayName: (alias: string) => string) {
  const sessions: AccountSession[] = await services.loginSessions.listForAccount(who.account.id, ACCOUNT_SESSIONS_SHOWN);
  const names = await services.clients.displayNames([...new Set(sessions.flatMap((s) => s.clientIds))]);
  return {
    sessions: sessions.map((s) => ({
      id: s.sessionUid,
      current: s.sessionUid === who.sessionUid,
      started_at: shownTime(s.createdAt),
      ip: s.origin.ip,
      user_agent: s.origin.userAgent,
      signed_in_with: s.idp === 'local' ? 'Password' : displayName(s.idp),
      second_factor: s.amr.includes('mfa'),
      applications: s.clientIds.map((id) => names.get(id) ?? id),
    })),
  };
}

/** Adds `POST /account/sessions/end`: ends one of the account's other sessions. */
export function registerSessionRoutes(router: Router, services: Services, helpers: SessionPageHelpers): void {
  const { store, loginSessions, logger } = services;

  router.post('/account/sessions/end', helpers.form, async (req, res) => {
    const who = await helpers.requireSignedIn(req, res);
    const uid = String((req.body as Record<string, unknown>).session_id ?? '');
    if (!SESSION_UID.test(uid)) throw new RealmgateError('bad_request', { detail: 'session end without a session id' });
    if (uid === who.sessionUid) {
      logger.warn({ account_id: who.account.id }, 'account page asked to end its own session');
      return helpers.render(res, who, { error: 'This is the session you are using now. To end it, sign out. Nothing changed.' }, 400);
    }
    const record = await loginSessions.record(uid);
    const ended = record?.accountId !== who.account.id
      ? undefined
      : await store.transaction(async (tx) => {
          const result = await endSessionByUidIn(tx, uid, 'account');
          if (!result) return undefined;
          // The login row and the engine's session name the same account; if they ever disagree, nothing is ended.
          if (result.accountId !== who.account.id) throw new RealmgateError('bad_request', { detail: `session ${uid} belongs to another account than its login row says` });
          await tx.loginSessions.delete(uid);
          await tx.audit.record(
            {
              actor: `account:${who.account.id}`,
              action: 'end',
              resourceType: 'session',
              resourceId: uid,
              before: { id: uid, account_id: who.account.id, idp: record.idp, applications: result.clients.map((c) => c.clientId) },
              after: null,
              requestId: (res.locals.requestId as string | undefined) ?? null,
            },
          );
          return result;
        });
    if (!ended) {
      logger.warn({ account_id: who.account.id, session_uid: uid }, 'account page asked to end a session that is not one of its account\'s');
      return helpers.render(res, who, { error: 'That session is not signed in to your account any more. Nothing changed.' }, 404);
    }
    logger.info({ account_id: who.account.id, session_uid: uid, notified: ended.notified }, 'session ended from the account page');
    return helpers.render(res, who, { message: ended.notified.length ? `The session was ended, and ${ended.notified.length === 1 ? 'its application was' : `its ${ended.notified.length} applications were`} told.` : 'The session was ended.' });
  });
}
