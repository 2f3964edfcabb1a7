/**
 * The CLI's commands. `main.ts` loads this module only to run one, so `--help` and `--version`
 * never load the database code.
 */
import { pino } from 'pino';
import { openServices, purge, type Services } from '../app.ts';
import { hashPassword } from '../accounts/passwords.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { isRealmgateError } from '../errors.ts';
import { DatabaseLockedError, closeDatabase, databaseLocation, openDatabase } from '../store/database.ts';
import { migrateLatest } from '../store/migrate.ts';
import { SealError } from '../store/seal.ts';
import { MAX_RESOURCE_TOKEN_TTL_SECONDS } from '../token-server/ttl.ts';
import { generateClientSecret, saveClient } from '../token-server/clients.ts';

/** A mistake in the command line; printed with the usage. Never reaches HTTP, so not a RealmgateError. */
export class UsageError extends Error {}

/** The parsed options of one command line. */
export type Flags = Record<string, string | boolean | (string | boolean)[] | undefined>;

const many = (v: Flags[string]): string[] => (Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)]);
const one = (v: Flags[string]): string | undefined => (v === undefined ? undefined : String(Array.isArray(v) ? v[v.length - 1] : v));

function required(flags: Flags, name: string): string {
  const v = one(flags[name]);
  if (!v || v === 'true') throw new UsageError(`--${name} is required`);
  return v;
}

async function clientsAdd(services: Services, flags: Flags): Promise<void> {
  const isPublic = flags.public === true;
  const grantTypes = many(flags['grant-type']);
  const grant_types = grantTypes.length ? grantTypes : ['authorization_code'];
  const usesBrowser = grant_types.includes('authorization_code');
  const metadata = {
    client_id: required(flags, 'id'),
    ...(one(flags.name) ? { client_name: one(flags.name) } : {}),
    redirect_uris: many(flags['redirect-uri']),
    post_logout_redirect_uris: many(flags['post-logout-redirect-uri']),
    grant_types,
    response_types: usesBrowser ? ['code'] : [],
    token_endpoint_auth_method: isPublic ? 'none' : 'client_secret_basic',
    ...(one(flags.scope) ? { scope: one(flags.scope) } : {}),
    ...(one(flags['backchannel-logout-uri']) ? { backchannel_logout_uri: one(flags['backchannel-logout-uri']), backchannel_logout_session_required: true } : {}),
    ...(many(flags['allowed-provider']).length ? { allowed_providers: many(flags['allowed-provider']) } : {}),
    ...(flags['no-local-login'] ? { local_login: false } : {}),
    ...(flags['no-consent'] ? { require_consent: false } : {}),
  };
  const given = one(flags.secret);
  if (isPublic && given) throw new UsageError('--public clients have no secret; drop --secret');
  const secret = isPublic ? null : given ?? generateClientSecret();
  await saveClient(services, metadata, secret);
  console.log(`client ${metadata.client_id} saved`);
  if (!isPublic && !given) console.log(`client_secret: ${secret}\n(shown once; store it now)`);
}

/** Runs one command (`migrate`, `keys rotate`, …) against the configured database. */
export async function run(command: string[], flags: Flags): Promise<void> {
  const config = loadConfig(process.env);
  if (command[0] === 'migrate') {
    const db = openDatabase(databaseLocation(config));
    try {
      const applied = await migrateLatest(db);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    } finally {
      await closeDatabase(db);
    }
    return;
  }
  const { services, db } = await openServices(config, { logger: pino({ level: 'warn' }) });
  try {
    switch (command.join(' ')) {
      case 'keys rotate': {
        const kids = await services.keys.rotate();
        console.log(`new current keys: ${kids.join(', ')}; running nodes pick them up within ${config.keyRefreshSeconds} s`);
        return;
      }
      case 'keys list': {
        for (const k of await services.keys.list()) console.log(`${k.kid}  ${k.alg}  ${k.retiredAt ? `retired, published until ${k.removeAfter?.toISOString()}` : 'current'}`);
        return;
      }
      case 'clients add':
        return await clientsAdd(services, flags);
      case 'clients list': {
        for (const c of await services.clients.list({ limit: 1000 })) {
          console.log(`${c.metadata.client_id}  ${String(c.metadata.token_endpoint_auth_method ?? '')}  ${(c.metadata.grant_types as string[] | undefined)?.join(',') ?? ''}`);
        }
        return;
      }
      case 'clients remove': {
        const id = required(flags, 'id');
        console.log((await services.clients.delete(id)) ? `client ${id} removed` : `no client ${id}`);
        return;
      }
      case 'users add': {
        const password = required(flags, 'password');
        if (password.length < 8) throw new UsageError('--password must be at least 8 characters');
        const email = required(flags, 'email');
        if (!/^[^@\s]+@[^@\s]+$/.test(email)) throw new UsageError('--email must be an email address');
        const account = await services.accounts.create({ email, emailVerified: true, name: one(flags.name) ?? null, passwordHash: await hashPassword(password) });
        console.log(`user ${email} created with id ${account.id}`);
        return;
      }
      case 'resources add': {
        const identifier = required(flags, 'identifier');
        if (!URL.canParse(identifier)) throw new UsageError('--identifier must be an absolute URI, e.g. https://api.example.com');
        const ttl = Number(one(flags.ttl) ?? 3600);
        if (!Number.isInteger(ttl) || ttl <= 0 || ttl > MAX_RESOURCE_TOKEN_TTL_SECONDS) throw new UsageError(`--ttl must be whole seconds between 1 and ${MAX_RESOURCE_TOKEN_TTL_SECONDS}`);
        const scopes = required(flags, 'scope').split(/\s+/).filter(Boolean);
        await services.resourceServers.save({ identifier, scopes, accessTokenTtlSeconds: ttl });
        console.log(`resource ${identifier} saved with scopes: ${scopes.join(' ')}`);
        return;
      }
      case 'resources list': {
        for (const r of await services.resourceServers.list()) console.log(`${r.identifier}  ${r.scopes.join(' ')}  ttl=${r.accessTokenTtlSeconds}s`);
        return;
      }
      case 'purge':
        console.log(JSON.stringify(await purge(services)));
        return;
      default:
        throw new UsageError(`unknown command: ${command.join(' ') || '(none)'}`);
    }
  } finally {
    await closeDatabase(db);
  }
}

/** The sentence for an error a command ends with, when it is one the user can act on. */
export function explain(error: unknown): string | undefined {
  if (error instanceof ConfigError || error instanceof SealError || error instanceof DatabaseLockedError) return error.message;
  if (isRealmgateError(error, 'client_metadata_invalid')) return `invalid client: ${error.message}`;
  if (isRealmgateError(error, 'email_taken')) return `${error.message}; pick another email`;
  return undefined;
}
