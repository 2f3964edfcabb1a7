/**
 * `npm run bench [-- --quick] [-- --json FILE]`: Realmgate's performance targets (issue 10) as
 * ratios against references measured in the same run, interleaved round by round so the ratios
 * hold on a noisy machine. Every server is a child process (compiled `dist/`, or the in-memory
 * references), so its CPU (`/proc/<pid>/stat`) and memory are its own; the bench process is the
 * applications and the browsers. PostgreSQL rows run when DATABASE_URL is set (a fresh database
 * per node, dropped at the end); the embedded store always runs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type * as oidc from 'openid-client';
import { hrdSteps, type HrdNode } from './hrd.ts';
import { APP_REDIRECT_URI, createSamlIdp, discoverApp, oidcLogin, samlLogin, samlValidationCpuMs } from './logins.ts';
import { batch, median, tally, timed, tokenLoad, type Tally, type TokenRequest } from './measure.ts';
import { rssMb } from './proc.ts';
import { freePort, ROOT, startChild, type ServerChild } from './processes.ts';
import { startRealmgate, type RealmgateNode, type StoreKind } from './realmgate.ts';
import { printFigures, printTargets, row, type TargetRow } from './report.ts';
import { BENCH_API, SERVICE_CLIENT, setUpHrdNode, setUpMainNode, upstreamClientOf } from './setup.ts';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean' }, json: { type: 'string' }, only: { type: 'string' } } });
const quick = Boolean(args.quick);
const SCENARIOS = ['token', 'logins', 'hrd'] as const;
/** `--only token,hrd`: run just those scenarios (for working on one target); the others print as not measured. */
const only = new Set(args.only ? args.only.split(',').map((s) => s.trim()) : SCENARIOS);
for (const name of only) {
  if (!(SCENARIOS as readonly string[]).includes(name)) {
    console.error(`--only: unknown scenario "${name}"; choose from ${SCENARIOS.join(', ')}`);
    process.exit(2);
  }
}
/** A node's V8 heap (used / total) and external memory in MB, as its `/metrics` reports them. */
async function heapFigures(url: string): Promise<string> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const mb = (name: string) => {
    const values = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'gm'))].map((m) => Number(m[1]));
    return values.length ? (values.reduce((a, b) => a + b, 0) / 2 ** 20).toFixed(0) : '?';
  };
  return `${mb('nodejs_heap_size_used_bytes')} / ${mb('nodejs_heap_size_total_bytes')}, ${mb('nodejs_external_memory_bytes')}`;
}

const runs = (scenario: (typeof SCENARIOS)[number]) => only.has(scenario);
/** How much each scenario does per round; the default fits 10 minutes on a 2-core machine. */
const plan = quick
  ? { rounds: 1, tokenMs: 1500, logins: { 1: 3, 4: 8, 16: 16 }, hrdSamples: 3, hrdWarmUp: 10, samlValidations: 50, idleMs: 10_000 }
  : { rounds: 3, tokenMs: 3000, logins: { 1: 6, 4: 12, 16: 32 }, hrdSamples: 8, hrdWarmUp: 30, samlValidations: 200, idleMs: 30_000 };
const CONCURRENCIES = [1, 4, 16] as const;
const HRD_SIZES = [10, 1000, 10_000] as const;
const TOKEN_CONCURRENCY = 10;
const TOKEN_SLICES = 3;

const started = performance.now();
const log = (message: string) => console.error(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(3)} s] ${message}`);

if (!fs.existsSync(path.join(ROOT, 'dist', 'main.js'))) {
  console.error('dist/main.js is missing: `npm run bench` builds it first; when running bench/run.ts by hand, run `npm run build`.');
  process.exit(2);
}

const stores: StoreKind[] = process.env.DATABASE_URL ? ['postgresql', 'embedded'] : ['embedded'];
/** Home-realm discovery runs on PostgreSQL when available, else on the embedded store. */
const hrdStore: StoreKind = stores[0]!;
const peerEnv = (extra: Record<string, string>) => ({ PATH: process.env.PATH ?? '', HOME: os.tmpdir(), NODE_ENV: 'production', ...extra });
const peer = async (name: string, file: string, extra: Record<string, string>, readyPath = '/.well-known/openid-configuration') => {
  const port = Number(extra.BENCH_PORT);
  return startChild({ name, args: ['--import', 'tsx', `bench/peers/${file}`], env: peerEnv(extra), readyUrl: `http://127.0.0.1:${port}${readyPath}` });
};

