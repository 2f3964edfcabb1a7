/**
 * Write batching for the token engine's storage. One engine request saves several payloads (an
 * authorization resumes: the interaction is destroyed, the session and the code are saved), each
 * a round trip of its own. Inside `holdPayloadWrites` those writes are held, keyed by model and
 * id (the last write wins), reads of a held payload are answered from the batch, and everything is
 * sent as one statement when the work ends, before the response leaves. Outside it (jobs, the
 * CLI) the adapter writes straight through.
 *
 * Invariants: a held write is never dropped: the flush runs whether the work resolved or threw,
 * and a failed flush rejects, so the request that accepted the writes fails with it. Code that
 * writes `oidc_payloads` behind the adapter's back (ending a session, revoking a grant) calls
 * `flushPayloadWrites()` first, so a held save can never land after, and undo, that write.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Knex } from 'knex';
import type { AdapterPayload } from 'oidc-provider';

/** A payload saved in this batch, as it will be written. */
interface HeldUpsert {
  op: 'upsert';
  model: string;
  id: string;
  payload: AdapterPayload;
  expiresAt: Date | null;
  /** Consumed in this batch (after or before the save): written with `consumed_at` set. */
  consumed: boolean;
  /** Destroyed earlier in this batch: the stored row's `consumed_at` does not survive the save. */
  replaces: boolean;
}

type HeldWrite = HeldUpsert | { op: 'consume' | 'destroy'; model: string; id: string };

/** What the batch knows of one payload: nothing (ask the database), gone, or its held value. */
export type HeldState =
  | { known: false; consumed: boolean }
  | { known: true; payload: AdapterPayload | undefined };

const batches = new AsyncLocalStorage<PayloadBatch>();

const keyOf = (model: string, id: string) => `${model}\u0000${id}`;

/** The engine writes of one unit of work, held until `flush`. */
export class PayloadBatch {
  readonly #db: Knex;
  readonly #held = new Map<string, HeldWrite>();
  /** Writes of other tables that describe what the held payloads describe, sent in the same statement. */
  #alongside: StatementPart[] = [];
  /** The flush in flight: reads wait for it, so they never see the database before it lands. */
  #flushing: Promise<void> | undefined;

  constructor(db: Knex) {
    this.#db = db;
  }

  /** Holds a save of `model`/`id`, replacing any held write of it. */
  upsert(model: string, id: string, payload: AdapterPayload, expiresAt: Date | null): void {
    const before = this.#held.get(keyOf(model, id));
    const consumed = before?.op === 'consume' || (before?.op === 'upsert' && before.consumed);
    const replaces = before?.op === 'destroy' || (before?.op === 'upsert' && before.replaces);
    this.#held.set(keyOf(model, id), { op: 'upsert', model, id, payload: structuredClone(payload), expiresAt, consumed, replaces });
  }

  /** Holds marking `model`/`id` consumed. */
  consume(model: string, id: string): void {
    const before = this.#held.get(keyOf(model, id));
    if (before?.op === 'upsert') before.consumed = true;
    else if (!before) this.#held.set(keyOf(model, id), { op: 'consume', model, id });
  }

  /** Holds deleting `model`/`id`. */
  destroy(model: string, id: string): void {
    this.#held.set(keyOf(model, id), { op: 'destroy', model, id });
  }

  /** What this batch holds for `model`/`id`, waiting for a flush in flight first. */
  async state(model: string, id: string): Promise<HeldState> {
    await this.#flushing;
    const held = this.#held.get(keyOf(model, id));
    if (!held) return { known: false, consumed: false };
    if (held.op === 'upsert') return { known: true, payload: withConsumed(held) };
    return held.op === 'consume' ? { known: false, consumed: true } : { known: true, payload: undefined };
  }

  /** The held payload of `model` that `matches` (a lookup by uid or user code), if any. */
  async find(model: string, matches: (payload: AdapterPayload) => boolean): Promise<AdapterPayload | undefined> {
    await this.#flushing;
    for (const held of this.#held.values()) {
      if (held.op === 'upsert' && held.model === model && matches(held.payload)) return withConsumed(held);
    }
    return undefined;
  }

  /** True when a database row `model`/`id` is superseded by a held save or delete. */
  overrides(model: string, id: string): boolean {
    const held = this.#held.get(keyOf(model, id));
    return held !== undefined && held.op !== 'consume';
  }

