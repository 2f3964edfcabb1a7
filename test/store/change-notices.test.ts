import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChangeNotices, LISTENER_APPLICATION_NAME, listenerConnection, parseChangeNotice } from '../../src/store/change-notices.ts';
import { ClientCache } from '../../src/store/client-cache.ts';
import { QueryCounter } from '../../src/store/query-counter.ts';
import { ResourceServerCache } from '../../src/store/resource-server-cache.ts';
import { ResourceServerRepository } from '../../src/store/resource-servers.ts';
import { Sealer } from '../../src/store/seal.ts';
import { Store } from '../../src/store/store.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const logger = pino({ level: 'silent' });

let database: TestDatabase;
let store: Store;
let counter: QueryCounter;
const opened: ChangeNotices[] = [];

/** Polls `check` until it holds (a notice is asynchronous); fails after 10 s. */
async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`never happened: ${what}`);
}

/** A listener on the test database, started and connected. */
async function listening(): Promise<ChangeNotices> {
  const notices = new ChangeNotices({ connect: listenerConnection(database.db), logger, retryDelayMs: 20 });
  opened.push(notices);
  await notices.start();
  expect(notices.connected).toBe(true);
  return notices;
}

const saveClient = (clientId: string, name: string) =>
  store.transaction((tx) => tx.clients.save({ client_id: clientId, client_name: name, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] }, `${clientId}-secret-0123456789`));

/** The statements `fn` sends on the test database. */
async function statementsOf(fn: () => Promise<unknown>): Promise<number> {
  return (await counter.during(fn)).count;
}

beforeAll(async () => {
  database = await createTestDatabase();
  store = new Store(database.db, { sealer: new Sealer(Buffer.alloc(32, 7)), logoutRetryPeriodSeconds: 60 });
  counter = QueryCounter.attach(database.db);
});

afterEach(async () => {
  for (const notices of opened.splice(0)) await notices.close();
});

afterAll(async () => {
  await database?.close();
});

describe('change notices', () => {
  it('reads a notice payload whose key contains colons', () => {
    expect(parseChangeNotice('clients:urn:app:one:7')).toEqual({ table: 'clients', key: 'urn:app:one', version: 7 });
    expect(parseChangeNotice('clients:7')).toBeUndefined();
    expect(parseChangeNotice('clients:one:seven')).toBeUndefined();
  });

  it('hears every insert, update and delete of a client, made on another connection, once committed', async () => {
    const notices = await listening();
    const heard: string[] = [];
    notices.watch('clients').subscribe({ changed: (key) => heard.push(key) });
    await saveClient('heard', 'first');
    await saveClient('heard', 'second');
    await store.transaction((tx) => tx.clients.delete('heard'));
    await expect(store.transaction(async (tx) => {
      await tx.clients.save({ client_id: 'rolled-back', redirect_uris: [] }, null);
      throw new Error('roll back');
    })).rejects.toThrow('roll back');
    await saveClient('after', 'last');
    // Notices arrive in commit order: had the rolled-back insert sent one, it would come before the last.
    await eventually(() => heard.includes('after'), 'the notice of the last change');
    expect(heard).toEqual(['heard', 'heard', 'heard', 'after']);
  });

  it('hears a change to an identity provider', async () => {
    const notices = await listening();
    const heard: string[] = [];
    notices.watch('identity_providers').subscribe({ changed: (key) => heard.push(key) });
    await store.transaction((tx) => tx.providers.create({
      alias: 'noticed', kind: 'oidc', displayName: 'Noticed', enabled: true, domains: [],
      settings: { issuer: 'https://idp.example', client_id: 'realmgate' }, secrets: { client_secret: 'secret' }, claimMappings: {},
    }));
    await eventually(() => heard.includes('noticed'), 'a notice for the provider');
  });
});

