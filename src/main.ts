import { createRealmgate } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { SealError } from './store/seal.ts';
import { DatabaseLockedError } from './store/database.ts';

/** Starts a Realmgate node from the environment and stops it gracefully on SIGTERM/SIGINT. */
async function main(): Promise<void> {
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
  logger.info({ url, issuer: config.issuer, database: config.databaseUrl ? 'postgresql' : `pglite:${config.dataDir}` }, 'Realmgate listening');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    node.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

await main();
