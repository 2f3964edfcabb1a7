import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateLatest, migrationConfig } from '../../src/store/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const MIGRATION = '20261203000000_sealed_upstream_id_token';
/** An ID token as a provider of 2026-12-02 stored it, in the clear. */
const PLAIN_ID_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.close();
});

describe('the upstream ID token at rest', () => {
  it('leaves no ID token in the clear once migrated: the plain column and what it held are gone', async () => {
    const { db } = database;
    await db.migrate.down({ ...migrationConfig(), name: MIGRATION });
    await db('login_sessions').insert({
      session_uid: 'before-upgrade', account_id: crypto.randomUUID(), idp: 'acme', amr: JSON.stringify(['pwd']),
      upstream_issuer: 'http://127.0.0.1:9', upstream_subject: 'alice', upstream_id_token: PLAIN_ID_TOKEN,
      expires_at: new Date(Date.now() + 3_600_000),
    });
    await migrateLatest(db);
    const row = await db('login_sessions').where({ session_uid: 'before-upgrade' }).first<Record<string, unknown>>();
    expect(row).toMatchObject({ upstream_subject: 'alice', sealed_upstream_id_token: null });
    expect(row).not.toHaveProperty('upstream_id_token');
    expect(JSON.stringify(row)).not.toContain(PLAIN_ID_TOKEN);
  });
});
