import type { Knex } from 'knex';
import type { ReplayStore } from '../../providers/types.ts';

/** The shared replay store: one row per one-time id, in PostgreSQL or PGlite, so every node sees it. */
export class ReplayGuardRepository implements ReplayStore {
  readonly #db: Knex;

  constructor(db: Knex) {
    this.#db = db;
  }

  /**
   * Inserts `key` until `expiresAt` in one statement; a row already there counts as a replay
   * unless it has expired, in which case it is taken over. True when the key is new.
   */
  async rememberOnce(key: string, expiresAt: Date): Promise<boolean> {
    const rows = await this.#db.raw<{ rows: unknown[] }>(
      `insert into replay_guard (key, expires_at) values (?, ?)
       on conflict (key) do update set expires_at = excluded.expires_at
       where replay_guard.expires_at <= now()
       returning key`,
      [key, expiresAt],
    );
    return rows.rows.length === 1;
  }

  /** Deletes expired rows; returns how many (counted from `returning`, which PostgreSQL and PGlite report alike). */
  async purgeExpired(): Promise<number> {
    const result = await this.#db.raw<{ rows: unknown[] }>('delete from replay_guard where expires_at <= now() returning key');
    return result.rows.length;
  }
}