/** Listening connections that accept `LISTEN` and hear nothing, as through a pooler in transaction mode; `deafen` makes an open one so. */
function deafConnections() {
  const clients: import('pg').Client[] = [];
  let deafFromStart = true;
  const connect = () => {
    const client = listenerConnection(database.db)();
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
    (client as { query: unknown }).query = (text: unknown, ...rest: unknown[]) =>
      query(deafFromStart && typeof text === 'string' && text.startsWith('LISTEN') ? 'select 1' : text, ...rest);
    clients.push(client);
    return client;
  };
  return {
    connect,
    hearing: () => void (deafFromStart = false),
    deafen: async () => Promise.all(clients.map((c) => c.query('UNLISTEN *').catch(() => {}))),
  };
}

describe('a listener that cannot hear', () => {
  it('is not trusted when its connection accepts LISTEN but delivers no notice', async () => {
    const deaf = deafConnections();
    const notices = new ChangeNotices({ connect: deaf.connect, logger, retryDelayMs: 1_000, probeTimeoutMs: 200 });
    opened.push(notices);
    const watch = notices.watch('clients');
    await notices.start();
    expect(notices.connected).toBe(false);
    expect(watch.trusts(watch.epoch)).toBe(false);
  });

  it('is dropped when its connection stops hearing, and trusted again once a new one hears its probe', async () => {
    const deaf = deafConnections();
    deaf.hearing();
    const notices = new ChangeNotices({ connect: deaf.connect, logger, retryDelayMs: 20, probeIntervalMs: 100, probeTimeoutMs: 200 });
    opened.push(notices);
    const watch = notices.watch('clients');
    await notices.start();
    expect(notices.connected).toBe(true);
    const verified = watch.epoch;
    await deaf.deafen();
    await eventually(() => !watch.trusts(verified), 'the deaf connection to lose trust');
    await eventually(() => notices.connected && watch.trusts(watch.epoch), 'a new connection to be trusted');
    expect(watch.epoch).toBeGreaterThan(verified);
  });
});

