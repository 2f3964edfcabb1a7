/**
 * Home-realm discovery: which upstream provider a login goes to. `decideHomeRealm` is a pure
 * function of the request and the stored state, so the login page and the admin API's
 * `hrd/explain` give the same answer and say which rule made it.
 */
import type { ClientRepository } from '../store/clients.ts';
import type { ProviderDirectory } from '../store/provider-directory.ts';
import type { ProviderCache } from './provider-cache.ts';
import { RealmgateError } from '../errors.ts';

/** The most providers the picker shows as buttons; beyond it the page offers email-first discovery and a search. */
export const PICKER_MAX_PROVIDERS = 20;

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
      /** Set when the client may use more providers than the picker shows: offer a search by name. */
      search?: true | undefined;
    }
  | { action: 'error'; error: 'provider_not_allowed' | 'provider_unknown'; provider: string };

/** A decision, the rule that made it and the providers the client could use. */
export interface HomeRealmExplanation {
  decision: HomeRealmDecision;
  rule: HomeRealmRule;
  /**
   * Aliases of the enabled providers this client may use, as far as the decision read them: all
   * of them when there are at most `PICKER_MAX_PROVIDERS`, else the first of those and the ones
   * the request named; only the named ones when a hint decided without the picker.
   */
  candidates: string[];
}

