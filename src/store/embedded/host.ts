/**
 * The server side of the embedded store: starts PGlite in a worker thread (`worker.ts`) once per
 * database and hands `pg` a duplex stream per connection that carries the PostgreSQL wire
 * protocol over a MessagePort, so embedded PGlite and PostgreSQL share one driver and one dialect
 * while PGlite's WASM work stays off the event loop that serves requests.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { FromWorker, ToWorker, WorkerOptions } from './worker.ts';

const fromSources = import.meta.url.endsWith('.ts');
const workerUrl = new URL(`./worker${fromSources ? '.ts' : '.js'}`, import.meta.url);

/** The worker's entry: the compiled module, or (running from the sources) a bootstrap that loads it through tsx. */
function workerEntry(): { entry: URL | string; eval: boolean } {
  if (!fromSources) return { entry: workerUrl, eval: false };
  // tsx's ESM register API (its CommonJS build cannot register hooks from an eval'd worker).
  const tsxPackage = createRequire(import.meta.url).resolve('tsx/package.json');
  const tsx = pathToFileURL(path.join(path.dirname(tsxPackage), 'dist/esm/api/index.mjs')).href;
  return { entry: `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(workerUrl.href)}); });`, eval: true };
}

/** A PGlite database running in its own thread. */
export class EmbeddedDatabase {
  private readonly worker: Worker;
  /** Settles when PGlite is ready (or failed to start). */
  readonly ready: Promise<void>;
  private closing: Promise<void> | undefined;

  /** Starts PGlite on `dataDir` (undefined: in memory, from the dump file `from` if given) in a new worker thread. */
  constructor(dataDir: string | undefined, from?: string) {
    const { entry, eval: isCode } = workerEntry();
    this.worker = new Worker(entry, { eval: isCode, workerData: { dataDir, from } satisfies WorkerOptions });
    this.ready = new Promise((resolve, reject) => {
      const onMessage = (message: FromWorker) => {
        if (message.type === 'ready') resolve();
        else if (message.type === 'failed') reject(new Error(`the embedded database could not start: ${message.message}`, { cause: Object.assign(new Error(message.message), { stack: message.stack }) }));
      };
      this.worker.on('message', onMessage);
      this.worker.once('error', reject);
      this.worker.once('exit', (code) => reject(new Error(`the embedded database's thread exited (code ${code})`)));
    });
    this.ready.catch(() => {});
  }

  /** A new wire-protocol session, as the stream `pg` connects through. */
  connect(): Duplex {
    const { port1, port2 } = new MessageChannel();
    const stream = new SessionStream(port1, this.ready);
    this.ready.then(
      () => this.worker.postMessage({ type: 'session', port: port2 } satisfies ToWorker, [port2]),
      () => port2.close(),
    );
    return stream;
  }

  /** Closes PGlite (flushing it to disk) and ends the thread; idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.ready;
      } catch {
        await this.worker.terminate();
        return;
      }
      const closed = new Promise<void>((resolve, reject) => {
        this.worker.on('message', (message: FromWorker) => {
          if (message.type === 'closed') resolve();
          else if (message.type === 'failed') reject(new Error(`the embedded database did not close cleanly: ${message.message}`));
        });
      });
      this.worker.postMessage({ type: 'close' } satisfies ToWorker);
      try {
        await closed;
      } finally {
        await this.worker.terminate();
      }
    })();
    return this.closing;
  }
}

/**
 * What `pg` reads and writes: bytes written in one turn of the event loop travel as one message,
 * so a query's Parse/Bind/Describe/Execute/Sync reach PGlite together. Implements the few socket
 * methods `pg` calls (`connect`, `setNoDelay`, `setKeepAlive`).
 */
class SessionStream extends Duplex {
  private pending: Buffer[] = [];
  private flushing = false;

  constructor(
    private readonly port: MessagePort,
    private readonly ready: Promise<void>,
  ) {
    super();
    port.on('message', (message: Uint8Array | { error: string }) => {
      if (message instanceof Uint8Array) this.push(Buffer.from(message.buffer, message.byteOffset, message.byteLength));
      else this.destroy(new Error(`the embedded database ended this connection: ${message.error}`));
    });
    port.on('close', () => this.push(null));
  }

  connect(): this {
    this.ready.then(
      () => this.emit('connect'),
      (error: unknown) => this.destroy(error as Error),
    );
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.pending.push(chunk);
    if (!this.flushing) {
      this.flushing = true;
      queueMicrotask(() => this.flush());
    }
    callback();
  }

  private flush(): void {
    this.flushing = false;
    // One fresh buffer, transferred: pg may reuse what it wrote.
    const bytes = new Uint8Array(this.pending.reduce((n, chunk) => n + chunk.length, 0));
    let offset = 0;
    for (const chunk of this.pending) {
      bytes.set(chunk, offset);
      offset += chunk.length;
    }
    this.pending = [];
    this.port.postMessage(bytes, [bytes.buffer]);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.pending.length) this.flush();
    this.port.close();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.port.close();
    callback(error);
  }
}
