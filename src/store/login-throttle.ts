import type { Knex } from 'knex';

/**
 * How failed password sign-ins slow further attempts, per key (counted in the database, so every
 * node agrees):
 *
 * - `ip:<address>`: more than `maxFailuresPerIp` failures within the window block that address
 *   until the window ends (one source guessing across many accounts).
 * - `account-ip:<email>|<address>`: `maxFailuresPerAccount` failures for one account from one
 *   address block that pair until the window ends: the guesser is stopped, and the account's owner,
 *   who is elsewhere, is not.
 * - `account:<email>`: failures for one account from anywhere get a progressive delay instead of
 *   a lockout. From the `maxFailuresPerAccount`th failure on, the next attempt must wait
 *   1 s, 2 s, 4 s… doubling per failure, at most `maxDelaySeconds`. A distributed guesser is held to
 *   one guess per delay, and nobody can lock a known user out: the owner waits at most
 *   `maxDelaySeconds`. (Chosen over a CAPTCHA, which Realmgate does not have, and over a hard
 *   lockout, which turns every known email address into a denial-of-service target.)
 *
 * Attempts refused while a key is blocked are not counted, so hammering does not lengthen a block.
 */
export class LoginThrottle {
  readonly #db: Knex;
  readonly #limits: { account: number; ip: number };
  readonly #windowSeconds: number;
  readonly #maxDelaySeconds: number;

  constructor(db: Knex, options: { maxFailuresPerAccount: number; maxFailuresPerIp: number; windowSeconds: number; maxDelaySeconds?: number }) {
    this.#db = db;
    this.#limits = { account: options.maxFailuresPerAccount, ip: options.maxFailuresPerIp };
    this.#windowSeconds = options.windowSeconds;
    this.#maxDelaySeconds = options.maxDelaySeconds ?? 60;
  }

  /** The keys a password attempt for `email` from `ip` counts against. */
  static keysFor(email: string, ip: string): string[] {
    const account = email.trim().toLowerCase();
    return [`account:${account}`, `account-ip:${account}|${ip}`, `ip:${ip}`];
  }

  /** Seconds until any of `keys` may try again, or 0 when none is blocked. */
  async retryAfterSeconds(keys: string[]): Promise<number> {
    return (await this.standing(keys)).retryAfterSeconds;
  }

  /**
   * Where `keys` stand, in one read: seconds until any of them may try again (0 when none is
   * blocked), and which of them have failures counted in their window (what a success resets).
   */
  async standing(keys: string[]): Promise<{ retryAfterSeconds: number; counted: string[] }> {
    const rows = await this.#db('login_throttle')
      .whereIn('key', keys)
      .where('expires_at', '>', this.#db.fn.now())
      .select<{ key: string; blocked_until: Date | null; blocked: boolean }[]>('key', 'blocked_until', this.#db.raw('coalesce(blocked_until > now(), false) as blocked'));
    const latest = Math.max(0, ...rows.filter((r) => r.blocked).map((r) => new Date(r.blocked_until!).getTime()));
    return { retryAfterSeconds: latest ? Math.max(1, Math.ceil((latest - Date.now()) / 1000)) : 0, counted: rows.map((r) => r.key) };
  }

  /** Counts one failure against each key (a window starts with the first) and blocks the keys over their allowance. */
  async recordFailure(keys: string[]): Promise<void> {
    const window = `${this.#windowSeconds} seconds`;
    for (const key of keys) {
      const { rows } = (await this.#db.raw(
        `insert into login_throttle (key, failures, window_started_at, expires_at)
         values (?, 1, now(), now() + ?::interval)
         on conflict (key) do update set
           failures = case when login_throttle.expires_at <= now() then 1 else login_throttle.failures + 1 end,
           window_started_at = case when login_throttle.expires_at <= now() then now() else login_throttle.window_started_at end,
           expires_at = case when login_throttle.expires_at <= now() then now() + ?::interval else login_throttle.expires_at end,
           blocked_until = case when login_throttle.expires_at <= now() then null else login_throttle.blocked_until end
         returning failures`,
        [key, window, window],
      )) as { rows: { failures: number }[] };
      const failures = Number(rows[0]!.failures);
      const delaySeconds = this.#blockSeconds(key, failures);
      if (delaySeconds === 'window') {
        await this.#db('login_throttle').where({ key }).update({ blocked_until: this.#db.ref('expires_at') });
      } else if (delaySeconds > 0) {
        await this.#db('login_throttle').where({ key }).update({ blocked_until: this.#db.raw('now() + ?::interval', [`${delaySeconds} seconds`]) });
      }
    }
  }

  /** How long `key` is blocked after its `failures`th failure: 0, a number of seconds, or until its window ends. */
  #blockSeconds(key: string, failures: number): number | 'window' {
    if (key.startsWith('ip:')) return failures >= this.#limits.ip ? 'window' : 0;
    if (key.startsWith('account-ip:')) return failures >= this.#limits.account ? 'window' : 0;
    if (failures < this.#limits.account) return 0;
    return Math.min(2 ** Math.min(failures - this.#limits.account, 30), this.#maxDelaySeconds);
  }

  /** Forgets failures for `keys` after a successful sign-in (no statement when there are none). */
  async reset(keys: string[]): Promise<void> {
    if (!keys.length) return;
    await this.#db('login_throttle').whereIn('key', keys).delete();
  }

  /** Deletes rows whose window has ended. */
  async purgeExpired(): Promise<number> {
    return this.#db('login_throttle').where('expires_at', '<', this.#db.fn.now()).delete();
  }
}
