import v8 from 'node:v8';
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { heapGrowthFlag, importQuietly, unsupportedRuntimeNotice } from './runtime.ts';

/** How long a shutdown may take before the process gives up on the requests still open. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

/** Starts a Realmgate node from the environment and stops it gracefully on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  // Read by V8 at each full collection, so it applies from the first one on.
  const heapFlag = heapGrowthFlag(process.execArgv);
  if (heapFlag) v8.setFlagsFromString(heapFlag);
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger({ level: config.logLevel });
  const notice = unsupportedRuntimeNotice(process.versions.node);
  if (notice) logger.warn({ node: process.versions.node }, notice);
  // Loaded after the runtime check, so an old Node.js gets Realmgate's line and not oidc-provider's too.
  const [{ createRealmgate }, { SealError }, { DatabaseLockedError }] = await importQuietly(Boolean(notice), () =>
    Promise.all([import('./app.ts'), import('./store/seal.ts'), import('./store/database.ts')]),
  );

  let node;
  try {
    node = await createRealmgate(config, { logger });
  } catch (error) {
    if (error instanceof SealError || error instanceof DatabaseLockedError) {
      logger.fatal({ err: error.cause }, error.message);
      console.error(`Realmgate cannot start: ${error.message}`);
      process.exit(2);
    }
    logger.fatal({ err: error }, 'Realmgate failed to start');
    process.exit(1);
  }
  const url = await node.listen();

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error({ timeout_ms: SHUTDOWN_TIMEOUT_MS }, 'shutdown timed out with requests still open; exiting');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    force.unref();
    node.close().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Logged once SIGTERM is handled: whoever waits for this line may stop the server at once.
  logger.info({ url, issuer: config.issuer, database: config.databaseUrl ? 'postgresql' : `pglite:${config.dataDir}` }, 'Realmgate listening');
}

await main();
