/**
 * SAML 2.0 Single Logout for one opened provider, on node-saml's logout methods:
 * - IdP-initiated: a LogoutRequest over HTTP-Redirect or HTTP-POST must be signed (node-saml
 *   accepts an unsigned redirect message, so the signature is required here first) with one of
 *   the IdP's certificates; Destination, Issuer, IssueInstant, NotOnOrAfter are checked and its ID
 *   is used once; the answer is a signed LogoutResponse to the IdP's SLO endpoint.
 * - SP-initiated: a signed LogoutRequest naming the NameID exactly as the IdP sent it (Format and
 *   qualifiers) and its SessionIndex; the IdP's LogoutResponse (HTTP-Redirect with a query
 *   signature, or HTTP-POST with an XML signature) must answer that request.
 * What Realmgate sends goes by the binding `sloBinding` picks from the IdP's metadata; what it
 * accepts may come by either. Message size and depth are bounded before any parser sees the XML;
 * SHA-1 signatures are refused unless the provider sets `allow_sha1`, as for responses.
 */
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import type { Profile, SAML } from '@node-saml/passport-saml';
import type { Element } from '@xmldom/xmldom';
import { ProviderError, type AcceptedUpstreamLogout, type BrowserSend, type CallbackInput, type LogoutStart, type ReplayStore, type UpstreamLogoutInput, type UpstreamSession } from '../types.ts';
import type { IdpDescriptor } from './metadata.ts';
import { isSha1Algorithm } from './response.ts';
import type { ServiceProvider } from './opened.ts';
import { postMessageFields, signPostMessage } from './post-binding.ts';
import type { SamlSettings } from './settings.ts';
import { SAML_MESSAGE_LIMITS, assertXmlWithinLimits } from './xml-limits.ts';
import { NS_ASSERTION, NS_DSIG, NS_PROTOCOL, attributeOf, childElements, isElement, onlyChild, parseXml, textOf } from './xml.ts';

/** Largest logout message accepted, as XML bytes (a LogoutRequest is a NameID, a few indexes and a signature). */
export const MAX_LOGOUT_MESSAGE_BYTES = 64 * 1024;

/** How old a LogoutRequest's IssueInstant may be; its ID is remembered this long. */
const MAX_REQUEST_AGE_MS = 10 * 60 * 1000;

const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

/** What the logout steps need of the opened provider. */
export interface SamlLogoutContext {
  alias: string;
  settings: SamlSettings;
  idp: IdpDescriptor;
  sp: ServiceProvider;
  replay: ReplayStore;
  /** node-saml configured for this provider (signing key, IdP certificates), with overrides (`logoutUrl`: where the message goes). */
  saml(overrides?: { generateUniqueId?: () => string; logoutUrl?: string }): SAML;
}

/** A SAML binding Realmgate speaks. */
export type SamlBinding = 'redirect' | 'post';

/**
 * The binding of the logout messages Realmgate sends the IdP: the one its single logout service
 * offers, or when it offers both, the one its metadata lists first; for entered fields (one
 * `slo_url` for both) the provider's `binding` setting. Undefined when the IdP has no SLO endpoint.
 */
export function sloBinding(idp: IdpDescriptor, settings: Pick<SamlSettings, 'binding'>): SamlBinding | undefined {
  const offered = (['redirect', 'post'] as const).filter((b) => idp.slo[b]);
  if (offered.length < 2) return offered[0];
  return idp.sloPreferred ?? settings.binding;
}

/** Where a LogoutResponse over `binding` goes: the endpoint's ResponseLocation, else its Location. */
function responseLocation(idp: IdpDescriptor, binding: SamlBinding): string {
  return idp.sloResponse?.[binding] ?? idp.slo[binding]!;
}

const invalid = (alias: string, detail: string, cause?: unknown) => new ProviderError('response_invalid', { alias, detail, cause });

/**
 * The XML of a logout message, bounded before parsing: base64 (inflated for HTTP-Redirect, with
 * the inflated size capped), at most MAX_LOGOUT_MESSAGE_BYTES, then the shared SAML bounds on
 * size, depth and element count (`assertXmlWithinLimits`).
 */
