import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, oidcProviderBody, problemFields, startAdminNode, type AdminResponse } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addUser } from '../support/fixtures.ts';
import { freePort, type TestServer } from '../support/server.ts';

let database: TestDatabase;
let server: TestServer;
let api: AdminApi;
let userId: string;

/** JSON nested `depth` levels deep, as text (building it as an object would need as deep a recursion). */
const deepJson = (depth: number, open = '{"a":', close = '}') => `${open.repeat(depth)}1${close.repeat(depth)}`;

/** Malformed values for a path parameter: quotes, SQL-ish, traversal, huge, control and non-ASCII characters. */
const BAD_PATH_VALUES = ['%E0%A4%A', '%', "'", "1' OR '1'='1", '%00', '..%2F..%2Fetc', 'x'.repeat(5000), '%E2%80%AE%F0%9F%98%80', '-1', '00000000-0000-0000-0000-00000000000g', '%25', '%20'];

/** Malformed values for a query parameter (each also sent twice, as an array). */
const BAD_QUERY_VALUES = ["'", '-1', '0', '1e999', 'NaN', 'x'.repeat(10_000), '%00', 'true%27', '{}', '[]', '00000000-0000-0000-0000-00000000000g'];

/** Bodies of the wrong shape or size for a JSON write. */
const BAD_BODIES: { name: string; raw: string; type?: string }[] = [
  { name: 'deeply nested objects', raw: deepJson(20_000) },
  { name: 'deeply nested arrays', raw: deepJson(20_000, '[', ']') },
  { name: 'deep settings', raw: `{"alias":"acme","kind":"oidc","display_name":"x","settings":${deepJson(5000)},"claim_mappings":${deepJson(5000)},"secrets":${deepJson(5000)}}` },
  { name: 'an array', raw: '[]' },
  { name: 'a string', raw: '"provider"' },
  { name: 'a number', raw: '12' },
  { name: 'null', raw: 'null' },
  { name: 'malformed JSON', raw: '{"alias": ' },
  { name: 'wrong types everywhere', raw: JSON.stringify({ alias: 7, kind: [], display_name: {}, enabled: 'yes', domains: 'a.example', settings: [], secrets: 'x', claim_mappings: 3, client_id: 5, redirect_uris: 'https://x', grant_types: {}, allowed_providers: 'acme', local_login: 'no', email: 1, password: [] }) },
  { name: 'huge strings', raw: JSON.stringify({ alias: 'a'.repeat(200_000), kind: 'oidc', display_name: 'd'.repeat(200_000), domains: ['x'.repeat(200_000)], settings: { issuer: `https://${'h'.repeat(200_000)}.example` }, client_id: 'c'.repeat(200_000), redirect_uris: [`https://${'r'.repeat(200_000)}`] }) },
  { name: 'NUL characters', raw: '{"alias":"a\\u0000b","kind":"oidc","display_name":"\\u0000","settings":{"issuer":"https://x\\u0000.example","\\u0000":1},"client_id":"c\\u0000","redirect_uris":["https://x.example/\\u0000"],"email":"a\\u0000@b.example"}' },
  { name: 'prototype keys', raw: '{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}},"alias":"acme"}' },
  { name: 'a form body', raw: 'alias=acme&kind=oidc', type: 'application/x-www-form-urlencoded' },
  { name: 'JSON in another charset', raw: '{"alias":"acme"}', type: 'application/json; charset=utf-16' },
];

interface Route {
  method: string;
  path: string;
  queryParams: string[];
  pathParams: string[];
  hasBody: boolean;
}

/** Every operation of the OpenAPI document with its path and query parameters ($refs resolved). */
function routesOf(doc: any): Route[] {
  const resolve = (p: any) => (p.$ref ? doc.components.parameters[p.$ref.split('/').pop()] : p);
  return Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => {
      const params = ((op.parameters ?? []) as any[]).map(resolve);
      return {
        method: method.toUpperCase(),
        path,
        queryParams: params.filter((p) => p.in === 'query').map((p) => p.name as string),
        pathParams: params.filter((p) => p.in === 'path').map((p) => p.name as string),
        hasBody: op.requestBody !== undefined,
      };
    }),
  );
}