  /**
   * Holds a write of another table (one data-modifying statement, e.g. the session's login
   * record) to be sent with the held payloads, in the same statement: both land, or neither. Only
   * for writes nothing later in the unit reads.
   */
  alongside(write: Knex.Sql): void {
    this.#alongside.push({ sql: write.sql, bindings: [...write.bindings] });
  }

  /** Sends every held write as one statement; nothing is held afterwards. Rejects when the database refuses it. */
  flush(): Promise<void> {
    const writes = [...this.#held.values()];
    const alongside = this.#alongside;
    this.#held.clear();
    this.#alongside = [];
    const sending = (this.#flushing ?? Promise.resolve()).then(async () => {
      if (!writes.length && !alongside.length) return;
      const saves = plainSaves(writes, alongside);
      if (saves && !this.#db.isTransaction) return sharedSaves(this.#db).send(saves);
      const { sql, bindings } = flushStatement(writes, alongside);
      await this.#db.raw(sql, bindings);
    });
    // Readers wait for the flush to land, and must not see its failure: the caller of flush does.
    this.#flushing = sending.catch(() => undefined);
    return sending;
  }
}

/** The held payload as the adapter answers it: a copy, with `consumed` when it was consumed in this batch. */
function withConsumed(held: HeldUpsert): AdapterPayload {
  const payload = structuredClone(held.payload);
  return held.consumed ? { ...payload, consumed: payload.consumed ?? Math.floor(Date.now() / 1000) } : payload;
}

/** One data-modifying statement of a flush, with `?` placeholders. */
interface StatementPart {
  sql: string;
  bindings: Knex.RawBinding[];
}

const COLUMNS = 'model, id, payload, grant_id, user_code, uid, expires_at, consumed_at';
const SET_FROM_EXCLUDED = 'payload = excluded.payload, grant_id = excluded.grant_id, user_code = excluded.user_code, uid = excluded.uid, expires_at = excluded.expires_at';

/**
 * One statement for a batch: the writes held alongside, then each group of payload writes (saves
 * keeping a stored `consumed_at`, saves replacing a deleted row, consumes, deletes) is one
 * data-modifying part, all but the last as CTEs. A key appears in one group only, so no row is
 * modified twice by the statement.
 */
function flushStatement(writes: readonly HeldWrite[], alongside: readonly StatementPart[]): StatementPart {
  const parts: StatementPart[] = [...alongside];
  const upserts = writes.filter((w): w is HeldUpsert => w.op === 'upsert');
  for (const replaces of [false, true]) {
    const group = upserts.filter((w) => w.replaces === replaces);
    if (!group.length) continue;
    const consumedAt = replaces ? 'excluded.consumed_at' : `coalesce(excluded.consumed_at, "oidc_payloads".consumed_at)`;
    parts.push({
      sql: `insert into "oidc_payloads" (${COLUMNS}) values ${group.map((w) => `(?, ?, ?::jsonb, ?, ?, ?, ?::timestamptz, ${w.consumed ? 'CURRENT_TIMESTAMP' : 'null::timestamptz'})`).join(', ')}`
        + ` on conflict (model, id) do update set ${SET_FROM_EXCLUDED}, consumed_at = ${consumedAt}`,
      bindings: group.flatMap((w) => [w.model, w.id, JSON.stringify(w.payload), w.payload.grantId ?? null, w.payload.userCode ?? null, w.payload.uid ?? null, w.expiresAt]),
    });
  }
  const keyed = (op: 'consume' | 'destroy') => writes.filter((w) => w.op === op);
  const keys = (group: readonly HeldWrite[]) => ({ sql: group.map(() => '(?, ?)').join(', '), bindings: group.flatMap((w) => [w.model, w.id]) });
  const consumes = keyed('consume');
  if (consumes.length) {
    const { sql, bindings } = keys(consumes);
    parts.push({ sql: `update "oidc_payloads" set consumed_at = CURRENT_TIMESTAMP where (model, id) in (${sql})`, bindings });
  }
  const destroys = keyed('destroy');
  if (destroys.length) {
    const { sql, bindings } = keys(destroys);
    parts.push({ sql: `delete from "oidc_payloads" where (model, id) in (${sql})`, bindings });
  }
  const last = parts.pop()!;
  if (!parts.length) return last;
  return {
    sql: `with ${parts.map((p, i) => `held_${i} as (${p.sql})`).join(', ')} ${last.sql}`,
    bindings: [...parts.flatMap((p) => p.bindings), ...last.bindings],
  };
}

/**
 * The writes of a batch when they are only saves of payloads this batch neither consumed nor
 * replaced, with nothing alongside: an issued token, most often. Such batches from concurrent
 * requests can share one statement (see `SharedSaves`); anything else is sent on its own.
 */
function plainSaves(writes: readonly HeldWrite[], alongside: readonly StatementPart[]): HeldUpsert[] | undefined {
  if (alongside.length) return undefined;
  return writes.every((w): w is HeldUpsert => w.op === 'upsert' && !w.consumed && !w.replaces) ? (writes as HeldUpsert[]) : undefined;
}

/** The most payloads one shared statement saves (7 bound values each, far below PostgreSQL's 65,535). */
const MAX_SHARED_SAVES = 256;

interface WaitingSaves {
  saves: readonly HeldUpsert[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for the engine's plain saves on one database handle. A batch is sent at once when
 * no shared statement is in flight; batches flushed meanwhile wait for it and then go together,
 * as one statement. Under load a statement carries the tokens of many requests (the token
 * endpoint's cost was mostly one statement per token); alone, a request waits for nothing.
 *
 * Each request still answers only once its own rows are stored. Two batches saving the same
 * payload never share a statement (PostgreSQL refuses a row updated twice in one): the later
 * waits for the next. When a shared statement fails, each batch in it is sent again alone, so
 * only the request whose rows the database refuses fails.
 */
class SharedSaves {
  readonly #db: Knex;
  #waiting: WaitingSaves[] = [];
  #sending = false;

  constructor(db: Knex) {
    this.#db = db;
  }

  send(saves: readonly HeldUpsert[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ saves, resolve, reject });
      if (!this.#sending) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#sending = true;
    try {
      while (this.#waiting.length) await this.#write(this.#next());
    } finally {
      this.#sending = false;
    }
  }

  /**
   * The waiting batches the next statement takes, in order: up to the bound, no payload twice, and
   * none past a batch left waiting that saves one of its payloads (the earlier save lands first).
   */
  #next(): WaitingSaves[] {
    const taken: WaitingSaves[] = [];
    const seen = new Set<string>();
    let rows = 0;
    this.#waiting = this.#waiting.filter((entry) => {
      const own = entry.saves.map((w) => keyOf(w.model, w.id));
      const fits = taken.length === 0 || (rows + own.length <= MAX_SHARED_SAVES && own.every((key) => !seen.has(key)));
      for (const key of own) seen.add(key);
      if (!fits) return true;
      taken.push(entry);
      rows += own.length;
      return false;
    });
    return taken;
  }

  async #write(group: readonly WaitingSaves[]): Promise<void> {
    try {
      await this.#send(group.flatMap((entry) => entry.saves));
      for (const entry of group) entry.resolve();
    } catch (error) {
      if (group.length === 1) return group[0]!.reject(error);
      for (const entry of group) await this.#send(entry.saves).then(entry.resolve, entry.reject);
    }
  }

