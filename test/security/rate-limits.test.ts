import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, startAdminNode } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addClient } from '../support/fixtures.ts';
import { purge } from '../../src/app.ts';
import type { TestServer } from '../support/server.ts';

const LIMITS = {
  REALMGATE_RATE_LIMIT_TOKEN_PER_MINUTE: '3',
  REALMGATE_RATE_LIMIT_DISCOVER_PER_MINUTE: '3',
  REALMGATE_RATE_LIMIT_FEDERATION_START_PER_MINUTE: '2',
  REALMGATE_RATE_LIMIT_ADMIN_PER_MINUTE: '4',
};

let database: TestDatabase;
let a: TestServer;
let b: TestServer;

beforeAll(async () => {
  database = await createTestDatabase();
  // Two nodes on one database: the counters are shared, as behind a load balancer.
  a = await startAdminNode(database.db, LIMITS);
  b = await startAdminNode(database.db, LIMITS);
  for (const id of ['m2m-one', 'm2m-two']) {
    await addClient(a.node, { client_id: id, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic' }, `${id}-secret-0123456789`);
  }
  await addClient(a.node, { client_id: 'm2m-post', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_post' }, 'm2m-post-secret-0123456789');
});

afterAll(async () => {
  await b?.close();
  await a?.close();
  await database?.close();
});

const tokenRequest = (node: TestServer, clientId: string) =>
  fetch(`${node.url}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${clientId}-secret-0123456789`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });

const form = (node: TestServer, path: string, body: string) =>
  fetch(`${node.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body, redirect: 'manual' });

describe('rate limits', () => {
  it('limit the token endpoint per client across nodes, with 429, Retry-After and an OAuth error', async () => {
    const statuses = [];
    for (const node of [a, b, a]) statuses.push((await tokenRequest(node, 'm2m-one')).status);
    expect(statuses).toEqual([200, 200, 200]);
    const refused = await tokenRequest(b, 'm2m-one');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await refused.json()).toMatchObject({ error: 'temporarily_unavailable' });
    // Another client from the same address has its own allowance.
    expect((await tokenRequest(a, 'm2m-two')).status).toBe(200);
  });

  it('limit token requests without HTTP Basic authentication per IP, with the same answer', async () => {
    const posted = (node: TestServer) => form(node, '/token', 'grant_type=client_credentials&client_id=m2m-post&client_secret=m2m-post-secret-0123456789');
    const statuses = [];
    for (const node of [a, b, a]) statuses.push((await posted(node)).status);
    expect(statuses).toEqual([200, 200, 200]);
    const refused = await posted(b);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await refused.json()).toMatchObject({ error: 'temporarily_unavailable' });
  });

  it('limit home-realm discovery per IP across nodes, answering with the safe page', async () => {
    const statuses = [];
    for (const node of [a, b, a]) statuses.push((await form(node, '/interaction/some-uid/discover', 'email=a%40acme.example')).status);
    expect(statuses.every((s) => s !== 429)).toBe(true);
    const refused = await form(b, '/interaction/some-uid/discover', 'email=a%40acme.example');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(refused.headers.get('content-type')).toMatch(/text\/html/);
    expect(await refused.text()).toContain('Too many requests came from your network');
  });

  it('limit the start of federated logins per IP, from the picker and from discovery alike', async () => {
    expect((await fetch(`${a.url}/federation/acme/start?interaction=x`, { redirect: 'manual' })).status).not.toBe(429);
    expect((await form(b, '/interaction/some-uid/federate', 'provider=acme')).status).not.toBe(429);
    const refused = await fetch(`${a.url}/federation/acme/start?interaction=x`, { redirect: 'manual' });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('limit the admin API per IP across nodes, answering problem+json', async () => {
    const api = new AdminApi(a.url, (await AdminApi.connect(a.url)).token);
    const other = new AdminApi(b.url, api.token);
    const statuses = [];
    for (const client of [api, other, api, other]) statuses.push((await client.get('/providers')).status);
    expect(statuses).toEqual([200, 200, 200, 200]);
    const refused = await api.get('/providers');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(refused.body).toMatchObject({ type: 'urn:realmgate:problem:too_many_requests', status: 429 });
  });

  it('keep their counters in the shared database, and the purge removes ended windows', async () => {
    const rows = await database.db('rate_limits').select('key');
    expect(rows.map((r: { key: string }) => r.key)).toEqual(expect.arrayContaining(['token:client:m2m-one', 'admin:ip:127.0.0.1']));
    await database.db('rate_limits').update({ expire: Date.now() - 1000 });
    expect((await purge(a.node.services)).rate_limits).toBe(rows.length);
  });
});
