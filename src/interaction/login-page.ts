/**
 * The login page of an interaction: home-realm discovery decides whether the browser goes
 * straight to a provider or sees the choice, and the page offers what the client allows. A person
 * is never trapped on a remembered provider: "use another way", `prompt=login` without a hint and
 * `prompt=select_account` show the choice instead of following the last-used cookie.
 */
import type { Request, Response } from 'express';
import {
  homeRealmClient,
  resolveHomeRealm,
  type HomeRealmClient,
  type HomeRealmDirectory,
  type HomeRealmExplanation,
  type HomeRealmInput,
  type HomeRealmResolution,
} from '../federation/home-realm.ts';
import type { CsrfTokens } from './csrf.ts';
import type { Interaction } from './service.ts';
import type { Views } from './views.ts';

/** Cookie naming the provider last used in this browser. */
export const LAST_PROVIDER_COOKIE = 'rg_last_idp';

const LAST_PROVIDER_MAX_AGE_MS = 180 * 24 * 3600 * 1000;

/** What the login page of one interaction offers. */
export interface LoginPage {
  providers: { alias: string; display_name: string; icon?: string | undefined }[];
  emailFirst: boolean;
  localLogin: boolean;
  /** A sentence shown above the forms, e.g. why a typed email found no provider. */
  notice?: string | undefined;
  /** Offer "use another way to sign in" (the page is not the whole choice, or a provider is remembered). */
  otherMethod?: boolean | undefined;
  /** The client may use more providers than the page shows: offer a search by name. */
  search?: boolean | undefined;
  /** The search term the shown providers matched, when the page answers a search. */
  searchTerm?: string | undefined;
}

/** An OAuth error the application gets back instead of a login page (e.g. a hint naming a provider it may not use). */
export interface LoginPageError {
  error: string;
  errorDescription: string;
}

/** Where home-realm discovery sends the browser on its own, and by which rule. */
export interface LoginRedirect {
  redirect: string;
  provider: string;
  rule: HomeRealmExplanation['rule'];
}

/** Decides the login page for an interaction; may answer with a redirect (home-realm discovery) or an OAuth error instead. */
export type LoginPagePolicy = (interaction: Interaction, req: Request) => Promise<LoginPage | LoginRedirect | LoginPageError>;

/** The value of one cookie of the request (no cookie parser is mounted). */
export function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Remembers the provider this browser signed in with, for home-realm discovery next time. */
export function rememberProvider(res: Response, alias: string, secure: boolean): void {
  res.cookie(LAST_PROVIDER_COOKIE, alias, { path: '/interaction', httpOnly: true, sameSite: 'lax', secure, maxAge: LAST_PROVIDER_MAX_AGE_MS });
}

/** Where the browser goes to start a login at `alias` for interaction `uid` (bound to this browser's interaction cookie). */
export function startUrl(alias: string, uid: string): string {
  return `/interaction/${encodeURIComponent(uid)}/start/${encodeURIComponent(alias)}`;
}

const param = (params: Record<string, unknown>, name: string) => (typeof params[name] === 'string' && params[name] ? (params[name] as string) : undefined);

const prompts = (params: Record<string, unknown>) => new Set(String(params.prompt ?? '').split(' ').filter(Boolean));

/**
 * The discovery inputs of an interaction: its authorization parameters and the last-used cookie.
 * The cookie does not count when the person asked for the choice (`use another way`,
 * `prompt=select_account`), when `prompt=login` came without a hint, or when discovery already
 * sent this browser to the remembered provider once; `prompt=select_account` and "use another
 * way" also set the `login_hint` domain aside, so the page shows every method.
 */
export function homeRealmInput(interaction: Pick<Interaction, 'params' | 'state' | 'prompt'>, req: Request, email?: string): HomeRealmInput {
  const { params, state } = interaction;
  const asked = prompts(params);
  const choice = state.chooseAnotherWay === true || asked.has('select_account') || interaction.prompt === 'select_account';
  const input: HomeRealmInput = {
    idpHint: param(params, 'idp_hint'),
    kcIdpHint: param(params, 'kc_idp_hint'),
    acrValues: param(params, 'acr_values'),
    loginHint: choice ? undefined : param(params, 'login_hint'),
    email,
    lastUsed: readCookie(req, LAST_PROVIDER_COOKIE),
  };
  const hinted = Boolean(input.idpHint || input.kcIdpHint || input.acrValues?.includes('idp:') || input.loginHint);
  if (choice || (asked.has('login') && !hinted) || state.autoRedirectedTo !== undefined) input.lastUsed = undefined;
  return input;
}

