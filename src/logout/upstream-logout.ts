/**
 * Upstream logout: ending the local sessions that came from the upstream session an IdP says has
 * ended (each with its applications' notices, reason `upstream_logout`). Which sessions those are
 * is the login sessions' question (`LoginSessionRepository.matchingUpstream`).
 */
import type { UpstreamLogoutMatch } from '../../providers/types.ts';
import type { Store } from '../store/store.ts';
import { endSessionByUid, type SessionEndedByUid } from './session-end.ts';

/** Ends every local session `match` names at provider `alias`, each in its own transaction; returns what each ending did. */
export async function endUpstreamSessions(deps: { store: Store }, alias: string, match: UpstreamLogoutMatch): Promise<SessionEndedByUid[]> {
  const ended: SessionEndedByUid[] = [];
  for (const uid of await deps.store.loginSessions.matchingUpstream(alias, match)) {
    const result = await endSessionByUid(deps.store, uid, 'upstream_logout');
    if (result?.ended) ended.push(result);
  }
  return ended;
}