export function boundedLogoutXml(alias: string, encoded: string, binding: SamlBinding): string {
  if (encoded.length > (MAX_LOGOUT_MESSAGE_BYTES * 4) / 3 + 4) throw invalid(alias, 'logout message too large');
  const raw = Buffer.from(encoded, 'base64');
  let xml: Buffer;
  try {
    xml = binding === 'redirect' ? zlib.inflateRawSync(raw, { maxOutputLength: MAX_LOGOUT_MESSAGE_BYTES }) : raw;
  } catch (cause) {
    throw invalid(alias, 'logout message cannot be inflated, or inflates past the size limit', cause);
  }
  if (xml.length > MAX_LOGOUT_MESSAGE_BYTES) throw invalid(alias, 'logout message too large');
  const text = xml.toString('utf8');
  // Depth and element count too, before any parser sees it (the same bounds as every SAML message).
  try {
    assertXmlWithinLimits(text, SAML_MESSAGE_LIMITS);
  } catch (cause) {
    throw invalid(alias, `logout message refused before parsing: ${(cause as Error).message}`, cause);
  }
  return text;
}

/** The fields of a LogoutRequest or LogoutResponse Realmgate checks itself. */
interface LogoutMessage {
  kind: 'LogoutRequest' | 'LogoutResponse';
  id: string;
  issueInstantMs: number;
  destination: string | undefined;
  issuer: string | undefined;
  notOnOrAfterMs: number | undefined;
  inResponseTo: string | undefined;
  status: string | undefined;
  nameId: { value: string; format: string | undefined; nameQualifier: string | undefined; spNameQualifier: string | undefined } | undefined;
  sessionIndexes: string[];
  /** Signature and digest method URIs of the message's own XML signature (HTTP-POST), if any. */
  signatureAlgorithms: string[];
}

/** The signature and digest methods of the `ds:Signature` directly under `root`. */
function signatureAlgorithmsOf(root: Element): string[] {
  const signature = onlyChild(root, NS_DSIG, 'Signature');
  const signedInfo = signature && onlyChild(signature, NS_DSIG, 'SignedInfo');
  if (!signedInfo) return [];
  const methods = [attributeOf(onlyChild(signedInfo, NS_DSIG, 'SignatureMethod'), 'Algorithm')];
  for (const reference of childElements(signedInfo, NS_DSIG, 'Reference')) methods.push(attributeOf(onlyChild(reference, NS_DSIG, 'DigestMethod'), 'Algorithm'));
  return methods.filter((m): m is string => !!m);
}

function readMessage(alias: string, xml: string): LogoutMessage {
  let root;
  try {
    root = parseXml(xml).documentElement!;
  } catch (cause) {
    throw invalid(alias, `logout message is not well-formed XML: ${(cause as Error).message}`, cause);
  }
  const kind = isElement(root, NS_PROTOCOL, 'LogoutRequest') ? 'LogoutRequest' : isElement(root, NS_PROTOCOL, 'LogoutResponse') ? 'LogoutResponse' : undefined;
  if (!kind) throw invalid(alias, `expected a LogoutRequest or LogoutResponse, got ${root.localName}`);
  const time = (name: string) => {
    const value = attributeOf(root, name);
    if (value === undefined) return undefined;
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) throw invalid(alias, `${kind} ${name} is not a time`);
    return ms;
  };
  const nameIdElement = onlyChild(root, NS_ASSERTION, 'NameID');
  const nameIdValue = textOf(nameIdElement);
  const statusCode = onlyChild(onlyChild(root, NS_PROTOCOL, 'Status') ?? root, NS_PROTOCOL, 'StatusCode');
  const id = attributeOf(root, 'ID');
  const issueInstantMs = time('IssueInstant');
  if (!id || issueInstantMs === undefined) throw invalid(alias, `${kind} lacks ID or IssueInstant`);
  return {
    kind,
    id,
    issueInstantMs,
    destination: attributeOf(root, 'Destination'),
    issuer: textOf(onlyChild(root, NS_ASSERTION, 'Issuer')),
    notOnOrAfterMs: time('NotOnOrAfter'),
    inResponseTo: attributeOf(root, 'InResponseTo'),
    status: attributeOf(statusCode, 'Value'),
    nameId: nameIdValue
      ? { value: nameIdValue, format: attributeOf(nameIdElement, 'Format'), nameQualifier: attributeOf(nameIdElement, 'NameQualifier'), spNameQualifier: attributeOf(nameIdElement, 'SPNameQualifier') }
      : undefined,
    sessionIndexes: childElements(root, NS_PROTOCOL, 'SessionIndex').map((el) => textOf(el)).filter((v): v is string => !!v),
    signatureAlgorithms: signatureAlgorithmsOf(root),
  };
}

