/**
 * The token engine's sessions and grants as logout ends them: the `Session` and `Grant` rows of
 * `oidc_payloads` (which the engine itself reads and writes through its adapter), locked, read
 * and deleted here so that a session's end, its revoked grants and its notices share one
 * transaction.
 */
import type { Knex } from 'knex';
import type { EndingSession } from '../logout/session-end.ts';
import { purgeExpiredPayloads } from './oidc-adapter.ts';

interface SessionRow {
  uid: string;
  payload: EndingSession;
}

/** The session of a row, named by its row's uid when its payload has none. */
const toSession = (row: SessionRow): EndingSession => ({ ...row.payload, uid: row.payload.uid ?? row.uid });

/** Engine sessions and grants, for ending them. */
export class EngineSessionRepository {
  readonly #db: Knex;

  constructor(db: Knex) {
    this.#db = db;
  }

  /** The session of `uid`, locked until the transaction ends; undefined when there is none. */
  async lock(uid: string): Promise<EndingSession | undefined> {
    const row = await this.#db('oidc_payloads').where({ model: 'Session', uid }).forUpdate().first<SessionRow | undefined>('uid', 'payload');
    return row && { ...row.payload, uid };
  }

  /** One session past its expiry, locked; sessions another node holds are skipped. Undefined when none is left. */
  async lockNextExpired(): Promise<EndingSession | undefined> {
    const row = await this.#db('oidc_payloads')
      .where({ model: 'Session' })
      .where('expires_at', '<', this.#db.fn.now())
      .forUpdate()
      .skipLocked()
      .first<SessionRow | undefined>('uid', 'payload');
    return row && toSession(row);
  }

  /** Every session signed in to `accountId`, locked. */
  async lockForAccount(accountId: string): Promise<EndingSession[]> {
    const rows = await this.#db('oidc_payloads')
      .where({ model: 'Session' })
      .whereRaw("payload->>'accountId' = ?", [accountId])
      .forUpdate()
      .select<SessionRow[]>('uid', 'payload');
    return rows.map(toSession);
  }

  /** Deletes the Session rows of `uid`; false when it was already gone. */
  async delete(uid: string): Promise<boolean> {
    return (await this.#db('oidc_payloads').where({ model: 'Session', uid }).delete()) > 0;
  }

  /** Revokes grants: each Grant row and every token issued under it. */
  async revokeGrants(grantIds: readonly string[]): Promise<void> {
    if (!grantIds.length) return;
    await this.#db('oidc_payloads')
      .whereIn('grant_id', grantIds)
      .orWhere((q) => q.where('model', 'Grant').whereIn('id', grantIds))
      .delete();
  }

  /** Deletes every engine payload past its expiry (codes, tokens, grants, sessions already ended); returns how many. */
  purgeExpired(): Promise<number> {
    return purgeExpiredPayloads(this.#db);
  }
}
