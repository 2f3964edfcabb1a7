import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, startAdminNode } from '../admin/admin-api.ts';
import { startBackchannelReceiver, type BackchannelReceiver } from '../support/backchannel-receiver.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { addOidcProvider, federatedLogin, registerApp, type TestApp } from '../support/federation.ts';
import { addUser } from '../support/fixtures.ts';
import { passwordLogin } from '../support/login.ts';
import type { TestServer } from '../support/server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp } from '../support/upstream-idp.ts';

const [alice, bob] = UPSTREAM_USERS as [(typeof UPSTREAM_USERS)[number], (typeof UPSTREAM_USERS)[number]];
const PASSWORD = 'bulk-sessions-password-1';

let database: TestDatabase;
let server: TestServer;
let api: AdminApi;
let idp: UpstreamIdp;
let receiver: BackchannelReceiver;
let app: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db, { REALMGATE_LOGOUT_DELIVERY_INTERVAL_SECONDS: '1' });
  api = await AdminApi.connect(server.url);
  idp = await startUpstreamIdp();
  receiver = await startBackchannelReceiver();
  await addOidcProvider(server.node, server.url, idp, { alias: 'acme' });
  app = await registerApp(server.node, server.url, 'mail', { backchannel_logout_uri: receiver.url, backchannel_logout_session_required: true });
  await addUser(server.node, { email: 'local@example.com', password: PASSWORD });
});

afterAll(async () => {
  await server?.close();
  await idp?.close();
  await receiver?.close();
  await database?.close();
});

/** The signed-in sessions the admin API lists for a filter. */
async function sessions(query: string): Promise<{ id: string; account_id: string; idp: string }[]> {
  return (await api.get(`/sessions?${query}`)).body.items;
}

describe('ending many sessions at once', () => {
  it('ends every session of a provider (the kill switch), each with its notices, and leaves the others', async () => {
    await federatedLogin(app, idp, alice, { params: { idp_hint: 'acme' } });
    await federatedLogin(app, idp, bob, { params: { idp_hint: 'acme' } });
    await passwordLogin(app.config, { redirectUri: app.redirectUri, email: 'local@example.com', password: PASSWORD, scope: 'openid' });
    const ofAcme = await sessions('idp=acme');
    expect(ofAcme).toHaveLength(2);
    const tokensBefore = receiver.tokens.length;

    const res = await api.delete('/sessions?idp=acme');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ended: 2 });
    expect(await sessions('idp=acme')).toEqual([]);
    expect(await sessions('idp=local')).toHaveLength(1);
    await eventually('both applications are told', async () => receiver.tokens.length === tokensBefore + 2);
    const audit = await api.get('/audit?resource_type=session');
    expect(audit.body.items.filter((e: { action: string; resource_id: string }) => e.action === 'end' && ofAcme.some((s) => s.id === e.resource_id))).toHaveLength(2);
  });

  it('ends every session of one account', async () => {
    const first = await federatedLogin(app, idp, alice, { params: { idp_hint: 'acme' } });
    await federatedLogin(app, idp, alice, { params: { idp_hint: 'acme' } });
    await federatedLogin(app, idp, bob, { params: { idp_hint: 'acme' } });
    const accountId = first.claims.sub;
    expect(await sessions(`account_id=${accountId}`)).toHaveLength(2);
    const res = await api.delete(`/sessions?account_id=${accountId}`);
    expect(res.body).toEqual({ ended: 2 });
    expect(await sessions(`account_id=${accountId}`)).toEqual([]);
    expect(await sessions('idp=acme')).toHaveLength(1);
  });

  it('refuses to end sessions without a filter, or with an unknown one, and ends nothing', async () => {
    const before = await sessions('');
    const none = await api.delete('/sessions');
    expect(none.status).toBe(400);
    expect(none.body.errors).toEqual([expect.objectContaining({ field: 'account_id' })]);
    const unknown = await api.delete('/sessions?everyone=yes');
    expect(unknown.status).toBe(400);
    expect(await sessions('')).toEqual(before);
  });
});

describe('client logout metadata', () => {
  it('accepts a frontchannel_logout_uri and refuses one that is not an absolute http(s) URL, naming the field', async () => {
    const good = await api.post('/clients', { client_id: 'frames', redirect_uris: ['http://127.0.0.1:1/frames/cb'], frontchannel_logout_uri: 'http://127.0.0.1:1/frames/logout', frontchannel_logout_session_required: true });
    expect(good.status).toBe(201);
    expect(good.body).toMatchObject({ frontchannel_logout_uri: 'http://127.0.0.1:1/frames/logout', frontchannel_logout_session_required: true });
    const bad = await api.post('/clients', { client_id: 'frames-bad', redirect_uris: ['http://127.0.0.1:1/frames/cb'], frontchannel_logout_uri: 'javascript:alert(1)' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('frontchannel_logout_uri');
    expect((await api.get('/clients/frames-bad')).status).toBe(404);
  });
});