/** Real ids for each path parameter, so requests reach the code behind the lookup too. */
const realIds = (): Record<string, string> => ({ alias: 'acme', client_id: 'app', id: userId });

const fill = (path: string, values: Record<string, string>) => path.replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? 'missing');

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  api = await AdminApi.connect(server.url);
  expect((await api.post('/providers', oidcProviderBody('acme', `http://127.0.0.1:${await freePort()}`, { domains: ['acme.example'] }))).status).toBe(201);
  expect((await api.post('/clients', { client_id: 'app', redirect_uris: ['https://app.example/cb'] })).status).toBe(201);
  userId = (await addUser(server.node, { email: 'ada@example.com', password: 'correct horse battery' })).id;
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

describe('malformed input to every admin API route', () => {
  const failures: string[] = [];
  const check = (label: string, res: AdminResponse) => {
    if (res.status >= 500) failures.push(`${label} → ${res.status} ${res.text.slice(0, 200)}`);
  };

  it('answers 400 naming account_id for a session filter that is not an account id', async () => {
    const res = await api.get(`/sessions?account_id=${encodeURIComponent("'")}`);
    expect(res.status).toBe(400);
    expect(problemFields(res)).toEqual(['account_id']);
  });

  it('answers 400 for a deeply nested merge patch, and changes nothing', async () => {
    const before = (await api.get('/providers/acme')).body;
    const res = await api.request('PATCH', '/providers/acme', { raw: `{"settings":${deepJson(20_000)}}`, headers: { 'content-type': 'application/merge-patch+json' } });
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/nest/);
    expect((await api.get('/providers/acme')).body).toEqual(before);
  });

  it('answers 404 for a user id that is not an account id', async () => {
    const res = await api.get(`/users/${encodeURIComponent("'")}`);
    expect(res.status).toBe(404);
  });
  it('never answers 5xx to bad path parameters, bad query parameters or bad bodies', async () => {
    const doc = (await api.get('/openapi.json')).body;
    const routes = routesOf(doc);
    expect(routes.length).toBeGreaterThan(15);
    let requests = 0;
    for (const route of routes) {
      for (const bad of BAD_PATH_VALUES) {
        for (const name of route.pathParams) {
          const path = fill(route.path, { ...realIds(), [name]: bad });
          check(`${route.method} ${route.path} with ${name}=${bad.slice(0, 30)}`, await api.request(route.method, path, route.hasBody ? { raw: '{}', headers: { 'content-type': 'application/json' } } : {}));
          requests++;
        }
      }
      for (const name of route.queryParams) {
        for (const bad of BAD_QUERY_VALUES) {
          const path = fill(route.path, realIds());
          // Routes that need client_id (hrd/explain) get a real one, so the bad value is what is judged.
          const base = name !== 'client_id' && route.queryParams.includes('client_id') ? 'client_id=app&' : '';
          check(`${route.method} ${route.path}?${name}=${bad.slice(0, 30)}`, await api.request(route.method, `${path}?${base}${encodeURIComponent(name)}=${bad}`));
          check(`${route.method} ${route.path}?${name}=${bad.slice(0, 30)} twice`, await api.request(route.method, `${path}?${base}${encodeURIComponent(name)}=${bad}&${encodeURIComponent(name)}=${bad}`));
          check(`${route.method} ${route.path}?${name}[x]=${bad.slice(0, 30)}`, await api.request(route.method, `${path}?${base}${encodeURIComponent(name)}[x]=${bad}`));
          requests += 3;
        }
      }
      if (route.hasBody || route.method !== 'GET') {
        for (const body of BAD_BODIES) {
          const types = route.method === 'PATCH' ? [body.type ?? 'application/merge-patch+json', 'application/json'] : [body.type ?? 'application/json'];
          for (const type of types) {
            check(`${route.method} ${route.path} with ${body.name} as ${type}`, await api.request(route.method, fill(route.path, realIds()), { raw: body.raw, headers: { 'content-type': type } }));
            requests++;
          }
        }
      }
    }
    expect(requests).toBeGreaterThan(300);
    expect(failures).toEqual([]);
  }, 180_000);
});
