import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoginTransactionStore } from '../../src/store/login-transactions.ts';
import { LogoutTransactionStore } from '../../src/store/logout-transactions.ts';
import { Sealer } from '../../src/store/seal.ts';
import { Store } from '../../src/store/store.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
let store: Store;

beforeAll(async () => {
  database = await createTestDatabase();
  store = new Store(database.db, { sealer: new Sealer(crypto.randomBytes(32)), logoutRetryPeriodSeconds: 60 });
});

afterAll(async () => {
  await database?.close();
});

const count = async (table: string, where: Record<string, unknown>) =>
  Number(((await database.db(table).where(where).count<{ n: string | number }[]>({ n: '*' }))[0]!).n);

const notice = (sessionUid: string) => ({ sessionUid, clientId: 'mail', accountId: 'acc-1', sid: 'sid-1', reason: 'admin' as const });

describe(`store.transaction on ${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'}`, () => {
  it('rolls back the writes of every repository of a unit of work that throws', async () => {
    const failure = new Error('the change is refused half-way');
    await expect(
      store.transaction(async (tx) => {
        const account = await tx.accounts.create({ email: 'half@example.test', emailVerified: true, name: null, givenName: null, familyName: null, passwordHash: null });
        await tx.audit.record({ actor: 'test', requestId: null, action: 'create', resourceType: 'user', resourceId: account.id, before: null, after: null });
        await tx.logoutDeliveries.enqueue([notice('rolled-back')]);
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await count('accounts', { email: 'half@example.test' })).toBe(0);
    expect(await count('audit_log', { actor: 'test' })).toBe(0);
    expect(await count('logout_deliveries', { session_uid: 'rolled-back' })).toBe(0);
  });

  it("tells the store's outbox listeners of notices queued in a transaction once it commits, and never when it rolls back", async () => {
    const heard: number[] = [];
    store.logoutDeliveries.onEnqueued(() => void count('logout_deliveries', { session_uid: 'committed' }).then((n) => heard.push(n)));
    await store.transaction((tx) => tx.logoutDeliveries.enqueue([notice('aborted')]).then(() => Promise.reject(new Error('abort')))).catch(() => undefined);
    await store.transaction(async (tx) => {
      await tx.logoutDeliveries.enqueue([notice('committed')]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      // Still inside the transaction: nobody has been told yet.
      expect(heard).toEqual([]);
    });
    await expect.poll(() => heard).toEqual([1]);
    expect(await count('logout_deliveries', { session_uid: 'aborted' })).toBe(0);
  });
});

describe('sign-outs and logins sent upstream share one take-once table', () => {
  it('takes a sign-out once, for its provider only', async () => {
    const id = LogoutTransactionStore.newId();
    await store.logoutTransactions.save(id, { kind: 'logout', alias: 'acme', continueTo: 'http://127.0.0.1:1/signed-out', data: { requestId: 'r1' } });
    expect(await store.logoutTransactions.take(id, 'globex')).toBeUndefined();
    // Taking it for the wrong provider used it up, as a login transaction is.
    expect(await store.logoutTransactions.take(id, 'acme')).toBeUndefined();
    const again = LogoutTransactionStore.newId();
    await store.logoutTransactions.save(again, { kind: 'logout', alias: 'acme', continueTo: 'http://127.0.0.1:1/signed-out', data: {} });
    expect(await store.logoutTransactions.take(again, 'acme')).toMatchObject({ kind: 'logout', alias: 'acme', continueTo: 'http://127.0.0.1:1/signed-out' });
    expect(await store.logoutTransactions.take(again, 'acme')).toBeUndefined();
  });

  it('never hands a sign-out to a login, or a login to a sign-out', async () => {
    const signOut = LogoutTransactionStore.newId();
    await store.logoutTransactions.save(signOut, { kind: 'logout', alias: 'acme', continueTo: 'http://127.0.0.1:1/', data: {} });
    expect(await store.loginTransactions.take(signOut, 'upstream', 'acme')).toEqual({ ok: false, reason: 'wrong_kind' });
    const login = LoginTransactionStore.newId();
    await store.loginTransactions.save(login, { kind: 'upstream', alias: 'acme', uid: 'interaction-1', data: { state: 's' } });
    expect(await store.logoutTransactions.take(login, 'acme')).toBeUndefined();
    expect(await count('login_transactions', {})).toBe(0);
  });
});
