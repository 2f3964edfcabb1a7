import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';

describe('loadConfig', () => {
  it('starts a newcomer on embedded PGlite under ./data at http://localhost:3000', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ port: 3000, issuer: 'http://localhost:3000', databaseUrl: undefined, allowPrivateNetwork: false, trustProxy: false });
    expect(config.dataDir.endsWith('/data')).toBe(true);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('derives the issuer from PORT and trusts one proxy hop for an https issuer', () => {
    expect(loadConfig({ PORT: '8080' }).issuer).toBe('http://localhost:8080');
    expect(loadConfig({ ISSUER: 'https://login.example.com' }).trustProxy).toBe(1);
    expect(loadConfig({ ISSUER: 'https://login.example.com', REALMGATE_TRUST_PROXY: 'false' }).trustProxy).toBe(false);
  });

  it('lists every problem at once', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        ISSUER: 'ftp://x/',
        DATABASE_URL: 'mysql://nope',
        REALMGATE_MASTER_KEY: 'short',
        REALMGATE_ALLOW_PRIVATE_NETWORK: 'maybe',
        REALMGATE_ADMIN_CLIENT_SECRET: 'tiny',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of ['PORT', 'ISSUER', 'DATABASE_URL', 'REALMGATE_MASTER_KEY', 'REALMGATE_ALLOW_PRIVATE_NETWORK', 'REALMGATE_ADMIN_CLIENT_SECRET']) {
      expect(problems).toContain(name);
    }
  });

  it('takes mail settings only as a pair, each checked, and has no mailer without them', () => {
    expect(loadConfig({}).mail).toBeUndefined();
    expect(loadConfig({ REALMGATE_SMTP_URL: 'smtps://u:p@mail.example.com:465', REALMGATE_MAIL_FROM: 'Example Login <login@example.com>' }).mail).toEqual({
      smtpUrl: 'smtps://u:p@mail.example.com:465',
      from: 'Example Login <login@example.com>',
    });
    expect(() => loadConfig({ REALMGATE_SMTP_URL: 'smtp://127.0.0.1:25' })).toThrow(/REALMGATE_MAIL_FROM is required with REALMGATE_SMTP_URL/);
    expect(() => loadConfig({ REALMGATE_MAIL_FROM: 'login@example.com' })).toThrow(/REALMGATE_SMTP_URL is required with REALMGATE_MAIL_FROM/);
    let error: unknown;
    try {
      loadConfig({ REALMGATE_SMTP_URL: 'http://mail.example.com', REALMGATE_MAIL_FROM: 'not an address', REALMGATE_RATE_LIMIT_MAIL_PER_MINUTE: '-1' });
    } catch (e) {
      error = e;
    }
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of ['REALMGATE_SMTP_URL', 'REALMGATE_MAIL_FROM', 'REALMGATE_RATE_LIMIT_MAIL_PER_MINUTE']) expect(problems).toContain(name);
    expect(loadConfig({}).rateLimits.mailPerMinute).toBe(10);
  });

  it('requires a master key with PostgreSQL and both halves of the admin client', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgres://localhost/x', REALMGATE_ADMIN_CLIENT_ID: 'ops' })).toThrow(
      /REALMGATE_ADMIN_CLIENT_ID and REALMGATE_ADMIN_CLIENT_SECRET must be set together[\s\S]*REALMGATE_MASTER_KEY is required with DATABASE_URL/,
    );
  });
});
