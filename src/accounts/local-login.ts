import type { Account, AccountRepository } from '../store/accounts.ts';
import { verifyAgainstDecoy, verifyPassword } from './passwords.ts';
import { LoginThrottle } from '../store/login-throttle.ts';

/** The outcome of a password sign-in. */
export type LocalLoginResult =
  | { outcome: 'success'; account: Account }
  | { outcome: 'failure' }
  | { outcome: 'throttled'; retryAfterSeconds: number };

/**
 * Checks an email and password. Unknown email, wrong password and disabled account look the
 * same and take the same time; repeated failures are throttled per account, per account and IP,
 * and per IP (see `LoginThrottle` for how).
 */
export async function signInWithPassword(
  deps: { accounts: AccountRepository; throttle: LoginThrottle },
  input: { email: string; password: string; ip: string },
): Promise<LocalLoginResult> {
  const keys = LoginThrottle.keysFor(input.email, input.ip);
  const { retryAfterSeconds, counted } = await deps.throttle.standing(keys);
  if (retryAfterSeconds > 0) return { outcome: 'throttled', retryAfterSeconds };

  const found = await deps.accounts.findLocalByEmail(input.email.trim());
  const valid = found ? await verifyPassword(input.password, found.passwordHash) : await verifyAgainstDecoy(input.password);
  if (!found || !valid || found.account.disabled) {
    await deps.throttle.recordFailure(keys);
    return { outcome: 'failure' };
  }
  // The account's own keys that have failures counted; the address keeps its count (it may be guessing at other accounts).
  await deps.throttle.reset(counted.filter((k) => !k.startsWith('ip:')));
  await deps.accounts.touchLogin(found.account.id);
  return { outcome: 'success', account: found.account };
}
