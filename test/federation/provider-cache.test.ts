import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderInput } from '../../src/store/providers.ts';
import { ProviderCache } from '../../src/federation/provider-cache.ts';
import { createOpenContext } from '../../src/federation/upstream-fetch.ts';
import type { ProviderRepository } from '../../src/store/providers.ts';
import { Store } from '../../src/store/store.ts';
import { ChangeNotices, listenerConnection } from '../../src/store/change-notices.ts';
import { QueryCounter } from '../../src/store/query-counter.ts';
import { Sealer } from '../../src/store/seal.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { startUpstreamIdp, type UpstreamIdp } from '../support/upstream-idp.ts';

const DISCOVERY = '/.well-known/openid-configuration';

let database: TestDatabase;
let idp: UpstreamIdp;
let providers: ProviderRepository;
let store: Store;
const context = () => createOpenContext({ issuer: 'http://127.0.0.1:9', allowPrivateNetwork: true, upstreamTimeoutMs: 5000 });
const logger = pino({ level: 'silent' });

const input = (alias: string, settings: Record<string, unknown> = {}): ProviderInput => ({
  alias,
  kind: 'oidc',
  displayName: alias,
  enabled: true,
  domains: [],
  settings: { issuer: idp.issuer, client_id: 'realmgate', ...settings },
  secrets: { client_secret: 'secret' },
  claimMappings: {},
});

beforeAll(async () => {
  database = await createTestDatabase();
  idp = await startUpstreamIdp();
  store = new Store(database.db, { sealer: new Sealer(Buffer.alloc(32, 7)), logoutRetryPeriodSeconds: 60 });
  providers = store.providers;
  for (const alias of ['one', 'two', 'three']) await store.transaction((tx) => tx.providers.create(input(alias)));
  await store.transaction((tx) => tx.providers.create(input('broken', { issuer: `${idp.issuer}/missing` })));
});

afterAll(async () => {
  await idp?.close();
  await database?.close();
});

