import { parseArgs } from 'node:util';
import { realmgateVersion } from '../install-dir.ts';
import { importQuietly, unsupportedRuntimeNotice } from '../runtime.ts';

const USAGE = `Usage: realmgate <command> [options]      (from a checkout: npm run cli -- <command> [options])

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
  --version                                print Realmgate's version
  --help, -h                               print this help (reads no settings, opens no database)
`;

/** Entry point of `realmgate` (`node dist/cli/main.js`) and `npm run cli -- …`. */
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
        version: { type: 'boolean' },
      },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (parsed.values.version) {
    console.log(`realmgate ${realmgateVersion}`);
    return;
  }
  if (parsed.values.help || parsed.positionals.length === 0) {
    console.log(USAGE);
    return;
  }
  const notice = unsupportedRuntimeNotice(process.versions.node);
  if (notice) console.error(notice);
  const { UsageError, explain, run } = await importQuietly(Boolean(notice), () => import('./commands.ts'));
  try {
    await run(parsed.positionals, parsed.values);
  } catch (error) {
    const message = error instanceof UsageError ? `${error.message}\n\n${USAGE}` : explain(error);
    if (message === undefined) throw error;
    console.error(message);
    process.exit(2);
  }
}

await main();
