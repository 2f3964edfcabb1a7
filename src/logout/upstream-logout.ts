/**
 * Upstream logout matching: which local sessions came from the upstream session an IdP says has
 * ended, and ending them (each with its applications' notices, reason `upstream_logout`).
 */
import type { Knex } from 'knex';
import type { UpstreamLogoutMatch } from '../../providers/types.ts';
import type { LogoutOutbox } from './outbox.ts';
import { endSessionByUid, type SessionEndedByUid } from './session-end.ts';

/** The signed-in sessions of provider `alias` that `match` names; an empty match names nothing. */
export async function matchingSessions(db: Knex, alias: string, match: UpstreamLogoutMatch): Promise<string[]> {
  if (!match.sessionId && !match.subject && !match.nameId) return [];
  const q = db('login_sessions')
    .where({ idp: alias, upstream_issuer: match.issuer })
    .whereExists((s) => s.select(db.raw('1')).from('oidc_payloads').where('oidc_payloads.model', 'Session').whereRaw('oidc_payloads.uid = login_sessions.session_uid'));
  if (match.sessionId) q.where('upstream_session_id', match.sessionId);
  if (match.subject) q.where('upstream_subject', match.subject);
  if (match.nameId) {
    const { value, format, nameQualifier, spNameQualifier } = match.nameId;
    q.where('name_id', value);
    // Absent attributes match absent ones only (SAML core §3.7.3.2: the NameID must be identical).
    for (const [column, v] of [['name_id_format', format], ['name_qualifier', nameQualifier], ['sp_name_qualifier', spNameQualifier]] as const) {
      if (v === undefined) q.whereNull(column);
      else q.where(column, v);
    }
  }
  if (match.sessionIndexes?.length) q.whereIn('session_index', match.sessionIndexes);
  return (await q.orderBy('session_uid').select<{ session_uid: string }[]>('session_uid')).map((r) => r.session_uid);
}

/** Ends every local session `match` names at provider `alias`; returns what each ending did. */
export async function endUpstreamSessions(deps: { db: Knex; outbox: LogoutOutbox }, alias: string, match: UpstreamLogoutMatch): Promise<SessionEndedByUid[]> {
  const ended: SessionEndedByUid[] = [];
  for (const uid of await matchingSessions(deps.db, alias, match)) {
    const result = await endSessionByUid(deps.db, deps.outbox, uid, 'upstream_logout');
    if (result?.ended) ended.push(result);
  }
  return ended;
}