describe('the provider cache', () => {
  it('opens a provider once per version', async () => {
    const cache = new ProviderCache({ providers, context: context(), logger });
    const before = idp.hits.get(DISCOVERY) ?? 0;
    const [a, b] = await Promise.all([cache.get('one'), cache.get('one')]);
    const c = await cache.get('one');
    expect(a.opened).toBe(b.opened);
    expect(c.opened).toBe(a.opened);
    expect(idp.hits.get(DISCOVERY)).toBe(before + 1);
  });

  it('keeps the opened provider across a cosmetic change (display name, domains), without a new discovery or JWKS fetch', async () => {
    await store.transaction((tx) => tx.providers.create(input('cosmetic')));
    const cache = new ProviderCache({ providers, context: context(), logger });
    const first = await cache.get('cosmetic');
    const discoveries = idp.hits.get(DISCOVERY) ?? 0;
    const jwks = idp.hits.get('/jwks') ?? 0;
    await store.transaction((tx) => tx.providers.update({ ...input('cosmetic'), displayName: 'Cosmetic, renamed', domains: ['cosmetic.example'] }));
    const second = await cache.get('cosmetic');
    expect(second.opened).toBe(first.opened);
    expect(second).toMatchObject({ version: first.version + 1, displayName: 'Cosmetic, renamed', domains: ['cosmetic.example'] });
    expect(cache.displayName('cosmetic')).toBe('Cosmetic, renamed');
    expect(idp.hits.get(DISCOVERY) ?? 0).toBe(discoveries);
    expect(idp.hits.get('/jwks') ?? 0).toBe(jwks);
    // A change opening depends on still reopens it.
    await store.transaction((tx) => tx.providers.update({ ...input('cosmetic', { scopes: ['openid'] }), displayName: 'Cosmetic, renamed' }));
    const third = await cache.get('cosmetic');
    expect(third.opened).not.toBe(first.opened);
    expect(idp.hits.get(DISCOVERY)).toBe(discoveries + 1);
  });

  it('reopens a provider after its version changes', async () => {
    const cache = new ProviderCache({ providers, context: context(), logger });
    const first = await cache.get('two');
    await store.transaction((tx) => tx.providers.update({ ...input('two', { scopes: ['openid'] }), displayName: 'Two, renamed' }));
    const second = await cache.get('two');
    expect(second.opened).not.toBe(first.opened);
    expect(second.version).toBe(first.version + 1);
    expect(second.displayName).toBe('Two, renamed');
  });

  it('keeps a provider that failed to open unavailable until the backoff ends, without touching the others', async () => {
    const waiting = new ProviderCache({ providers, context: context(), logger, retryAfterMs: 3_600_000 });
    await expect(waiting.get('broken')).rejects.toMatchObject({ code: 'unavailable', alias: 'broken' });
    const attempts = idp.hits.get(`/missing${DISCOVERY}`);
    await expect(waiting.get('broken')).rejects.toMatchObject({ code: 'unavailable' });
    expect(idp.hits.get(`/missing${DISCOVERY}`)).toBe(attempts);
    await expect(waiting.get('one')).resolves.toMatchObject({ alias: 'one' });

    const retrying = new ProviderCache({ providers, context: context(), logger, retryAfterMs: 0 });
    await expect(retrying.get('broken')).rejects.toMatchObject({ code: 'unavailable' });
    await expect(retrying.get('broken')).rejects.toMatchObject({ code: 'unavailable' });
    expect(idp.hits.get(`/missing${DISCOVERY}`)).toBe(attempts! + 2);
  });

  it('reopens a failed provider at once when it is fixed', async () => {
    const cache = new ProviderCache({ providers, context: context(), logger, retryAfterMs: 3_600_000 });
    await store.transaction((tx) => tx.providers.create(input('fixable', { issuer: `${idp.issuer}/wrong` })));
    await expect(cache.get('fixable')).rejects.toMatchObject({ code: 'unavailable' });
    await store.transaction((tx) => tx.providers.update(input('fixable')));
    await expect(cache.get('fixable')).resolves.toMatchObject({ alias: 'fixable', version: 2 });
  });

  it('refuses disabled providers and forgets deleted ones', async () => {
    const cache = new ProviderCache({ providers, context: context(), logger });
    await store.transaction((tx) => tx.providers.create({ ...input('off'), enabled: false }));
    await expect(cache.get('off')).rejects.toMatchObject({ code: 'unavailable', message: 'the provider is disabled' });
    await cache.get('three');
    await store.transaction((tx) => tx.providers.delete('three'));
    await expect(cache.get('three')).rejects.toMatchObject({ code: 'provider_unknown', status: 404 });
  });

  it('refuses stored settings that no longer pass the check, without any request', async () => {
    const cache = new ProviderCache({ providers, context: context(), logger });
    await database.db('identity_providers').insert({ alias: 'invalid', kind: 'oidc', display_name: 'Invalid', settings: JSON.stringify({ issuer: 'ftp://x' }) });
    await expect(cache.get('invalid')).rejects.toMatchObject({ code: 'unavailable', message: expect.stringMatching(/^invalid settings: settings.issuer/) });
  });

  it('keeps at most maxEntries providers open, closing the least recently used', async () => {
    const cache = new ProviderCache({ providers, context: context(), logger, maxEntries: 1 });
    const before = idp.hits.get(DISCOVERY) ?? 0;
    await cache.get('one');
    await cache.get('two');
    await cache.get('one');
    expect(idp.hits.get(DISCOVERY)).toBe(before + 3);
  });

  it('uses a confirmed provider without a statement while change notices arrive, and reopens it after a change it hears of', async () => {
    const notices = new ChangeNotices({ connect: listenerConnection(database.db), logger });
    await notices.start();
    try {
      const cache = new ProviderCache({ providers, changes: notices.watch('identity_providers'), context: context(), logger });
      const counter = QueryCounter.attach(database.db);
      let created = false;
      notices.watch('identity_providers').subscribe({ changed: (alias) => void (created ||= alias === 'heard') });
      await store.transaction((tx) => tx.providers.create(input('heard')));
      // A read the creation's notice overtakes is confirmed again on next use: let the notice land first.
      for (let i = 0; i < 200 && !created; i++) await new Promise((r) => setTimeout(r, 20));
      const first = await cache.get('heard');
      expect((await counter.during(() => cache.get('heard'))).count).toBe(0);
      await store.transaction((tx) => tx.providers.update(input('heard', { scopes: ['openid', 'email'] })));
      // The notice is asynchronous: poll until the cache serves the new version.
      for (let i = 0; i < 200 && (await cache.get('heard')).version === first.version; i++) await new Promise((r) => setTimeout(r, 20));
      const reopened = await cache.get('heard');
      expect(reopened.version).toBe(2);
      expect(reopened.opened).not.toBe(first.opened);
      expect((await counter.during(() => cache.get('heard'))).count).toBe(0);
    } finally {
      await notices.close();
    }
  });
  it('answers discovery by alias only for a provider it holds open and confirmed: not before, not once a change is heard, never when disabled', async () => {
    const unheard = new ProviderCache({ providers, context: context(), logger });
    await unheard.get('one');
    expect(unheard.confirmedEnabled('one')).toBeUndefined();

    const notices = new ChangeNotices({ connect: listenerConnection(database.db), logger });
    await notices.start();
    try {
      const watch = notices.watch('identity_providers');
      const cache = new ProviderCache({ providers, changes: watch, context: context(), logger });
      const heard: string[] = [];
      watch.subscribe({ changed: (alias) => void heard.push(alias) });
      const until = async (done: () => boolean) => {
        for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 20));
      };
      await store.transaction((tx) => tx.providers.create(input('shown')));
      await until(() => heard.includes('shown'));
      expect(cache.confirmedEnabled('shown')).toBeUndefined();
      await cache.get('shown');
      expect(cache.confirmedEnabled('shown')).toEqual({ alias: 'shown', displayName: 'shown', domains: [], icon: undefined });

      heard.length = 0;
      await store.transaction((tx) => tx.providers.update({ ...input('shown'), enabled: false }));
      await until(() => heard.includes('shown'));
      expect(cache.confirmedEnabled('shown')).toBeUndefined();
      await expect(cache.get('shown')).rejects.toMatchObject({ code: 'unavailable' });
      expect(cache.confirmedEnabled('shown')).toBeUndefined();
    } finally {
      await notices.close();
    }
  });
});
