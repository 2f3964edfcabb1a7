/**
 * The bench's measurements: load at a fixed concurrency for a fixed time (token endpoint), a
 * fixed number of logins at a concurrency, single timed requests (home-realm discovery), each
 * with the server's CPU from `/proc` around it. Tallies add up over rounds.
 */
import { Pool } from 'undici';
import { cpuMs } from './proc.ts';

/** Totals of one scenario on one target, summed over the rounds. */
export interface Tally {
  count: number;
  wallMs: number;
  serverCpuMs: number;
  /** Statements sent while handling the target's requests (the login's own). */
  statements: number;
  /** Every statement sent meanwhile, the background jobs' included. */
  allStatements: number;
  /** Per-operation latencies (ms). */
  samplesMs: number[];
}

/** An empty tally. */
export const tally = (): Tally => ({ count: 0, wallMs: 0, serverCpuMs: 0, statements: 0, allStatements: 0, samplesMs: [] });

/** The median of `values` (NaN when empty). */
export function median(values: readonly number[]): number {
  if (!values.length) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Runs `op` on `concurrency` workers until `count` operations are done; adds wall time, server CPU and latencies to `into`. */
export async function batch(into: Tally, pid: number, count: number, concurrency: number, op: () => Promise<void>): Promise<void> {
  let next = 0;
  const cpuBefore = cpuMs(pid);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        next++;
        const t = performance.now();
        await op();
        into.samplesMs.push(performance.now() - t);
      }
    }),
  );
  into.wallMs += performance.now() - started;
  into.serverCpuMs += cpuMs(pid) - cpuBefore;
  into.count += count;
}

/** A client_credentials token request, form-encoded with HTTP Basic client authentication. */
export interface TokenRequest {
  clientId: string;
  clientSecret: string;
  body: string;
}

/**
 * Sends `request` to `<origin>/token` on `concurrency` keep-alive connections for `durationMs`;
 * adds the requests answered, the wall time and the server's CPU to `into`. Any non-200 throws.
 */
export async function tokenLoad(into: Tally, pid: number, origin: string, request: TokenRequest, concurrency: number, durationMs: number): Promise<void> {
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
  const headers = {
    authorization: `Basic ${Buffer.from(`${request.clientId}:${request.clientSecret}`).toString('base64')}`,
    'content-type': 'application/x-www-form-urlencoded',
  };
  const send = async () => {
    const res = await pool.request({ path: '/token', method: 'POST', headers, body: request.body });
    const text = await res.body.text();
    if (res.statusCode !== 200 || !text.includes('access_token')) throw new Error(`${origin}/token answered ${res.statusCode}: ${text.slice(0, 300)}`);
  };
  try {
    await send(); // opens a connection outside the measured window
    let done = 0;
    const cpuBefore = cpuMs(pid);
    const started = performance.now();
    const deadline = started + durationMs;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline) {
          await send();
          done++;
        }
      }),
    );
    into.wallMs += performance.now() - started;
    into.serverCpuMs += cpuMs(pid) - cpuBefore;
    into.count += done;
  } finally {
    await pool.close();
  }
}

/** Times `op` once and adds the sample to `into` (and its server CPU). */
export async function timed(into: Tally, pid: number, op: () => Promise<void>): Promise<void> {
  await batch(into, pid, 1, 1, op);
}
