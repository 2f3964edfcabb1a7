/**
 * A memo that lives for one HTTP request: a version read that several steps of the same request
 * need (the login page's decision, then the start of the login it decided) is sent once. Outside
 * a request (jobs, the CLI) nothing is memoised.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const scope = new AsyncLocalStorage<Map<string, Promise<unknown>>>();

/** Runs `fn` (an HTTP request's handling) with a fresh request memo. */
export function runInRequestScope<T>(fn: () => T): T {
  return scope.run(new Map(), fn);
}

/** `load()` once per request for `key`; a failed load is not remembered. */
export function requestScoped<T>(key: string, load: () => Promise<T>): Promise<T> {
  const memo = scope.getStore();
  if (!memo) return load();
  const known = memo.get(key) as Promise<T> | undefined;
  if (known) return known;
  const loading = load();
  memo.set(key, loading);
  loading.catch(() => memo.delete(key));
  return loading;
}

/** Forgets what this request memoised for `key` (after the request itself changed it). */
export function forgetInRequest(key: string): void {
  scope.getStore()?.delete(key);
}

/** The request-memo key of a provider's version read (the provider cache's check, which discovery's lookup may answer first). */
export function providerVersionKey(alias: string): string {
  return `provider-version:${alias}`;
}

/** Records in this request's memo what a read already answered, so a later step need not ask again. */
export function primeInRequest<T>(key: string, value: T): void {
  const memo = scope.getStore();
  if (memo && !memo.has(key)) memo.set(key, Promise.resolve(value));
}

/** Forgets everything this request memoised under keys starting with `prefix`. */
export function forgetAllInRequest(prefix: string): void {
  const memo = scope.getStore();
  if (!memo) return;
  for (const key of [...memo.keys()]) if (key.startsWith(prefix)) memo.delete(key);
}
