import { XMLSerializer, type Element } from '@xmldom/xmldom';
import { ProviderError } from '../types.ts';
import { readAttributes, type SamlAttribute } from './attributes.ts';
import { NS_ASSERTION, NS_DSIG, NS_PROTOCOL, attributeOf, childElements, isElement, onlyChild, parseXml, textOf } from './xml.ts';

const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
const ENTITY_FORMAT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:entity';

/** OAuth error codes for the second-level SAML status codes that mean the user was refused or gave up. */
const OAUTH_ERROR_BY_STATUS: Readonly<Record<string, string>> = {
  'urn:oasis:names:tc:SAML:2.0:status:AuthnFailed': 'access_denied',
  'urn:oasis:names:tc:SAML:2.0:status:RequestDenied': 'access_denied',
  'urn:oasis:names:tc:SAML:2.0:status:NoPassive': 'login_required',
};

/** What a response must match, beyond what node-saml checks (signatures, audience, Conditions). */
export interface ResponseExpectations {
  alias: string;
  acsUrl: string;
  idpEntityId: string;
  /** The AuthnRequest ID this response must answer; undefined for an unsolicited (IdP-initiated) one. */
  requestId: string | undefined;
  clockSkewMs: number;
  nowMs: number;
  /** Accept SHA-1 signature methods and digests (the provider's `allow_sha1`). */
  allowSha1: boolean;
}

/** Signature method URIs that hash with SHA-1. */
const SHA1_SIGNATURE_METHODS = new Set([
  'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  'http://www.w3.org/2000/09/xmldsig#dsa-sha1',
  'http://www.w3.org/2000/09/xmldsig#hmac-sha1',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1',
]);
/** The SHA-1 digest method URI. */
const SHA1_DIGEST = 'http://www.w3.org/2000/09/xmldsig#sha1';

/** True for an XML-DSig signature method or digest URI (or an HTTP-Redirect `SigAlg`) that hashes with SHA-1. */
export function isSha1Algorithm(uri: string): boolean {
  return SHA1_SIGNATURE_METHODS.has(uri) || uri === SHA1_DIGEST;
}

/**
 * Refuses SHA-1 in any XML signature under `root` (its `SignedInfo`: the signature method and
 * each reference's digest) unless the provider allows it. Digests inside encryption (RSA-OAEP's
 * `DigestMethod`) are not signatures and are left alone.
 */
function checkSignatureAlgorithms(root: Element, expected: ResponseExpectations, where: string): void {
  if (expected.allowSha1) return;
  const signedInfos = root.getElementsByTagNameNS(NS_DSIG, 'SignedInfo');
  for (let i = 0; i < signedInfos.length; i++) {
    const signedInfo = signedInfos.item(i)!;
    const method = attributeOf(onlyChild(signedInfo, NS_DSIG, 'SignatureMethod'), 'Algorithm');
    if (method && SHA1_SIGNATURE_METHODS.has(method)) {
      throw invalid(expected, `the ${where} is signed with ${method}; SHA-1 is refused unless the provider sets allow_sha1`);
    }
    for (const reference of childElements(signedInfo, NS_DSIG, 'Reference')) {
      const digest = attributeOf(onlyChild(reference, NS_DSIG, 'DigestMethod'), 'Algorithm');
      if (digest === SHA1_DIGEST) throw invalid(expected, `the ${where} signature uses SHA-1 digests; SHA-1 is refused unless the provider sets allow_sha1`);
    }
  }
}

/** The facts of a verified assertion that make an upstream identity. */
export interface VerifiedAssertion {
  id: string;
  nameId: string;
  nameIdFormat: string | undefined;
  nameQualifier: string | undefined;
  spNameQualifier: string | undefined;
  sessionIndex: string | undefined;
  authnInstantMs: number;
  contextClassRefs: string[];
  attributes: SamlAttribute[];
  /** How long the assertion ID must be remembered to refuse a replay. */
  rememberUntil: Date;
}

function invalid(expected: ResponseExpectations, detail: string): ProviderError {
  return new ProviderError('response_invalid', { alias: expected.alias, detail });
}

function timeOf(value: string | undefined, label: string, expected: ResponseExpectations): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw invalid(expected, `${label} "${value}" is not a date`);
  return ms;
}

/**
 * Checks the `<samlp:Response>` envelope before any signature work: it is a Response, sent to
 * our ACS (`Destination`), by the IdP (`Issuer`), answering our request or none (`InResponseTo`),
 * with a success status (else `upstream_error`), and no SHA-1 in its signatures unless allowed.
 * Returns the `EncryptedAssertion` elements (serialised), whose content the caller decrypts and
 * checks with `checkDecryptedAssertion` before node-saml sees it.
 */
