/**
 * Refreshing what providers load from the network (a SAML metadata URL), on a schedule and on
 * demand, and recording the outcome and certificate expiry in the provider's status. A changed
 * upstream configuration bumps the provider's version, so every node reopens it on next use.
 */
import { providerTypeFor } from '../../providers/index.ts';
import { ProviderError, type CertificateStatus, type OpenContext } from '../../providers/types.ts';
import type { Logger } from '../logger.ts';
import type { ProviderRepository } from '../store/providers.ts';
import { isRealmgateError } from '../errors.ts';
import { unknownProvider } from './provider-cache.ts';

/** After a failed refresh, the next attempt comes this much later. */
export const FAILED_REFRESH_RETRY_SECONDS = 300;

/** How often a node looks for providers due a refresh. */
export const REFRESH_CHECK_INTERVAL_MS = 60_000;

/** `status.refresh` of a provider, as stored and shown by the admin API. */
export interface RefreshStatus {
  /** When the last refresh ran (ISO 8601). */
  at: string;
  ok: boolean;
  /** Why it failed, for administrators. */
  error?: string | undefined;
  /** Stable failure code (`upstream_unreachable`, `upstream_error`, `unavailable`). */
  code?: string | undefined;
  /** Digest of the upstream configuration last loaded; absent when nothing comes from the network. */
  digest?: string | undefined;
  /** Whether this refresh found a change (and bumped the version). */
  changed: boolean;
  /** When the next scheduled refresh is due (ISO 8601). */
  next_at: string;
}

/** `status.certificates` of a provider: every certificate it depends on, with its validity. */
export interface CertificateStatusJson {
  use: string;
  subject: string;
  fingerprint: string;
  not_before: string;
  not_after: string;
}

/** What refreshing needs: the repository, the federation's open context and a logger. */
export interface RefreshDeps {
  providers: Pick<ProviderRepository, 'load' | 'get' | 'setStatus' | 'listEnabledStatus'>;
  context: OpenContext;
  logger: Logger;
}

/** True when providers of `kind` have anything to refresh. */
export function isRefreshable(kind: string): boolean {
  return !!providerTypeFor(kind)?.refresh;
}

function certificateJson(c: CertificateStatus): CertificateStatusJson {
  return { use: c.use, subject: c.subject, fingerprint: c.fingerprint, not_before: c.notBefore, not_after: c.notAfter };
}

/**
 * Refreshes provider `alias` now and records the outcome in its status: `refresh` (when, result,
 * digest, next due time) and `certificates`. A digest different from the recorded one bumps the
 * version. A failure keeps the last good digest and certificates. Returns the new `refresh` status.
 * Throws `provider_unknown` for an unknown alias; returns undefined for a kind without refresh.
 */
export async function refreshProvider(deps: RefreshDeps, alias: string, now = new Date()): Promise<RefreshStatus | undefined> {
  const stored = await deps.providers.load(alias);
  const record = await deps.providers.get(alias);
  if (!stored || !record) throw unknownProvider(alias);
  const type = providerTypeFor(stored.kind);
  if (!type?.refresh) return undefined;
  const previous = record.status.refresh as Partial<RefreshStatus> | undefined;
  const status: Record<string, unknown> = { ...record.status };
  let refresh: RefreshStatus;
  try {
    const result = await type.refresh(stored, deps.context);
    const changed = result.digest !== undefined && result.digest !== previous?.digest;
    refresh = {
      at: now.toISOString(),
      ok: true,
      digest: result.digest,
      changed,
      next_at: new Date(now.getTime() + result.refreshAfterSeconds * 1000).toISOString(),
    };
    status.certificates = result.certificates.map(certificateJson);
  } catch (error) {
    const code = error instanceof ProviderError ? error.code : 'unavailable';
    refresh = {
      at: now.toISOString(),
      ok: false,
      error: (error as Error).message,
      code,
      digest: previous?.digest,
      changed: false,
      next_at: new Date(now.getTime() + FAILED_REFRESH_RETRY_SECONDS * 1000).toISOString(),
    };
    deps.logger.warn({ alias, code, err: error }, `refresh of provider ${alias} failed`);
  }
  status.refresh = refresh;
  await deps.providers.setStatus(alias, status, { bumpVersion: refresh.changed });
  if (refresh.changed) deps.logger.info({ alias, version: stored.version + 1 }, `provider ${alias} changed upstream; every node reopens it`);
  return refresh;
}

/**
 * Refreshes every enabled provider whose kind can refresh and whose next refresh is due (or that
 * was never refreshed). Returns how many ran. Several nodes may refresh the same provider at
 * about the same time; that costs a duplicate fetch, never a wrong status.
 */
export async function refreshDueProviders(deps: RefreshDeps, now = new Date()): Promise<number> {
  let count = 0;
  for (const provider of await deps.providers.listEnabledStatus()) {
    if (!isRefreshable(provider.kind)) continue;
    const due = (provider.status.refresh as Partial<RefreshStatus> | undefined)?.next_at;
    if (due && Date.parse(due) > now.getTime()) continue;
    try {
      await refreshProvider(deps, provider.alias, now);
      count++;
    } catch (error) {
      if (!isRealmgateError(error, 'provider_unknown')) throw error;
    }
  }
  return count;
}
