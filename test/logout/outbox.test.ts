import * as jose from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB } from '../../src/jobs/node-jobs.ts';
import { retryDelayMs } from '../../src/logout/delivery.ts';
import { sessionTtl } from '../../src/logout/engine-hooks.ts';
import { AdminApi, startAdminNode } from '../admin/admin-api.ts';
import { startBackchannelReceiver, type BackchannelReceiver } from '../support/backchannel-receiver.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventually, within } from '../support/eventually.ts';
import { addClient, addUser } from '../support/fixtures.ts';
import { discoverAs, passwordLogin, startLogin } from '../support/login.ts';
import type { TestServer } from '../support/server.ts';

const APP = 'http://127.0.0.1:1';
const PASSWORD = 'difference-engine-1822';

/** Registers apps `mail` and `calendar` with back-channel logout at `receiver` (sid required). */
async function addApps(server: TestServer, receiver: BackchannelReceiver): Promise<void> {
  for (const id of ['mail', 'calendar']) {
    await addClient(server.node, {
      client_id: id,
      redirect_uris: [`${APP}/${id}/callback`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      backchannel_logout_uri: `${receiver.url}?client=${id}`,
      backchannel_logout_session_required: true,
      require_consent: false,
    }, `${id}-secret-0123456789`);
  }
}

/** Signs the user in at `mail` (and, single sign-on, at `calendar`); returns the session id and both apps' tokens. */
async function signInToBoth(server: TestServer, email: string, scopes: { mail?: string; calendar?: string } = {}) {
  const mail = await discoverAs(server.url, 'mail', 'mail-secret-0123456789');
  const calendar = await discoverAs(server.url, 'calendar', 'calendar-secret-0123456789');
  // oidc-provider grants offline_access only when the application asks for consent.
  const params = scopes.mail?.includes('offline_access') ? { prompt: 'consent' } : undefined;
  const first = await passwordLogin(mail, { redirectUri: `${APP}/mail/callback`, email, password: PASSWORD, scope: scopes.mail ?? 'openid', ...(params ? { params } : {}) });
  const sso = await startLogin(calendar, { redirectUri: `${APP}/calendar/callback`, scope: scopes.calendar ?? 'openid', browser: first.browser });
  expect(sso.page.status).toBe(0);
  const second = await oidc.authorizationCodeGrant(calendar, sso.page.url, { pkceCodeVerifier: sso.codeVerifier, expectedState: sso.state, expectedNonce: sso.nonce });
  const sub = first.tokens.claims()!.sub;
  const [row] = await server.node.db('login_sessions').where({ account_id: sub }).orderBy('created_at', 'desc').select('session_uid');
  return { sessionUid: (row as { session_uid: string }).session_uid, mail: { config: mail, tokens: first.tokens }, calendar: { config: calendar, tokens: second }, sub };
}

/** The value of one sample in Prometheus text, or 0. */
async function metric(server: TestServer, sample: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

describe('the logout outbox', () => {
  let database: TestDatabase;
  let server: TestServer;
  let receiver: BackchannelReceiver;
  let api: AdminApi;

  beforeAll(async () => {
    database = await createTestDatabase();
    server = await startAdminNode(database.db, {
      REALMGATE_LOGOUT_DELIVERY_INTERVAL_SECONDS: '1',
      REALMGATE_LOGOUT_RETRY_INITIAL_SECONDS: '1',
      // Long enough that a delivery is not given up while the first test is still reading its failures.
      REALMGATE_LOGOUT_RETRY_PERIOD_SECONDS: '8',
    });
    receiver = await startBackchannelReceiver();
    api = await AdminApi.connect(server.url);
    await addApps(server, receiver);
    for (const name of ['ada', 'charles', 'mary', 'ida']) await addUser(server.node, { email: `${name}@example.com`, password: PASSWORD });
  });

  afterAll(async () => {
    await server?.close();
    await receiver?.close();
    await database?.close();
  });

  it('delivers to an application that was down during the logout once it is back, and counts each attempt', async () => {
    const { sessionUid, sub } = await signInToBoth(server, 'ada@example.com');
    receiver.down = true;
    const refusedBefore = { ...receiver.refusedBy };
    expect((await api.delete(`/sessions/${sessionUid}`)).status).toBe(204);
    // The refusal is recorded just after the application answers: wait for the record, not the answer.
    const pending = await eventually('both applications were tried and the failures recorded', async () => {
      const res = await api.get(`/logout-deliveries?session=${sessionUid}&status=pending`);
      return res.body.items.length === 2 && res.body.items.every((d: { last_error: string | null }) => d.last_error) && res.body;
    });
    expect(pending.items[0]).toMatchObject({ session: sessionUid, account_id: sub, reason: 'admin', status: 'pending' });
    expect(pending.items[0].attempts).toBeGreaterThanOrEqual(1);
    expect(pending.items[0].last_error).toContain('503');
    expect(await metric(server, 'realmgate_logout_deliveries_pending')).toBe(2);

    receiver.down = false;
    const jwks = jose.createRemoteJWKSet(new URL(`${server.url}/jwks`));
    const audiences = [];
    for (let i = 0; i < 2; i++) {
      const { payload, protectedHeader } = await jose.jwtVerify(await within('a logout token', receiver.next()), jwks, { issuer: server.url, typ: 'logout+jwt' });
      expect(protectedHeader.typ).toBe('logout+jwt');
      expect(payload).toMatchObject({ sub, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });
      expect(payload.jti).toEqual(expect.any(String));
      expect(payload.sid).toEqual(expect.any(String));
      expect(payload.exp).toBeGreaterThan(payload.iat!);
      expect(payload.nonce).toBeUndefined();
      audiences.push(payload.aud);
    }
    expect(audiences.sort()).toEqual(['calendar', 'mail']);
    const delivered = await eventually('both are recorded as delivered', async () => {
      const res = await api.get(`/logout-deliveries?session=${sessionUid}&status=delivered`);
      return res.body.items.length === 2 && res.body;
    });
    // Each attempt is counted: every refusal while the application was down, and the delivery.
    const refusals = (client: string) => (receiver.refusedBy[client] ?? 0) - (refusedBefore[client] ?? 0);
    for (const d of delivered.items as { client_id: string; attempts: number }[]) {
      expect(refusals(d.client_id)).toBeGreaterThanOrEqual(1);
      expect(d.attempts).toBe(refusals(d.client_id) + 1);
    }
    const session = await api.get(`/sessions/${sessionUid}`);
    expect(session.status).toBe(200);
    expect(session.body).toMatchObject({ id: sessionUid, active: false });
    expect(session.body.logout_deliveries.map((d: { client_id: string; status: string }) => `${d.client_id}:${d.status}`).sort()).toEqual(['calendar:delivered', 'mail:delivered']);
    expect(await metric(server, 'realmgate_logout_deliveries_total{client_id="mail",outcome="retry"}')).toBeGreaterThanOrEqual(1);
    expect(await metric(server, 'realmgate_logout_deliveries_total{client_id="mail",outcome="delivered"}')).toBeGreaterThanOrEqual(1);
  });

  it('dead-letters a delivery after its retry period, and an administrator retry delivers it', async () => {
    const { sessionUid } = await signInToBoth(server, 'charles@example.com');
    receiver.down = true;
    expect((await api.delete(`/sessions/${sessionUid}`)).status).toBe(204);
    const failed = await eventually('both deliveries are given up', async () => {
      const res = await api.get(`/logout-deliveries?session=${sessionUid}&status=failed`);
      return res.body.items.length === 2 && res.body.items;
    }, 30_000); // the 8-s retry period, its backoff and the 1-s delivery interval
    expect(await metric(server, 'realmgate_logout_deliveries_total{client_id="calendar",outcome="failed"}')).toBeGreaterThanOrEqual(1);

    receiver.down = false;
    const tokensBefore = receiver.tokens.length;
    const retried = await api.post(`/logout-deliveries/${failed[0].id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ id: failed[0].id, status: 'pending' });
    await eventually('the retried delivery arrives', async () => receiver.tokens.length === tokensBefore + 1);
    const one = await api.get(`/logout-deliveries/${failed[0].id}`);
    expect(one.body.status).toBe('delivered');
    expect((await api.get(`/logout-deliveries/${failed[1].id}`)).body.status).toBe('failed');
    const audit = await api.get(`/audit?resource_type=logout_delivery&resource_id=${failed[0].id}`);
    expect(audit.body.items).toEqual([expect.objectContaining({ action: 'retry' })]);
  }, 60_000);

  it('loses nothing when the node that ended the session stops before delivering: another node delivers', async () => {
    const other = await startAdminNode(database.db);
    try {
      const { sessionUid } = await signInToBoth(other, 'mary@example.com');
      // The other node stops its delivery work (as if it crashed right after the commit).
      await other.node.jobs.stop();
      const otherApi = await AdminApi.connect(other.url);
      const tokensBefore = receiver.tokens.length;
      expect((await otherApi.delete(`/sessions/${sessionUid}`)).status).toBe(204);
      const queued = await database.db('logout_deliveries').where({ session_uid: sessionUid }).select('status', 'attempts');
      expect(queued).toEqual([{ status: 'pending', attempts: 0 }, { status: 'pending', attempts: 0 }]);
      await other.close();
      await eventually('this node delivered both', async () => receiver.tokens.length === tokensBefore + 2);
    } finally {
      await other.close().catch(() => undefined);
    }
  });

  it('queues nothing twice when a session is ended twice, and answers 404 the second time', async () => {
    const { sessionUid } = await signInToBoth(server, 'ida@example.com');
    expect((await api.delete(`/sessions/${sessionUid}`)).status).toBe(204);
    expect((await api.delete(`/sessions/${sessionUid}`)).status).toBe(404);
    expect(await database.db('logout_deliveries').where({ session_uid: sessionUid }).count({ n: '*' })).toEqual([{ n: 2 }]);
  });

  it('refuses unknown filters and ids with a problem naming them', async () => {
    const bad = await api.get('/logout-deliveries?status=lost');
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual([expect.objectContaining({ field: 'status' })]);
    expect((await api.post('/logout-deliveries/abc/retry')).status).toBe(404);
    expect((await api.post('/logout-deliveries/999999/retry')).status).toBe(404);
  });

  it('waits about twice as long before each retry, with jitter, up to an hour', () => {
    expect(retryDelayMs(1, 10, () => 0)).toBe(5_000);
    expect(retryDelayMs(1, 10, () => 1)).toBe(10_000);
    expect(retryDelayMs(3, 10, () => 1)).toBe(40_000);
    expect(retryDelayMs(30, 10, () => 1)).toBe(3_600_000);
  });
});

describe('session expiry', () => {
  let database: TestDatabase;
  let server: TestServer;
  let receiver: BackchannelReceiver;

  beforeAll(async () => {
    database = await createTestDatabase();
    server = await startAdminNode(database.db, { REALMGATE_SESSION_IDLE_TIMEOUT_SECONDS: '2', REALMGATE_LOGOUT_DELIVERY_INTERVAL_SECONDS: '1' });
    receiver = await startBackchannelReceiver();
    await addApps(server, receiver);
    await addUser(server.node, { email: 'grace@example.com', password: PASSWORD });
  });

  afterAll(async () => {
    await server?.close();
    await receiver?.close();
    await database?.close();
  });

  it('ends a session after its inactivity timeout, tells its applications and keeps only offline_access tokens', async () => {
    const { sessionUid, mail, calendar } = await signInToBoth(server, 'grace@example.com', { mail: 'openid offline_access', calendar: 'openid' });
    expect(mail.tokens.refresh_token).toBeDefined();
    await new Promise((r) => setTimeout(r, 2500));
    await server.node.jobs.run(JOB.sessionExpiry);
    const rows = await eventually('both expiry notices are delivered', async () => {
      const r = await database.db('logout_deliveries').where({ session_uid: sessionUid, status: 'delivered' }).select('client_id', 'reason');
      return r.length === 2 && r;
    });
    expect(rows.map((r: { reason: string }) => r.reason)).toEqual(['expired', 'expired']);
    // The offline grant outlives the session; the other grant's tokens are revoked.
    await expect(oidc.refreshTokenGrant(mail.config, mail.tokens.refresh_token!)).resolves.toMatchObject({ access_token: expect.any(String) });
    expect(await oidc.tokenIntrospection(calendar.config, calendar.tokens.access_token)).toMatchObject({ active: false });
  });
});

describe('the session time-to-live', () => {
  it('is the inactivity timeout, but never past the lifetime counted from sign-in', () => {
    const ttl = sessionTtl({ lifetimeSeconds: 3600, idleTimeoutSeconds: 600 });
    const now = Math.floor(Date.now() / 1000);
    const ctx = undefined as never;
    expect(ttl(ctx, {})).toBe(600);
    expect(ttl(ctx, { loginTs: now - 60 })).toBe(600);
    expect(ttl(ctx, { loginTs: now - 3300 })).toBeLessThanOrEqual(300);
    expect(ttl(ctx, { loginTs: now - 3300 })).toBeGreaterThan(290);
    expect(ttl(ctx, { loginTs: now - 7200 })).toBe(1);
  });
});

describe('back-channel logout URIs and the SSRF guard', () => {
  let database: TestDatabase;
  let server: TestServer;
  let receiver: BackchannelReceiver;

  beforeAll(async () => {
    database = await createTestDatabase();
    server = await startAdminNode(database.db, { REALMGATE_ALLOW_PRIVATE_NETWORK: 'false', REALMGATE_LOGOUT_DELIVERY_INTERVAL_SECONDS: '1' });
    receiver = await startBackchannelReceiver();
    await addApps(server, receiver);
    await addUser(server.node, { email: 'hedy@example.com', password: PASSWORD });
  });

  afterAll(async () => {
    await server?.close();
    await receiver?.close();
    await database?.close();
  });

  it('does not connect to a back-channel URI at a loopback address unless private networks are allowed', async () => {
    const { sessionUid } = await signInToBoth(server, 'hedy@example.com');
    const api = await AdminApi.connect(server.url);
    expect((await api.delete(`/sessions/${sessionUid}`)).status).toBe(204);
    // A claimed delivery counts its attempt before it is tried; wait for the attempt's outcome.
    const tried = await eventually('a delivery attempt was recorded', async () => {
      const res = await api.get(`/logout-deliveries?session=${sessionUid}`);
      return res.body.items.find((d: { attempts: number; last_error: string | null }) => d.attempts > 0 && d.last_error);
    });
    expect(tried.last_error).toMatch(/private or special-purpose address/);
    expect(receiver.tokens).toEqual([]);
    expect(receiver.refused).toBe(0);
  });
});