  async #send(saves: readonly HeldUpsert[]): Promise<void> {
    const { sql, bindings } = flushStatement(saves, []);
    await this.#db.raw(sql, bindings);
  }
}

const sharedByHandle = new WeakMap<Knex, SharedSaves>();

function sharedSaves(db: Knex): SharedSaves {
  let shared = sharedByHandle.get(db);
  if (!shared) sharedByHandle.set(db, (shared = new SharedSaves(db)));
  return shared;
}

/** The batch holding engine writes for the work running now, if any. */
export function currentPayloadBatch(): PayloadBatch | undefined {
  return batches.getStore();
}

/**
 * Runs `work` with the engine's writes held, then sends them in one statement. Nested calls
 * join the outer batch, which flushes when the outermost work ends. The flush runs even when
 * `work` throws (what the engine wrote before failing is kept, as it would have been written
 * through); a failed flush rejects.
 */
export async function holdPayloadWrites<T>(db: Knex, work: () => Promise<T>): Promise<T> {
  if (batches.getStore()) return work();
  const batch = new PayloadBatch(db);
  let result: T;
  try {
    result = await batches.run(batch, work);
  } catch (error) {
    await batch.flush();
    throw error;
  }
  await batch.flush();
  return result;
}

/** Sends the current batch's held writes now (before writing `oidc_payloads` another way); nothing outside a batch. */
export async function flushPayloadWrites(): Promise<void> {
  await batches.getStore()?.flush();
}
