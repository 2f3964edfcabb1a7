import crypto from 'node:crypto';
import type { Adapter } from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueryCounter } from '../../src/store/query-counter.ts';
import { Sealer } from '../../src/store/seal.ts';
import { Store } from '../../src/store/store.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { registerApp, type TestApp } from '../support/federation.ts';
import { HttpSession } from '../support/http-session.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

let database: TestDatabase;
let store: Store;
let counter: QueryCounter;
let server: TestServer;
let app: TestApp;

/** The engine's adapter for `model`, as oidc-provider builds it (clients are not in play here). */
const adapter = (model: string): Adapter => new (store.engineAdapter({ findForEngine: async () => undefined }))(model);

const stored = async (model: string, id: string) =>
  database.db('oidc_payloads').where({ model, id }).first<{ payload: Record<string, unknown>; consumed_at: Date | null } | undefined>('payload', 'consumed_at');

const interactions = async () => Number(((await database.db('oidc_payloads').where({ model: 'Interaction' }).count<{ n: string | number }[]>({ n: '*' }))[0]!).n);

beforeAll(async () => {
  database = await createTestDatabase();
  store = new Store(database.db, { sealer: new Sealer(crypto.randomBytes(32)), logoutRetryPeriodSeconds: 60 });
  counter = QueryCounter.attach(database.db);
  server = await startTestServer(database.db);
  await server.node.jobs.stop();
  app = await registerApp(server.node, server.url, 'batched');
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

describe(`the engine's held writes on ${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'}`, () => {
  it('answers reads in the same unit from the held writes and sends them all in one statement at its end', async () => {
    const codes = adapter('AuthorizationCode');
    const tokens = adapter('AccessToken');
    await database.db('oidc_payloads').insert({ model: 'AccessToken', id: 'old-token', payload: JSON.stringify({ jti: 'old-token' }) });
    const tally = await counter.during(() =>
      store.holdEngineWrites(async () => {
        await codes.upsert('code-1', { jti: 'code-1', grantId: 'grant-1' }, 60);
        await codes.consume('code-1');
        await tokens.upsert('token-1', { jti: 'token-1', uid: 'uid-1' }, 60);
        await tokens.destroy('old-token');
        // Nothing has been sent yet; the reads see what is held.
        expect(await stored('AuthorizationCode', 'code-1')).toBeUndefined();
        expect(await codes.find('code-1')).toMatchObject({ jti: 'code-1', consumed: expect.any(Number) });
        expect(await tokens.findByUid('uid-1')).toMatchObject({ jti: 'token-1' });
        expect(await tokens.find('old-token')).toBeUndefined();
      }),
    );
    // Besides this test's own look-ups (`stored`), the unit sent one statement: the flush.
    const sent = tally.statements.filter((s) => !s.sql.startsWith('select "payload", "consumed_at" from "oidc_payloads"'));
    expect(sent).toHaveLength(1);
    expect(sent[0]!.sql).toMatch(/^with .* delete from "oidc_payloads"/s);
    expect(await stored('AuthorizationCode', 'code-1')).toMatchObject({ payload: { jti: 'code-1' }, consumed_at: expect.any(Date) });
    expect(await stored('AccessToken', 'token-1')).toMatchObject({ payload: { jti: 'token-1' }, consumed_at: null });
    expect(await stored('AccessToken', 'old-token')).toBeUndefined();
  });

  it('writes straight through outside a unit, as jobs and the CLI do', async () => {
    const tokens = adapter('AccessToken');
    await tokens.upsert('token-2', { jti: 'token-2' }, 60);
    expect(await stored('AccessToken', 'token-2')).toMatchObject({ payload: { jti: 'token-2' } });
    await tokens.consume('token-2');
    expect(await stored('AccessToken', 'token-2')).toMatchObject({ consumed_at: expect.any(Date) });
    await tokens.destroy('token-2');
    expect(await stored('AccessToken', 'token-2')).toBeUndefined();
  });

  it('fails the unit when its writes cannot be stored, and stores none of them', async () => {
    const tokens = adapter('AccessToken');
    const work = store.holdEngineWrites(async () => {
      await tokens.upsert('token-3', { jti: 'token-3' }, 60);
      // PostgreSQL's jsonb refuses a NUL character: the one statement fails as a whole.
      await tokens.upsert('token-4', { jti: 'token-4', note: 'nul \u0000 here' }, 60);
      return 'answered';
    });
    await expect(work).rejects.toThrow();
    expect(await stored('AccessToken', 'token-3')).toBeUndefined();
    expect(await stored('AccessToken', 'token-4')).toBeUndefined();
  });

  it("sends a session's login record with the engine's writes of that request, in the same statement: both land or neither", async () => {
    const sessions = adapter('Session');
    const accountId = crypto.randomUUID();
    const login = (sessionUid: string) => ({ sessionUid, accountId, idp: 'acme', amr: ['fed'] });
    const recorded = async (sessionUid: string) => Number(((await database.db('login_sessions').where({ session_uid: sessionUid }).count<{ n: string | number }[]>({ n: '*' }))[0]!).n);
    const tally = await counter.during(() =>
      store.holdEngineWrites(async () => {
        await sessions.upsert('session-1', { uid: 'uid-s1', accountId }, 60);
        await store.loginSessions.save(login('uid-s1'));
      }),
    );
    expect(tally.count).toBe(1);
    expect(await recorded('uid-s1')).toBe(1);
    await expect(store.holdEngineWrites(async () => {
      await sessions.upsert('session-2', { uid: 'uid-s2', accountId, note: 'nul \u0000 here' }, 60);
      await store.loginSessions.save(login('uid-s2'));
    })).rejects.toThrow();
    expect(await recorded('uid-s2')).toBe(0);
    expect(await stored('Session', 'session-2')).toBeUndefined();
  });

  it("lets concurrent requests' token saves share one statement, each answering only once its own token is stored", async () => {
    const tokens = adapter('AccessToken');
    const ids = Array.from({ length: 10 }, (_, i) => `shared-${i}`);
    const tally = await counter.during(() =>
      Promise.all(ids.map(async (id) => {
        await store.holdEngineWrites(() => tokens.upsert(id, { jti: id }, 60));
        return stored('AccessToken', id);
      })),
    );
    // Each unit saw its row once it was answered.
    expect(tally.result).toEqual(ids.map((id) => expect.objectContaining({ payload: { jti: id } })));
    const saves = tally.statements.filter((s) => s.sql.startsWith('insert into "oidc_payloads"'));
    // The first goes at once; the nine flushed while it was in flight go together.
    expect(saves).toHaveLength(2);
  });

  it('fails only the request whose save the database refuses when saves share a statement', async () => {
    const tokens = adapter('AccessToken');
    const save = (id: string, payload: Record<string, unknown>) => store.holdEngineWrites(() => tokens.upsert(id, { jti: id, ...payload }, 60));
    const outcomes = await Promise.allSettled([save('mixed-0', {}), save('mixed-1', {}), save('mixed-2', { note: 'nul \u0000 here' }), save('mixed-3', {})]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    for (const id of ['mixed-0', 'mixed-1', 'mixed-3']) expect(await stored('AccessToken', id)).toMatchObject({ payload: { jti: id } });
    expect(await stored('AccessToken', 'mixed-2')).toBeUndefined();
  });

  it('never puts two saves of one payload in one statement: the later lands after the earlier', async () => {
    const sessions = adapter('Session');
    const save = (n: number) => store.holdEngineWrites(() => sessions.upsert('twice', { uid: 'uid-twice', n }, 60));
    await Promise.all([save(0), save(1), save(2)]);
    expect(await stored('Session', 'twice')).toMatchObject({ payload: { n: 2 } });
  });

  it('lets no save overtake an earlier one of the same payload that is still waiting', async () => {
    const sessions = adapter('Session');
    const unit = (...saves: [string, number][]) => store.holdEngineWrites(async () => {
      for (const [id, n] of saves) await sessions.upsert(id, { uid: `uid-${id}`, n }, 60);
    });
    // The first goes at once; the three waiting (each two saves, so they flush in this order): the
    // second shares "held" with the first of them and must wait, so the third, saving "order" too,
    // must not land before it.
    await Promise.all([unit(['alone', 0]), unit(['held', 0], ['one', 0]), unit(['held', 1], ['order', 1]), unit(['order', 2], ['two', 0])]);
    expect(await stored('Session', 'order')).toMatchObject({ payload: { n: 2 } });
    expect(await stored('Session', 'held')).toMatchObject({ payload: { n: 1 } });
  });

  it('keeps what the engine wrote before it threw', async () => {
    const tokens = adapter('AccessToken');
    const failure = new Error('the engine failed after a write');
    await expect(store.holdEngineWrites(async () => {
      await tokens.upsert('token-5', { jti: 'token-5' }, 60);
      throw failure;
    })).rejects.toBe(failure);
    expect(await stored('AccessToken', 'token-5')).toMatchObject({ payload: { jti: 'token-5' } });
  });

  it('answers an engine request whose writes cannot be stored with a 500 and no redirect, having stored nothing', async () => {
    const before = await interactions();
    const request = await app.authorizationUrl({ login_hint: 'nul\u0000@example.com' });
    const page = await new HttpSession().request(request.url);
    expect(page.status).toBe(500);
    expect(page.headers.get('location')).toBeNull();
    expect(page.headers.getSetCookie()).toEqual([]);
    expect(page.body).toMatch(/reference <code class="ref">[\w-]+<\/code>/);
    expect(await interactions()).toBe(before);
  });

  it('sends an authorization request with one write: the interaction it starts', async () => {
    const request = await app.authorizationUrl();
    const tally = await counter.during(() => new HttpSession().request(request.url));
    const writes = tally.statements.filter((s) => /^(insert|update|delete|with)/i.test(s.sql) && /"oidc_payloads"/.test(s.sql));
    expect(tally.result.status).toBe(303);
    expect(writes).toHaveLength(1);
  });
});
