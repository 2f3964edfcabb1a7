/**
 * The embedded store's worker thread: PGlite's WASM Postgres runs here, off the server's event
 * loop, and serves PostgreSQL wire-protocol sessions that arrive as MessagePorts (one per `pg`
 * connection, see `host.ts`). PGlite is one backend: sessions share it one message batch at a
 * time, and while one session is inside a transaction no other session's batch runs.
 *
 * LISTEN/NOTIFY: PGlite's one backend answers a notification (NotificationResponse) in the reply
 * to whichever batch committed it. As PostgreSQL does, this worker hands it to the sessions that
 * asked for it: each session that sent a simple-query `LISTEN` gets a copy, and the others none.
 */
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PGlite } from '@electric-sql/pglite';
import type { MessagePort } from 'node:worker_threads';

/** What the host sends this worker. */
export type ToWorker = { type: 'session'; port: MessagePort } | { type: 'close' };
/** What this worker tells the host. */
export type FromWorker = { type: 'ready' } | { type: 'failed'; message: string; stack?: string } | { type: 'closed' };
/** `workerData`: a PGlite data directory, or undefined for an in-memory database; that one starts from the dump file `from` if given. */
export interface WorkerOptions {
  dataDir: string | undefined;
  from?: string | undefined;
}

const TERMINATE = 0x58; // 'X': a client ending its session; PGlite's backend must outlive it.
const SIMPLE_QUERY = 0x51; // 'Q'
const NOTIFICATION = 0x41; // 'A': NotificationResponse
const PROTOCOL_3 = 0x0003_0000;

const host = parentPort!;
const { dataDir, from } = workerData as WorkerOptions;
/**
 * PostgreSQL's default 128 MB of shared buffers is resident WASM memory here; the gateway's working
 * set is far smaller and the data files are read through the OS page cache anyway (measured: about
 * 110 MB less RSS, the same query throughput).
 */
const SHARED_BUFFERS = '16MB';
/**
 * PGlite's Postgres is WASM; V8 compiles it with its baseline compiler (Liftoff) and then again,
 * function by function as they get hot, with its optimizing one (TurboFan), whose compile jobs run
 * on background threads and leave their memory in those threads' malloc arenas. For the gateway's
 * short queries the optimized code buys little: measured in PGlite alone, 10-25% on a 3 KB jsonb
 * lookup or upsert (about 20 µs of 110-160), nothing on small inserts and lookups, and no
 * difference the bench could see per login or token; it costs about 120 MB of resident memory, so
 * PGlite's module keeps the baseline code. V8 flags are process-wide but a module's tiering is
 * fixed when it is compiled: the flag is set until PGlite is ready (`start`), so WASM compiled
 * later (undici's HTTP parser) is unaffected.
 */
v8.setFlagsFromString('--liftoff-only');
const db = new PGlite({
  ...(dataDir === undefined ? {} : { dataDir }),
  // A dump to start from: what PGlite would otherwise create with initdb (the tests' migrated database).
  ...(dataDir === undefined && from !== undefined ? { loadDataDir: new Blob([fs.readFileSync(from)]) } : {}),
  postgresqlconf: `shared_buffers = ${SHARED_BUFFERS}`,
});

interface Batch {
  session: Session;
  bytes: Uint8Array;
}
const queue: Batch[] = [];
/** Every open session, for notifications. */
const sessions = new Set<Session>();
let running = false;
/** The session whose statements opened the transaction PGlite is in, if any. */
let owner: Session | undefined;

/** One client connection: frames its byte stream into whole protocol messages. */
class Session {
  private buffered = new Uint8Array(0);
  private started = false;
  closed = false;
  /** True once the session sent a `LISTEN`: it then receives every notification the backend raises. */
  listening = false;

  constructor(readonly port: MessagePort) {}

  /** Appends bytes; returns every whole message received so far (as one batch), if any. */
  take(chunk: Uint8Array): { messages: Uint8Array | undefined; terminate: boolean } {
    const bytes = this.buffered.length ? concat(this.buffered, chunk) : chunk;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let end = 0;
    let terminate = false;
    while (true) {
      if (!this.started) {
        // The startup message has no type byte: length, then the protocol version.
        if (bytes.length - end < 8) break;
        const length = view.getInt32(end);
        if (view.getInt32(end + 4) !== PROTOCOL_3) throw new Error('the embedded store speaks protocol 3.0 without SSL only');
        if (bytes.length - end < length) break;
        end += length;
        this.started = true;
        continue;
      }
      if (bytes.length - end < 5) break;
      const length = 1 + view.getInt32(end + 1);
      if (bytes.length - end < length) break;
      if (bytes[end] === TERMINATE) {
        terminate = true;
        break;
      }
      if (bytes[end] === SIMPLE_QUERY && isListen(bytes.subarray(end + 5, end + length))) this.listening = true;
      end += length;
    }
    this.buffered = terminate ? new Uint8Array(0) : bytes.slice(end);
    return { messages: end > 0 ? bytes.subarray(0, end) : undefined, terminate };
  }
}

/** True for a simple query that starts with `LISTEN` (any case, after white space). */
function isListen(text: Uint8Array): boolean {
  const start = Buffer.from(text.buffer, text.byteOffset, Math.min(text.byteLength, 64)).toString('latin1');
  return /^\s*listen\s/i.test(start);
}