describe('the client cache with change notices', () => {
  it('reads the client\'s version on each use while nothing listens', async () => {
    await saveClient('unheard', 'one');
    const notices = new ChangeNotices({ connect: listenerConnection(database.db), logger });
    opened.push(notices);
    const cache = new ClientCache({ clients: store.clients, changes: notices.watch('clients'), maxEntries: 10 });
    await cache.findForEngine('unheard');
    expect(await statementsOf(() => cache.findForEngine('unheard'))).toBe(1);
    expect(await statementsOf(() => cache.findForEngine('unheard'))).toBe(1);
  });

  it('serves a known client without a statement while listening, and the new metadata after a change', async () => {
    await saveClient('trusted', 'before');
    const notices = await listening();
    const cache = new ClientCache({ clients: store.clients, changes: notices.watch('clients'), maxEntries: 10 });
    expect((await cache.findForEngine('trusted'))?.client_name).toBe('before');
    expect(await statementsOf(() => cache.findForEngine('trusted'))).toBe(0);
    await saveClient('trusted', 'after');
    await eventually(async () => (await cache.findForEngine('trusted'))?.client_name === 'after', 'the cache to serve the changed client');
    expect(await statementsOf(() => cache.findForEngine('trusted'))).toBe(0);
  });

  it('serves a change this node committed from the next request on, before its notice comes back', async () => {
    const notices = await listening();
    const here = new Store(database.db, { sealer: new Sealer(Buffer.alloc(32, 7)), logoutRetryPeriodSeconds: 60, changes: notices });
    await here.transaction((tx) => tx.clients.save({ client_id: 'local', client_name: 'before', redirect_uris: [], grant_types: ['client_credentials'], response_types: [] }, 'local-secret-0123456789'));
    const cache = new ClientCache({ clients: here.clients, changes: notices.watch('clients'), maxEntries: 10 });
    await eventually(async () => (await statementsOf(() => cache.findForEngine('local'))) === 0, 'the cache to trust the client');
    await here.transaction((tx) => tx.clients.save({ client_id: 'local', client_name: 'after', redirect_uris: [], grant_types: ['client_credentials'], response_types: [] }, undefined));
    // No wait: the commit itself told this node's caches.
    expect((await cache.findForEngine('local'))?.client_name).toBe('after');
  });

  it('forgets a deleted client', async () => {
    await saveClient('deleted', 'here');
    const notices = await listening();
    const cache = new ClientCache({ clients: store.clients, changes: notices.watch('clients'), maxEntries: 10 });
    expect(await cache.findForEngine('deleted')).toBeDefined();
    await store.transaction((tx) => tx.clients.delete('deleted'));
    await eventually(async () => (await cache.findForEngine('deleted')) === undefined, 'the cache to forget the client');
  });

  it('does not trust a read that a notice for its key overtook', async () => {
    await saveClient('overtaken', 'old');
    const notices = await listening();
    const watch = notices.watch('clients');
    let heard = 0;
    watch.subscribe({ changed: (key) => void (key === 'overtaken' && heard++) });
    const read = await watch.read('overtaken', async () => {
      const version = await store.clients.versionOf('overtaken');
      // The change lands (and is heard) while the read is still running.
      await saveClient('overtaken', 'new');
      await eventually(() => heard > 0, 'the notice of the concurrent change');
      return version;
    });
    expect(read.verifiedEpoch).toBeUndefined();
    const later = await watch.read('overtaken', () => store.clients.versionOf('overtaken'));
    expect(later.verifiedEpoch).toBe(watch.epoch);
  });

  it('does not trust a read that began before the listener connected', async () => {
    await saveClient('early', 'one');
    const notices = new ChangeNotices({ connect: listenerConnection(database.db), logger });
    opened.push(notices);
    const watch = notices.watch('clients');
    const read = await watch.read('early', async () => {
      const version = await store.clients.versionOf('early');
      await notices.start();
      return version;
    });
    expect(notices.connected).toBe(true);
    expect(read.verifiedEpoch).toBeUndefined();
  });

  it.skipIf(!process.env.DATABASE_URL)('reads versions while the listener is lost and confirms every entry again once it is back', async () => {
    await saveClient('reconnected', 'one');
    const notices = await listening();
    const cache = new ClientCache({ clients: store.clients, changes: notices.watch('clients'), maxEntries: 10 });
    await cache.findForEngine('reconnected');
    expect(await statementsOf(() => cache.findForEngine('reconnected'))).toBe(0);
    await database.db.raw('select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = ?', [LISTENER_APPLICATION_NAME]);
    await eventually(() => !notices.connected, 'the listener to notice it was cut off');
    expect(await statementsOf(() => cache.findForEngine('reconnected'))).toBe(1);
    await eventually(() => notices.connected, 'the listener to reconnect');
    // Notices may have been missed while it was away: one version read, then trusted again.
    expect(await statementsOf(() => cache.findForEngine('reconnected'))).toBe(1);
    expect(await statementsOf(() => cache.findForEngine('reconnected'))).toBe(0);
  });
});

describe('the resource-server cache with change notices', () => {
  it('serves a resource server without a statement while listening, the changed one after a notice, and none once deleted', async () => {
    const repository = new ResourceServerRepository(database.db);
    await repository.save({ identifier: 'https://api.example', scopes: ['read'], accessTokenTtlSeconds: 600 });
    const notices = await listening();
    const cache = new ResourceServerCache({ resourceServers: repository, changes: notices.watch('resource_servers'), maxEntries: 10 });
    expect((await cache.get('https://api.example'))?.scopes).toEqual(['read']);
    expect(await statementsOf(() => cache.get('https://api.example'))).toBe(0);
    await repository.save({ identifier: 'https://api.example', scopes: ['read', 'write'], accessTokenTtlSeconds: 600 });
    await eventually(async () => (await cache.get('https://api.example'))?.scopes.length === 2, 'the cache to serve the changed resource server');
    await repository.delete('https://api.example');
    await eventually(async () => (await cache.get('https://api.example')) === undefined, 'the cache to forget the resource server');
  });
});
