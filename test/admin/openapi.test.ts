import type { Router } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRouteTable } from '../../src/admin/router.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import type { TestServer } from '../support/server.ts';
import { AdminApi, startAdminNode } from './admin-api.ts';

let database: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db);
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

interface Layer {
  name: string;
  rawPath?: unknown;
  handle: unknown;
}

/** The router the node's app mounted at `/admin/api`, found in the app's own stack. */
function mountedAdminRouter(): Router {
  const stack = (server.node.app as unknown as { router: { stack: Layer[] } }).router.stack;
  const layer = stack.find((l) => l.name === 'router' && l.rawPath === '/admin/api');
  if (!layer) throw new Error('no router mounted at /admin/api');
  return layer.handle as Router;
}

/** `METHOD /path/{param}` for each route of the mounted admin router. */
function mountedOperations(): string[] {
  return adminRouteTable(mountedAdminRouter()).map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`).sort();
}

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1 with the token endpoint and admin scope of this node', async () => {
    const res = await new AdminApi(server.url).get('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    expect(res.body.servers).toEqual([{ url: `${server.url}/admin/api` }]);
    expect(res.body.components.securitySchemes.adminToken.flows.clientCredentials).toEqual({ tokenUrl: `${server.url}/token`, scopes: { admin: expect.any(String) } });
  });

  it('documents every mounted route, and every documented route is mounted', async () => {
    const doc = (await new AdminApi(server.url).get('/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths)
      .flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    const mounted = mountedOperations();
    expect(mounted.length).toBeGreaterThan(20);
    expect(mounted).toEqual(documented);
  });

  it('resolves every $ref it uses', async () => {
    const doc = (await new AdminApi(server.url).get('/openapi.json')).body as Record<string, unknown>;
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of new Set(refs)) {
      const target = ref.split('/').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], doc);
      expect(target, ref).toBeDefined();
    }
  });

  it('gives each operation a unique operationId and documents its error responses as problems', async () => {
    const doc = (await new AdminApi(server.url).get('/openapi.json')).body as { paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>> };
    const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
    expect(new Set(ids).size).toBe(ids.length);
    for (const [path, item] of Object.entries(doc.paths)) {
      if (path === '/openapi.json') continue;
      for (const op of Object.values(item)) expect(Object.keys(op.responses), op.operationId).toContain('401');
    }
  });
});

describe('the OpenAPI document of oauth2 providers', () => {
  it('lists the oauth2 kind, its settings with their meaning, and what each preset fills', async () => {
    const doc = (await new AdminApi(server.url).get('/openapi.json')).body as { components: { schemas: Record<string, any> } };
    const schemas = doc.components.schemas;
    expect(schemas.ProviderWrite.properties.kind.enum).toContain('oauth2');
    const settings = schemas.OAuth2Settings.properties;
    for (const name of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'client_id', 'scopes', 'pkce', 'subject_pointer', 'email_pointer', 'name_pointer', 'emails_endpoint', 'preset', 'tenant', 'team_id', 'key_id', 'hd']) {
      expect(settings[name]?.description, name).toBeTruthy();
    }
    expect(settings.preset.enum).toEqual(['github', 'google', 'microsoft', 'apple', 'facebook', 'gitlab', 'linkedin']);
    expect(schemas.OAuth2Presets.properties.github.default).toMatchObject({ token_endpoint: 'https://github.com/login/oauth/access_token', email_trust: 'any' });
    expect(schemas.OAuth2Presets.properties.microsoft.description).toContain('not verified');
  });
});
