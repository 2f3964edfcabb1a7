import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

/** pino's numeric levels, for checks on captured lines. */
export const LEVEL = { warn: 40, error: 50 } as const;

/** A logger that keeps every line it writes, parsed, for tests that read the logs. */
export interface CapturedLogs {
  logger: Logger;
  lines: Record<string, unknown>[];
}

/** A debug-level pino logger whose lines land in `lines`. */
export function captureLogs(): CapturedLogs {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    }),
  );
  return { logger, lines };
}
