import type { Knex } from 'knex';

/** Where a delivery stands: waiting (or retrying), acknowledged by the application, or given up on. */
export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** Why the session of a delivery ended. */
/** How a session ended: the application's logout, the upstream's, the admin API, expiry, or its person on the account page. */
export type LogoutReason = 'rp_logout' | 'upstream_logout' | 'admin' | 'expired' | 'account';

/** One application to tell, over its back channel, that one session ended. */
export interface LogoutNotice {
  sessionUid: string;
  clientId: string;
  /** The `sub` of the logout token: the local account id. */
  accountId: string;
  /** The `sid` the application knows the session by. */
  sid: string | undefined;
  reason: LogoutReason;
}

/** A stored delivery with its progress. */
export interface LogoutDelivery extends LogoutNotice {
  id: number;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date;
  giveUpAt: Date;
  createdAt: Date;
  updatedAt: Date;
  deliveredAt: Date | undefined;
  lastError: string | undefined;
}

interface DeliveryRow {
  id: number | string;
  session_uid: string;
  client_id: string;
  account_id: string;
  sid: string | null;
  reason: LogoutReason;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date;
  give_up_at: Date;
  created_at: Date;
  updated_at: Date;
  delivered_at: Date | null;
  last_error: string | null;
}

const toDelivery = (row: DeliveryRow): LogoutDelivery => ({
  id: Number(row.id),
  sessionUid: row.session_uid,
  clientId: row.client_id,
  accountId: row.account_id,
  sid: row.sid ?? undefined,
  reason: row.reason,
  status: row.status,
  attempts: row.attempts,
  nextAttemptAt: row.next_attempt_at,
  giveUpAt: row.give_up_at,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  deliveredAt: row.delivered_at ?? undefined,
  lastError: row.last_error ?? undefined,
});

/** Filters of `list`. */
export interface DeliveryFilter {
  status?: DeliveryStatus | undefined;
  clientId?: string | undefined;
  sessionUid?: string | undefined;
}

/**
 * The logout outbox (`logout_deliveries`): notices are written in the transaction that ends their
 * session, and claimed by any node's delivery job with `FOR UPDATE SKIP LOCKED`, so each is
 * delivered at least once even when a node stops half-way.
 */
export class LogoutOutbox {
  readonly #db: Knex;
  readonly #retryPeriodSeconds: number;
  readonly #listeners: (() => void)[] = [];

  /** `retryPeriodSeconds`: how long a delivery is retried before it is dead-lettered (`failed`). */
  constructor(db: Knex, options: { retryPeriodSeconds: number }) {
    this.#db = db;
    this.#retryPeriodSeconds = options.retryPeriodSeconds;
  }

  /** Calls `listener` after notices were queued and committed (the node then delivers at once instead of at its next run). */
  onEnqueued(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /** Adds notices inside `trx`; a notice for a (session, client, sid) already queued is not repeated. */
  async enqueue(trx: Knex, notices: readonly LogoutNotice[]): Promise<void> {
    if (!notices.length) return;
    const committed = (trx as unknown as Partial<Knex.Transaction>).executionPromise ?? Promise.resolve();
    committed.then(() => this.#listeners.forEach((l) => l()), () => undefined);
    const giveUpAt = new Date(Date.now() + this.#retryPeriodSeconds * 1000);
    await trx('logout_deliveries')
      .insert(notices.map((n) => ({
        session_uid: n.sessionUid,
        client_id: n.clientId,
        account_id: n.accountId,
        sid: n.sid ?? null,
        reason: n.reason,
        give_up_at: giveUpAt,
      })))
      // Already queued for this (session, application, sid): at least once is enough.
      .onConflict()
      .ignore();
  }

  /**
   * Claims up to `limit` due deliveries for `leaseSeconds`: their next attempt moves past the lease,
   * so no other node takes them meanwhile, and a node that dies holding them only delays them.
   */
  async claimDue(limit: number, leaseSeconds: number): Promise<LogoutDelivery[]> {
    const result = await this.#db.raw<{ rows: DeliveryRow[] }>(
      `update logout_deliveries set next_attempt_at = now() + make_interval(secs => ?), attempts = attempts + 1, updated_at = now()
       where id in (
         select id from logout_deliveries
         where status = 'pending' and next_attempt_at <= now()
         order by next_attempt_at
         limit ?
         for update skip locked)
       returning *`,
      [leaseSeconds, limit],
    );
    return result.rows.map(toDelivery);
  }

  /** Records that the application acknowledged the logout token. */
  async recordDelivered(id: number): Promise<void> {
    await this.#db('logout_deliveries')
      .where({ id, status: 'pending' })
      .update({ status: 'delivered', delivered_at: this.#db.fn.now(), updated_at: this.#db.fn.now(), last_error: null });
  }

  /** Records a failed attempt: retried at `retryAt`, or dead-lettered when `retryAt` is past the retry period. Returns the new status. */
  async recordFailure(id: number, error: string, retryAt: Date): Promise<DeliveryStatus> {
    const [row] = await this.#db('logout_deliveries')
      .where({ id, status: 'pending' })
      .update({
        status: this.#db.raw("case when give_up_at < ? then 'failed' else 'pending' end", [retryAt]),
        next_attempt_at: retryAt,
        last_error: error.slice(0, 1000),
        updated_at: this.#db.fn.now(),
      })
      .returning<{ status: DeliveryStatus }[]>('status');
    return row?.status ?? 'pending';
  }

  /** Deliveries in id order after `afterId`, filtered. */
  async list(filter: DeliveryFilter & { limit: number; afterId?: number | undefined }): Promise<LogoutDelivery[]> {
    const q = this.#db('logout_deliveries').orderBy('id').limit(filter.limit);
    if (filter.afterId !== undefined) q.where('id', '>', filter.afterId);
    if (filter.status) q.where('status', filter.status);
    if (filter.clientId) q.where('client_id', filter.clientId);
    if (filter.sessionUid) q.where('session_uid', filter.sessionUid);
    return (await q.select<DeliveryRow[]>()).map(toDelivery);
  }

  /** One delivery, if it exists. */
  async get(id: number): Promise<LogoutDelivery | undefined> {
    const row = await this.#db('logout_deliveries').where({ id }).first<DeliveryRow | undefined>();
    return row && toDelivery(row);
  }

  /**
   * Queues a delivery again now, with a fresh retry period (a dead-lettered one after its
   * application is fixed, or a pending one sooner). A delivered one is sent again too: the
   * administrator asked. Undefined when there is no such delivery.
   */
  async retry(id: number, trx: Knex = this.#db): Promise<LogoutDelivery | undefined> {
    const [row] = await trx('logout_deliveries')
      .where({ id })
      .update({
        status: 'pending',
        next_attempt_at: this.#db.fn.now(),
        give_up_at: new Date(Date.now() + this.#retryPeriodSeconds * 1000),
        delivered_at: null,
        updated_at: this.#db.fn.now(),
      })
      .returning<DeliveryRow[]>('*');
    return row && toDelivery(row);
  }

  /** How many deliveries wait to be sent or retried. */
  async countPending(): Promise<number> {
    const [row] = await this.#db('logout_deliveries').where({ status: 'pending' }).count<{ n: number | string }[]>({ n: '*' });
    return Number(row?.n ?? 0);
  }

  /** Deletes settled deliveries (delivered or failed) last changed before `before`; returns how many. */
  async purgeSettled(before: Date): Promise<number> {
    return this.#db('logout_deliveries').whereIn('status', ['delivered', 'failed']).where('updated_at', '<', before).delete();
  }
}