/**
 * Splits a backend reply into its notifications and everything else (the whole reply, untouched,
 * when it carries none: the common case costs one scan of the message headers).
 */
function splitNotifications(reply: Uint8Array<ArrayBuffer>): { rest: Uint8Array<ArrayBuffer>; notifications: Uint8Array<ArrayBuffer> | undefined } {
  const view = new DataView(reply.buffer, reply.byteOffset, reply.byteLength);
  const kept: Uint8Array<ArrayBuffer>[] = [];
  const notices: Uint8Array<ArrayBuffer>[] = [];
  let offset = 0;
  while (offset + 5 <= reply.length) {
    const length = 1 + view.getInt32(offset + 1);
    const message = reply.subarray(offset, offset + length);
    (reply[offset] === NOTIFICATION ? notices : kept).push(message);
    offset += length;
  }
  if (!notices.length) return { rest: reply, notifications: undefined };
  return { rest: concat(...kept), notifications: concat(...notices) };
}

/** Sends the notifications a batch raised to every listening session. */
function deliverNotifications(notifications: Uint8Array<ArrayBuffer>): void {
  for (const session of sessions) {
    if (!session.listening || session.closed) continue;
    const copy = notifications.slice();
    session.port.postMessage(copy, [copy.buffer]);
  }
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** The next batch PGlite may run: the transaction owner's while a transaction is open, else the oldest. */
function nextBatch(): Batch | undefined {
  const index = owner && db.isInTransaction() ? queue.findIndex((b) => b.session === owner) : 0;
  return index < 0 ? undefined : queue.splice(index, 1)[0];
}

/** Runs queued batches one at a time until none may run. */
async function drain(): Promise<void> {
  if (running) return;
  running = true;
  try {
    for (let batch = nextBatch(); batch; batch = nextBatch()) {
      const { session, bytes } = batch;
      if (session.closed) continue;
      // The answer travels as one message: copied out of WASM memory, then transferred.
      const answer: Uint8Array<ArrayBuffer>[] = [];
      try {
        await db.execProtocolRawStream(bytes, { onRawData: (data) => answer.push(data.slice()) });
      } catch (error) {
        // PGlite itself failed (not an SQL error, which is an answer): the session cannot go on.
        session.port.postMessage({ error: (error as Error).message });
        session.closed = true;
        sessions.delete(session);
        session.port.close();
        await rollBack(session);
        continue;
      }
      const whole = answer.length === 1 ? answer[0]! : concat(...answer);
      const { rest: reply, notifications } = splitNotifications(whole);
      if (reply.length && !session.closed) session.port.postMessage(reply, [reply.buffer]);
      if (notifications) deliverNotifications(notifications);
      owner = db.isInTransaction() ? session : undefined;
    }
  } finally {
    running = false;
  }
}

/** Rolls back the transaction a closed session left open; the caller holds `running`. */
async function rollBack(session: Session): Promise<void> {
  if (owner !== session) return;
  owner = undefined;
  if (db.isInTransaction()) await db.exec('rollback');
}

/** A session ended (Terminate or its port closed): its queued work is dropped and its transaction rolled back. */
async function endSession(session: Session): Promise<void> {
  if (session.closed) return;
  session.closed = true;
  sessions.delete(session);
  session.port.close();
  while (running) await new Promise((resolve) => setImmediate(resolve));
  running = true;
  try {
    await rollBack(session);
  } finally {
    running = false;
  }
  await drain();
}

function openSession(port: MessagePort): void {
  const session = new Session(port);
  sessions.add(session);
  port.on('message', (chunk: Uint8Array) => {
    let taken;
    try {
      taken = session.take(chunk);
    } catch (error) {
      port.postMessage({ error: (error as Error).message });
      void endSession(session).catch(fail);
      return;
    }
    if (taken.messages) {
      queue.push({ session, bytes: taken.messages });
      void drain().catch(fail);
    }
    if (taken.terminate) void endSession(session).catch(fail);
  });
  port.on('close', () => void endSession(session).catch(fail));
}

function fail(error: unknown): void {
  const e = error as Error;
  host.postMessage({ type: 'failed', message: e.message, stack: e.stack } satisfies FromWorker);
}

host.on('message', (message: ToWorker) => {
  if (message.type === 'session') openSession(message.port);
  else if (message.type === 'close') {
    void (async () => {
      while (running) await new Promise((resolve) => setImmediate(resolve));
      await db.close();
      host.postMessage({ type: 'closed' } satisfies FromWorker);
    })().catch(fail);
  }
});

/**
 * PGlite keeps what creating the database took (initdb's instance, a few hundred MB) until a
 * statement has run and V8 collects it; this thread allocates too little for V8 to collect on its
 * own, so once ready it runs one statement and collects (about 90 ms, once per start).
 */
async function start(): Promise<void> {
  try {
    await db.waitReady;
  } finally {
    if (!process.execArgv.includes('--liftoff-only')) v8.setFlagsFromString('--no-liftoff-only');
  }
  await db.exec('select 1');
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // Three rounds, a task apart: the WASM instances are released by finalizers that run between tasks.
  for (let round = 0; round < 3; round++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

start().then(
  () => host.postMessage({ type: 'ready' } satisfies FromWorker),
  (error: unknown) => fail(error),
);
