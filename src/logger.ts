import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs; secrets in well-known fields are redacted wherever they appear. */
export function createLogger(options: { level: string }): Logger {
  return pino({
    level: options.level,
    base: { service: 'realmgate' },
    redact: {
      paths: [
        'password', '*.password', 'client_secret', '*.client_secret', 'secrets', '*.secrets',
        'req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]',
      ],
      censor: '[redacted]',
    },
  });
}
