import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEAP_GROWING_PERCENT, SUPPORTED_NODE_MAJORS, heapGrowthFlag, unsupportedRuntimeNotice } from '../src/runtime.ts';
import type { TestDatabase } from './support/database.ts';
import { processEnv, startServerProcess, type ServerProcess } from './support/node-process.ts';
import { freePort } from './support/server.ts';

const version = (JSON.parse(fs.readFileSync('package.json', 'utf8')) as { version: string }).version;
const onSupportedNode = Number(process.versions.node.split('.')[0]) >= SUPPORTED_NODE_MAJORS[0];
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'realmgate-shipping-'));
const UNREACHABLE_DATABASE = 'postgres://postgres@127.0.0.1:1/nowhere';
let database: TestDatabase | undefined;
let env: Record<string, string>;
let port: number;

/** Runs `node ...args` to its end. */
function node(args: string[], extraEnv: Record<string, string> = {}) {
  const run = spawnSync(process.execPath, args, { env: { ...env, ...extraEnv }, encoding: 'utf8' });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

beforeAll(async () => {
  port = await freePort();
  ({ env, database } = await processEnv(port, dataDir));
  // `npm run build`, without npm's own start-up.
  execFileSync(process.execPath, ['--import', 'tsx', 'scripts/build.ts'], { stdio: 'pipe' });
}, 120_000);

afterAll(async () => {
  await database?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('the production build', () => {
  let server: ServerProcess;

  afterAll(() => {
    if (server?.child.exitCode === null) server.child.kill('SIGKILL');
  });

  it('compiles to dist/ with the server and CLI entry points, and the compiled migrations', () => {
    expect(fs.existsSync('dist/main.js')).toBe(true);
    expect(fs.readFileSync('dist/cli/main.js', 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
    expect(fs.statSync('dist/cli/main.js').mode & 0o111).not.toBe(0);
    const sources = fs.readdirSync('migrations').map((f) => f.replace(/\.ts$/, ''));
    expect(fs.readdirSync('dist/migrations').filter((f) => f.endsWith('.js')).map((f) => f.replace(/\.js$/, ''))).toEqual(sources);
    const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
    expect(pkg.bin).toEqual({ realmgate: 'dist/cli/main.js' });
    expect(pkg.scripts.start).toBe('node dist/main.js');
  });

  it('serves from dist/: readiness, pages from views/, the stylesheet from public/; and stops with 0 on SIGTERM', async () => {
    server = await startServerProcess(['dist/main.js'], env);
    const base = `http://127.0.0.1:${port}`;
    expect(await (await fetch(`${base}/readyz`)).json()).toMatchObject({ status: 'ready', checks: { migrations: 'ok' } });
    expect((await fetch(`${base}/assets/realmgate.css`)).status).toBe(200);
    const notFound = await fetch(`${base}/interaction/nonexistent`);
    expect(notFound.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await notFound.text()).toContain('<html');

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  }, 180_000);

  it('runs the CLI from dist/: --version, and --help without reading settings or opening a database', () => {
    expect(node(['dist/cli/main.js', '--version']).stdout).toBe(`realmgate ${version}\n`);
    const freshDir = path.join(dataDir, 'never-created');
    for (const args of [['--help'], ['migrate', '--help'], []]) {
      const help = node(['dist/cli/main.js', ...args], { DATABASE_URL: UNREACHABLE_DATABASE, REALMGATE_MASTER_KEY: 'not a key', DATA_DIR: freshDir });
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('Usage: realmgate <command> [options]');
      expect(help.stderr).toBe('');
    }
    expect(fs.existsSync(freshDir)).toBe(false);
    const migrated = node(['dist/cli/main.js', 'migrate']);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toBe('database is up to date\n');
  }, 120_000);
});

describe('the CLI from the sources', () => {
  it('answers npm run cli -- --version and --help with an unreachable database', () => {
    const npm = spawnSync('npm', ['run', '--silent', 'cli', '--', '--version'], { env, encoding: 'utf8' });
    expect(npm.stdout).toBe(`realmgate ${version}\n`);
    const help = node(['--import', 'tsx', 'src/cli/main.ts', '--help'], { DATABASE_URL: UNREACHABLE_DATABASE });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--version');
  }, 60_000);
});

describe('supported runtimes', () => {
  it('names Node.js 22 and 24 as supported, and says an older one still runs', () => {
    expect(unsupportedRuntimeNotice('20.19.0')).toBe('Node.js 20.19.0 is not supported (end of life); Realmgate supports Node.js 22 and 24 LTS. It still runs, but upgrade Node.js.');
    expect(unsupportedRuntimeNotice('v18.20.4')).toMatch(/^Node\.js 18\.20\.4 is not supported/);
    expect(unsupportedRuntimeNotice('22.12.0')).toBeUndefined();
    expect(unsupportedRuntimeNotice('24.1.0')).toBeUndefined();
  });

  it('bounds the heap growth with a V8 flag this Node.js knows, unless the server was started with its own', () => {
    const flag = heapGrowthFlag(['--enable-source-maps']);
    expect(flag).toBe(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
    expect(heapGrowthFlag(['--heap-growing-percent=100'])).toBeUndefined();
    expect(heapGrowthFlag(['--heap_growing_percent=20'])).toBeUndefined();
    // v8.setFlagsFromString ignores a flag V8 does not know; the command line refuses one.
    const known = spawnSync(process.execPath, [flag!, '-e', ''], { encoding: 'utf8' });
    expect(known.status, known.stderr).toBe(0);
    const unknown = spawnSync(process.execPath, ['--heap-growing-percentage=50', '-e', ''], { encoding: 'utf8' });
    expect(unknown.status).not.toBe(0);
  });

  it(`prints ${onSupportedNode ? 'no runtime line' : 'one runtime line'} at start-up on this Node.js ${process.versions.node}`, async () => {
    // A port of its own: the suite's port was free when the file began, not necessarily now.
    const started = await startServerProcess(['--import', 'tsx', 'src/main.ts'], { ...env, PORT: String(await freePort()) });
    started.child.kill('SIGTERM');
    const code = await started.exited;
    const output = `stdout:\n${started.lines.join('\n')}\nstderr:\n${started.stderr()}`;
    expect(code, output).toBe(0);
    const runtimeLines = [...started.lines, ...started.stderr().split('\n')].filter((l) => /Node\.js|Unsupported runtime/.test(l));
    if (onSupportedNode) {
      expect(runtimeLines, output).toEqual([]);
    } else {
      expect(runtimeLines, output).toHaveLength(1);
      expect(JSON.parse(runtimeLines[0]!)).toMatchObject({ level: 40, node: process.versions.node, msg: unsupportedRuntimeNotice(process.versions.node) });
    }
  }, 180_000);
});
