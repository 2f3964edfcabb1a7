import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, startAdminNode } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { LEVEL, captureLogs } from '../support/log-lines.ts';
import { addSamlProvider } from '../support/saml-federation.ts';
import { TestSamlIdp } from '../support/saml-idp.ts';
import type { TestServer } from '../support/server.ts';

/** Every log line the node writes, parsed. */
const { logger, lines } = captureLogs();

const WARN = LEVEL.warn;
const ERROR = LEVEL.error;

let database: TestDatabase;
let server: TestServer;
let idp: TestSamlIdp;
let api: AdminApi;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db, {}, { logger });
  api = await AdminApi.connect(server.url);
  idp = await TestSamlIdp.create('https://idp.acme.example/saml');
  await addSamlProvider(server.node, idp, { alias: 'acme', displayName: 'Acme SAML' });
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

/** Posts a form body and returns the answer with the log lines it caused. */
async function postForm(path: string, body: string) {
  const from = lines.length;
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body, redirect: 'manual' });
  const text = await res.text();
  await new Promise((resolve) => setImmediate(resolve));
  return { res, text, logged: lines.slice(from) };
}

/** The request's log lines at warn or above: exactly one warn with the code, nothing at error, no stack anywhere. */
function expectOneWarning(logged: Record<string, unknown>[], code: string): void {
  const loud = logged.filter((l) => (l.level as number) >= WARN);
  expect(loud).toHaveLength(1);
  expect(loud[0]).toMatchObject({ level: WARN, code, status: 413 });
  expect(logged.some((l) => (l.level as number) >= ERROR)).toBe(false);
  expect(JSON.stringify(logged)).not.toMatch(/"stack"/);
}

describe('an oversized body', () => {
  it('at the SAML ACS answers 413 with the safe page, logged once at warn', async () => {
    const { res, text, logged } = await postForm('/federation/acme/saml/acs', `SAMLResponse=${'A'.repeat(2 * 1024 * 1024)}`);
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(text).toContain('larger than it accepts');
    expect(text).toMatch(/<code class="ref">[0-9A-Z]{4}-[0-9A-Z]{2}<\/code>/);
    expectOneWarning(logged, 'payload_too_large');
  });

  it('at the password form answers 413 with the safe page, logged once at warn', async () => {
    const { res, text, logged } = await postForm('/interaction/some-uid/login', `email=a%40b.example&password=${'x'.repeat(64 * 1024)}`);
    expect(res.status).toBe(413);
    expect(text).toContain('larger than it accepts');
    expectOneWarning(logged, 'payload_too_large');
  });

  it('with too many fields at the discovery form answers 413 with the safe page', async () => {
    const fields = Array.from({ length: 100 }, (_, i) => `f${i}=1`).join('&');
    const { res, logged } = await postForm('/interaction/some-uid/discover', fields);
    expect(res.status).toBe(413);
    expectOneWarning(logged, 'payload_too_large');
  });

  it('at the admin API answers 413 problem+json, logged once at warn', async () => {
    const from = lines.length;
    const res = await api.request('POST', '/providers', { raw: JSON.stringify({ alias: 'big', display_name: 'x'.repeat(2 * 1024 * 1024) }), headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(res.body).toMatchObject({ type: 'urn:realmgate:problem:payload_too_large', status: 413 });
    expectOneWarning(lines.slice(from), 'payload_too_large');
  });
});
