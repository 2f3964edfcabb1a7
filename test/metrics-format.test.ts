import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { startTestServer, type TestServer } from './support/server.ts';

/** Prometheus's own linter, when installed (CI installs it; `apt-get install prometheus` ships it). */
const promtool = spawnSync('promtool', ['--version']).status === 0;

let database: TestDatabase;
let server: TestServer;
let text: string;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database.db);
  await fetch(`${server.url}/.well-known/openid-configuration`);
  await fetch(`${server.url}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'nobody' }) });
  text = await (await fetch(`${server.url}/metrics`)).text();
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

/** Each metric family's name and type, from its `# TYPE` line. */
const families = (): { name: string; type: string }[] =>
  [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => ({ name: m[1]!, type: m[2]! }));

describe('/metrics', () => {
  it('names counters, and only counters, with the _total suffix', () => {
    expect(families().length).toBeGreaterThan(20);
    for (const { name, type } of families()) {
      expect(name.endsWith('_total'), `${name} is a ${type}`).toBe(type === 'counter');
    }
  });

  it('keeps the standard Node.js process metric names that stock dashboards read', () => {
    const names = families().map((f) => f.name);
    for (const standard of [
      'process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds',
      'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_gc_duration_seconds', 'nodejs_version_info',
      'nodejs_active_handles', 'nodejs_active_requests',
    ]) {
      expect(names).toContain(standard);
    }
    expect(text).toMatch(/^realmgate_http_requests_total\{method="POST",route="\/token",status="401"\} 1$/m);
  });

  it.skipIf(!promtool)('passes promtool check metrics', () => {
    const checked = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${checked.stdout}${checked.stderr}`).toBe('');
    expect(checked.status).toBe(0);
  });
});
