import type { Response } from 'express';
import { RealmgateError } from '../errors.ts';
import type { TokenEngine } from '../token-server/engine.ts';
import type { CsrfTokens } from './csrf.ts';
import type { Interaction } from './service.ts';
import type { Views } from './views.ts';

/** Human descriptions of scopes on the consent page. */
const SCOPE_DESCRIPTIONS: Record<string, string> = {
  openid: 'Know who you are',
  profile: 'See your name',
  email: 'See your email address',
  offline_access: 'Stay signed in when you are not using it',
};

/** Grants what the interaction asks for: missing scopes, claims and resource scopes. */
export async function grantConsent(engine: TokenEngine, interaction: Interaction): Promise<string> {
  const { details } = interaction;
  const { Grant } = engine.provider;
  const accountId = details.session?.accountId;
  if (!accountId) throw new RealmgateError('interaction_expired', { detail: 'consent without a signed-in session' });
  const clientId = String(details.params.client_id);
  const grant = details.grantId ? await Grant.find(details.grantId) : new Grant({ accountId, clientId });
  if (!grant) throw new RealmgateError('interaction_expired', { detail: 'grant vanished during consent' });
  const missing = details.prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

/** Renders the consent page: the scopes asked for, described. */
export function renderConsent(deps: { views: Views; csrf: CsrfTokens }, res: Response, interaction: Interaction): void {
  const { details, client } = interaction;
  const requested = String(details.params.scope ?? '').split(' ').filter(Boolean);
  const resourceScopes = Object.values((details.prompt.details.missingResourceScopes ?? {}) as Record<string, string[]>).flat();
  const scopes = [...new Set([...requested.filter((s) => SCOPE_DESCRIPTIONS[s]), ...resourceScopes])];
  res.type('html').send(
    deps.views.render('consent.njk', {
      uid: interaction.uid,
      csrf: deps.csrf.issue(interaction.uid),
      client_name: client.client_name ?? client.client_id,
      scopes: scopes.map((s) => ({ name: s, description: SCOPE_DESCRIPTIONS[s] ?? `Use the "${s}" permission` })),
    }),
  );
}
