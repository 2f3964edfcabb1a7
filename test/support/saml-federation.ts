import * as oidc from 'openid-client';
import { samlProviderType } from '../../providers/saml.ts';
import type { Realmgate } from '../../src/app.ts';
import type { TestApp } from './federation.ts';
import { HttpSession, readForm, type PageResponse } from './http-session.ts';
import { TestSamlIdp, type ReceivedAuthnRequest, type ResponseOptions } from './saml-idp.ts';

/** Stores a `saml` provider for `idp` (from its metadata XML unless `settings` says otherwise), with a generated SP key pair. */
export async function addSamlProvider(
  node: Realmgate,
  idp: TestSamlIdp,
  input: { alias: string; displayName?: string; domains?: string[]; settings?: Record<string, unknown>; enabled?: boolean; claimMappings?: Record<string, string> },
): Promise<void> {
  const settings = input.settings?.metadata_url || input.settings?.sso_url ? { ...input.settings } : { metadata_xml: idp.metadataXml(), ...input.settings };
  const prepared = await samlProviderType.prepare!({ alias: input.alias, settings, secrets: {} });
  await node.services.store.transaction((tx) =>
    tx.providers.create(
      {
        alias: input.alias,
        kind: 'saml',
        displayName: input.displayName ?? `${input.alias} SAML`,
        enabled: input.enabled ?? true,
        domains: input.domains ?? [],
        settings: { ...settings, ...prepared.settings },
        secrets: prepared.secrets,
        claimMappings: input.claimMappings ?? {},
      },
    ),
  );
}

/** The SP certificate Realmgate generated for provider `alias`. */
export async function spCertificateOf(node: Realmgate, alias: string): Promise<string> {
  return (await node.services.providers.load(alias))!.settings.sp_certificate as string;
}

/** Where a browser stands after leaving Realmgate for the SAML IdP. */
export interface AtSamlIdp {
  browser: HttpSession;
  request: ReceivedAuthnRequest;
  /** How the AuthnRequest travelled. */
  binding: 'redirect' | 'post';
}

/**
 * Follows redirects from `start` until the browser is sent to the IdP's SSO endpoint, by a
 * redirect (HTTP-Redirect) or an auto-posting page (HTTP-POST), and reads the AuthnRequest it carries.
 */
export async function goToSamlIdp(browser: HttpSession, start: URL, idp: TestSamlIdp, spCertificatePem: string): Promise<AtSamlIdp> {
  let res = await browser.request(start);
  for (let hops = 0; hops < 15; hops++) {
    const location = res.headers.get('location');
    if (location) {
      const next = new URL(location, res.url);
      if (next.toString().startsWith(idp.ssoUrl)) return { browser, request: TestSamlIdp.readAuthnRequest(next, spCertificatePem), binding: 'redirect' };
      res = await browser.request(next);
      continue;
    }
    if (res.status === 200 && res.body.includes(idp.ssoUrl)) {
      const form = readForm(res, new RegExp(`^${idp.ssoUrl.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
      return { browser, request: TestSamlIdp.readAuthnRequest(form.fields, spCertificatePem), binding: 'post' };
    }
    break;
  }
  throw new Error(`the browser was not sent to the SAML IdP: ${res.status} ${res.url}\n${res.body.slice(0, 1500)}`);
}

/** Posts a SAMLResponse to a node's ACS as the IdP's auto-posting page would, following redirects up to `stopAt`. */
export function postToAcs(browser: HttpSession, serverUrl: string, alias: string, samlResponse: string, relayState?: string, stopAt?: string): Promise<PageResponse> {
  const fields: Record<string, string> = { SAMLResponse: samlResponse };
  if (relayState !== undefined) fields.RelayState = relayState;
  return browser.submit(`${serverUrl}/federation/${alias}/saml/acs`, fields, stopAt);
}

/** Response options answering `request` for the node at `serverUrl`, as the IdP would. */
export function answer(serverUrl: string, alias: string, request: ReceivedAuthnRequest, overrides: Partial<ResponseOptions> = {}): ResponseOptions {
  return { acsUrl: `${serverUrl}/federation/${alias}/saml/acs`, audience: request.issuer, inResponseTo: request.id, ...overrides };
}

/**
 * A full SP-initiated login: the app's authorization request, Realmgate's AuthnRequest, the IdP's
 * signed response (shaped by `response`), the ACS, and the code exchanged by openid-client.
 */
export async function samlLogin(
  app: TestApp,
  idp: TestSamlIdp,
  node: { url: string; node: Realmgate },
  alias: string,
  options: { params?: Record<string, string>; browser?: HttpSession; response?: Partial<ResponseOptions>; acsUrl?: string } = {},
) {
  const browser = options.browser ?? new HttpSession();
  const { url, codeVerifier, state, nonce } = await app.authorizationUrl(options.params);
  const at = await goToSamlIdp(browser, url, idp, await spCertificateOf(node.node, alias));
  const samlResponse = await idp.response(answer(node.url, alias, at.request, options.response));
  const back = await postToAcs(browser, options.acsUrl ?? node.url, alias, samlResponse, at.request.relayState, app.redirectUri);
  if (back.status !== 0) throw new Error(`login did not reach the application: ${back.status} ${back.url}\n${back.body.slice(0, 1500)}`);
  const tokens = await oidc.authorizationCodeGrant(app.config, back.url, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
  return { tokens, claims: tokens.claims()!, browser, request: at.request, binding: at.binding };
}
