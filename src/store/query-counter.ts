/**
 * Counts the SQL statements a database handle sends, so a test (or the bench) can say how many
 * one flow costs. It listens to knex's `query` event, which every query builder, raw query and
 * transaction on the handle emits, transaction control (`BEGIN;`, `COMMIT;`) included: each is
 * a round trip to the database.
 */
import type { Knex } from 'knex';

/** One counted statement: its SQL text with placeholders, and the values bound to them (in process only, never logged). */
export interface CountedStatement {
  sql: string;
  bindings: readonly unknown[];
}

/** What one counted flow sent: how many statements, and which (in order). */
export interface StatementTally {
  count: number;
  statements: CountedStatement[];
}

interface QueryEvent {
  sql?: string;
  bindings?: readonly unknown[];
}

const counters = new WeakMap<Knex, QueryCounter>();

/** Counts the statements of one knex handle from `attach` until `detach`. */
export class QueryCounter {
  readonly #db: Knex;
  readonly #listener = (event: QueryEvent) => this.#record(event);
  #statements: CountedStatement[] = [];
  #recording = 0;

  private constructor(db: Knex) {
    this.#db = db;
    db.on('query', this.#listener);
  }

  /** The counter of `db`, attached on first use (one per handle). */
  static attach(db: Knex): QueryCounter {
    let counter = counters.get(db);
    if (!counter) {
      counter = new QueryCounter(db);
      counters.set(db, counter);
    }
    return counter;
  }

  /**
   * Runs `flow` and returns what it sent with its result. Every statement on the handle while
   * `flow` runs counts, so background work on the same handle must be stopped first.
   */
  async during<T>(flow: () => Promise<T>): Promise<StatementTally & { result: T }> {
    const start = this.#statements.length;
    this.#recording++;
    try {
      const result = await flow();
      const statements = this.#statements.slice(start);
      return { result, count: statements.length, statements };
    } finally {
      if (--this.#recording === 0) this.#statements = [];
    }
  }

  /** Stops listening to the handle. */
  detach(): void {
    this.#db.off('query', this.#listener);
    counters.delete(this.#db);
  }

  #record(event: QueryEvent): void {
    if (this.#recording > 0) this.#statements.push({ sql: event.sql ?? '', bindings: event.bindings ?? [] });
  }
}

/** Statements grouped by SQL text, most frequent first: what a tally reads as in a report. */
export function groupStatements(statements: readonly CountedStatement[]): { sql: string; times: number }[] {
  const times = new Map<string, number>();
  for (const { sql } of statements) times.set(sql, (times.get(sql) ?? 0) + 1);
  return [...times].map(([sql, n]) => ({ sql, times: n })).sort((a, b) => b.times - a.times);
}