/** Options of a decision. */
export interface HomeRealmOptions {
  /**
   * False when `enabled` holds only the providers the request named (hint, domains, last used),
   * because the client may use more than the picker shows. Default true: `enabled` is all of them.
   */
  complete?: boolean | undefined;
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
export function decideHomeRealm(
  input: HomeRealmInput,
  client: HomeRealmClient,
  enabled: readonly HomeRealmProvider[],
  options: HomeRealmOptions = {},
): HomeRealmExplanation {
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

  const picker = (unmatchedDomain?: string): HomeRealmDecision => ({ ...pickerChoice(client, offered, options), unmatchedDomain });

  if (input.email !== undefined) {
    const domain = emailDomain(input.email);
    const typed = byDomain(domain);
    if (typed) return explain('email', { action: 'redirect', provider: typed.alias });
    return explain('email', picker(domain ?? input.email));
  }

  if (input.lastUsed && candidates.includes(input.lastUsed)) {
    return explain('last_used', { action: 'redirect', provider: input.lastUsed });
  }
  if (options.complete !== false && candidates.length === 1 && !client.localLogin) {
    return explain('single_provider', { action: 'redirect', provider: candidates[0]! });
  }
  return explain('picker', picker());
}

/** The picker's choice. */
export type PickerChoice = Extract<HomeRealmDecision, { action: 'picker' }>;

/**
 * What the picker offers among `offered` (enabled providers the client may use): their buttons
 * when there are at most `PICKER_MAX_PROVIDERS` and the list is complete; else no buttons,
 * email-first discovery and a search by name.
 */
export function pickerChoice(client: HomeRealmClient, offered: readonly HomeRealmProvider[], options: HomeRealmOptions = {}): PickerChoice {
  const few = options.complete !== false && offered.length <= PICKER_MAX_PROVIDERS;
  return {
    action: 'picker',
    providers: few ? offered.map((p) => p.alias) : [],
    localLogin: client.localLogin,
    emailFirst: few ? offered.some((p) => p.domains.length > 0) : true,
    ...(few ? {} : { search: true as const }),
  };
}

/** Reads `allowed_providers` and `local_login` from OpenID Connect client metadata. */
export function homeRealmClient(metadata: Record<string, unknown>): HomeRealmClient {
  const allowed = metadata.allowed_providers;
  return {
    allowedProviders: Array.isArray(allowed) ? allowed.filter((a): a is string => typeof a === 'string') : undefined,
    localLogin: metadata.local_login !== false,
  };
}

/** What discovery reads about providers: indexed lookups of a bounded number of rows. */
export type HomeRealmDirectory = Pick<ProviderDirectory, 'enabled' | 'forDomain' | 'page'>;

/**
 * `directory`, with the enabled provider by alias (`idp_hint`, the last used one) answered by
 * the provider cache when it holds that provider open and confirmed, so a returning login by
 * hint reads no provider row; any other lookup goes to the directory.
 */
export function withOpenProviders(directory: ProviderDirectory, cache: Pick<ProviderCache, 'confirmedEnabled'>): LoginDirectory {
  return {
    enabled: async (alias) => cache.confirmedEnabled(alias) ?? directory.enabled(alias),
    forDomain: (domain) => directory.forDomain(domain),
    page: (aliases, limit) => directory.page(aliases, limit),
    search: (term, limit, aliases) => directory.search(term, limit, aliases),
  };
}

/** What the login pages read about providers: discovery's lookups and the picker's search. */
export type LoginDirectory = Pick<ProviderDirectory, 'enabled' | 'forDomain' | 'page' | 'search'>;

/** A decision with the providers it read and, when it read the picker's page, what the picker offers. */
export interface HomeRealmResolution {
  explanation: HomeRealmExplanation;
  providers: HomeRealmProvider[];
  choice?: PickerChoice | undefined;
}

/**
 * Decides where a login goes, reading only what the request names: the hinted alias, the
 * provider owning the `login_hint` or typed email domain, the last used provider (each one
 * indexed lookup), and only when none of them decides, a picker page of at most
 * `PICKER_MAX_PROVIDERS` (the client's allowed providers when that few, else the first of all
 * enabled ones; `withPicker` reads it in any case, for a page that shows the choice whatever the
 * rules say). The cost is the same at ten providers or a hundred thousand.
 */
export async function resolveHomeRealm(
  directory: HomeRealmDirectory,
  input: HomeRealmInput,
  client: HomeRealmClient,
  options: { withPicker?: boolean } = {},
): Promise<HomeRealmResolution> {
  const hint = input.idpHint || input.kcIdpHint || acrHint(input.acrValues);
  const lookups: Promise<HomeRealmProvider | undefined>[] = [];
  if (hint) lookups.push(directory.enabled(hint));
  else {
    const hinted = emailDomain(input.loginHint);
    const typed = input.email !== undefined ? emailDomain(input.email) : undefined;
    if (hinted) lookups.push(directory.forDomain(hinted));
    if (typed && typed !== hinted) lookups.push(directory.forDomain(typed));
    if (input.lastUsed && input.email === undefined) lookups.push(directory.enabled(input.lastUsed));
  }
  const named = dedupe((await Promise.all(lookups)).filter((p): p is HomeRealmProvider => p !== undefined));
  const first = decideHomeRealm(input, client, named, { complete: false });
  const settled = first.rule !== 'picker' && !(first.rule === 'email' && first.decision.action === 'picker');
  if (settled && !options.withPicker) return { explanation: first, providers: named };
  const page = await directory.page(client.allowedProviders, PICKER_MAX_PROVIDERS);
  const providers = dedupe([...page.providers, ...named]);
  const complete = !page.more;
  const allowed = client.allowedProviders ? new Set(client.allowedProviders) : undefined;
  const offered = page.providers.filter((p) => !allowed || allowed.has(p.alias));
  return {
    explanation: decideHomeRealm(input, client, providers, { complete }),
    providers,
    choice: pickerChoice(client, offered, { complete }),
  };
}

function dedupe(providers: HomeRealmProvider[]): HomeRealmProvider[] {
  const byAlias = new Map<string, HomeRealmProvider>();
  for (const p of providers) {
    const known = byAlias.get(p.alias);
    byAlias.set(p.alias, known ? { ...known, domains: [...new Set([...known.domains, ...p.domains])] } : p);
  }
  return [...byAlias.values()].sort((a, b) => (a.alias < b.alias ? -1 : a.alias > b.alias ? 1 : 0));
}

/**
 * Explains the decision for a client and a request, from the stored clients and providers:
 * what `GET /admin/api/hrd/explain` returns. An unknown client is a `not_found` RealmgateError (404).
 */
export async function explainHomeRealm(
  deps: { directory: HomeRealmDirectory; clients: Pick<ClientRepository, 'get'> },
  request: { clientId: string } & HomeRealmInput,
): Promise<HomeRealmExplanation> {
  const { clientId, ...input } = request;
  const client = await deps.clients.get(clientId);
  if (!client) throw new RealmgateError('not_found', { params: { what: 'client', id: clientId }, detail: `client ${clientId} does not exist` });
  return (await resolveHomeRealm(deps.directory, input, homeRealmClient(client.metadata), { withPicker: true })).explanation;
}
