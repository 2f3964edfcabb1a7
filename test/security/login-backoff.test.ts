import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountRepository } from '../../src/store/accounts.ts';
import { signInWithPassword } from '../../src/accounts/local-login.ts';
import { hashPassword } from '../../src/accounts/passwords.ts';
import { LoginThrottle } from '../../src/store/login-throttle.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const ADA = { email: 'ada@example.com', password: 'correct horse battery' };
const ATTACKER = '203.0.113.66';
const ADA_HOME = '198.51.100.7';

let database: TestDatabase;
let accounts: AccountRepository;

beforeAll(async () => {
  database = await createTestDatabase();
  accounts = new AccountRepository(database.db);
  await accounts.create({ email: ADA.email, emailVerified: true, name: null, passwordHash: await hashPassword(ADA.password) });
});

afterAll(async () => {
  await database?.close();
});

/** Lets every block on ada's keys pass, as waiting would (the database clock decides blocks). */
const waitOutBlocks = () => database.db('login_throttle').update({ blocked_until: new Date(Date.now() - 1000) }).where('key', 'like', '%ada@example.com%');

describe('the per-account password throttle', () => {
  const throttle = () => new LoginThrottle(database.db, { maxFailuresPerAccount: 5, maxFailuresPerIp: 1000, windowSeconds: 900, maxDelaySeconds: 60 });

  it('never locks a known user out: after an attacker\'s guesses the owner waits at most the delay cap, then signs in', async () => {
    const deps = { accounts, throttle: throttle() };
    // An attacker keeps guessing, waiting out each block, for as long as it likes.
    let refusedAsThrottled = 0;
    for (let i = 0; i < 12; i++) {
      const result = await signInWithPassword(deps, { email: ADA.email, password: `guess-${i}`, ip: ATTACKER });
      if (result.outcome === 'throttled') refusedAsThrottled++;
      await waitOutBlocks();
    }
    expect(refusedAsThrottled).toBe(0);
    // The attacker's own address is locked out of this account for the window.
    expect(await deps.throttle.retryAfterSeconds(LoginThrottle.keysFor(ADA.email, ATTACKER))).toBe(0);
    await signInWithPassword(deps, { email: ADA.email, password: 'guess-again', ip: ATTACKER });
    expect(await deps.throttle.retryAfterSeconds(LoginThrottle.keysFor(ADA.email, ATTACKER))).toBeGreaterThan(800);
    // Ada, elsewhere, waits no longer than the cap, whatever the attacker did...
    const wait = await deps.throttle.retryAfterSeconds(LoginThrottle.keysFor(ADA.email, ADA_HOME));
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(60);
    // ...and then signs in with her password.
    await waitOutBlocks();
    const result = await signInWithPassword(deps, { email: ADA.email, password: ADA.password, ip: ADA_HOME });
    expect(result.outcome).toBe('success');
  });

  it('doubles the delay with each failure beyond the allowance, up to the cap', async () => {
    const t = throttle();
    const keys = ['account:grace@example.com'];
    const delays: number[] = [];
    for (let i = 1; i <= 12; i++) {
      await t.recordFailure(keys);
      delays.push(await t.retryAfterSeconds(keys));
      await database.db('login_throttle').where({ key: keys[0] }).update({ blocked_until: null });
    }
    expect(delays).toEqual([0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60]);
  });

  it('does not count attempts refused while blocked, so hammering does not lengthen the block', async () => {
    const t = throttle();
    const deps = { accounts, throttle: t };
    for (let i = 0; i < 6; i++) await t.recordFailure(['account:alan@example.com']);
    const before = await database.db('login_throttle').where({ key: 'account:alan@example.com' }).first();
    for (let i = 0; i < 5; i++) expect((await signInWithPassword(deps, { email: 'alan@example.com', password: 'x', ip: ATTACKER })).outcome).toBe('throttled');
    const after = await database.db('login_throttle').where({ key: 'account:alan@example.com' }).first();
    expect(after.failures).toBe(before.failures);
    expect(new Date(after.blocked_until).getTime()).toBe(new Date(before.blocked_until).getTime());
  });
});
