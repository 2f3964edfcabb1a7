/**
 * The SAML HTTP-POST binding for protocol messages Realmgate sends (SAML bindings §3.5): the XML
 * signed on its root element, base64-encoded in a form field the browser posts to the IdP.
 */
import { SignedXml } from 'xml-crypto';

const NS_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
const NS_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';

/** The key pair a message is signed with (the SP's). */
export interface PostSigningKey {
  privateKeyPem: string;
  certificatePem: string;
}

/**
 * Signs the root element `root` of `xml` (enveloped, exclusive canonicalisation, RSA-SHA256 with
 * SHA-256 digests), the signature right after the message's Issuer as SAML core §5.4.1 places it.
 */
export function signPostMessage(xml: string, root: 'LogoutRequest' | 'LogoutResponse', key: PostSigningKey): string {
  const rootPath = `/*[local-name(.)="${root}" and namespace-uri(.)="${NS_PROTOCOL}"]`;
  const sig = new SignedXml({
    privateKey: key.privateKeyPem,
    publicCert: key.certificatePem,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  sig.addReference({
    xpath: rootPath,
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
  });
  sig.computeSignature(xml, { location: { reference: `${rootPath}/*[local-name(.)="Issuer" and namespace-uri(.)="${NS_ASSERTION}"]`, action: 'after' } });
  return sig.getSignedXml();
}

/** The form fields of a signed message over HTTP-POST: `SAMLRequest` or `SAMLResponse`, and `RelayState` when there is one. */
export function postMessageFields(param: 'SAMLRequest' | 'SAMLResponse', signedXml: string, relayState: string | undefined): Record<string, string> {
  const fields: Record<string, string> = { [param]: Buffer.from(signedXml, 'utf8').toString('base64') };
  if (relayState) fields.RelayState = relayState;
  return fields;
}
