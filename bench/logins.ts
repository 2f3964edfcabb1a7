/**
 * Complete federated logins driven over HTTP, as a browser with a cookie jar and an application
 * on openid-client would: authorization request, the gateway, the upstream (OIDC, or the SAML
 * IdP's signed response posted to the ACS), back to the application, code exchanged and the ES256
 * ID token validated. One fresh cookie jar per login, so every login goes upstream.
 */
import zlib from 'node:zlib';
import { SAML, ValidateInResponseTo } from '@node-saml/passport-saml';
import * as oidc from 'openid-client';
import { HttpSession } from '../test/support/http-session.ts';
import { TestSamlIdp, type TestAttribute } from '../test/support/saml-idp.ts';

/** Where the bench's applications say they live; the browser stops there and never fetches it. */
export const APP_REDIRECT_URI = 'http://127.0.0.1:1/app/callback';
/** The application's client at every gateway. */
export const APP_CLIENT = { id: 'app', secret: 'app-secret-0123456789abcdef' };

/** The SAML user's attributes (a mail the OIDC user does not share, so no link confirmation is asked). */
const SAML_ATTRIBUTES: TestAttribute[] = [
  { name: 'urn:oid:0.9.2342.19200300.100.1.3', friendlyName: 'mail', values: ['grace@saml.bench'] },
  { name: 'urn:oid:2.5.4.42', friendlyName: 'givenName', values: ['Grace'] },
  { name: 'urn:oid:2.5.4.4', friendlyName: 'sn', values: ['Bench'] },
];

/** The application at one gateway: openid-client discovered it once. */
export async function discoverApp(issuer: string): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), APP_CLIENT.id, APP_CLIENT.secret, undefined, { execute: [oidc.allowInsecureRequests] });
}

/** Starts an authorization request in a fresh cookie jar and follows it until the browser leaves for `stopAt` (or the app). */
async function authorize(app: oidc.Configuration, params: Record<string, string>, stopAt: string) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(app, {
    redirect_uri: APP_REDIRECT_URI,
    scope: 'openid email profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...params,
  });
  const browser = new HttpSession();
  const page = await browser.follow(url, {}, stopAt);
  return { browser, page, checks: { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce } };
}

/** Redeems the code the browser brought back; openid-client validates the ID token. */
async function redeem(app: oidc.Configuration, landed: { status: number; url: URL; body: string }, checks: oidc.AuthorizationCodeGrantChecks): Promise<void> {
  if (landed.status !== 0) throw new Error(`login did not reach the application: ${landed.status} ${landed.url}\n${landed.body.slice(0, 800)}`);
  const tokens = await oidc.authorizationCodeGrant(app, landed.url, checks);
  if (!tokens.claims()?.sub) throw new Error('no sub in the ID token');
}

/** One federated OIDC login: gateway → upstream (signs in at once) → gateway → application. */
export async function oidcLogin(app: oidc.Configuration, params: Record<string, string> = {}): Promise<void> {
  const { page, checks } = await authorize(app, params, APP_REDIRECT_URI);
  await redeem(app, page, checks);
}

/** The bench's SAML IdP: real RSA-SHA256 signed assertions (test/support/saml-idp.ts), answered in the bench process. */
export async function createSamlIdp(): Promise<TestSamlIdp> {
  return TestSamlIdp.create('http://127.0.0.1:9/saml-idp');
}

/** Reads the AuthnRequest a redirect to the IdP carries. */
function authnRequest(at: URL): { id: string; issuer: string; acsUrl: string; relayState: string | undefined } {
  const xml = zlib.inflateRawSync(Buffer.from(at.searchParams.get('SAMLRequest') ?? '', 'base64')).toString('utf8');
  const attr = (name: string) => new RegExp(`\\s${name}="([^"]*)"`).exec(xml)?.[1] ?? '';
  return {
    id: attr('ID'),
    issuer: /<(?:\w+:)?Issuer[^>]*>([^<]*)</.exec(xml)?.[1] ?? '',
    acsUrl: attr('AssertionConsumerServiceURL'),
    relayState: at.searchParams.get('RelayState') ?? undefined,
  };
}

/** One federated SAML login: gateway → AuthnRequest → the IdP's signed response posted to the ACS → application. */
export async function samlLogin(app: oidc.Configuration, idp: TestSamlIdp, acsUrl: string, params: Record<string, string>): Promise<void> {
  const { browser, page, checks } = await authorize(app, params, idp.ssoUrl);
  if (page.status !== 0) throw new Error(`the browser was not sent to the SAML IdP: ${page.status} ${page.url}\n${page.body.slice(0, 800)}`);
  const request = authnRequest(page.url);
  const SAMLResponse = await idp.response({ acsUrl, audience: request.issuer, inResponseTo: request.id, nameId: 'grace-0001', attributes: SAML_ATTRIBUTES });
  const fields: Record<string, string> = { SAMLResponse, ...(request.relayState !== undefined ? { RelayState: request.relayState } : {}) };
  const landed = await browser.submit(acsUrl, fields, APP_REDIRECT_URI);
  await redeem(app, landed, checks);
}

/**
 * CPU milliseconds node-saml (as Realmgate configures it) spends validating one signed response,
 * measured in this process over `count` validations of a fresh response.
 */
export async function samlValidationCpuMs(idp: TestSamlIdp, count: number): Promise<number> {
  const sp = 'http://127.0.0.1:9/sp';
  const acsUrl = `${sp}/acs`;
  const saml = new SAML({
    issuer: sp,
    callbackUrl: acsUrl,
    audience: sp,
    idpCert: idp.key.certificatePem,
    idpIssuer: idp.entityId,
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: false,
    validateInResponseTo: ValidateInResponseTo.never,
  });
  const SAMLResponse = await idp.response({ acsUrl, audience: sp, nameId: 'grace-0001', attributes: SAML_ATTRIBUTES });
  for (let i = 0; i < 10; i++) await saml.validatePostResponseAsync({ SAMLResponse });
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) await saml.validatePostResponseAsync({ SAMLResponse });
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / count;
}
