import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoginThrottle } from '../../src/store/login-throttle.ts';
import { ClientRepository } from '../../src/store/clients.ts';
import { knexAdapter, purgeExpiredPayloads } from '../../src/store/oidc-adapter.ts';
import { SealError, Sealer } from '../../src/store/seal.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
const sealer = new Sealer(crypto.randomBytes(32));

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.close();
});

describe(`the oidc-provider adapter on ${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'}`, () => {
  const Adapter = () => knexAdapter(database.db, new ClientRepository(database.db, sealer));

  it('stores, finds, consumes and destroys an artifact', async () => {
    const codes = new (Adapter())('AuthorizationCode');
    await codes.upsert('c1', { grantId: 'g1', accountId: 'a' }, 60);
    expect(await codes.find('c1')).toEqual({ grantId: 'g1', accountId: 'a' });
    await codes.consume('c1');
    expect((await codes.find('c1'))?.consumed).toEqual(expect.any(Number));
    await codes.destroy('c1');
    expect(await codes.find('c1')).toBeUndefined();
  });

  it('keeps models apart and finds by uid and user code', async () => {
    const A = Adapter();
    await new A('Session').upsert('s1', { uid: 'u1', accountId: 'a' }, 60);
    await new A('DeviceCode').upsert('d1', { userCode: 'ABCD-EFGH' }, 60);
    expect(await new A('AccessToken').find('s1')).toBeUndefined();
    expect(await new A('Session').findByUid('u1')).toMatchObject({ accountId: 'a' });
    expect(await new A('DeviceCode').findByUserCode('ABCD-EFGH')).toMatchObject({ userCode: 'ABCD-EFGH' });
  });

  it('never returns an expired artifact, and the purge deletes it', async () => {
    const tokens = new (Adapter())('AccessToken');
    await tokens.upsert('old', { grantId: 'g-old' }, 60);
    await database.db('oidc_payloads').where({ model: 'AccessToken', id: 'old' }).update({ expires_at: new Date(Date.now() - 1000) });
    expect(await tokens.find('old')).toBeUndefined();
    expect(await purgeExpiredPayloads(database.db)).toBeGreaterThanOrEqual(1);
    expect(await database.db('oidc_payloads').where({ id: 'old' }).first()).toBeUndefined();
  });

  it('finds artifacts by grant, uid, user code and expiry through indexes', async () => {
    const rows = await database.db.raw("select indexdef from pg_indexes where tablename = 'oidc_payloads'");
    const definitions = (rows.rows as { indexdef: string }[]).map((r) => r.indexdef).join('\n');
    for (const column of ['grant_id', 'uid', 'user_code', 'expires_at']) expect(definitions).toContain(`(${column})`);
  });

  it('revokes every artifact of a grant at once', async () => {
    const A = Adapter();
    await new A('AccessToken').upsert('at', { grantId: 'g2' }, 60);
    await new A('RefreshToken').upsert('rt', { grantId: 'g2' }, 60);
    await new A('AccessToken').upsert('other', { grantId: 'g3' }, 60);
    await new A('AccessToken').revokeByGrantId('g2');
    expect(await new A('AccessToken').find('at')).toBeUndefined();
    expect(await new A('RefreshToken').find('rt')).toBeUndefined();
    expect(await new A('AccessToken').find('other')).toBeDefined();
  });

  it('reads clients from the clients table with the secret unsealed, and never stores it in clear', async () => {
    const clients = new ClientRepository(database.db, sealer);
    await clients.save({ client_id: 'sealed', redirect_uris: ['https://a.example/cb'] }, 'top-secret-value');
    const row = await database.db('clients').where({ client_id: 'sealed' }).first();
    expect(JSON.stringify(row)).not.toContain('top-secret-value');
    expect(await new (Adapter())('Client').find('sealed')).toMatchObject({ client_id: 'sealed', client_secret: 'top-secret-value' });
  });
});

describe('sealing', () => {
  it('detects tampering and a wrong key', () => {
    const sealed = sealer.seal('hello');
    expect(sealer.open(sealed)).toBe('hello');
    const [v, iv, tag, ct] = sealed.split('.');
    const flipped = Buffer.from(ct!, 'base64url');
    flipped[0]! ^= 1;
    expect(() => sealer.open([v, iv, tag, flipped.toString('base64url')].join('.'))).toThrow(SealError);
    expect(() => new Sealer(crypto.randomBytes(32)).open(sealed)).toThrow(SealError);
  });
});

describe('login throttling', () => {
  it('limits accounts and IPs separately, and a success resets the account', async () => {
    const throttle = new LoginThrottle(database.db, { maxFailuresPerAccount: 2, maxFailuresPerIp: 3, windowSeconds: 60 });
    const keys = (email: string) => [`account:${email}`, 'ip:10.0.0.9'];
    await throttle.recordFailure(keys('a@x'));
    expect(await throttle.retryAfterSeconds(keys('a@x'))).toBe(0);
    await throttle.recordFailure(keys('a@x'));
    expect(await throttle.retryAfterSeconds(keys('a@x'))).toBeGreaterThan(0);
    // Another account from the same IP: the IP has 2 of 3 failures so far.
    expect(await throttle.retryAfterSeconds(keys('b@x'))).toBe(0);
    await throttle.recordFailure(keys('b@x'));
    expect(await throttle.retryAfterSeconds(keys('c@x'))).toBeGreaterThan(0);
    await throttle.reset(['account:a@x']);
    expect(await throttle.retryAfterSeconds(['account:a@x'])).toBe(0);
  });

  it('starts a new window once the old one has passed', async () => {
    const throttle = new LoginThrottle(database.db, { maxFailuresPerAccount: 1, maxFailuresPerIp: 100, windowSeconds: 60 });
    await throttle.recordFailure(['account:w@x']);
    expect(await throttle.retryAfterSeconds(['account:w@x'])).toBeGreaterThan(0);
    await database.db('login_throttle').where({ key: 'account:w@x' }).update({ expires_at: new Date(Date.now() - 1000) });
    expect(await throttle.retryAfterSeconds(['account:w@x'])).toBe(0);
    await throttle.recordFailure(['account:w@x']);
    expect((await database.db('login_throttle').where({ key: 'account:w@x' }).first()).failures).toBe(1);
    expect(await throttle.purgeExpired()).toBeGreaterThanOrEqual(0);
  });
});