const children: { close(): Promise<void> }[] = [];
const stopAll = () => Promise.allSettled([...children].reverse().map((c) => c.close()));
// Ctrl-C: the servers get the signal too; their fresh databases and data directories are removed before exiting.
process.once('SIGINT', () => {
  log('interrupted: stopping every server');
  void stopAll().then(() => process.exit(130));
});
try {
  // 1. Realmgate nodes, each started alone on a fresh store (first start measured), then set up and restarted.
  const samlIdp = await createSamlIdp();
  const main = new Map<StoreKind, RealmgateNode>();
  for (const store of stores) {
    log(`starting Realmgate on ${store} (fresh store)`);
    const node = await startRealmgate(`realmgate-${store}`, store);
    children.push(node);
    main.set(store, node);
  }
  // Every size gets a node of its own, set up alike, so only the number of providers differs
  // (the main node at 10 would compare a node warmed by every other scenario with cold ones).
  const hrdNodes = new Map<number, RealmgateNode>();
  for (const size of HRD_SIZES) {
    log(`starting Realmgate on ${hrdStore} for ${size} providers`);
    const node = await startRealmgate(`realmgate-${hrdStore}-hrd-${size}`, hrdStore);
    children.push(node);
    hrdNodes.set(size, node);
  }

  // 2. The references and the upstream IdP, in memory.
  const [upstreamPort, idealPort, barePort] = [await freePort(), await freePort(), await freePort()];
  const upstreamIssuer = `http://127.0.0.1:${upstreamPort}`;
  const idealUpstreamClient = { client_id: 'ideal', client_secret: 'ideal-upstream-secret-0123', redirect_uris: [`http://127.0.0.1:${idealPort}/cb`] };
  log('starting the upstream IdP, the ideal chain and bare oidc-provider');
  const upstream = await peer('upstream', 'upstream-oidc.ts', {
    BENCH_PORT: String(upstreamPort),
    BENCH_CLIENTS: JSON.stringify([idealUpstreamClient, ...[...new Set([...main.values(), ...hrdNodes.values()])].map((n) => upstreamClientOf(n.url))]),
  });
  const bare = await peer('bare oidc-provider', 'token-provider.ts', { BENCH_PORT: String(barePort) });
  const ideal = await peer('ideal chain', 'ideal-gateway.ts', {
    BENCH_PORT: String(idealPort),
    BENCH_UPSTREAM: upstreamIssuer,
    BENCH_UPSTREAM_CLIENT_ID: idealUpstreamClient.client_id,
    BENCH_UPSTREAM_CLIENT_SECRET: idealUpstreamClient.client_secret,
    BENCH_APP_REDIRECT_URI: APP_REDIRECT_URI,
  });
  for (const child of [upstream, bare, ideal]) children.push({ close: () => child.stop() });

  for (const node of main.values()) {
    log(`setting up ${node.name} and restarting it`);
    await setUpMainNode(node, upstreamIssuer, samlIdp);
  }
  for (const [size, node] of hrdNodes) {
    log(`seeding ${size} providers into ${node.name} and restarting it`);
    await setUpHrdNode(node, upstreamIssuer, size);
  }

  // 3. Targets and warm-up: every scenario once on every target, outside the measurements.
  type LoginTarget = { name: string; server: () => ServerChild; node?: RealmgateNode; login: () => Promise<void> };
  const apps = new Map<string, oidc.Configuration>();
  apps.set('ideal', await discoverApp(`http://127.0.0.1:${idealPort}`));
  for (const node of [...main.values(), ...hrdNodes.values()]) if (!apps.has(node.url)) apps.set(node.url, await discoverApp(node.url));
  const loginTargets: LoginTarget[] = [{ name: 'ideal chain (OIDC)', server: () => ideal, login: () => oidcLogin(apps.get('ideal')!) }];
  for (const node of main.values()) {
    const app = apps.get(node.url)!;
    loginTargets.push({ name: `Realmgate ${node.store} (OIDC)`, server: () => node.server, node, login: () => oidcLogin(app, { idp_hint: 'up' }) });
    loginTargets.push({
      name: `Realmgate ${node.store} (SAML)`,
      server: () => node.server,
      node,
      login: () => samlLogin(app, samlIdp, `${node.url}/federation/saml/saml/acs`, { idp_hint: 'saml' }),
    });
  }
  const tokenKinds: Record<string, string> = {
    opaque: 'grant_type=client_credentials&scope=admin',
    jwt: `grant_type=client_credentials&scope=read&resource=${encodeURIComponent(BENCH_API)}`,
  };
  type TokenTarget = { name: string; server: () => ServerChild; origin: string };
  const tokenTargets: TokenTarget[] = [
    { name: 'bare oidc-provider', server: () => bare, origin: `http://127.0.0.1:${barePort}` },
    ...[...main.values()].map((node) => ({ name: `Realmgate ${node.store}`, server: () => node.server, origin: node.url })),
  ];
  const hrdScenarios = hrdSteps(upstreamIssuer);
  const hrdAt = (size: number): HrdNode => ({ node: hrdNodes.get(size)!, app: apps.get(hrdNodes.get(size)!.url)! });
  const hrdPageBytes = new Map<number, number>();

  log('warming up every target');
  if (runs('token')) for (const t of tokenTargets) for (const body of Object.values(tokenKinds)) await tokenLoad(tally(), t.server().pid, t.origin, { clientId: SERVICE_CLIENT.id, clientSecret: SERVICE_CLIENT.secret, body }, TOKEN_CONCURRENCY, 1000);
  if (runs('logins')) for (const t of loginTargets) for (let i = 0; i < 3; i++) await t.login();
  // The HRD nodes serve nothing else, so each is warmed alike until its code paths are compiled.
  for (let i = 0; runs('hrd') && i < plan.hrdWarmUp; i++) {
    for (const step of Object.values(hrdScenarios)) for (const size of HRD_SIZES) await step(hrdAt(size), (bytes) => hrdPageBytes.set(size, bytes));
  }

  // 4. Rounds: every scenario on every target, the order reversed every other round.
  const tokenTallies = new Map<string, Tally>();
  const loginTallies = new Map<string, Tally>();
  const hrdTallies = new Map<string, Tally>();
  const get = (map: Map<string, Tally>, key: string) => map.get(key) ?? (map.set(key, tally()), map.get(key)!);
  const ordered = <T>(items: readonly T[], round: number) => (round % 2 ? [...items].reverse() : [...items]);
  for (let round = 0; round < plan.rounds; round++) {
    if (runs('token')) log(`round ${round + 1}/${plan.rounds}: token endpoint`);
    // Short slices alternating between the targets, so a burst of load elsewhere hits them alike.
    for (let slice = 0; runs('token') && slice < TOKEN_SLICES; slice++) {
      for (const [kind, body] of Object.entries(tokenKinds)) {
        for (const t of ordered(tokenTargets, round + slice)) {
          const request: TokenRequest = { clientId: SERVICE_CLIENT.id, clientSecret: SERVICE_CLIENT.secret, body };
          await tokenLoad(get(tokenTallies, `${t.name}|${kind}`), t.server().pid, t.origin, request, TOKEN_CONCURRENCY, plan.tokenMs / TOKEN_SLICES);
        }
      }
    }
    if (runs('logins')) log(`round ${round + 1}/${plan.rounds}: federated logins`);
    for (const c of runs('logins') ? CONCURRENCIES : []) {
      for (const t of ordered(loginTargets, round)) {
        const into = get(loginTallies, `${t.name}|${c}`);
        const before = await t.node?.statements();
        await batch(into, t.server().pid, plan.logins[c], c, t.login);
        const after = await t.node?.statements();
        if (before && after) {
          into.statements += after.inRequests - before.inRequests;
          into.allStatements += after.all - before.all;
        }
      }
    }
    if (runs('hrd')) log(`round ${round + 1}/${plan.rounds}: home-realm discovery`);
    for (const [name, step] of runs('hrd') ? Object.entries(hrdScenarios) : []) {
      for (let i = 0; i < plan.hrdSamples; i++) {
        for (const size of ordered(HRD_SIZES, round + i)) {
          await timed(get(hrdTallies, `${name}|${size}`), hrdNodes.get(size)!.server.pid, () => step(hrdAt(size), (bytes) => hrdPageBytes.set(size, bytes)));
        }
      }
    }
  }
  log('node-saml: validating signed responses in this process');
  const samlValidationMs = await samlValidationCpuMs(samlIdp, plan.samlValidations);

  // 5. Memory after the bench, then the figures and the targets.
  const servers: (readonly [string, number])[] = [
    ['bare oidc-provider', bare.pid],
    ['ideal chain gateway', ideal.pid],
    ...[...main.values(), ...hrdNodes.values()].map((n) => [n.name, n.server.pid] as const),
  ];
  const rss = new Map(servers.map(([name, pid]) => [name, rssMb(pid)]));

  // Where a Realmgate node's memory is: its V8 heap and the memory outside it, from its own /metrics.
  const heaps = new Map<string, string>();
  for (const node of [...main.values(), ...hrdNodes.values()]) heaps.set(node.name, await heapFigures(node.url));

  // The same once every server has been idle a while: right after the load RSS is mostly garbage
  // V8 has not collected yet (it gives the heap back on its own when the allocation stops). The
  // targets stay on the figure right after the bench; this one shows what a node keeps.
  log(`letting every server idle ${plan.idleMs / 1000} s`);
  await new Promise((resolve) => setTimeout(resolve, plan.idleMs));
  const idleRss = new Map(servers.map(([name, pid]) => [name, rssMb(pid)]));

  // A second restart of each main node on its used store: start to ready is the better of the two.
  for (const node of main.values()) {
    log(`restarting ${node.name} once more`);
    await node.restart();
  }
  const readyMs = (node: RealmgateNode | undefined) => (node?.restartsMs.length ? Math.min(...node.restartsMs) : undefined);

  const sum = (map: Map<string, Tally>, prefix: string) => {
    const total = tally();
    for (const [key, t] of map) {
      if (!key.startsWith(`${prefix}|`)) continue;
      total.count += t.count;
      total.wallMs += t.wallMs;
      total.serverCpuMs += t.serverCpuMs;
      total.statements += t.statements;
      total.allStatements += t.allStatements;
      total.samplesMs.push(...t.samplesMs);
    }
    return total;
  };
  const rps = (t: Tally | undefined) => (t && t.wallMs ? (t.count * 1000) / t.wallMs : Number.NaN);
  const perOp = (t: Tally | undefined) => (t && t.count ? t.serverCpuMs / t.count : Number.NaN);
  const loginCpu = (name: string) => perOp(sum(loginTallies, name));
  const hrdMedian = (name: string, size: number) => median(hrdTallies.get(`${name}|${size}`)?.samplesMs ?? []);
  /** Why a store's row is empty: the store did not run (no `DATABASE_URL`); else its scenario did not (`--only`), "not measured". */
  const skipped = (store: StoreKind) => (main.has(store) ? undefined : 'DATABASE_URL not set');

  const targets: TargetRow[] = [];
  for (const kind of Object.keys(tokenKinds)) {
    const bareRps = rps(tokenTallies.get(`bare oidc-provider|${kind}`));
    for (const [store, goal] of [['postgresql', 0.8], ['embedded', 0.4]] as const) {
      const measured = main.has(store) ? rps(tokenTallies.get(`Realmgate ${store}|${kind}`)) / bareRps : undefined;
      targets.push(row(`token endpoint, ${kind}, c=${TOKEN_CONCURRENCY}, ${store}: req/s vs bare oidc-provider`, measured, goal, '×', { atLeast: true, skipped: skipped(store) }));
    }
  }
  const idealCpu = loginCpu('ideal chain (OIDC)');
  for (const [store, goal] of [['postgresql', 1.3], ['embedded', 2.5]] as const) {
    targets.push(row(`federated OIDC login, ${store}: gateway CPU vs ideal chain`, main.has(store) ? loginCpu(`Realmgate ${store} (OIDC)`) / idealCpu : undefined, goal, '×', { skipped: skipped(store) }));
  }
  for (const store of ['postgresql', 'embedded'] as const) {
    const measured = main.has(store) ? loginCpu(`Realmgate ${store} (SAML)`) / (idealCpu + samlValidationMs) : undefined;
    targets.push(row(`federated SAML login, ${store}: gateway CPU vs (ideal chain + one node-saml validation)`, measured, 1, '×', { skipped: skipped(store) }));
  }
  for (const store of ['postgresql', 'embedded'] as const) {
    for (const kind of ['OIDC', 'SAML']) {
      const t = sum(loginTallies, `Realmgate ${store} (${kind})`);
      targets.push(row(`SQL statements per federated ${kind} login, ${store}`, main.has(store) ? t.statements / t.count : undefined, 15, 'statements', { skipped: skipped(store) }));
    }
  }
  for (const name of Object.keys(hrdScenarios)) {
    for (const size of HRD_SIZES.slice(1)) {
      targets.push(row(`HRD ${name}, ${size.toLocaleString('en')} vs 10 providers (${hrdStore})`, hrdMedian(name, size) / hrdMedian(name, 10), 1.2, '×'));
    }
  }
  for (const [store, goal] of [['postgresql', 200], ['embedded', 300]] as const) {
    targets.push(row(`RSS after the bench, ${store}`, main.has(store) ? rss.get(`realmgate-${store}`) : undefined, goal, 'MB', { skipped: skipped(store) }));
  }
  for (const [store, goal] of [['postgresql', 2], ['embedded', 5]] as const) {
    const ms = readyMs(main.get(store));
    targets.push(row(`start to ready (restart on a set-up store, better of two), ${store}`, ms !== undefined ? ms / 1000 : undefined, goal, 's', { skipped: skipped(store) }));
  }

  console.log(`\nRealmgate bench${quick ? ' (--quick)' : ''}: Node ${process.version}, ${os.cpus().length} CPUs, ${plan.rounds} round(s), stores: ${stores.join(', ')}; ${((performance.now() - started) / 1000).toFixed(0)} s`);
  printTargets(targets);

  const tokenLines = [...tokenTallies].map(([key, t]) => {
    const [name, kind] = key.split('|');
    return [`${name}, ${kind}`, t.count, rps(t), perOp(t)];
  });
  printFigures(`Token endpoint (client_credentials, c=${TOKEN_CONCURRENCY})`, ['target', 'requests', 'req/s', 'server CPU ms/req'], tokenLines);
  const loginLines = [...loginTallies].map(([key, t]) => {
    const [name, c] = key.split('|');
    return [name!, Number(c), t.count, rps(t), perOp(t), median(t.samplesMs), t.statements ? t.statements / t.count : Number.NaN, t.allStatements ? t.allStatements / t.count : Number.NaN];
  });
  printFigures('Federated logins (complete, over HTTP)', ['target', 'concurrency', 'logins', 'logins/s', 'gateway CPU ms/login', 'p50 ms', 'SQL statements/login', 'with background jobs'], loginLines);
  console.log(`\nnode-saml validation of one signed response (in the bench process): ${samlValidationMs.toFixed(2)} ms CPU`);
  const hrdLines = Object.keys(hrdScenarios).flatMap((name) =>
    HRD_SIZES.map((size) => [name, size, hrdMedian(name, size), perOp(hrdTallies.get(`${name}|${size}`)), hrdMedian(name, size) / hrdMedian(name, 10)]),
  );
  printFigures(`Home-realm discovery (${hrdStore}; 5 domains per provider; choice page ${HRD_SIZES.map((s) => `${((hrdPageBytes.get(s) ?? 0) / 1024).toFixed(0)} KB`).join(' / ')})`, ['step', 'providers', 'p50 ms', 'server CPU ms', 'vs 10'], hrdLines);
  printFigures('Processes', ['server', 'RSS MB after the bench', `RSS MB after ${plan.idleMs / 1000} s idle`, 'V8 heap used / total, external MB', 'first start to ready s', 'restarts to ready s'], [
    ...[...rss].map(([name, mb]) => {
      const node = [...main.values(), ...hrdNodes.values()].find((n) => n.name === name);
      return [name, mb, idleRss.get(name) ?? Number.NaN, heaps.get(name) ?? '—', node ? node.firstStartMs / 1000 : Number.NaN, node?.restartsMs.map((ms) => (ms / 1000).toFixed(2)).join(', ') || '—'];
    }),
  ]);

  if (args.json) {
    const json = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      quick,
      stores,
      hrd_store: hrdStore,
      targets,
      token: Object.fromEntries([...tokenTallies].map(([k, t]) => [k, { requests: t.count, requests_per_second: rps(t), server_cpu_ms_per_request: perOp(t) }])),
      logins: Object.fromEntries([...loginTallies].map(([k, t]) => [k, { logins: t.count, logins_per_second: rps(t), gateway_cpu_ms_per_login: perOp(t), p50_ms: median(t.samplesMs), statements_per_login: t.statements / t.count, statements_per_login_with_jobs: t.allStatements / t.count }])),
      saml_validation_cpu_ms: samlValidationMs,
      hrd: Object.fromEntries([...hrdTallies].map(([k, t]) => [k, { p50_ms: median(t.samplesMs), server_cpu_ms: perOp(t) }])),
      rss_mb: Object.fromEntries(rss),
      rss_idle_mb: Object.fromEntries(idleRss),
      idle_ms: plan.idleMs,
      start_ms: Object.fromEntries([...main.values(), ...hrdNodes.values()].map((n) => [n.name, { first: n.firstStartMs, restarts: n.restartsMs }])),
    };
    fs.writeFileSync(args.json, `${JSON.stringify(json, null, 2)}\n`);
    log(`wrote ${args.json}`);
  }
} finally {
  log('stopping every server');
  await stopAll();
}
