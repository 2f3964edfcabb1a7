/**
 * Link confirmation across nodes: a login begun on one node, its confirmation step answered by
 * another sharing the database and the issuer. The pending identity lives sealed in the database,
 * never in a node's memory.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addOidcProvider, isUpstreamLogin, registerApp, signInUpstream, type TestApp } from '../support/federation.ts';
import { addUser } from '../support/fixtures.ts';
import { HttpSession, readForm } from '../support/http-session.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp } from '../support/upstream-idp.ts';

const alice = UPSTREAM_USERS[0]!;

let database: TestDatabase;
let first: TestServer;
let second: TestServer;
let idp: UpstreamIdp;
let app: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  first = await startTestServer(database.db);
  // The second node serves the same issuer (behind one load balancer in production).
  second = await startTestServer(database.db, { ISSUER: first.url });
  idp = await startUpstreamIdp();
  await addOidcProvider(first.node, first.url, idp, { alias: 'corp', displayName: 'Acme Corp', domains: ['acme.example'] });
  app = await registerApp(first.node, first.url, 'nodes-app');
});

afterAll(async () => {
  await second?.close();
  await first?.close();
  await idp?.close();
  await database?.close();
});

it('finishes on a second node a link confirmation the first node began', async () => {
  const local = await addUser(first.node, { email: alice.email, password: 'alice-local-password' });
  const browser = new HttpSession();
  const request = await app.authorizationUrl({ idp_hint: 'corp' });
  const upstream = await browser.follow(request.url);
  expect(isUpstreamLogin(upstream, idp)).toBe(true);
  const confirm = await signInUpstream(browser, upstream, alice, app.redirectUri);
  expect(confirm.url.origin).toBe(first.url);
  expect(confirm.body).toContain('data-link-method="local"');

  // The confirmation is posted to the other node.
  const form = readForm(confirm, /\/login$/);
  const onSecond = new URL(form.action.pathname, second.url);
  const back = await browser.submit(onSecond, { ...form.fields, password: 'alice-local-password' }, app.redirectUri);
  expect(back.status, back.body.slice(0, 500)).toBe(0);
  const claims = (await app.redeem(request, back.url)).claims()!;
  expect(claims).toMatchObject({ sub: local.id, idp: 'corp' });
  expect(await database.db('external_identities').where({ provider_alias: 'corp', subject: alice.sub }).first()).toMatchObject({ account_id: local.id });
  // The pending identity was used up.
  expect(await database.db('interaction_states')).toEqual([]);
});
