import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './support/database.ts';
import { processEnv, startServerProcess, type ServerProcess } from './support/node-process.ts';
import { freePort } from './support/server.ts';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'realmgate-shutdown-'));
let database: TestDatabase | undefined;
let port: number;
let server: ServerProcess;

beforeAll(async () => {
  port = await freePort();
  const started = await processEnv(port, dataDir);
  database = started.database;
  // What `npm start` runs, from the sources.
  server = await startServerProcess(['--import', 'tsx', 'src/main.ts'], started.env);
}, 180_000);

afterAll(async () => {
  if (server?.child.exitCode === null) server.child.kill('SIGKILL');
  await database?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('shutting down on SIGTERM', () => {
  it('stops accepting, closes idle keep-alive connections, answers the request in flight with Connection: close, and exits 0', async () => {
    const idleClient = new http.Agent({ keepAlive: true });
    const busyClient = new http.Agent({ keepAlive: true });

    // A keep-alive client that made one request and holds its connection open, idle.
    const idleSocket = await new Promise<net.Socket>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: idleClient }, (res) => {
        expect(res.headers.connection).toBe('keep-alive');
        res.resume();
        res.on('end', () => resolve(req.socket as net.Socket));
      });
      req.on('error', reject);
    });
    const idleClosed = new Promise<void>((resolve) => idleSocket.once('close', () => resolve()));

    // A request in flight: its headers are in (the server said 100 Continue), its body is not yet.
    const body = 'grant_type=client_credentials&client_id=nobody';
    const inFlight = http.request({
      host: '127.0.0.1', port, path: '/token', method: 'POST', agent: busyClient,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length), expect: '100-continue' },
    });
    let bodySent = false;
    let answeredEarly = false;
    inFlight.on('response', () => (answeredEarly = !bodySent));
    const response = new Promise<http.IncomingMessage>((resolve, reject) => {
      inFlight.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Object.assign(res, { text: Buffer.concat(chunks).toString() })));
      });
      inFlight.on('error', reject);
    });
    inFlight.flushHeaders();
    await new Promise<void>((resolve) => inFlight.once('continue', () => resolve()));

    server.child.kill('SIGTERM');
    await server.logged('shutting down');

    await idleClosed;
    // A new client gets no answer: refused, or reset when the process ends.
    const newcomer = new Promise<string>((resolve) => {
      http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => resolve(`answered ${res.statusCode}`))
        .on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });

    bodySent = true;
    inFlight.end(body);
    const answer = (await response) as http.IncomingMessage & { text: string };
    expect(answeredEarly).toBe(false);
    expect(answer.statusCode).toBe(401);
    expect(JSON.parse(answer.text)).toMatchObject({ error: 'invalid_client' });
    expect(answer.headers.connection).toBe('close');

    expect(await server.exited).toBe(0);
    expect(await newcomer).toMatch(/^(ECONNREFUSED|ECONNRESET)$/);
    expect(server.lines.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
    idleClient.destroy();
    busyClient.destroy();
  }, 60_000);
});
