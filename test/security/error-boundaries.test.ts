import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi, startAdminNode } from '../admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { registerApp, type TestApp } from '../support/federation.ts';
import { HttpSession, readForm } from '../support/http-session.ts';
import { LEVEL, captureLogs } from '../support/log-lines.ts';
import { addSamlProvider, answer, goToSamlIdp, postToAcs, samlLogin, spCertificateOf } from '../support/saml-federation.ts';
import { TestSamlIdp } from '../support/saml-idp.ts';
import type { TestServer } from '../support/server.ts';

/**
 * Bad input at each kind of boundary (a federation page, an interaction page, the admin API, the
 * back-channel logout endpoint) answers its 4xx (or the upstream's 502) with the code's safe text,
 * changes nothing, and is logged once at warn, without a stack, under the reference the answer shows.
 */
const { logger, lines } = captureLogs();

let database: TestDatabase;
let server: TestServer;
let idp: TestSamlIdp;
let api: AdminApi;
let app: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startAdminNode(database.db, {}, { logger });
  api = await AdminApi.connect(server.url);
  idp = await TestSamlIdp.create('https://idp.acme.example/saml');
  await addSamlProvider(server.node, idp, { alias: 'acme', displayName: 'Acme SAML' });
  app = await registerApp(server.node, server.url, 'boundaries-app');
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

/** The reference an error page shows. */
function pageReference(html: string): string {
  const ref = /<code class="ref">([0-9A-Z]{4}-[0-9A-Z]{2})<\/code>/.exec(html)?.[1];
  expect(ref, html.slice(0, 500)).toBeDefined();
  return ref!;
}

/** Runs `step` and returns what it resolved to with the log lines written meanwhile. */
async function logged<T>(step: () => Promise<T>): Promise<{ result: T; logged: Record<string, unknown>[] }> {
  const from = lines.length;
  const result = await step();
  await new Promise((resolve) => setImmediate(resolve));
  return { result, logged: lines.slice(from) };
}

/** Exactly one line at warn or above: a warn with `code` and `ref`, no stack, nothing at error. */
function expectOneWarning(logs: Record<string, unknown>[], code: string, ref: string): Record<string, unknown> {
  const loud = logs.filter((l) => (l.level as number) >= LEVEL.warn);
  expect(loud, JSON.stringify(loud)).toHaveLength(1);
  expect(loud[0]).toMatchObject({ level: LEVEL.warn, code, ref });
  expect(JSON.stringify(logs)).not.toMatch(/"stack"/);
  return loud[0]!;
}

const sessionCount = async () => Number((await database.db('oidc_payloads').where({ model: 'Session' }).count({ n: '*' }))[0]!.n);

describe('bad input at a boundary', () => {
  it('at the SAML ACS: a forged response gets the safe page naming the provider, logged at warn with its reference', async () => {
    const forger = await TestSamlIdp.create('https://idp.acme.example/saml');
    const browser = new HttpSession();
    const { url } = await app.authorizationUrl({ idp_hint: 'acme' });
    const at = await goToSamlIdp(browser, url, idp, await spCertificateOf(server.node, 'acme'));
    const sessionsBefore = await sessionCount();
    const forged = await forger.response(answer(server.url, 'acme', at.request));
    const { result: page, logged: logs } = await logged(() => postToAcs(browser, server.url, 'acme', forged, at.request.relayState, app.redirectUri));
    expect(page.status).toBe(502);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.body).toContain('We could not verify the answer from Acme SAML, so you are not signed in.');
    expect(page.body).not.toMatch(/signature|xml-crypto|SAMLResponse rejected/i);
    const line = expectOneWarning(logs, 'response_invalid', pageReference(page.body));
    expect(line).toMatchObject({ status: 502, alias: 'acme', path: '/federation/acme/saml/acs' });
    expect(String(line.detail)).toMatch(/signature/i);
    expect(await sessionCount()).toBe(sessionsBefore);
  });

  it('at a federation page: a start without a well-formed interaction gets the safe page, logged at warn', async () => {
    const { result: res, logged: logs } = await logged(() => fetch(`${server.url}/federation/acme/start?interaction=%27%3Cx%3E`, { redirect: 'manual' }));
    const html = await res.text();
    expect(res.status).toBe(400);
    expect(html).toContain('Your sign-in took too long and has expired.');
    expectOneWarning(logs, 'interaction_expired', pageReference(html));
  });

  it('at a federation page asked for JSON: the same failure as problem+json with the same reference as the log', async () => {
    const { result: res, logged: logs } = await logged(() => fetch(`${server.url}/federation/acme/start?interaction=`, { headers: { accept: 'application/json' }, redirect: 'manual' }));
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ type: 'urn:realmgate:problem:interaction_expired', status: 400, detail: expect.stringContaining('has expired') });
    expectOneWarning(logs, 'interaction_expired', String(body.reference));
  });

  it('at an interaction page: a login form with a forged CSRF token gets 403 and the safe page, logged at warn', async () => {
    const browser = new HttpSession();
    const { url } = await app.authorizationUrl();
    const loginPage = await browser.follow(url, {}, app.redirectUri);
    expect(loginPage.status).toBe(200);
    const form = readForm(loginPage, /\/login$/);
    const { result: page, logged: logs } = await logged(() => browser.submit(form.action, { ...form.fields, csrf: 'forged', email: 'a@b.example', password: 'whatever-it-is' }, app.redirectUri));
    expect(page.status).toBe(403);
    expect(page.body).toContain('This form was already used or has expired.');
    expect(page.body).not.toContain('CSRF token');
    const line = expectOneWarning(logs, 'csrf_invalid', pageReference(page.body));
    expect(line.detail).toBe('CSRF token missing or invalid');
  });

  it('at an admin route: a malformed account id gets 400 problem+json naming the field, logged at warn with its reference', async () => {
    const before = await api.get('/sessions');
    const { result: res, logged: logs } = await logged(() => api.request('DELETE', "/sessions?account_id='"));
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(res.body).toMatchObject({ type: 'urn:realmgate:problem:invalid_request', title: 'The request is invalid', status: 400, errors: [expect.objectContaining({ field: 'account_id' })] });
    expect(res.body.detail).toContain('account_id');
    expectOneWarning(logs, 'invalid_request', res.body.reference);
    expect((await api.get('/sessions')).body).toEqual(before.body);
  });

  it('at the back-channel logout endpoint: the spec\'s JSON error, logged at warn', async () => {
    const { result: res, logged: logs } = await logged(() =>
      fetch(`${server.url}/federation/acme/backchannel-logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'logout_token=not.a.jwt' }),
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_request', error_description: 'The logout token is invalid or was already used.' });
    const loud = logs.filter((l) => (l.level as number) >= LEVEL.warn);
    expect(loud).toHaveLength(1);
    expect(loud[0]).toMatchObject({ level: LEVEL.warn, code: 'response_invalid', alias: 'acme' });
    expect(JSON.stringify(logs)).not.toMatch(/"stack"/);
  });
});

describe('the request log', () => {
  it('writes the upstream answer handed over in the URL as (sealed), never the sealed text', async () => {
    const { logged: logs } = await logged(() => samlLogin(app, idp, server, 'acme', { params: { idp_hint: 'acme' }, response: { nameId: 'logged-1' } }));
    const paths = logs.filter((l) => l.msg === 'request').map((l) => l.path as string);
    expect(paths).toContainEqual(expect.stringMatching(/^\/interaction\/[^/]+\/federated\/acme\/\(sealed\)$/));
    expect(JSON.stringify(logs)).not.toMatch(/v1\.[\w-]{100,}/);
  });
});
