/**
 * Change notices: the triggers of migration `20261205000000_change_notices` send
 * `'<table>:<key>:<version>'` on channel `realmgate_changes` whenever a row a node caches
 * changes (on any node), and one dedicated `LISTEN` connection per node hears them. The
 * caches then trust what they hold instead of reading its version on each request.
 *
 * The rules that keep a trusted entry correct:
 * 1. While the listener is not connected (start-up, connection lost), nothing is trusted: the
 *    caches read the version on each use, as they did before notices.
 * 2. Each (re)connect starts a new epoch: what was verified before it may have missed notices,
 *    so it is verified again (one version read) before it is trusted.
 * 3. A read that started before a notice for its key, or in an earlier epoch, does not make an
 *    entry trusted: its answer may predate the change (see `ChangeWatch.read`).
 *
 * 4. A connection that accepted `LISTEN` is trusted only once it has heard its own probe notice,
 *    and it keeps proving it (a probe every `probeIntervalMs`); one that stops hearing is
 *    dropped. A connection pooler in transaction mode (PgBouncer's default) accepts `LISTEN` but
 *    delivers nothing, and a connection can go quiet without an error: neither is trusted for
 *    longer than one probe interval.
 *
 * Works on PostgreSQL and on the embedded store, whose worker hands notifications to the
 * sessions that listen (`embedded/worker.ts`). Readiness does not depend on it: a node without
 * its listener is only slower.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import pg from 'pg';
import type { Logger } from '../logger.ts';

/** The channel the change triggers notify on. */
export const CHANGE_CHANNEL = 'realmgate_changes';

/** How the listening connection names itself to PostgreSQL (`pg_stat_activity.application_name`). */
export const LISTENER_APPLICATION_NAME = 'realmgate change notices';

/** The tables whose rows a node caches by version, each named by its table. */
export type WatchedTable = 'clients' | 'identity_providers' | 'resource_servers';

/** Told of a change this node made to a watched row, once it is committed. */
export type ChangedHere = (table: WatchedTable, key: string) => void;

/** One change as a trigger announced it. */
export interface ChangeNotice {
  table: string;
  key: string;
  version: number;
}

/** Parses a notice payload (`<table>:<key>:<version>`; the key itself may contain colons). */
export function parseChangeNotice(payload: string): ChangeNotice | undefined {
  const first = payload.indexOf(':');
  const last = payload.lastIndexOf(':');
  if (first <= 0 || last <= first) return undefined;
  const version = Number(payload.slice(last + 1));
  if (!Number.isInteger(version)) return undefined;
  return { table: payload.slice(0, first), key: payload.slice(first + 1, last), version };
}

/** What a cache hears from its table's watch. */
export interface ChangeListener {
  /** A row changed (or was created or deleted): whatever is held for `key` is no longer trusted. */
  changed(key: string): void;
}

/** When a read began: the epoch and the watch's clock at that moment. */
interface Stamp {
  epoch: number;
  tick: number;
}

/**
 * One table's view of the notices, for the caches of that table: whether what they verified can
 * be trusted, and which reads were overtaken by a notice.
 */
export class ChangeWatch {
  #connected = false;
  #epoch = 0;
  #tick = 0;
  /** The tick of the last notice per key, kept only while reads are in flight (then cleared). */
  readonly #changedAt = new Map<string, number>();
  #inFlight = 0;
  readonly #listeners = new Set<ChangeListener>();

  /** True while notices arrive: a verified entry can be used without asking the database. */
  get connected(): boolean {
    return this.#connected;
  }

  /** The current epoch: an entry verified in another one is not trusted. */
  get epoch(): number {
    return this.#epoch;
  }

  /** True when an entry verified in `verifiedEpoch` can be used as it is. */
  trusts(verifiedEpoch: number | undefined): boolean {
    return this.#connected && verifiedEpoch === this.#epoch;
  }

