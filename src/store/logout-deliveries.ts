/**
 * `logout_deliveries`, the logout outbox: back-channel logout notices queued in the transaction
 * that ends their session, claimed by any node's delivery job, retried until acknowledged or
 * dead-lettered.
 */
import type { Knex } from 'knex';
import type { DeliveryFilter, DeliveryStatus, LogoutDelivery, LogoutNotice, LogoutReason } from '../logout/outbox.ts';

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

/**
 * The logout outbox (`logout_deliveries`): notices are written in the transaction that ends their
 * session, and claimed by any node's delivery job with `FOR UPDATE SKIP LOCKED`, so each is
 * delivered at least once even when a node stops half-way.
 */
export class LogoutDeliveryRepository {
  readonly #db: Knex;
  readonly #retryPeriodSeconds: number;
  readonly #listeners: (() => void)[];

  /**
   * `retryPeriodSeconds`: how long a delivery is retried before it is dead-lettered (`failed`).
   * `listeners` are shared by the repositories of one store (its own and each transaction's), so
   * a listener added on the store hears of notices queued in any of its transactions.
   */
  constructor(db: Knex, options: { retryPeriodSeconds: number; listeners?: (() => void)[] }) {
    this.#db = db;
    this.#retryPeriodSeconds = options.retryPeriodSeconds;
    this.#listeners = options.listeners ?? [];
  }

  /** Calls `listener` after notices were queued and committed (the node then delivers at once instead of at its next run). */
  onEnqueued(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Adds notices (in the transaction this repository runs on, so they exist exactly when the
   * session's end does); a notice for a (session, client, sid) already queued is not repeated.
   * The listeners hear of them once that transaction commits.
   */
  async enqueue(notices: readonly LogoutNotice[]): Promise<void> {
    if (!notices.length) return;
    const committed = (this.#db as unknown as Partial<Knex.Transaction>).executionPromise ?? Promise.resolve();
    committed.then(() => this.#listeners.forEach((l) => l()), () => undefined);
    const giveUpAt = new Date(Date.now() + this.#retryPeriodSeconds * 1000);
    await this.#db('logout_deliveries')
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
  async retry(id: number): Promise<LogoutDelivery | undefined> {
    const [row] = await this.#db('logout_deliveries')
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
