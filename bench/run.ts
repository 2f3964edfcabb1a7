/**
 * `npm run bench`: starts one Realmgate node on 127.0.0.1 (embedded PGlite in memory, or
 * PostgreSQL when DATABASE_URL is set) and measures, with bounded request counts:
 * discovery, the token endpoint (client_credentials, opaque and JWT), introspection, and full
 * password logins through the real pages (authorize → login form → code → token).
 */
import * as oidc from 'openid-client';
import { hashPassword } from '../src/accounts/passwords.ts';
import { saveClient } from '../src/token-server/clients.ts';
import { createTestDatabase } from '../test/support/database.ts';
import { passwordLogin } from '../test/support/login.ts';
import { startTestServer } from '../test/support/server.ts';

interface Result {
  name: string;
  requests: number;
  concurrency: number;
  seconds: number;
  latenciesMs: number[];
}

async function measure(name: string, requests: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<Result> {
  const latenciesMs: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        const i = next++;
        const t = performance.now();
        await op(i);
        latenciesMs.push(performance.now() - t);
      }
    }),
  );
  return { name, requests, concurrency, seconds: (performance.now() - started) / 1000, latenciesMs };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

function report(results: Result[]): void {
  console.log('\n| scenario | requests | concurrency | per second | p50 ms | p95 ms | p99 ms |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const s = [...r.latenciesMs].sort((a, b) => a - b);
    console.log(`| ${r.name} | ${r.requests} | ${r.concurrency} | ${(r.requests / r.seconds).toFixed(0)} | ${pct(s, 50).toFixed(1)} | ${pct(s, 95).toFixed(1)} | ${pct(s, 99).toFixed(1)} |`);
  }
}

async function main(): Promise<void> {
  const scale = Number(process.env.BENCH_SCALE ?? 1);
  const database = await createTestDatabase();
  const server = await startTestServer(database.db);
  const { services } = server.node;
  try {
    await services.accounts.create({ email: 'bench@example.com', emailVerified: true, passwordHash: await hashPassword('bench-password-1') });
    await services.resourceServers.save({ identifier: 'https://api.bench.test', scopes: ['read'], accessTokenTtlSeconds: 600 });
    await saveClient(services, { client_id: 'svc', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'admin' }, 'svc-secret-svc-secret');
    await saveClient(services, { client_id: 'web', grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: ['http://127.0.0.1:1/cb'], token_endpoint_auth_method: 'client_secret_basic', require_consent: false }, 'web-secret-web-secret');

    const svc = await oidc.discovery(new URL(server.url), 'svc', 'svc-secret-svc-secret', undefined, { execute: [oidc.allowInsecureRequests] });
    const web = await oidc.discovery(new URL(server.url), 'web', 'web-secret-web-secret', undefined, { execute: [oidc.allowInsecureRequests] });
    const sample = await oidc.clientCredentialsGrant(svc, { scope: 'admin' });

    const results: Result[] = [];
    results.push(await measure('discovery document', 2000 * scale, 16, () => fetch(`${server.url}/.well-known/openid-configuration`).then((r) => r.arrayBuffer())));
    results.push(await measure('client_credentials (opaque)', 1000 * scale, 16, () => oidc.clientCredentialsGrant(svc, { scope: 'admin' })));
    results.push(await measure('client_credentials (JWT, resource)', 1000 * scale, 16, () => oidc.clientCredentialsGrant(svc, { resource: 'https://api.bench.test', scope: 'read' })));
    results.push(await measure('introspection', 1000 * scale, 16, () => oidc.tokenIntrospection(svc, sample.access_token)));
    results.push(await measure('full password login (scrypt)', 60 * scale, 4, () => passwordLogin(web, { redirectUri: 'http://127.0.0.1:1/cb', email: 'bench@example.com', password: 'bench-password-1', scope: 'openid' })));
    console.log(`Realmgate ${server.url} on ${database.kind}, Node ${process.version}`);
    report(results);
  } finally {
    await server.close();
    await database.close();
  }
}

await main();
