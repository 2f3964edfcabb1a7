/** The Node.js release lines Realmgate supports: the current LTS lines. */
export const SUPPORTED_NODE_MAJORS = [22, 24] as const;

/**
 * The one start-up line for a Node.js older than the supported lines (it still runs), or
 * `undefined` on a supported or newer one.
 */
export function unsupportedRuntimeNotice(nodeVersion: string): string | undefined {
  const major = Number(nodeVersion.replace(/^v/, '').split('.')[0]);
  if (major >= SUPPORTED_NODE_MAJORS[0]) return undefined;
  return `Node.js ${nodeVersion.replace(/^v/, '')} is not supported (end of life); Realmgate supports Node.js ${SUPPORTED_NODE_MAJORS.join(' and ')} LTS. It still runs, but upgrade Node.js.`;
}

/**
 * Imports modules that load oidc-provider, which warns about an old Node.js on its own; while
 * `quiet`, that warning is dropped, because Realmgate has said it in its own start-up line.
 */
export async function importQuietly<T>(quiet: boolean, load: () => Promise<T>): Promise<T> {
  if (!quiet) return load();
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime')) return;
    warn.apply(console, args);
  };
  try {
    return await load();
  } finally {
    console.warn = warn;
  }
}

/**
 * How far V8 lets the old generation grow past what survived its last full collection before it
 * collects again. V8 chooses up to 300% when collections are cheap next to the work between them,
 * which under a burst of logins or token requests holds mostly garbage: measured with `npm run
 * bench -- --quick` (PostgreSQL), RSS right after the load 260 MB by default and 173 MB at 50%, and
 * the CPU per login or token request within the run's noise (0.56 vs 0.62 ms per opaque token,
 * 0.53 vs 0.47 per JWT).
 */
export const HEAP_GROWING_PERCENT = 50;

/** The V8 flag the server sets at start (`v8.setFlagsFromString`), or undefined when it was started with its own. */
export function heapGrowthFlag(execArgv: readonly string[]): string | undefined {
  if (execArgv.some((arg) => /^--heap[-_]growing[-_]percent\b/.test(arg))) return undefined;
  return `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
}
