import { providerTypeFor } from '../../providers/index.ts';
import { ProviderError, type OpenContext } from '../../providers/types.ts';
import type { ProviderRepository } from '../store/providers.ts';
import { notFound } from './problems.ts';

/**
 * One check of a provider test: its name, outcome and, when it failed, why. `kind`, `settings`
 * and `open` come first; then the kind's readiness checks (OIDC: `id_token_signing_alg`,
 * `token_endpoint_auth_method`), and what the kind can probe over the network without a user
 * (oauth2: `authorization_endpoint`, `token_endpoint`, `userinfo_endpoint`, `emails_endpoint`,
 * `jwks_uri`, and `not_checked` naming what only a real sign-in checks).
 */
export interface ProviderCheck {
  name: string;
  ok: boolean;
  detail?: string;
}

/** What `POST providers/:alias/test` answers: every check that ran and whether all passed. */
export interface ProviderTestResult {
  ok: boolean;
  checks: ProviderCheck[];
}

/**
 * Tests a stored provider the way a login would use it: its kind is known, its settings and
 * secrets pass the kind's checks, it opens (OIDC: discovery and the JWKS; SAML: metadata and
 * certificates) through the federation's open context, so the SSRF guard and timeout apply, and
 * what a login needs of the opened upstream holds (OIDC: it signs ID tokens with the algorithm
 * expected and accepts the token endpoint authentication method). Kinds that can probe without a
 * user then do (oauth2: each endpoint answers; a made-up code tells whether the token endpoint
 * accepts the client credentials).
 * The provider is opened afresh and closed again: the result is not cached, and a failure here
 * changes nothing for logins.
 */
export async function testProvider(
  deps: { providers: Pick<ProviderRepository, 'load'>; openContext: OpenContext },
  alias: string,
): Promise<ProviderTestResult> {
  const stored = await deps.providers.load(alias);
  if (!stored) throw notFound('provider', alias);
  const checks: ProviderCheck[] = [];
  const result = () => ({ ok: checks.every((c) => c.ok), checks });

  const type = providerTypeFor(stored.kind);
  checks.push(type ? { name: 'kind', ok: true } : { name: 'kind', ok: false, detail: `this build does not speak ${stored.kind}` });
  if (!type) return result();

  const problems = type.check(stored.settings, stored.secrets);
  checks.push(problems.length ? { name: 'settings', ok: false, detail: problems.map((p) => `${p.field} ${p.message}`).join('; ') } : { name: 'settings', ok: true });
  if (problems.length) return result();

  try {
    const opened = await type.open(stored, deps.openContext);
    checks.push({ name: 'open', ok: true });
    try {
      checks.push(...(opened.readiness?.() ?? []));
      if (opened.probe) checks.push(...(await opened.probe()));
    } finally {
      opened.close?.();
    }
  } catch (error) {
    const code = error instanceof ProviderError ? error.code : 'unavailable';
    checks.push({ name: 'open', ok: false, detail: `${code}: ${(error as Error).message}` });
  }
  return result();
}
