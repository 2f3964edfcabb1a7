/**
 * Home-realm discovery: which upstream provider a login goes to. `decideHomeRealm` is a pure
 * function of the request and the stored state, so the login page and the admin API's
 * `hrd/explain` give the same answer and say which rule made it.
 */
import type { ClientRepository } from '../store/clients.ts';
import type { ProviderRepository } from '../store/providers.ts';
import { RealmgateError } from '../errors.ts';

/** What a login request tells discovery; every field is optional. */
export interface HomeRealmInput {
  /** `idp_hint` authorization parameter. */
  idpHint?: string | undefined;
  /** `kc_idp_hint` authorization parameter (Keycloak's name for the same thing). */
  kcIdpHint?: string | undefined;
  /** `acr_values` authorization parameter; `idp:<alias>` among its values is a hint. */
  acrValues?: string | undefined;
  /** `login_hint` authorization parameter; its email domain is looked up. */
  loginHint?: string | undefined;
  /** Email typed on the email-first page. */
  email?: string | undefined;
  /** Provider last used in this browser (cookie). */
  lastUsed?: string | undefined;
}

/** An enabled provider as discovery sees it. */
export interface HomeRealmProvider {
  alias: string;
  displayName: string;
  domains: string[];
  /** The login button's image, a path on Realmgate's own origin (an `oauth2` provider's `icon_url`). */
  icon?: string | undefined;
}

/** The parts of a client's metadata discovery reads. */
export interface HomeRealmClient {
  /** `allowed_providers`; undefined means every enabled provider. */
  allowedProviders?: readonly string[] | undefined;
  /** `local_login !== false`. */
  localLogin: boolean;
}

/** The rule that made a decision, in precedence order. */
export type HomeRealmRule =
  | 'idp_hint'
  | 'kc_idp_hint'
  | 'acr_values'
  | 'login_hint'
  | 'email'
  | 'last_used'
  | 'single_provider'
  | 'picker';

/** What to do: go to one provider, show the picker, or refuse a hint the client may not use. */
export type HomeRealmDecision =
  | { action: 'redirect'; provider: string }
  | {
      action: 'picker';
      /** Aliases to offer, in display order. */
      providers: string[];
      /** Show the password form. */
      localLogin: boolean;
      /** Show the email-first form (some offered provider claims a domain). */
      emailFirst: boolean;
      /** Set when a typed email's domain matched no offered provider. */
      unmatchedDomain?: string | undefined;
    }
  | { action: 'error'; error: 'provider_not_allowed' | 'provider_unknown'; provider: string };

/** A decision, the rule that made it and the providers the client could use. */
export interface HomeRealmExplanation {
  decision: HomeRealmDecision;
  rule: HomeRealmRule;
  /** Aliases of the enabled providers this client may use. */
  candidates: string[];
}

/** The email domain of a hint or typed address, lower-cased; undefined when there is none. */
export function emailDomain(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const at = value.lastIndexOf('@');
  if (at < 1 || at === value.length - 1) return undefined;
  return value.slice(at + 1).trim().toLowerCase();
}

/** The alias named by `idp:<alias>` in `acr_values`, if any. */
function acrHint(acrValues: string | undefined): string | undefined {
  return acrValues?.split(/\s+/).find((v) => v.startsWith('idp:') && v.length > 4)?.slice(4);
}

/**
 * Decides where a login goes. Order: explicit hint (`idp_hint`, `kc_idp_hint`, `acr_values`
 * `idp:<alias>`) > domain of `login_hint` > typed email > last used provider > the only
 * provider (when there is no password form) > the picker. Only enabled providers the client
 * allows count; an explicit hint naming any other provider is an error, never a fallback.
 */
export function decideHomeRealm(input: HomeRealmInput, client: HomeRealmClient, enabled: readonly HomeRealmProvider[]): HomeRealmExplanation {
  const allowed = client.allowedProviders ? new Set(client.allowedProviders) : undefined;
  const offered = enabled.filter((p) => !allowed || allowed.has(p.alias));
  const candidates = offered.map((p) => p.alias);
  const explain = (rule: HomeRealmRule, decision: HomeRealmDecision): HomeRealmExplanation => ({ decision, rule, candidates });
  const byDomain = (domain: string | undefined) => (domain ? offered.find((p) => p.domains.includes(domain)) : undefined);

  const hints: [HomeRealmRule, string | undefined][] = [
    ['idp_hint', input.idpHint],
    ['kc_idp_hint', input.kcIdpHint],
    ['acr_values', acrHint(input.acrValues)],
  ];
  for (const [rule, alias] of hints) {
    if (!alias) continue;
    if (candidates.includes(alias)) return explain(rule, { action: 'redirect', provider: alias });
    const exists = enabled.some((p) => p.alias === alias);
    return explain(rule, { action: 'error', error: exists ? 'provider_not_allowed' : 'provider_unknown', provider: alias });
  }

  const hinted = byDomain(emailDomain(input.loginHint));
  if (hinted) return explain('login_hint', { action: 'redirect', provider: hinted.alias });

  const picker = (unmatchedDomain?: string): HomeRealmDecision => ({
    action: 'picker',
    providers: candidates,
    localLogin: client.localLogin,
    emailFirst: offered.some((p) => p.domains.length > 0),
    unmatchedDomain,
  });

  if (input.email !== undefined) {
    const domain = emailDomain(input.email);
    const typed = byDomain(domain);
    if (typed) return explain('email', { action: 'redirect', provider: typed.alias });
    return explain('email', picker(domain ?? input.email));
  }

  if (input.lastUsed && candidates.includes(input.lastUsed)) {
    return explain('last_used', { action: 'redirect', provider: input.lastUsed });
  }
  if (candidates.length === 1 && !client.localLogin) {
    return explain('single_provider', { action: 'redirect', provider: candidates[0]! });
  }
  return explain('picker', picker());
}

/** Reads `allowed_providers` and `local_login` from OpenID Connect client metadata. */
export function homeRealmClient(metadata: Record<string, unknown>): HomeRealmClient {
  const allowed = metadata.allowed_providers;
  return {
    allowedProviders: Array.isArray(allowed) ? allowed.filter((a): a is string => typeof a === 'string') : undefined,
    localLogin: metadata.local_login !== false,
  };
}

/** Every enabled provider with its domains, as discovery needs them (two queries). */
export async function loadHomeRealmProviders(providers: Pick<ProviderRepository, 'listEnabled'>): Promise<HomeRealmProvider[]> {
  return (await providers.listEnabled()).map((p) => ({
    alias: p.alias,
    displayName: p.displayName,
    domains: p.domains,
    icon: typeof p.settings.icon_url === 'string' && p.settings.icon_url.startsWith('/') && !p.settings.icon_url.startsWith('//') ? p.settings.icon_url : undefined,
  }));
}

/**
 * Explains the decision for a client and a request, from the stored clients and providers:
 * what `GET /admin/api/hrd/explain` returns. An unknown client is a `not_found` RealmgateError (404).
 */
export async function explainHomeRealm(
  deps: { providers: Pick<ProviderRepository, 'listEnabled'>; clients: Pick<ClientRepository, 'get'> },
  request: { clientId: string } & HomeRealmInput,
): Promise<HomeRealmExplanation> {
  const { clientId, ...input } = request;
  const client = await deps.clients.get(clientId);
  if (!client) throw new RealmgateError('not_found', { params: { what: 'client', id: clientId }, detail: `client ${clientId} does not exist` });
  return decideHomeRealm(input, homeRealmClient(client.metadata), await loadHomeRealmProviders(deps.providers));
}