/** Destination, Issuer and validity window of a message from the IdP. */
function checkEnvelope(ctx: SamlLogoutContext, message: LogoutMessage): void {
  const skewMs = ctx.settings.clock_skew_seconds * 1000;
  const now = Date.now();
  if (message.destination !== ctx.sp.sloUrl) throw invalid(ctx.alias, `${message.kind} Destination ${JSON.stringify(message.destination ?? null)} is not ${ctx.sp.sloUrl}`);
  if (message.issuer !== ctx.idp.entityId) throw invalid(ctx.alias, `${message.kind} Issuer ${JSON.stringify(message.issuer ?? null)} is not ${ctx.idp.entityId}`);
  if (message.issueInstantMs > now + skewMs) throw invalid(ctx.alias, `${message.kind} IssueInstant lies in the future`);
  if (message.issueInstantMs < now - MAX_REQUEST_AGE_MS - skewMs) throw invalid(ctx.alias, `${message.kind} IssueInstant is too old`);
  if (message.notOnOrAfterMs !== undefined && message.notOnOrAfterMs <= now - skewMs) throw invalid(ctx.alias, `${message.kind} NotOnOrAfter has passed`);
}

/**
 * node-saml's signature check of a logout message: over HTTP-Redirect the query signature (required
 * first), over HTTP-POST the XML signature on the message's root element, by one of the IdP's certificates.
 */
async function checkSignature(ctx: SamlLogoutContext, binding: SamlBinding, params: Record<string, string>, rawQuery: string, message: LogoutMessage): Promise<void> {
  const algorithms = binding === 'redirect' ? [params.SigAlg ?? ''] : message.signatureAlgorithms;
  const sha1 = algorithms.find(isSha1Algorithm);
  if (sha1 && !ctx.settings.allow_sha1) throw invalid(ctx.alias, `the ${message.kind} is signed with ${sha1}; SHA-1 is refused unless the provider sets allow_sha1`);
  try {
    if (binding === 'redirect') {
      if (!params.Signature || !params.SigAlg) throw new Error('the message is not signed (no Signature and SigAlg)');
      await ctx.saml().validateRedirectAsync(params, rawQuery);
    } else if (params.SAMLRequest) {
      await ctx.saml().validatePostRequestAsync({ SAMLRequest: params.SAMLRequest });
    } else {
      // A LogoutResponse carries no assertion: node-saml accepts it only with a valid signature on the whole message.
      const { loggedOut } = await ctx.saml().validatePostResponseAsync({ SAMLResponse: params.SAMLResponse ?? '' });
      if (!loggedOut) throw new Error('the posted message is not a LogoutResponse');
    }
  } catch (cause) {
    if (cause instanceof ProviderError) throw cause;
    throw invalid(ctx.alias, `logout message rejected: ${(cause as Error).message}`, cause);
  }
}

/** Validates an IdP-initiated LogoutRequest and returns the sessions it ends and how to answer. */
export async function acceptSamlLogout(ctx: SamlLogoutContext, input: UpstreamLogoutInput): Promise<AcceptedUpstreamLogout> {
  if (input.channel !== 'saml' || !input.params.SAMLRequest) throw invalid(ctx.alias, 'a SAML provider receives logout as a SAML LogoutRequest');
  const message = readMessage(ctx.alias, boundedLogoutXml(ctx.alias, input.params.SAMLRequest, input.binding));
  if (message.kind !== 'LogoutRequest') throw invalid(ctx.alias, 'expected a LogoutRequest');
  await checkSignature(ctx, input.binding, input.params, input.rawQuery, message);
  checkEnvelope(ctx, message);
  if (!message.nameId) throw invalid(ctx.alias, 'LogoutRequest without a NameID (encrypted NameIDs are not supported)');
  const key = `saml-logout:${crypto.createHash('sha256').update(`${ctx.idp.entityId}\n${message.id}`).digest('base64url')}`;
  if (!(await ctx.replay.rememberOnce(key, new Date(Date.now() + MAX_REQUEST_AGE_MS * 2)))) {
    throw new ProviderError('replayed', { alias: ctx.alias, detail: `LogoutRequest ${message.id} was already used` });
  }
  const relayState = input.params.RelayState;
  return {
    match: { issuer: ctx.idp.entityId, nameId: message.nameId, sessionIndexes: message.sessionIndexes.length ? message.sessionIndexes : undefined },
    respond: async ({ success }): Promise<BrowserSend> => {
      const binding = sloBinding(ctx.idp, ctx.settings);
      if (!binding) throw new ProviderError('unavailable', { alias: ctx.alias, detail: 'the IdP has no single logout endpoint to answer at' });
      const target = responseLocation(ctx.idp, binding);
      const saml = ctx.saml({ logoutUrl: target });
      const answered = { ID: message.id } as Profile;
      if (binding === 'redirect') return { type: 'redirect', url: await saml.getLogoutResponseUrlAsync(answered, relayState ?? '', {}, success) };
      const signed = signPostMessage(saml._generateLogoutResponse(answered, success), 'LogoutResponse', signingKey(ctx));
      return { type: 'post-form', action: target, fields: postMessageFields('SAMLResponse', signed, relayState) };
    },
  };
}

