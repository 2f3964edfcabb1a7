import type { Knex } from 'knex';

/**
 * Counts failed sign-ins per key (`account:<email>`, `ip:<address>`) in the database, so every
 * node agrees. Each key prefix has its own limit.
 */
export class LoginThrottle {
  readonly #db: Knex;
  readonly #limits: { account: number; ip: number };
  readonly #windowSeconds: number;

  constructor(db: Knex, options: { maxFailuresPerAccount: number; maxFailuresPerIp: number; windowSeconds: number }) {
    this.#db = db;
    this.#limits = { account: options.maxFailuresPerAccount, ip: options.maxFailuresPerIp };
    this.#windowSeconds = options.windowSeconds;
  }

  /** Seconds until any of `keys` may try again, or 0 when none is throttled. */
  async retryAfterSeconds(keys: string[]): Promise<number> {
    const rows = await this.#db('login_throttle')
      .whereIn('key', keys)
      .where('expires_at', '>', this.#db.fn.now())
      .where((q) =>
        q.where((a) => a.where('key', 'like', 'account:%').where('failures', '>=', this.#limits.account))
          .orWhere((i) => i.where('key', 'like', 'ip:%').where('failures', '>=', this.#limits.ip)),
      )
      .select<{ expires_at: Date }[]>('expires_at');
    const latest = Math.max(0, ...rows.map((r) => r.expires_at.getTime()));
    return latest ? Math.ceil((latest - Date.now()) / 1000) : 0;
  }

  /** Counts one failure against each key; a window starts with the first failure. */
  async recordFailure(keys: string[]): Promise<void> {
    const window = `${this.#windowSeconds} seconds`;
    for (const key of keys) {
      await this.#db.raw(
        `insert into login_throttle (key, failures, window_started_at, expires_at)
         values (?, 1, now(), now() + ?::interval)
         on conflict (key) do update set
           failures = case when login_throttle.expires_at <= now() then 1 else login_throttle.failures + 1 end,
           window_started_at = case when login_throttle.expires_at <= now() then now() else login_throttle.window_started_at end,
           expires_at = case when login_throttle.expires_at <= now() then now() + ?::interval else login_throttle.expires_at end`,
        [key, window, window],
      );
    }
  }

  /** Forgets failures for `keys` after a successful sign-in. */
  async reset(keys: string[]): Promise<void> {
    await this.#db('login_throttle').whereIn('key', keys).delete();
  }

  /** Deletes rows whose window has ended. */
  async purgeExpired(): Promise<number> {
    return this.#db('login_throttle').where('expires_at', '<', this.#db.fn.now()).delete();
  }
}