export function checkEnvelope(xml: string, expected: ResponseExpectations): { encryptedAssertions: string[] } {
  let root: Element;
  try {
    root = parseXml(xml).documentElement!;
  } catch (cause) {
    throw new ProviderError('response_invalid', { alias: expected.alias, detail: 'SAMLResponse is not well-formed XML', cause });
  }
  if (!isElement(root, NS_PROTOCOL, 'Response')) throw invalid(expected, `SAMLResponse is a ${(root as Element).localName}, not a Response`);
  if (root.getAttribute('Version') !== '2.0') throw invalid(expected, 'SAMLResponse is not SAML 2.0');
  checkSignatureAlgorithms(root, expected, 'Response');

  const destination = attributeOf(root, 'Destination');
  if (destination !== undefined && destination !== expected.acsUrl) {
    throw invalid(expected, `Destination ${destination} is not this ACS ${expected.acsUrl}`);
  }
  if (destination === undefined && childElements(root, NS_DSIG, 'Signature').length) {
    throw invalid(expected, 'a signed Response must name its Destination');
  }

  const issuer = onlyChild(root, NS_ASSERTION, 'Issuer');
  if (issuer) checkIssuer(issuer, expected, 'Response');

  const inResponseTo = attributeOf(root, 'InResponseTo');
  if (expected.requestId === undefined && inResponseTo !== undefined) {
    throw invalid(expected, `an unsolicited Response must not carry InResponseTo (${inResponseTo}); its login transaction is unknown or expired`);
  }
  if (expected.requestId !== undefined && inResponseTo !== expected.requestId) {
    throw invalid(expected, `InResponseTo ${inResponseTo ?? '(absent)'} does not match the AuthnRequest ${expected.requestId} of this login`);
  }

  const status = onlyChild(root, NS_PROTOCOL, 'Status');
  const code = status && onlyChild(status, NS_PROTOCOL, 'StatusCode');
  const value = attributeOf(code, 'Value');
  if (value !== STATUS_SUCCESS) {
    const nested = code ? attributeOf(onlyChild(code, NS_PROTOCOL, 'StatusCode'), 'Value') : undefined;
    const message = status ? textOf(onlyChild(status, NS_PROTOCOL, 'StatusMessage')) : undefined;
    throw new ProviderError('upstream_error', {
      alias: expected.alias,
      upstreamError: nested ? OAUTH_ERROR_BY_STATUS[nested] : undefined,
      detail: `the IdP answered ${value ?? '(no status)'}${nested ? ` / ${nested}` : ''}${message ? `: ${message}` : ''}`,
    });
  }
  const serializer = new XMLSerializer();
  return { encryptedAssertions: childElements(root, NS_ASSERTION, 'EncryptedAssertion').map((e) => serializer.serializeToString(e)) };
}

/**
 * Checks a decrypted assertion before node-saml decrypts and parses it again: within the XML
 * limits of a message (its plaintext is chosen by whoever encrypted it to our public SP
 * certificate, not necessarily the IdP) and without SHA-1 in its signature unless allowed.
 */
export function checkDecryptedAssertion(decryptedXml: string, expected: ResponseExpectations): void {
  let root: Element;
  try {
    root = parseXml(decryptedXml).documentElement!;
  } catch (cause) {
    throw new ProviderError('response_invalid', { alias: expected.alias, detail: `the encrypted assertion is refused: ${(cause as Error).message}`, cause });
  }
  checkSignatureAlgorithms(root, expected, 'encrypted Assertion');
}

function checkIssuer(issuer: Element, expected: ResponseExpectations, where: string): void {
  const format = attributeOf(issuer, 'Format');
  if (format !== undefined && format !== ENTITY_FORMAT) throw invalid(expected, `${where} Issuer has format ${format}`);
  const value = textOf(issuer);
  if (value !== expected.idpEntityId) throw invalid(expected, `${where} Issuer ${value ?? '(empty)'} is not the IdP ${expected.idpEntityId}`);
}

/**
 * Reads and checks an assertion whose signature node-saml verified (pass only its verified XML):
 * issuer, a bearer subject confirmation for our ACS within its window and answering our
 * request, an authentication statement, the NameID and attributes.
 */
