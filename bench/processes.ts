/**
 * The bench's server processes: each server runs in a child process of its own, so `/proc` gives
 * its CPU and memory alone. Started, waited for (an HTTP 200 on a readiness URL) and stopped here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository the bench runs from. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A server child process of the bench. */
export interface ServerChild {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last lines it wrote (stdout and stderr), for a failure message. */
  tail(): string;
  /** Milliseconds from spawn to the first HTTP 200 of the readiness URL. */
  readyMs: number;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Options of `startChild`. */
export interface ChildOptions {
  name: string;
  args: string[];
  env: Record<string, string>;
  /** Polled until it answers 200. */
  readyUrl: string;
  readyTimeoutMs?: number;
  /** Opens an IPC channel (the query counter answers on it). */
  ipc?: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Spawns `node ...args` and resolves once `readyUrl` answers 200, with the time that took. */
export async function startChild(options: ChildOptions): Promise<ServerChild> {
  const started = performance.now();
  const child = spawn(process.execPath, options.args, {
    cwd: ROOT,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe', ...(options.ipc ? (['ipc'] as const) : [])],
  });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) => child.on('exit', (code) => ((exitCode = code), resolve())));
  const tail = () => lines.join('\n');
  const deadline = started + (options.readyTimeoutMs ?? 120_000);
  for (;;) {
    if (exitCode !== undefined) throw new Error(`${options.name} exited with ${exitCode} before it was ready:\n${tail()}`);
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${options.name} was not ready within ${options.readyTimeoutMs ?? 120_000} ms:\n${tail()}`);
    }
    try {
      const res = await fetch(options.readyUrl);
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // Not listening yet.
    }
    await sleep(20);
  }
  const readyMs = performance.now() - started;
  return {
    name: options.name,
    child,
    pid: child.pid!,
    tail,
    readyMs,
    async stop(graceMs = 15_000) {
      if (exitCode !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Asks a child started with `ipc` for a value by message type; rejects after `timeoutMs`. */
export function ask<T>(child: ChildProcess, type: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (child.off('message', onMessage), reject(new Error(`no answer to ${type}`))), timeoutMs);
    const onMessage = (message: unknown) => {
      const m = message as { type?: string; value?: T };
      if (m?.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(m.value as T);
    };
    child.on('message', onMessage);
    child.send({ type });
  });
}
