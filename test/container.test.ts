import fs from 'node:fs';
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const dockerfile = fs.readFileSync('Dockerfile', 'utf8');
const readme = fs.readFileSync('README.md', 'utf8');

/** The Dockerfile's instructions, continuation lines joined, comments dropped, split by stage. */
function stages(): { keyword: string; args: string }[][] {
  const instructions = dockerfile
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => ({ keyword: l.split(/\s+/, 1)[0]!.toUpperCase(), args: l.slice(l.search(/\s/) + 1).trim() }));
  const result: { keyword: string; args: string }[][] = [];
  for (const i of instructions) {
    if (i.keyword === 'FROM') result.push([]);
    result.at(-1)!.push(i);
  }
  return result;
}

describe('the container image', () => {
  it('has a Dockerfile the linter finds nothing wrong with', () => {
    expect(validate(dockerfile).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it('builds with exactly the production recipe the README documents and CI runs', () => {
    const recipe = /```sh\n(npm ci && npm run build && npm prune --omit=dev && node dist\/main\.js)\n```/.exec(readme)?.[1];
    expect(recipe).toBeDefined();
    const steps = recipe!.split(' && ');
    const [build, runtime] = stages();
    expect(build!.filter((i) => i.keyword === 'RUN').map((i) => i.args)).toEqual(steps.slice(0, 3));
    const cmd = runtime!.find((i) => i.keyword === 'CMD')!;
    expect((JSON.parse(cmd.args) as string[]).join(' ')).toBe(steps[3]);
    const ci = fs.readFileSync('.ci/run', 'utf8');
    for (const step of steps) expect(ci).toContain(step);
  });

  it('runs as a non-root user with production dependencies only, a /readyz health check, and SIGTERM to stop', () => {
    const all = stages();
    expect(all.length).toBeGreaterThanOrEqual(2);
    const runtime = all.at(-1)!;
    const user = runtime.filter((i) => i.keyword === 'USER').at(-1);
    expect(user?.args).toBe('node');
    expect(runtime.some((i) => i.keyword === 'RUN' && /npm (ci|install)/.test(i.args))).toBe(false);
    expect(runtime.filter((i) => i.keyword === 'COPY' && i.args.startsWith('--from=build')).map((i) => i.args.split(/\s+/)[1])).toEqual([
      '/app/package.json', '/app/node_modules', '/app/dist',
    ]);
    const healthcheck = runtime.find((i) => i.keyword === 'HEALTHCHECK')!.args;
    expect(healthcheck).toMatch(/CMD \["node", "-e", ".*fetch\(.*\/readyz/);
    expect(runtime.find((i) => i.keyword === 'STOPSIGNAL')?.args).toBe('SIGTERM');
    expect(runtime.find((i) => i.keyword === 'ENV')?.args).toMatch(/HOST=0\.0\.0\.0/);
  });

  it('has a compose.yaml running it with PostgreSQL', () => {
    const compose = parse(fs.readFileSync('compose.yaml', 'utf8')) as {
      services: Record<string, { image?: string; build?: string; environment?: Record<string, string>; depends_on?: Record<string, { condition: string }>; healthcheck?: unknown }>;
    };
    expect(Object.keys(compose.services).sort()).toEqual(['postgres', 'realmgate']);
    const { postgres, realmgate } = compose.services;
    expect(postgres!.image).toMatch(/^postgres:\d+/);
    expect(postgres!.healthcheck).toBeDefined();
    expect(realmgate!.build).toBe('.');
    expect(realmgate!.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    const env = realmgate!.environment!;
    expect(env.DATABASE_URL).toMatch(/^postgres:\/\/realmgate:realmgate@postgres:5432\/realmgate$/);
    expect(env.REALMGATE_MASTER_KEY).toMatch(/^\$\{REALMGATE_MASTER_KEY:\?/);
  });
});

describe('the release files', () => {
  it('ship the Apache-2.0 license that package.json names, and a changelog', () => {
    const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { license: string };
    expect(pkg.license).toBe('Apache-2.0');
    const license = fs.readFileSync('LICENSE', 'utf8');
    expect(license).toMatch(/^\s+Apache License\n\s+Version 2\.0, January 2004\n/);
    expect(license).toContain('9. Accepting Warranty or Additional Liability.');
    expect(license).toContain('END OF TERMS AND CONDITIONS');
    expect(fs.readFileSync('CHANGELOG.md', 'utf8')).toMatch(/^## \[Unreleased\]$/m);
  });
});
