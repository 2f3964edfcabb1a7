import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainHomeRealm, PICKER_MAX_PROVIDERS } from '../../src/federation/home-realm.ts';
import { ProviderDirectory } from '../../src/store/provider-directory.ts';
import { QueryCounter, type CountedStatement } from '../../src/store/query-counter.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { registerApp, type TestApp } from '../support/federation.ts';
import { readForm } from '../support/http-session.ts';
import { startLogin } from '../support/login.ts';
import { describeTally, quietCounter } from '../support/statement-count.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

/** Enough providers and domains that a scan would be the planner's choice if no index served the lookup. */
const PROVIDERS = 5_000;
const DOMAINS_PER_PROVIDER = 5;

let database: TestDatabase;
let server: TestServer;
let everyProvider: TestApp;
let fewProviders: TestApp;
let counter: QueryCounter;

/** Seeds providers `p00001…` with domains `d<n>-<k>.example` in two statements (not through the admin API one by one). */
async function seedProviders(db: Knex): Promise<void> {
  await db.raw(
    `insert into identity_providers (alias, kind, display_name, enabled, settings, claim_mappings, version)
     select 'p' || lpad(g::text, 5, '0'), 'oidc', 'Provider ' || g, true, '{"issuer":"https://idp.invalid","client_id":"rg"}', '{}', 1
     from generate_series(1, ?) g`,
    [PROVIDERS],
  );
  await db.raw(
    `insert into provider_domains (domain, provider_alias)
     select 'd' || g || '-' || k || '.example', 'p' || lpad(g::text, 5, '0') from generate_series(1, ?) g, generate_series(1, ?) k`,
    [PROVIDERS, DOMAINS_PER_PROVIDER],
  );
  await db.raw('analyze identity_providers');
  await db.raw('analyze provider_domains');
}

/** The statement a directory call sends (the only one it sends). */
async function statementOf(call: () => Promise<unknown>): Promise<CountedStatement> {
  const tally = await counter.during(call);
  expect(tally.count, describeTally(tally)).toBe(1);
  return tally.statements[0]!;
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** Every node of a statement's plan, from PostgreSQL's (or PGlite's) `EXPLAIN (FORMAT JSON)`. */
async function planOf(db: Knex, statement: CountedStatement): Promise<PlanNode[]> {
  const sql = statement.sql.replace(/\$\d+/g, '?');
  const result = (await db.raw(`explain (format json) ${sql}`, statement.bindings as Knex.RawBinding[])) as { rows: { 'QUERY PLAN': unknown }[] };
  const raw = result.rows[0]!['QUERY PLAN'];
  const [top] = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { Plan: PlanNode }[];
  const nodes: PlanNode[] = [];
  const walk = (node: PlanNode) => {
    nodes.push(node);
    node.Plans?.forEach(walk);
  };
  walk(top!.Plan);
  return nodes;
}

const scans = (nodes: PlanNode[]) => nodes.filter((n) => n['Node Type'].includes('Scan')).map((n) => `${n['Node Type']} on ${n['Relation Name'] ?? '?'}${n['Index Name'] ? ` using ${n['Index Name']}` : ''}`);

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database.db);
  await seedProviders(database.db);
  everyProvider = await registerApp(server.node, server.url, 'portal');
  fewProviders = await registerApp(server.node, server.url, 'partner', { allowed_providers: ['p00002', 'p00003', 'p04999'] });
  counter = await quietCounter(server.node);
}, 120_000);

afterAll(async () => {
  await server?.close();
  await database?.close();
});

describe(`home-realm discovery at ${PROVIDERS} providers and ${PROVIDERS * DOMAINS_PER_PROVIDER} domains`, () => {
  it('finds the provider of an email domain with an index lookup, never a scan', async () => {
    const directory = new ProviderDirectory(database.db);
    const statement = await statementOf(() => directory.forDomain('d4321-3.example'));
    const plan = scans(await planOf(database.db, statement));
    expect(plan.some((s) => /Index (Only )?Scan on provider_domains/.test(s)), plan.join('\n')).toBe(true);
    expect(plan.filter((s) => s.startsWith('Seq Scan')), plan.join('\n')).toEqual([]);
    expect(await directory.forDomain('D4321-3.example')).toEqual({ alias: 'p04321', displayName: 'Provider 4321', domains: ['d4321-3.example'] });
  });

  it('reads a hinted provider, the picker page and a name search by index, never a scan', async () => {
    const directory = new ProviderDirectory(database.db);
    const calls: (() => Promise<unknown>)[] = [() => directory.enabled('p01234'), () => directory.page(undefined, PICKER_MAX_PROVIDERS)];
    for (const call of calls) {
      const tally = await counter.during(call);
      for (const statement of tally.statements) {
        const plan = scans(await planOf(database.db, statement));
        expect(plan.filter((s) => s.startsWith('Seq Scan')), `${statement.sql}\n${plan.join('\n')}`).toEqual([]);
      }
    }
    const searched = await counter.during(() => directory.search('provider 12', PICKER_MAX_PROVIDERS));
    const searchPlan = scans(await planOf(database.db, searched.statements[0]!));
    expect(searchPlan.filter((s) => s.startsWith('Seq Scan')), searchPlan.join('\n')).toEqual([]);
    const found = searched.result;
    expect(found.length).toBe(PICKER_MAX_PROVIDERS);
    expect(found.every((p) => p.displayName.toLowerCase().startsWith('provider 12'))).toBe(true);
  });

  it('decides a login_hint domain for hrd/explain in a few statements, none with a list of every provider', async () => {
    const tally = await counter.during(() => explainHomeRealm(server.node.services, { clientId: 'portal', loginHint: 'ada@d4999-1.example' }));
    expect(tally.result).toMatchObject({ rule: 'login_hint', decision: { action: 'redirect', provider: 'p04999' } });
    expect(tally.count, describeTally(tally)).toBeLessThanOrEqual(5);
    expect(Math.max(...tally.statements.map((s) => s.bindings.length))).toBeLessThanOrEqual(PICKER_MAX_PROVIDERS + 2);
  });

  it('shows email-first discovery and a search instead of a button per provider', async () => {
    const tally = await counter.during(() => startLogin(everyProvider.config, { redirectUri: everyProvider.redirectUri, scope: 'openid' }));
    const { page, browser } = tally.result;
    expect(page.status).toBe(200);
    expect(page.body).not.toContain('data-provider=');
    expect(page.body).toContain('name="email"');
    expect(page.body).toContain('name="provider_search"');
    expect(tally.count, describeTally(tally)).toBeLessThanOrEqual(10);
    expect(Math.max(...tally.statements.map((s) => s.bindings.length))).toBeLessThanOrEqual(PICKER_MAX_PROVIDERS + 2);

    const search = readForm(page, /\/search$/);
    const results = await browser.submit(search.action, { ...search.fields, provider_search: 'Provider 4999' });
    expect(results.status).toBe(200);
    expect(results.body.match(/data-provider="/g)).toHaveLength(1);
    expect(results.body).toContain('data-provider="p04999"');
  });

  it("offers the client's allowed providers as buttons when they are few", async () => {
    const { page } = await startLogin(fewProviders.config, { redirectUri: fewProviders.redirectUri, scope: 'openid' });
    expect(page.status).toBe(200);
    expect([...page.body.matchAll(/data-provider="([^"]+)"/g)].map((m) => m[1])).toEqual(['p00002', 'p00003', 'p04999']);
    expect(page.body).not.toContain('name="provider_search"');
  });
});
