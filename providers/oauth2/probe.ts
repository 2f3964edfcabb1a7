/**
 * What a test of an `oauth2` provider can learn without a person signing in: each endpoint
 * answers, and the token endpoint's verdict on Realmgate's client credentials when it is sent a
 * made-up code (a server checks the client before the code: `invalid_grant` means the
 * credentials passed, `invalid_client` that they did not). OAuth 2.0 offers no way to check the
 * scopes, the registered redirect URI or the JSON pointers without a user; the report says so.
 */
import type { ProviderReadinessCheck } from '../types.ts';
import type { OAuth2Settings } from './settings.ts';

/** OAuth error codes meaning "the client was authenticated, only the code was wrong" (GitHub has its own). */
const CODE_REFUSED = new Set(['invalid_grant', 'bad_verification_code', 'invalid_request']);

/** OAuth error codes meaning "the client credentials were refused". */
const CLIENT_REFUSED = new Set(['invalid_client', 'unauthorized_client', 'incorrect_client_credentials']);

/** What the probe needs: the resolved settings, the guarded fetch, the client secret to send and the redirect URI. */
export interface ProbeInput {
  settings: OAuth2Settings;
  fetch: typeof fetch;
  clientSecret: string;
  redirectUri: string;
}

/** Probes every endpoint of the provider; one check per endpoint, then what could not be checked. */
export async function probeOAuth2Provider(input: ProbeInput): Promise<ProviderReadinessCheck[]> {
  const s = input.settings;
  const checks: ProviderReadinessCheck[] = [];
  checks.push(await answers(input.fetch, 'authorization_endpoint', s.authorization_endpoint));
  checks.push(await tokenEndpoint(input));
  for (const [name, url] of [['userinfo_endpoint', s.userinfo_endpoint], ['emails_endpoint', s.emails_endpoint]] as const) {
    if (url) checks.push(await protectedResource(input.fetch, name, url));
  }
  if (s.jwks_uri) checks.push(await jwks(input.fetch, s.jwks_uri));
  checks.push({
    name: 'not_checked',
    ok: true,
    detail: 'without a person signing in, the scopes, the redirect URI registered at the provider, PKCE support and the subject and email pointers cannot be checked: sign in once to check them',
  });
  return checks;
}

async function request(fetcher: typeof fetch, url: string, init: RequestInit = {}): Promise<Response | string> {
  try {
    return await fetcher(url, { redirect: 'manual', ...init });
  } catch (error) {
    return `did not answer: ${(error as Error).message}`;
  }
}

async function answers(fetcher: typeof fetch, name: string, url: string): Promise<ProviderReadinessCheck> {
  const response = await request(fetcher, url);
  if (typeof response === 'string') return { name, ok: false, detail: `${url} ${response}` };
  await response.body?.cancel();
  return response.status === 404 ? { name, ok: false, detail: `${url} answered HTTP 404: check the URL` } : { name, ok: true, detail: `${url} answered HTTP ${response.status}` };
}

async function tokenEndpoint(input: ProbeInput): Promise<ProviderReadinessCheck> {
  const s = input.settings;
  const body = new URLSearchParams({ grant_type: 'authorization_code', code: 'realmgate-provider-test', redirect_uri: input.redirectUri });
  const headers = new Headers({ accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' });
  if (s.token_endpoint_auth_method === 'client_secret_basic') {
    headers.set('authorization', `Basic ${Buffer.from(`${encodeURIComponent(s.client_id)}:${encodeURIComponent(input.clientSecret)}`).toString('base64')}`);
  } else {
    body.set('client_id', s.client_id);
    body.set('client_secret', input.clientSecret);
  }
  const response = await request(input.fetch, s.token_endpoint, { method: 'POST', headers, body });
  const name = 'token_endpoint';
  if (typeof response === 'string') return { name, ok: false, detail: `${s.token_endpoint} ${response}` };
  const text = await response.text();
  let error: string | undefined;
  try {
    error = (JSON.parse(text) as { error?: unknown }).error as string | undefined;
  } catch {
    error = undefined;
  }
  if (typeof error === 'string' && CLIENT_REFUSED.has(error)) return { name, ok: false, detail: `${s.token_endpoint} refused the client credentials (${error}): check client_id and the secret` };
  if (response.status === 401) return { name, ok: false, detail: `${s.token_endpoint} refused the client credentials (HTTP 401): check client_id and the secret` };
  if (typeof error === 'string' && CODE_REFUSED.has(error)) return { name, ok: true, detail: `${s.token_endpoint} accepted the client credentials and refused only the made-up code (${error})` };
  return { name, ok: true, detail: `${s.token_endpoint} answered HTTP ${response.status}${error ? ` (${error})` : ''}; whether it accepts the client credentials cannot be told from that answer` };
}

async function protectedResource(fetcher: typeof fetch, name: string, url: string): Promise<ProviderReadinessCheck> {
  const response = await request(fetcher, url, { headers: { accept: 'application/json' } });
  if (typeof response === 'string') return { name, ok: false, detail: `${url} ${response}` };
  await response.body?.cancel();
  if (response.status === 404) return { name, ok: false, detail: `${url} answered HTTP 404: check the URL` };
  return { name, ok: true, detail: `${url} answered HTTP ${response.status} without an access token${[400, 401, 403].includes(response.status) ? ', as expected' : ''}` };
}

async function jwks(fetcher: typeof fetch, url: string): Promise<ProviderReadinessCheck> {
  const response = await request(fetcher, url, { headers: { accept: 'application/json' } });
  if (typeof response === 'string') return { name: 'jwks_uri', ok: false, detail: `${url} ${response}` };
  try {
    const keys = ((await response.json()) as { keys?: unknown }).keys;
    if (response.ok && Array.isArray(keys) && keys.length) return { name: 'jwks_uri', ok: true, detail: `${url} publishes ${keys.length} key(s)` };
  } catch {
    // reported below
  }
  return { name: 'jwks_uri', ok: false, detail: `${url} answered HTTP ${response.status} without a key set` };
}
