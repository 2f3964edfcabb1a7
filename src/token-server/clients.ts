import crypto from 'node:crypto';
import type { ClientMetadata, ClientRepository, StoredClient } from '../store/clients.ts';
import type { TokenEngine } from './engine.ts';

/** Thrown when client metadata is invalid; `message` says what to fix. */
export class ClientMetadataError extends Error {
  readonly code = 'invalid_client_metadata';
}

/** A confidential client's secret: 32 random bytes, base64url. */
export function generateClientSecret(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/**
 * Validates client metadata with the token engine's own rules and stores it, secret sealed.
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
    throw new ClientMetadataError(description, { cause });
  }
  return deps.clients.save(metadata, secret);
}
