import { providerTypes } from '../../providers/index.ts';
import type { StoredProvider } from '../../providers/types.ts';
import { RealmgateError } from '../errors.ts';
import { StaleVersionError, type ProviderInput, type ProviderRecord } from '../store/providers.ts';
import type { StoreTransaction } from '../store/store.ts';
import { checkIfMatch, type IfMatch } from './conditional.ts';
import type { AdminDeps, ChangeActor } from './context.ts';
import { applyMergePatch, isJsonObject } from './merge-patch.ts';
import { type FieldProblem, invalidFields, notFound } from './problems.ts';
import { parseProviderBody, providerJson } from './provider-json.ts';

/** A stale write becomes the 412 with the current ETag; a race the unique keys decided, a 409. The repository's own conflicts pass as they are. */
function translateStoreError(error: unknown): never {
  if (error instanceof StaleVersionError) checkIfMatch([], error.currentVersion);
  // Two writes racing for the same alias or domain: the database's unique keys decide.
  if (!(error instanceof RealmgateError) && (error as { code?: string }).code === '23505') {
    throw new RealmgateError('provider_conflict', { safeMessage: 'A concurrent change claimed the same alias or domain; read and retry.', detail: 'unique key violation', cause: error });
  }
  throw error;
}

/**
 * Validates a full provider body against what is stored (secrets, permanent fields) and throws a
 * 400 listing every problem. A changed alias or kind is reported and the rest is validated as the
 * stored kind, so another kind's `prepare` never runs.
 */
async function validated(body: unknown, stored: StoredProvider | undefined): Promise<ProviderInput> {
  const permanent: FieldProblem[] = [];
  let candidate = body;
  if (stored && isJsonObject(body)) {
    if (body.alias !== stored.alias) permanent.push({ field: 'alias', message: 'is permanent: it must equal the alias in the URL' });
    if (body.kind !== stored.kind) permanent.push({ field: 'kind', message: `is permanent (${stored.kind}): create a new provider for another kind` });
    candidate = { ...body, alias: stored.alias, kind: stored.kind };
  }
  const { input, problems } = await parseProviderBody(candidate, providerTypes, stored);
  const all = [...problems, ...permanent];
  if (all.length || !input) throw invalidFields(all);
  return input;
}

/** Locks a provider for a conditional change: 404 when absent, 412 when `If-Match` is stale. */
async function lockCurrent(tx: StoreTransaction, alias: string, ifMatch: IfMatch): Promise<{ stored: StoredProvider; before: ProviderRecord }> {
  const stored = await tx.providers.load(alias, { forUpdate: true });
  if (!stored) throw notFound('provider', alias);
  checkIfMatch(ifMatch, stored.version);
  return { stored, before: (await tx.providers.get(alias))! };
}

/** Writes an update and its audit entry in `tx`. */
async function update(tx: StoreTransaction, actor: ChangeActor, action: string, input: ProviderInput, before: ProviderRecord): Promise<ProviderRecord> {
  const after = await tx.providers.update(input, before.version).catch(translateStoreError);
  await tx.audit.record({ ...actor, action, resourceType: 'provider', resourceId: input.alias, before: { ...providerJson(before) }, after: { ...providerJson(after!) } });
  return after!;
}

/** Creates a provider at version 1. */
export async function createProvider(deps: AdminDeps, actor: ChangeActor, body: unknown): Promise<ProviderRecord> {
  const input = await validated(body, undefined);
  return deps.services.store.transaction(async (tx) => {
    const created = await tx.providers.create(input).catch(translateStoreError);
    await tx.audit.record({ ...actor, action: 'create', resourceType: 'provider', resourceId: input.alias, before: null, after: { ...providerJson(created) } });
    return created;
  });
}

/** Replaces a provider's fields; secrets not named in the body are kept (write-only fields cannot round-trip). */
export async function replaceProvider(deps: AdminDeps, actor: ChangeActor, alias: string, body: unknown, ifMatch: IfMatch): Promise<ProviderRecord> {
  if (!isJsonObject(body)) throw invalidFields([{ field: '(body)', message: 'must be a JSON object' }]);
  return deps.services.store.transaction(async (tx) => {
    const { stored, before } = await lockCurrent(tx, alias, ifMatch);
    const input = await validated({ alias, kind: stored.kind, ...body }, stored);
    return update(tx, actor, 'replace', input, before);
  });
}

/** Applies a JSON Merge Patch: `settings` and `claim_mappings` merge key by key; `secrets` sets or (null) removes the named ones. */
export async function patchProvider(deps: AdminDeps, actor: ChangeActor, alias: string, patch: unknown, ifMatch: IfMatch): Promise<ProviderRecord> {
  if (!isJsonObject(patch)) throw invalidFields([{ field: '(body)', message: 'must be a JSON object' }]);
  return deps.services.store.transaction(async (tx) => {
    const { stored, before } = await lockCurrent(tx, alias, ifMatch);
    const { secrets, version: _version, secrets_set: _secretsSet, ...changes } = patch;
    const { version: _v, secrets_set: _s, ...current } = providerJson(before);
    const merged = applyMergePatch(current, changes) as Record<string, unknown>;
    const input = await validated(secrets === undefined ? merged : { ...merged, secrets }, stored);
    return update(tx, actor, 'update', input, before);
  });
}

/** Turns a provider on or off; a provider already in that state is returned unchanged. */
export async function setProviderEnabled(deps: AdminDeps, actor: ChangeActor, alias: string, enabled: boolean, ifMatch: IfMatch): Promise<ProviderRecord> {
  return deps.services.store.transaction(async (tx) => {
    const { before } = await lockCurrent(tx, alias, ifMatch);
    if (before.enabled === enabled) return before;
    const input: ProviderInput = {
      alias,
      kind: before.kind,
      displayName: before.displayName,
      enabled,
      domains: before.domains,
      settings: before.settings,
      claimMappings: before.claimMappings,
      linkingPolicy: before.linkingPolicy,
      requireLocalMfa: before.requireLocalMfa,
    };
    return update(tx, actor, enabled ? 'enable' : 'disable', input, before);
  });
}

/** Deletes a provider; its callback URLs stop working on every node with the next request. */
export async function deleteProvider(deps: AdminDeps, actor: ChangeActor, alias: string, ifMatch: IfMatch): Promise<void> {
  await deps.services.store.transaction(async (tx) => {
    const { before } = await lockCurrent(tx, alias, ifMatch);
    await tx.providers.delete(alias, before.version).catch(translateStoreError);
    await tx.audit.record({ ...actor, action: 'delete', resourceType: 'provider', resourceId: alias, before: { ...providerJson(before) }, after: null });
  });
}
