import type { Realmgate } from '../../src/app.ts';
import { hashPassword } from '../../src/accounts/passwords.ts';
import type { Account } from '../../src/store/accounts.ts';
import { saveClient } from '../../src/token-server/clients.ts';
import type { ClientMetadata } from '../../src/store/clients.ts';

/** Creates a local account with a password. */
export async function addUser(node: Realmgate, input: { email: string; password: string; name?: string }): Promise<Account> {
  return node.services.accounts.create({
    email: input.email,
    emailVerified: true,
    name: input.name ?? null,
    passwordHash: await hashPassword(input.password),
  });
}

/** Registers a client through the same validation the CLI and admin API use. */
export async function addClient(node: Realmgate, metadata: ClientMetadata, secret?: string): Promise<void> {
  await saveClient(node.services, metadata, secret ?? null);
}