  /** Registers a cache; returns the function that removes it. */
  subscribe(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Runs `load` (a read of `key`) and says in which epoch its answer counts as verified:
   * undefined when it cannot be trusted (no listener, a notice for the key or a reconnect came
   * while it ran), so the entry it fills is verified again on its next use.
   */
  async read<T>(key: string, load: () => Promise<T>): Promise<{ value: T; verifiedEpoch: number | undefined }> {
    const stamp: Stamp = { epoch: this.#epoch, tick: this.#tick };
    const connectedAtStart = this.#connected;
    this.#inFlight++;
    try {
      const value = await load();
      const overtaken = (this.#changedAt.get(key) ?? -1) >= stamp.tick;
      const trusted = connectedAtStart && this.#connected && stamp.epoch === this.#epoch && !overtaken;
      return { value, verifiedEpoch: trusted ? stamp.epoch : undefined };
    } finally {
      if (--this.#inFlight === 0) this.#changedAt.clear();
    }
  }

  /** A notice for `key` arrived. */
  notify(key: string): void {
    if (this.#inFlight) this.#changedAt.set(key, this.#tick);
    this.#tick++;
    for (const listener of this.#listeners) listener.changed(key);
  }

  /** The listener connected (a new epoch: nothing verified before is trusted) or was lost. */
  setConnected(connected: boolean): void {
    this.#connected = connected;
    this.#epoch++;
    this.#tick++;
  }
}

/** Options of the listener; the defaults suit a production node. */
export interface ChangeNoticesOptions {
  /** Opens the dedicated listening connection (not one of the pool's). */
  connect: () => pg.Client;
  logger: Logger;
  /** The wait before reconnecting after a failure; doubles up to `maxRetryDelayMs`. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** How often the listener proves, with a probe notice to itself, that notices still arrive. */
  probeIntervalMs?: number;
  /** How long a probe may take to come back before the connection counts as deaf. */
  probeTimeoutMs?: number;
}

/** Payloads starting with this are the listener's own probes, not changes. */
const PROBE_PREFIX = 'probe:';

/**
 * The listening connection: the pool's own settings, as a separate connection, with TCP
 * keep-alive (so a connection a network device dropped is noticed) and a connect timeout.
 */
export function listenerConnection(db: Knex): () => pg.Client {
  const settings = (db.client as { connectionSettings: string | pg.ClientConfig }).connectionSettings;
  const base = typeof settings === 'string' ? { connectionString: settings } : settings;
  return () => new pg.Client({ ...base, application_name: LISTENER_APPLICATION_NAME, keepAlive: true, connectionTimeoutMillis: 10_000 });
}

/** One node's listening connection, feeding a `ChangeWatch` per table. */
export class ChangeNotices {
  readonly #options: Required<ChangeNoticesOptions>;
  readonly #watches = new Map<string, ChangeWatch>();
  #client: pg.Client | undefined;
  /** The connection being opened, if any (so `close` can end it). */
  #opening: pg.Client | undefined;
  #retry: NodeJS.Timeout | undefined;
  #failures = 0;
  #closed = false;
  #connecting: Promise<void> | undefined;
  /** Probes sent and not yet heard, by payload. */
  readonly #probes = new Map<string, () => void>();
  #probeTimer: NodeJS.Timeout | undefined;

  constructor(options: ChangeNoticesOptions) {
    this.#options = { retryDelayMs: 200, maxRetryDelayMs: 10_000, probeIntervalMs: 30_000, probeTimeoutMs: 5_000, ...options };
  }

  /** The watch of one table (the same object each time). */
  watch(table: WatchedTable): ChangeWatch {
    let watch = this.#watches.get(table);
    if (!watch) {
      watch = new ChangeWatch();
      if (this.#client) watch.setConnected(true);
      this.#watches.set(table, watch);
    }
    return watch;
  }

  /**
   * A change this node committed: its caches stop trusting `key` at once instead of when the
   * notice comes back, so a request after the change (the admin's next page) sees it.
   */
  changedHere(table: WatchedTable, key: string): void {
    this.#watches.get(table)?.notify(key);
  }

  /** True while the listener is connected and listening. */
  get connected(): boolean {
    return this.#client !== undefined;
  }

  /** Connects in the background (and keeps reconnecting); resolves after the first attempt, whatever its outcome. */
  start(): Promise<void> {
    this.#connecting ??= this.#connect().finally(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  /** Ends the listener and stops reconnecting; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    clearInterval(this.#probeTimer);
    const clients = [this.#opening, this.#client].filter((c): c is pg.Client => c !== undefined);
    this.#lost();
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
    await this.#connecting;
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    let client: pg.Client | undefined;
    try {
      client = this.#listeningClient();
      this.#opening = client;
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
      await this.#probe(client);
    } catch (error) {
      await client?.end().catch(() => {});
      this.#scheduleRetry(error as Error);
      return;
    } finally {
      this.#opening = undefined;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    this.#failures = 0;
    for (const watch of this.#watches.values()) watch.setConnected(true);
    this.#probeTimer = setInterval(() => {
      this.#probe(client).catch((error: Error) => this.#dropped(client, error));
    }, this.#options.probeIntervalMs);
    this.#probeTimer.unref();
    this.#options.logger.debug({ channel: CHANGE_CHANNEL }, 'listening for change notices');
  }

  /**
   * Sends a notice on the channel from the listening connection itself and waits until that
   * connection hears it; rejects after `probeTimeoutMs`. The statement goes on the listener's own
   * connection, not the pool, so it never counts among a request's statements.
   */
  async #probe(client: pg.Client): Promise<void> {
    const payload = `${PROBE_PREFIX}${crypto.randomUUID()}`;
    let timer: NodeJS.Timeout | undefined;
    const heard = new Promise<void>((resolve, reject) => {
      this.#probes.set(payload, resolve);
      timer = setTimeout(() => reject(new Error(`no change notice arrives on this connection (a probe was not heard within ${this.#options.probeTimeoutMs} ms); a connection pooler in transaction mode cannot carry LISTEN`)), this.#options.probeTimeoutMs);
    });
    try {
      await client.query('select pg_notify($1, $2)', [CHANGE_CHANNEL, payload]);
      await heard;
    } finally {
      clearTimeout(timer);
      this.#probes.delete(payload);
    }
  }

  /** A new listening connection, its events wired (not yet connected). */
  #listeningClient(): pg.Client {
    const client = this.#options.connect();
    client.on('error', (error) => this.#dropped(client, error));
    client.on('end', () => this.#dropped(client, new Error('the listening connection ended')));
    client.on('notification', (message) => {
      if (message.channel === CHANGE_CHANNEL && message.payload) this.#deliver(message.payload);
    });
    return client;
  }

  #deliver(payload: string): void {
    if (payload.startsWith(PROBE_PREFIX)) {
      // Another node's probe is nobody's business here.
      this.#probes.get(payload)?.();
      return;
    }
    const notice = parseChangeNotice(payload);
    if (!notice) {
      this.#options.logger.warn({ payload }, 'ignored a change notice that names no table, key and version');
      return;
    }
    this.#watches.get(notice.table)?.notify(notice.key);
  }

  /** The listening connection failed or ended: back to version reads until it is back. */
  #dropped(client: pg.Client, error: Error): void {
    if (this.#client !== client) return;
    this.#lost();
    if (this.#closed) return;
    client.end().catch(() => {});
    this.#scheduleRetry(error);
  }

  #lost(): void {
    clearInterval(this.#probeTimer);
    if (!this.#client) return;
    this.#client = undefined;
    for (const watch of this.#watches.values()) watch.setConnected(false);
  }

  #scheduleRetry(error: Error): void {
    if (this.#closed) return;
    const delay = Math.min(this.#options.retryDelayMs * 2 ** this.#failures, this.#options.maxRetryDelayMs);
    this.#failures++;
    this.#options.logger.warn({ err: error, retry_in_ms: delay }, 'not listening for change notices; caches read versions until the listener is back');
    this.#retry = setTimeout(() => void this.start(), delay);
    this.#retry.unref();
  }
}