export function checkAssertion(verifiedXml: string, expected: ResponseExpectations): VerifiedAssertion {
  const assertion = parseXml(verifiedXml).documentElement!;
  if (!isElement(assertion, NS_ASSERTION, 'Assertion')) throw invalid(expected, 'the verified element is not an Assertion');
  const id = attributeOf(assertion, 'ID');
  if (!id) throw invalid(expected, 'the Assertion has no ID');
  const issuer = onlyChild(assertion, NS_ASSERTION, 'Issuer');
  if (!issuer) throw invalid(expected, 'the Assertion has no Issuer');
  checkIssuer(issuer, expected, 'Assertion');

  const subject = onlyChild(assertion, NS_ASSERTION, 'Subject');
  if (!subject) throw invalid(expected, 'the Assertion has no Subject');
  const nameIdElement = onlyChild(subject, NS_ASSERTION, 'NameID');
  const nameId = textOf(nameIdElement);
  if (!nameId) {
    throw invalid(expected, childElements(subject, NS_ASSERTION, 'EncryptedID').length ? 'encrypted NameIDs are not supported' : 'the Subject has no NameID');
  }
  const confirmedUntil = checkSubjectConfirmation(subject, expected);

  const statement = childElements(assertion, NS_ASSERTION, 'AuthnStatement')[0];
  if (!statement) throw invalid(expected, 'the Assertion has no AuthnStatement');
  const authnInstantMs = timeOf(attributeOf(statement, 'AuthnInstant'), 'AuthnInstant', expected);
  if (authnInstantMs === undefined) throw invalid(expected, 'the AuthnStatement has no AuthnInstant');
  const contextClassRefs = childElements(statement, NS_ASSERTION, 'AuthnContext')
    .flatMap((c) => childElements(c, NS_ASSERTION, 'AuthnContextClassRef'))
    .map((r) => textOf(r))
    .filter((r): r is string => !!r);

  const conditions = onlyChild(assertion, NS_ASSERTION, 'Conditions');
  const conditionsUntil = timeOf(attributeOf(conditions, 'NotOnOrAfter'), 'Conditions NotOnOrAfter', expected) ?? 0;

  return {
    id,
    nameId,
    nameIdFormat: attributeOf(nameIdElement, 'Format'),
    nameQualifier: attributeOf(nameIdElement, 'NameQualifier'),
    spNameQualifier: attributeOf(nameIdElement, 'SPNameQualifier'),
    sessionIndex: attributeOf(statement, 'SessionIndex'),
    authnInstantMs,
    contextClassRefs,
    attributes: readAttributes(assertion),
    rememberUntil: new Date(Math.max(confirmedUntil, conditionsUntil) + expected.clockSkewMs),
  };
}

/**
 * Finds a bearer `SubjectConfirmation` whose data names our ACS (`Recipient`), is within its
 * window and answers our request; returns its `NotOnOrAfter`. The Web SSO profile requires both.
 */
function checkSubjectConfirmation(subject: Element, expected: ResponseExpectations): number {
  const reasons: string[] = [];
  for (const confirmation of childElements(subject, NS_ASSERTION, 'SubjectConfirmation')) {
    if (confirmation.getAttribute('Method') !== BEARER) {
      reasons.push(`method ${confirmation.getAttribute('Method')} is not bearer`);
      continue;
    }
    const data = onlyChild(confirmation, NS_ASSERTION, 'SubjectConfirmationData');
    const recipient = attributeOf(data, 'Recipient');
    const notBefore = timeOf(attributeOf(data, 'NotBefore'), 'SubjectConfirmationData NotBefore', expected);
    const notOnOrAfter = timeOf(attributeOf(data, 'NotOnOrAfter'), 'SubjectConfirmationData NotOnOrAfter', expected);
    const inResponseTo = attributeOf(data, 'InResponseTo');
    if (recipient !== expected.acsUrl) reasons.push(`Recipient ${recipient ?? '(absent)'} is not this ACS ${expected.acsUrl}`);
    else if (notOnOrAfter === undefined) reasons.push('SubjectConfirmationData has no NotOnOrAfter');
    else if (expected.nowMs - expected.clockSkewMs >= notOnOrAfter) reasons.push('the subject confirmation has expired');
    else if (notBefore !== undefined && expected.nowMs + expected.clockSkewMs < notBefore) reasons.push('the subject confirmation is not yet valid');
    else if (expected.requestId === undefined && inResponseTo !== undefined) reasons.push('an unsolicited assertion must not carry InResponseTo');
    else if (expected.requestId !== undefined && inResponseTo !== expected.requestId) {
      reasons.push(`SubjectConfirmationData InResponseTo ${inResponseTo ?? '(absent)'} does not match the AuthnRequest ${expected.requestId}`);
    } else return notOnOrAfter;
  }
  throw invalid(expected, `no usable bearer subject confirmation: ${reasons.join('; ') || 'none present'}`);
}
