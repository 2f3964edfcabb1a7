import type { Knex } from 'knex';

/** One change to record: who did what to which resource, before and after (never with secret values). */
export interface AuditEntry {
  actor: string;
  action: string;
  resourceType: string;
  resourceId: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  requestId: string | null;
}

/** A recorded change, with its sequence number and time. */
export interface AuditRecord extends AuditEntry {
  id: number;
  at: Date;
}

interface AuditRow {
  id: number | string;
  at: Date;
  actor: string;
  action: string;
  resource_type: string;
  resource_id: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  request_id: string | null;
}

const toRecord = (row: AuditRow): AuditRecord => ({
  id: Number(row.id),
  at: row.at,
  actor: row.actor,
  action: row.action,
  resourceType: row.resource_type,
  resourceId: row.resource_id,
  before: row.before,
  after: row.after,
  requestId: row.request_id,
});

/** The append-only `audit_log`: each change is recorded in the transaction that makes it. */
export class AuditLog {
  readonly #db: Knex;

  constructor(db: Knex) {
    this.#db = db;
  }

  /** Records a change; on a transaction's audit log (`tx.audit`) the entry exists exactly when the change does. */
  async record(entry: AuditEntry): Promise<void> {
    await this.#db('audit_log').insert({
      actor: entry.actor,
      action: entry.action,
      resource_type: entry.resourceType,
      resource_id: entry.resourceId,
      before: entry.before === null ? null : JSON.stringify(entry.before),
      after: entry.after === null ? null : JSON.stringify(entry.after),
      request_id: entry.requestId,
    });
  }

  /** Newest entries first, older than `beforeId` when given, filtered by resource and actor. */
  async list(options: { limit: number; beforeId?: number | undefined; resourceType?: string | undefined; resourceId?: string | undefined; actor?: string | undefined }): Promise<AuditRecord[]> {
    const q = this.#db('audit_log').orderBy('id', 'desc').limit(options.limit);
    if (options.beforeId !== undefined) q.where('id', '<', options.beforeId);
    if (options.resourceType) q.where('resource_type', options.resourceType);
    if (options.resourceId) q.where('resource_id', options.resourceId);
    if (options.actor) q.where('actor', options.actor);
    return (await q.select<AuditRow[]>()).map(toRecord);
  }
}
