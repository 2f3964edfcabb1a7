import { ProviderError } from '../../providers/types.ts';
import { RealmgateError } from '../errors.ts';
import { UnknownProviderError } from './provider-cache.ts';

/** Status and safe sentence per provider failure code; `{name}` is the provider's display name. */
const PAGES: Record<ProviderError['code'], { code: string; status: number; message: string }> = {
  unavailable: {
    code: 'provider_unavailable',
    status: 503,
    message: 'Sign-in with {name} is not available right now. Try again later, or go back to the application and choose another way to sign in.',
  },
  upstream_unreachable: {
    code: 'upstream_unreachable',
    status: 504,
    message: '{name} did not answer in time, so we could not complete your sign-in. Try again in a moment.',
  },
  upstream_error: {
    code: 'upstream_error',
    status: 502,
    message: '{name} did not complete your sign-in. Go back to the application and try again.',
  },
  response_invalid: {
    code: 'response_invalid',
    status: 502,
    message: 'We could not verify the answer from {name}, so you are not signed in. Go back to the application and try again.',
  },
  replayed: {
    code: 'response_replayed',
    status: 400,
    message: 'This sign-in answer from {name} was already used. Go back to the application and start again.',
  },
  transaction_invalid: {
    code: 'login_transaction_invalid',
    status: 400,
    message: 'This sign-in has expired or was already completed. Go back to the application and start again.',
  },
};

/**
 * Turns a federation failure into the error page's RealmgateError: a safe sentence naming the
 * provider, the right status, and the original error kept as `cause` for the log line with the
 * reference. Anything else passes through unchanged.
 */
export function federationPageError(error: unknown, providerName: string | undefined): unknown {
  if (error instanceof UnknownProviderError) {
    return new RealmgateError('provider_unknown', {
      status: 404,
      detail: error.message,
      safeMessage: 'This sign-in provider does not exist (any more). Go back to the application and start again.',
      cause: error,
    });
  }
  if (!(error instanceof ProviderError)) return error;
  const page = PAGES[error.code];
  const name = providerName ?? error.alias ?? 'the identity provider';
  return new RealmgateError(page.code, {
    status: page.status,
    detail: `${error.alias ?? '?'}: ${error.code}: ${error.message}`,
    safeMessage: page.message.replace('{name}', name),
    cause: error,
  });
}