/**
 * The picker page of a resolution (with a notice when a typed email matched nothing), its buttons
 * in the order of the client's `allowed_providers` when it lists them.
 */
export function pickerPage(resolution: HomeRealmResolution, client: HomeRealmClient): LoginPage {
  const { explanation, providers } = resolution;
  const { decision } = explanation;
  const choice = decision.action === 'picker' ? decision : resolution.choice;
  const byAlias = new Map(providers.map((p) => [p.alias, p]));
  const offered = [...(choice?.providers ?? [])];
  const order = client.allowedProviders;
  if (order) offered.sort((a, b) => order.indexOf(a) - order.indexOf(b));
  const unmatched = decision.action === 'picker' ? decision.unmatchedDomain : undefined;
  return {
    providers: offered.map((alias) => ({ alias, display_name: byAlias.get(alias)?.displayName ?? alias, icon: byAlias.get(alias)?.icon })),
    emailFirst: choice?.emailFirst ?? false,
    localLogin: client.localLogin,
    search: choice?.search === true,
    notice: unmatched !== undefined ? `No sign-in provider is set up for "${unmatched}". ${choice?.providers.length ? 'Choose one below.' : 'Check the address, or search for your organisation.'}` : undefined,
  };
}

/**
 * The login page with home-realm discovery: redirects straight to the provider the rules pick,
 * answers a disallowed hint with an OAuth error, else shows the picker. Form posts to the page
 * (password login) only ask what the page offers; they are never redirected. Discovery reads only
 * what the request names, and the picker at most `PICKER_MAX_PROVIDERS` providers.
 */
export function homeRealmLoginPage(deps: { directory: HomeRealmDirectory }): LoginPagePolicy {
  return async (interaction, req) => {
    const clientRules = homeRealmClient(interaction.client);
    const input = homeRealmInput(interaction, req);
    const resolution = await resolveHomeRealm(deps.directory, input, clientRules, { withPicker: req.method !== 'GET' });
    const { explanation } = resolution;
    const { decision } = explanation;
    if (req.method === 'GET' && decision.action === 'redirect') {
      return { redirect: startUrl(decision.provider, interaction.uid), provider: decision.provider, rule: explanation.rule };
    }
    if (decision.action === 'error') {
      return {
        error: 'invalid_request',
        errorDescription:
          decision.error === 'provider_not_allowed'
            ? `${explanation.rule} names provider "${decision.provider}", which this client may not use`
            : `${explanation.rule} names provider "${decision.provider}", which does not exist or is disabled`,
      };
    }
    // The picker, or a form post while a rule would redirect: offer what the picker offers.
    const page = pickerPage(resolution, clientRules);
    const remembered = readCookie(req, LAST_PROVIDER_COOKIE);
    return { ...page, otherMethod: Boolean(remembered && explanation.candidates.includes(remembered) && !interaction.state.chooseAnotherWay) };
  };
}

/** Renders the login page of an interaction as `page` describes it. */
export function renderLogin(
  deps: { views: Views; csrf: CsrfTokens },
  res: Response,
  interaction: Pick<Interaction, 'uid' | 'params' | 'client'>,
  page: LoginPage,
  extra: { error?: string | undefined; email?: string; status?: number; fieldError?: boolean } = {},
): void {
  res.status(extra.status ?? 200).type('html').set('cache-control', 'no-store').send(
    deps.views.render('login.njk', {
      uid: interaction.uid,
      csrf: deps.csrf.issue(interaction.uid),
      client_name: interaction.client.client_name ?? interaction.client.client_id,
      providers: page.providers,
      email_first: page.emailFirst,
      local_login: page.localLogin,
      registration: page.localLogin && interaction.client.registration === true,
      search: page.search,
      search_term: page.searchTerm ?? '',
      other_method: page.otherMethod,
      email: extra.email ?? (typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint : ''),
      error: extra.error ?? page.notice,
      // An error about what was typed (the email or password) is tied to that input; a notice is not.
      field_error: extra.fieldError === true,
    }),
  );
}
