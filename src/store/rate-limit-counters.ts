/**
 * `rate_limits`: the request counters of the rate limits, shared by every node. rate-limiter-flexible
 * keeps them through its PostgreSQL store; this repository gives that store its client, on the
 * database Realmgate already has, and purges counters whose window has ended.
 */
import type { Knex } from 'knex';

/** The table the counters live in (migration `20261202100000_rate_limits`). */
export const RATE_LIMIT_TABLE = 'rate_limits';

/** The part of a node-postgres client rate-limiter-flexible's PostgreSQL store calls. */
export interface CounterClient {
  query(q: { text: string; values?: unknown[] }): Promise<{ rows: unknown[]; rowCount: number }>;
}

/** The rate-limit counters in the shared database. */
export class RateLimitCounters {
  readonly #db: Knex;

  constructor(db: Knex) {
    this.#db = db;
  }

  /**
   * rate-limiter-flexible's PostgreSQL store speaks node-postgres (`{ text, values }` with `$n`
   * placeholders). This client runs the same statements through knex, so the store works on PGlite
   * (through the same `pg` driver) as on PostgreSQL, on the pool Realmgate already has.
   */
  client(): CounterClient {
    const db = this.#db;
    return {
      async query(q) {
        const bindings: unknown[] = [];
        const sql = q.text.replace(/\$(\d+)/g, (_, n: string) => {
          bindings.push(q.values?.[Number(n) - 1] ?? null);
          return '?';
        });
        const result = (await db.raw(sql, bindings as Knex.RawBinding[])) as { rows?: unknown[]; rowCount?: number; affectedRows?: number };
        const rows = result.rows ?? [];
        return { rows, rowCount: result.rowCount ?? result.affectedRows ?? rows.length };
      },
    };
  }

  /** Deletes counters whose window has ended (run by the periodic purge); returns how many. */
  async purgeExpired(): Promise<number> {
    return this.#db(RATE_LIMIT_TABLE).where('expire', '<', Date.now()).delete();
  }
}