/** The SP key pair, which signs what Realmgate posts. */
function signingKey(ctx: SamlLogoutContext): { privateKeyPem: string; certificatePem: string } {
  return { privateKeyPem: ctx.sp.privateKeyPem, certificatePem: ctx.sp.certificatePem };
}

/**
 * A signed LogoutRequest for the upstream session, over the binding `sloBinding` picks (a query
 * signature over HTTP-Redirect, an XML signature over HTTP-POST); undefined when `upstream_logout`
 * is off, the IdP has no SLO endpoint, or the session has no NameID.
 */
export async function startSamlLogout(ctx: SamlLogoutContext, session: UpstreamSession, transactionId: string): Promise<LogoutStart | undefined> {
  const binding = sloBinding(ctx.idp, ctx.settings);
  if (!ctx.settings.upstream_logout || !binding || !session.nameId) return undefined;
  const requestId = `_${crypto.randomBytes(20).toString('hex')}`;
  const target = ctx.idp.slo[binding]!;
  const saml = ctx.saml({ generateUniqueId: () => requestId, logoutUrl: target });
  const subject = {
    issuer: ctx.idp.entityId,
    nameID: session.nameId,
    nameIDFormat: session.nameIdFormat ?? 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
    nameQualifier: session.nameQualifier,
    spNameQualifier: session.spNameQualifier,
    sessionIndex: session.sessionIndex,
  } as Profile;
  const transaction = { saml_request_id: requestId };
  if (binding === 'redirect') return { type: 'redirect', url: await saml.getLogoutUrlAsync(subject, transactionId, {}), transaction };
  const signed = signPostMessage(await saml._generateLogoutRequest(subject), 'LogoutRequest', signingKey(ctx));
  return { type: 'post-form', action: target, fields: postMessageFields('SAMLRequest', signed, transactionId), transaction };
}

/**
 * Validates the IdP's LogoutResponse to the request stored in `transaction`: over HTTP-Redirect
 * (the message in `input.url`'s query, with its query signature) or HTTP-POST (the message in the
 * form, XML-signed; `input.url` then carries no message). InResponseTo must name the stored request.
 */
export async function finishSamlLogout(ctx: SamlLogoutContext, input: CallbackInput, transaction: Record<string, unknown>): Promise<void> {
  const requestId = transaction.saml_request_id;
  if (typeof requestId !== 'string') throw new ProviderError('transaction_invalid', { alias: ctx.alias, detail: 'the logout transaction has no SAML request ID' });
  const encoded = input.params.SAMLResponse;
  if (!encoded) throw invalid(ctx.alias, 'no SAMLResponse');
  const inQuery = input.url.searchParams.get('SAMLResponse');
  const binding: SamlBinding = inQuery === null ? 'post' : 'redirect';
  // The query signature covers the query: the message checked must be the one in it.
  if (binding === 'redirect' && inQuery !== encoded) throw invalid(ctx.alias, 'the SAMLResponse read is not the one in the signed query');
  const message = readMessage(ctx.alias, boundedLogoutXml(ctx.alias, encoded, binding));
  if (message.kind !== 'LogoutResponse') throw invalid(ctx.alias, 'expected a LogoutResponse');
  if (message.inResponseTo !== requestId) throw invalid(ctx.alias, `LogoutResponse InResponseTo ${JSON.stringify(message.inResponseTo ?? null)} does not answer ${requestId}`);
  await checkSignature(ctx, binding, input.params, input.url.search.slice(1), message);
  checkEnvelope(ctx, message);
  if (message.status !== SUCCESS) throw new ProviderError('upstream_error', { alias: ctx.alias, detail: `LogoutResponse status ${message.status ?? 'missing'}` });
}
