import crypto from 'node:crypto';
import { RealmgateError } from '../errors.ts';
import type { ClientMetadata, ClientRepository, StoredClient } from '../store/clients.ts';
import type { TokenEngine } from './engine.ts';


/** A confidential client's secret: 32 random bytes, base64url. */
export function generateClientSecret(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/**
 * Validates client metadata with the token engine's own rules and stores it, secret sealed
 * (`client_metadata_invalid`, its `message` saying what to fix, when the engine refuses it).
 * `secret` undefined keeps the stored one; a confidential client without any secret gets none
 * here, so callers generate one.
 */
export async function saveClient(
  deps: { engine: TokenEngine; clients: ClientRepository },
  metadata: ClientMetadata,
  secret: string | null | undefined,
): Promise<StoredClient> {
  const existing = secret === undefined ? await deps.clients.findForEngine(metadata.client_id) : undefined;
  const effectiveSecret = secret ?? (existing?.client_secret as string | undefined);
  try {
    await deps.engine.provider.Client.validate({ ...metadata, ...(effectiveSecret ? { client_secret: effectiveSecret } : {}) } as never);
  } catch (cause) {
    const description = (cause as { error_description?: string }).error_description ?? (cause as Error).message;
    throw new RealmgateError('client_metadata_invalid', { detail: description, cause });
  }
  return deps.clients.save(metadata, secret);
}
