import { RateLimiterPostgres } from 'rate-limiter-flexible';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeasedLimiter } from '../../src/rate-limit-lease.ts';
import { QueryCounter } from '../../src/store/query-counter.ts';
import { RATE_LIMIT_TABLE, RateLimitCounters } from '../../src/store/rate-limit-counters.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
let counters: RateLimitCounters;

/** A node's view of one limit: its own reservations over the shared counters. */
const nodeLimiter = (name: string, points: number, duration = 60) =>
  new LeasedLimiter(
    new RateLimiterPostgres({ storeClient: counters.client(), storeType: 'client', tableName: RATE_LIMIT_TABLE, tableCreated: true, clearExpiredByTimeout: false, keyPrefix: name, points, duration }),
    points,
  );

/** Sends `count` requests for `key`, `concurrency` at a time, spread over `nodes` in turn; returns how many each admitted. */
async function drive(nodes: LeasedLimiter[], key: string, count: number, concurrency: number): Promise<number[]> {
  const admitted = nodes.map(() => 0);
  let sent = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (sent < count) {
      const n = sent++ % nodes.length;
      if ((await nodes[n]!.consume(key)).allowed) admitted[n]!++;
    }
  }));
  return admitted;
}

beforeAll(async () => {
  database = await createTestDatabase();
  counters = new RateLimitCounters(database.db);
});

afterAll(async () => {
  await database?.close();
});

describe('rate limits counted in reserved blocks', () => {
  it('never admit more than the limit across nodes, and admit close to it', async () => {
    const nodes = [nodeLimiter('shared', 200), nodeLimiter('shared', 200)];
    const admitted = await drive(nodes, 'client:busy', 400, 10);
    const total = admitted[0]! + admitted[1]!;
    expect(total).toBeLessThanOrEqual(200);
    // What one node reserved and did not spend is refused on the other: a few points at most.
    expect(total).toBeGreaterThanOrEqual(190);
  });

  it('send far fewer statements than requests for a busy key', async () => {
    const node = nodeLimiter('busy', 1_000_000);
    const { count, result } = await QueryCounter.attach(database.db).during(() => drive([node], 'client:hot', 1000, 10));
    expect(result).toEqual([1000]);
    expect(count).toBeLessThanOrEqual(30);
  });

  it('refuse a spent key from memory, with the time left in its window', async () => {
    const node = nodeLimiter('spent', 3);
    expect(await drive([node], 'ip:one', 3, 1)).toEqual([3]);
    const { count, result } = await QueryCounter.attach(database.db).during(async () => [await node.consume('ip:one'), await node.consume('ip:one')]);
    expect(result[0]).toMatchObject({ allowed: false, first: true });
    expect(result[1]).toMatchObject({ allowed: false, first: false });
    expect((result[0] as { retryAfterSeconds: number }).retryAfterSeconds).toBeGreaterThan(0);
    expect((result[0] as { retryAfterSeconds: number }).retryAfterSeconds).toBeLessThanOrEqual(60);
    // The last reservation said the window had nothing left: no statement is needed to refuse.
    expect(count).toBe(0);
  });

  it('start a busy key\'s next window with the block it reached, and an idle key\'s with one point', async () => {
    const limiter = new RateLimiterPostgres({ storeClient: counters.client(), storeType: 'client', tableName: RATE_LIMIT_TABLE, tableCreated: true, clearExpiredByTimeout: false, keyPrefix: 'windows', points: 1_000_000, duration: 1 });
    const node = new LeasedLimiter(limiter, 1_000_000);
    const counter = QueryCounter.attach(database.db);
    /** Resolves `afterMs` after the key's current one-second window ends. */
    const windowEnded = async (afterMs: number) => {
      const left = (await limiter.get('client:steady'))?.msBeforeNext ?? 0;
      await new Promise((r) => setTimeout(r, Math.max(0, left) + afterMs));
    };
    // Blocks of 1, 2, 4, … up to 64 points.
    expect(await drive([node], 'client:steady', 300, 1)).toEqual([300]);
    await windowEnded(50);
    const next = await counter.during(() => drive([node], 'client:steady', 64, 1));
    expect(next.result).toEqual([64]);
    expect(next.count).toBe(1);
    // Idle for more than a whole window since: from one point again (1, then 2).
    await windowEnded(1200);
    expect((await counter.during(() => drive([node], 'client:steady', 3, 1))).count).toBe(2);
  });
});
