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
