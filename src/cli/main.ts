import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { openServices, purge, type Services } from '../app.ts';
import { hashPassword } from '../accounts/passwords.ts';
import { DuplicateEmailError } from '../accounts/accounts.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { DatabaseLockedError, closeDatabase, databaseLocation, openDatabase } from '../store/database.ts';
import { migrateLatest } from '../store/migrate.ts';
import { SealError } from '../store/seal.ts';
import { MAX_RESOURCE_TOKEN_TTL_SECONDS } from '../token-server/ttl.ts';
import { ClientMetadataError, generateClientSecret, saveClient } from '../token-server/clients.ts';

const USAGE = `Usage: npm run cli -- <command> [options]

  migrate                                  apply pending database migrations
  keys rotate                              add new current signing keys; the old ones stay published until tokens signed with them expire
  keys list                                list signing keys
  clients add --id ID [options]            register or replace an OAuth client
      --redirect-uri URI                   (repeatable) allowed redirect URI
      --post-logout-redirect-uri URI       (repeatable) allowed post-logout redirect URI
      --grant-type TYPE                    (repeatable) authorization_code (default), refresh_token, client_credentials
      --public                             public client (no secret, PKCE required)
      --secret SECRET                      client secret (generated and printed once when omitted)
      --name NAME                          name shown on the login and consent pages
      --scope "A B"                        scopes the client may request for client_credentials
      --backchannel-logout-uri URI         where back-channel logout tokens are posted
      --allowed-provider ALIAS             (repeatable) upstream providers this client may use (default: all)
      --no-local-login                     hide the password form for this client
      --no-consent                         skip the consent page (first-party clients)
  clients list                             list clients
  clients remove --id ID                   delete a client
  users add --email EMAIL --password PASSWORD [--name NAME]
                                           create a local account
  resources add --identifier URI --scope "A B" [--ttl SECONDS]
                                           register an API that receives JWT access tokens
  resources list                           list resource servers
  purge                                    delete expired tokens, sessions and retired keys now
`;

/** A mistake in the command line; printed with the usage. */
class UsageError extends Error {}

type Flags = Record<string, string | boolean | (string | boolean)[] | undefined>;

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

async function run(command: string[], flags: Flags): Promise<void> {
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
  const services = await openServices(config, { logger: pino({ level: 'warn' }) });
  try {
    switch (command.join(' ')) {
      case 'keys rotate': {
        const kids = await services.keys.rotate();
        console.log(`new current keys: ${kids.join(', ')}; running nodes pick them up within ${config.keyRefreshSeconds} s`);
        return;
      }
      case 'keys list': {
        const rows = await services.db('signing_keys').orderBy('created_at', 'desc').select('kid', 'alg', 'created_at', 'retired_at', 'remove_after');
        for (const r of rows) console.log(`${r.kid}  ${r.alg}  ${r.retired_at ? `retired, published until ${r.remove_after.toISOString()}` : 'current'}`);
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
    await closeDatabase(services.db);
  }
}

/** Entry point of `npm run cli -- …`. */
async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      strict: true,
      options: {
        id: { type: 'string' }, secret: { type: 'string' }, name: { type: 'string' }, scope: { type: 'string' },
        'redirect-uri': { type: 'string', multiple: true }, 'post-logout-redirect-uri': { type: 'string', multiple: true },
        'grant-type': { type: 'string', multiple: true }, 'allowed-provider': { type: 'string', multiple: true },
        'backchannel-logout-uri': { type: 'string' }, public: { type: 'boolean' }, 'no-local-login': { type: 'boolean' },
        'no-consent': { type: 'boolean' }, email: { type: 'string' }, password: { type: 'string' },
        identifier: { type: 'string' }, ttl: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (parsed.values.help || parsed.positionals.length === 0) {
    console.log(USAGE);
    return;
  }
  try {
    await run(parsed.positionals, parsed.values);
  } catch (error) {
    if (error instanceof UsageError) console.error(`${error.message}\n\n${USAGE}`);
    else if (error instanceof ConfigError || error instanceof SealError || error instanceof DatabaseLockedError) console.error(error.message);
    else if (error instanceof ClientMetadataError) console.error(`invalid client: ${error.message}`);
    else if (error instanceof DuplicateEmailError) console.error(`${error.message}; pick another email`);
    else throw error;
    process.exit(2);
  }
}

await main();
