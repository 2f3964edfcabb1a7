/**
 * Counting a rate limit in the shared database without a statement per request: a node reserves
 * a block of points for a key in one statement (rate-limiter-flexible's `consume(key, n)`) and
 * spends them from memory until the window ends. Every request a node lets through was counted in
 * the database first, so the nodes together never admit more than the limit; what a node reserved
 * and did not use is only refused elsewhere, so blocks start at one point, double while a key
 * keeps asking in the window, and shrink as the window's points run out (never more than half of
 * what remained), which keeps the unused part small. A key still asking when its window ends
 * starts the next one with the block it had reached (at most half the limit), so steady traffic
 * does not climb from one point again every window.
 */
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

/** The most points reserved in one statement. */
const MAX_BLOCK = 64;
/** Keys remembered at most; beyond it ended windows are swept, then the oldest keys dropped (their points only refused). */
const MAX_KEYS = 10_000;

/** A decision for one request. */
export type LeaseDecision =
  | { allowed: true }
  | { allowed: false; retryAfterSeconds: number; /** True for this node's first refusal of the key in its window (to log once). */ first: boolean };

interface Lease {
  /** Points reserved in the database and not yet spent here. */
  points: number;
  /** When the database window ends (ms since the epoch); the lease ends with it. */
  windowEndsAt: number;
  /** The size of the last block reserved. */
  block: number;
  /** Points the database had left after the last reservation. */
  remaining: number;
  /** The window's points are spent: refused until `windowEndsAt`. */
  exhausted: boolean;
  refusalLogged: boolean;
  reserving: Promise<void> | undefined;
}

/** One limit's reservations on this node. */
export class LeasedLimiter {
  readonly #limiter: RateLimiterAbstract;
  readonly #points: number;
  readonly #leases = new Map<string, Lease>();

  /** `limiter` counts in the shared database; `points` is its limit per window. */
  constructor(limiter: RateLimiterAbstract, points: number) {
    this.#limiter = limiter;
    this.#points = points;
  }

  /** Spends one point of `key`, reserving a block first when none is left here. */
  async consume(key: string): Promise<LeaseDecision> {
    let carried: number | undefined;
    for (;;) {
      const now = Date.now();
      let lease = this.#leases.get(key);
      if (lease && lease.windowEndsAt <= now && !lease.reserving) {
        this.#leases.delete(key);
        // Busy until the window just ended: the next window starts where this one got to.
        if (now - lease.windowEndsAt < this.#limiter.duration * 1000) carried = lease.block;
        lease = undefined;
      }
      if (lease && lease.points > 0) {
        lease.points--;
        return { allowed: true };
      }
      if (lease?.exhausted && !lease.reserving) {
        const first = !lease.refusalLogged;
        lease.refusalLogged = true;
        return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((lease.windowEndsAt - now) / 1000)), first };
      }
      if (lease?.reserving) {
        await lease.reserving;
        continue;
      }
      await this.#reserve(key, lease, carried);
    }
  }

  /**
   * Reserves the next block for `key` in the database (one statement); concurrent requests for the
   * key wait for it. A new lease starts with `carried` points (the block its key reached in the
   * window just ended), else one.
   */
  async #reserve(key: string, previous: Lease | undefined, carried = 1): Promise<void> {
    const block = previous
      ? Math.max(1, Math.min(MAX_BLOCK, previous.block * 2, Math.floor(previous.remaining / 2)))
      : Math.max(1, Math.min(MAX_BLOCK, carried, Math.floor(this.#points / 2)));
    const lease: Lease = previous ?? { points: 0, windowEndsAt: 0, block, remaining: 0, exhausted: false, refusalLogged: false, reserving: undefined };
    if (!previous) this.#remember(key, lease);
    lease.reserving = (async () => {
      try {
        const res = await this.#limiter.consume(key, block);
        this.#granted(lease, block, block, res);
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        // The database counted the whole block; what was left before it is still ours to spend.
        const before = rejection.consumedPoints - block;
        this.#granted(lease, block, Math.max(0, Math.min(block, this.#points - before)), rejection);
      }
    })();
    try {
      await lease.reserving;
    } finally {
      lease.reserving = undefined;
    }
  }

  #granted(lease: Lease, block: number, points: number, res: RateLimiterRes): void {
    const windowEndsAt = Date.now() + res.msBeforeNext;
    if (windowEndsAt > lease.windowEndsAt + 1000) {
      // A new database window: what the last one left here is gone.
      lease.points = 0;
      lease.exhausted = false;
      lease.refusalLogged = false;
    }
    lease.windowEndsAt = windowEndsAt;
    lease.block = block;
    lease.points += points;
    lease.remaining = res.remainingPoints;
    lease.exhausted = points < block || res.remainingPoints <= 0;
  }

  #remember(key: string, lease: Lease): void {
    if (this.#leases.size >= MAX_KEYS) {
      const now = Date.now();
      for (const [k, l] of this.#leases) if (l.windowEndsAt <= now && !l.reserving) this.#leases.delete(k);
      for (const k of this.#leases.keys()) {
        if (this.#leases.size < MAX_KEYS) break;
        if (!this.#leases.get(k)!.reserving) this.#leases.delete(k);
      }
    }
    this.#leases.set(key, lease);
  }
}
