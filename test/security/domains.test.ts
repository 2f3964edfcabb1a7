import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, oidcProviderBody, problemFields, startAdminNode } from '../admin/admin-api.ts';
import { MAX_DOMAINS_PER_PROVIDER } from '../../src/admin/provider-json.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import type { TestServer } from '../support/server.ts';

let database: TestDatabase;
let server: TestServer;
let api: AdminApi;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
  api = await AdminApi.connect(server.url);
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

const domainsOf = (n: number, prefix = 'd') => Array.from({ length: n }, (_, i) => `${prefix}${i}.example`);

describe('the domains of a provider', () => {
  it('are refused beyond the documented maximum of 1,000, naming the field, and nothing is stored', async () => {
    expect(MAX_DOMAINS_PER_PROVIDER).toBe(1000);
    const res = await api.post('/providers', oidcProviderBody('many', 'https://idp.example', { domains: domainsOf(20_000) }));
    expect(res.status).toBe(400);
    expect(res.body.errors).toContainEqual({ field: 'domains', message: 'must list at most 1000 domains' });
    expect((await api.get('/providers/many')).status).toBe(404);
  });

  it('are accepted up to the maximum, and a repeated one is named by its position', async () => {
    const full = domainsOf(MAX_DOMAINS_PER_PROVIDER, 'full');
    const repeated = [...full.slice(0, 999), full[10]!];
    const refused = await api.post('/providers', oidcProviderBody('full', 'https://idp.example', { domains: repeated }));
    expect(refused.status).toBe(400);
    expect(problemFields(refused)).toEqual(['domains.999']);
    expect(refused.body.errors[0].message).toBe('repeats "full10.example"');
    const created = await api.post('/providers', oidcProviderBody('full', 'https://idp.example', { domains: full }));
    expect(created.status).toBe(201);
    expect(created.body.domains).toHaveLength(MAX_DOMAINS_PER_PROVIDER);
  });

  it('are published with maxItems in the OpenAPI document', async () => {
    const doc = (await api.get('/openapi.json')).body;
    const fromWrite = doc.components.schemas.ProviderWrite.properties.domains;
    expect(fromWrite).toMatchObject({ maxItems: MAX_DOMAINS_PER_PROVIDER, uniqueItems: true });
  });
});
