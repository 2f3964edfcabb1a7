/**
 * A user's second factors in the admin API: shown without their secrets, reset one by one or all
 * at once (the account's recovery codes and its "a client requires a factor" mark go with the
 * last). Every reset is audited as resource type `user`.
 */
import type { Account } from '../store/accounts.ts';
import { RealmgateError } from '../errors.ts';
import type { MfaFactor } from '../store/mfa-factors.ts';
import type { StoreTransaction } from '../store/store.ts';
import type { AdminDeps, ChangeActor } from './context.ts';
import { notFound } from './problems.ts';

/** A factor as the admin API shows it: never its secret, nor a passkey's key material (only how it is kept). */
export function factorJson(factor: MfaFactor): Record<string, unknown> {
  return {
    id: factor.id,
    kind: factor.kind,
    label: factor.label,
    created_at: factor.createdAt.toISOString(),
    confirmed_at: factor.confirmedAt?.toISOString() ?? null,
    last_used_at: factor.lastUsedAt?.toISOString() ?? null,
    ...(factor.webauthn ? { transports: factor.webauthn.transports, backed_up: factor.webauthn.backedUp, device_type: factor.webauthn.deviceType } : {}),
  };
}

/** The second-factor part of a user's representation: its confirmed factors and how many recovery codes are left. */
export async function userFactorsJson(deps: AdminDeps, accountId: string): Promise<Record<string, unknown>> {
  const { mfaFactors } = deps.services;
  return { factors: (await mfaFactors.list(accountId)).map(factorJson), recovery_codes_left: await mfaFactors.recoveryCodesLeft(accountId) };
}

/** The account locked for update inside `tx`, or a 404. */
async function lockAccount(tx: StoreTransaction, id: string): Promise<Account> {
  const account = await tx.accounts.getForUpdate(id);
  if (!account) throw notFound('user', id);
  return account;
}

/** Removes one factor of a user (with its recovery codes when it was the last); 404 for an unknown user or factor. */
export async function resetUserFactor(deps: AdminDeps, actor: ChangeActor, id: string, factorId: string): Promise<void> {
  await deps.services.store.transaction(async (tx) => {
    await lockAccount(tx, id);
    const factors = await tx.mfaFactors.list(id, { withPending: true });
    const factor = factors.find((f) => f.id === factorId);
    if (!factor) throw new RealmgateError('not_found', { safeMessage: `User "${id}" has no factor "${factorId}".` });
    const confirmedLeft = factors.filter((f) => f.confirmedAt && f.id !== factorId).length;
    if (confirmedLeft === 0) await tx.mfaFactors.removeAll(id);
    else await tx.mfaFactors.remove(id, factorId);
    await tx.audit.record({ ...actor, action: 'reset_factor', resourceType: 'user', resourceId: id, before: factorJson(factor), after: null });
  });
}

/** Removes every factor and recovery code of a user; the next sign-in under `required` enrols anew. */
export async function resetUserFactors(deps: AdminDeps, actor: ChangeActor, id: string): Promise<number> {
  return deps.services.store.transaction(async (tx) => {
    await lockAccount(tx, id);
    const before = await tx.mfaFactors.list(id, { withPending: true });
    const removed = await tx.mfaFactors.removeAll(id);
    await tx.audit.record({ ...actor, action: 'reset_factors', resourceType: 'user', resourceId: id, before: { factors: before.map(factorJson) }, after: { factors: [] } });
    return removed;
  });
}
