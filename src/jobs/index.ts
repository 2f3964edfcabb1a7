/**
 * Periodic work of a node, in one place: each job runs on its own interval on every node, never
 * overlapping itself; jobs that share work between nodes (the logout outbox, expiry) claim rows
 * in the database, so running everywhere is safe. A failed run is logged and the next one tries again.
 */
import type { Logger } from '../logger.ts';

/** One periodic task. */
export interface Job {
  /** Stable name, used in logs and by `run`. */
  name: string;
  intervalMs: number;
  run(): Promise<unknown>;
}

/** The jobs of a node: started with the server, stopped (and awaited) when it closes. */
export class Jobs {
  readonly #jobs: Map<string, Job>;
  readonly #logger: Logger;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #running = new Map<string, Promise<unknown>>();
  #stopped = false;

  constructor(jobs: readonly Job[], logger: Logger) {
    this.#jobs = new Map(jobs.map((j) => [j.name, j]));
    this.#logger = logger;
  }

  /** Names of the jobs, in registration order. */
  get names(): string[] {
    return [...this.#jobs.keys()];
  }

  /** Starts every job's timer. */
  start(): void {
    for (const job of this.#jobs.values()) {
      const timer = setInterval(() => void this.run(job.name).catch(() => undefined), job.intervalMs);
      timer.unref();
      this.#timers.push(timer);
    }
  }

  /**
   * Runs job `name` now, or joins its run in progress; rejects with the run's error (also logged).
   * Tests and operators use it to skip the wait. Does nothing once the jobs are stopped.
   */
  run(name: string): Promise<unknown> {
    const job = this.#jobs.get(name);
    if (!job) return Promise.reject(new Error(`no job named ${name}`));
    if (this.#stopped) return Promise.resolve(undefined);
    const running = this.#running.get(name);
    if (running) return running;
    const run = job
      .run()
      .catch((err: unknown) => {
        this.#logger.error({ err, job: name }, 'periodic job failed');
        throw err;
      })
      .finally(() => this.#running.delete(name));
    this.#running.set(name, run);
    return run;
  }

  /** Stops the timers and waits for runs in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers.splice(0)) clearInterval(t);
    await Promise.allSettled([...this.#running.values()]);
  }
}
