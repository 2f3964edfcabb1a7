import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoginTransactionStore, MAX_SEALED_COMPLETION_LENGTH, type CompletedTransaction } from '../../src/store/login-transactions.ts';
import { Sealer } from '../../src/store/seal.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
let transactions: LoginTransactionStore;

beforeAll(async () => {
  database = await createTestDatabase();
  transactions = new LoginTransactionStore(database.db, new Sealer(crypto.randomBytes(32)));
});

afterAll(async () => {
  await database?.close();
});

const rows = async () => Number(((await database.db('login_transactions').count<{ n: string | number }[]>({ n: '*' }))[0]!).n);

/** A completed login of `alias` whose upstream sent `claims`. */
const completed = (alias: string, claims: Record<string, unknown> = {}): CompletedTransaction => ({
  kind: 'completed',
  alias,
  uid: 'interaction-1',
  purpose: 'login',
  outcome: {
    type: 'identity',
    identity: {
      subject: 'sub-1',
      profile: { email: 'ada@example.com', emailVerified: true, name: 'Ada', givenName: null, familyName: null, claims: {} },
      claims,
      amr: ['fed'],
      upstreamSession: { issuer: 'https://idp.acme.example', subject: 'sub-1' },
      linkingPolicy: { emailTrust: 'domains', linking: 'confirm', provisioning: 'auto' },
    },
  },
});

describe(`a completed login handed to the interaction on ${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'}`, () => {
  it('travels sealed in the URL when it is small, storing nothing, and opens only for its provider', async () => {
    const before = await rows();
    const reference = await transactions.handOver(completed('acme'));
    expect(reference.length).toBeLessThanOrEqual(MAX_SEALED_COMPLETION_LENGTH);
    expect(reference).not.toContain('ada@example.com');
    expect(await rows()).toBe(before);
    expect(await transactions.takeCompleted(reference, 'acme')).toMatchObject({ ok: true, transaction: { alias: 'acme', uid: 'interaction-1' } });
    expect(await transactions.takeCompleted(reference, 'globex')).toEqual({ ok: false, reason: 'wrong_provider' });
  });

  it('is refused when its sealed reference was altered or has expired', async () => {
    const reference = await transactions.handOver(completed('acme'));
    const altered = reference.slice(0, -4) + (reference.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect(await transactions.takeCompleted(altered, 'acme')).toEqual({ ok: false, reason: 'missing' });
    const expired = await transactions.handOver(completed('acme'), -1);
    expect(await transactions.takeCompleted(expired, 'acme')).toEqual({ ok: false, reason: 'expired' });
  });

  it('is stored when too large for a URL, and taken once', async () => {
    const before = await rows();
    const groups = Array.from({ length: 200 }, (_, i) => `group-${i}-${crypto.randomBytes(8).toString('hex')}`);
    const reference = await transactions.handOver(completed('acme', { groups }));
    expect(LoginTransactionStore.isId(reference)).toBe(true);
    expect(await rows()).toBe(before + 1);
    expect(await transactions.takeCompleted(reference, 'acme')).toMatchObject({ ok: true, transaction: { outcome: { identity: { claims: { groups } } } } });
    expect(await transactions.takeCompleted(reference, 'acme')).toEqual({ ok: false, reason: 'missing' });
    expect(await rows()).toBe(before);
  });
});
