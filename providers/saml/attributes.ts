import type { Element } from '@xmldom/xmldom';
import { NS_ASSERTION, attributeOf, childElements } from './xml.ts';

/** One SAML attribute as sent: its Name, optional FriendlyName and string values. */
export interface SamlAttribute {
  name: string;
  friendlyName: string | undefined;
  values: string[];
}

/**
 * Where the usual local claims come from when a provider's claim mapping does not say:
 * attribute Names or FriendlyNames of the common schemas (LDAP/eduPerson names and OIDs,
 * Microsoft AD FS and Entra ID claim URIs), first match wins.
 */
export const DEFAULT_ATTRIBUTE_CLAIMS: Readonly<Record<string, readonly string[]>> = {
  email: [
    'email', 'mail', 'emailAddress', 'Email',
    'urn:oid:0.9.2342.19200300.100.1.3',
    'urn:oid:1.2.840.113549.1.9.1',
    'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
    'http://schemas.xmlsoap.org/claims/EmailAddress',
  ],
  given_name: [
    'given_name', 'givenName', 'firstName', 'FirstName',
    'urn:oid:2.5.4.42',
    'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname',
  ],
  family_name: [
    'family_name', 'sn', 'surname', 'lastName', 'LastName',
    'urn:oid:2.5.4.4',
    'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname',
  ],
  name: [
    'name', 'displayName', 'cn',
    'urn:oid:2.16.840.1.113730.3.1.241',
    'urn:oid:2.5.4.3',
    'http://schemas.microsoft.com/identity/claims/displayname',
    'http://schemas.xmlsoap.org/claims/CommonName',
  ],
  preferred_username: [
    'preferred_username', 'uid', 'eduPersonPrincipalName', 'userPrincipalName', 'upn',
    'urn:oid:0.9.2342.19200300.100.1.1',
    'urn:oid:1.3.6.1.4.1.5923.1.1.1.6',
    'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn',
    'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
  ],
  groups: [
    'groups', 'memberOf', 'isMemberOf', 'Role', 'role',
    'urn:oid:1.3.6.1.4.1.5923.1.5.1.1',
    'urn:oid:1.2.840.113556.1.2.102',
    'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups',
    'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
    'http://schemas.xmlsoap.org/claims/Group',
  ],
};

/** Claims that are lists even with one value. */
const LIST_CLAIMS = new Set(['groups']);

/** Reads every `<Attribute>` of every `<AttributeStatement>` of a (verified) assertion. */
export function readAttributes(assertion: Element): SamlAttribute[] {
  const attributes: SamlAttribute[] = [];
  for (const statement of childElements(assertion, NS_ASSERTION, 'AttributeStatement')) {
    for (const attribute of childElements(statement, NS_ASSERTION, 'Attribute')) {
      const name = attributeOf(attribute, 'Name');
      if (!name) continue;
      const values = childElements(attribute, NS_ASSERTION, 'AttributeValue')
        .map((v) => v.textContent?.trim() ?? '')
        .filter((v) => v !== '');
      attributes.push({ name, friendlyName: attributeOf(attribute, 'FriendlyName'), values });
    }
  }
  return attributes;
}

/**
 * The claims of an upstream SAML identity: every attribute under its Name and, when it does not
 * collide, its FriendlyName; then the usual local claims (`email`, `given_name`, `family_name`,
 * `name`, `preferred_username`, `groups`) filled from `DEFAULT_ATTRIBUTE_CLAIMS` where absent.
 * A single value is a string, several an array; `groups` is always an array.
 */
export function attributesToClaims(attributes: SamlAttribute[]): Record<string, unknown> {
  const byName = new Map<string, string[]>();
  for (const a of attributes) byName.set(a.name, [...(byName.get(a.name) ?? []), ...a.values]);
  for (const a of attributes) {
    if (a.friendlyName && !byName.has(a.friendlyName)) byName.set(a.friendlyName, a.values);
  }
  const claims: Record<string, unknown> = {};
  for (const [name, values] of byName) claims[name] = shape(name, values);
  for (const [claim, sources] of Object.entries(DEFAULT_ATTRIBUTE_CLAIMS)) {
    if (byName.has(claim)) continue;
    const source = sources.find((s) => byName.get(s)?.length);
    if (source) claims[claim] = shape(claim, byName.get(source)!);
  }
  return claims;
}

/** The values of an attribute by Name or FriendlyName. */
export function attributeValues(attributes: SamlAttribute[], nameOrFriendlyName: string): string[] {
  const match = attributes.find((a) => a.name === nameOrFriendlyName) ?? attributes.find((a) => a.friendlyName === nameOrFriendlyName);
  return match?.values ?? [];
}

function shape(claim: string, values: string[]): string | string[] {
  return values.length === 1 && !LIST_CLAIMS.has(claim) ? values[0]! : values;
}

/** RFC 8176 `amr` values for the AuthnContextClassRefs IdPs commonly send. */
const AMR_BY_CONTEXT: Readonly<Record<string, string>> = {
  'urn:oasis:names:tc:SAML:2.0:ac:classes:Password': 'pwd',
  'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport': 'pwd',
  'urn:oasis:names:tc:SAML:2.0:ac:classes:X509': 'sc',
  'urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard': 'sc',
  'urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI': 'sc',
  'urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken': 'otp',
  'urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract': 'mfa',
  'urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos': 'wia',
  'urn:federation:authentication:windows': 'wia',
  'http://schemas.microsoft.com/claims/multipleauthn': 'mfa',
  'https://refeds.org/profile/mfa': 'mfa',
};

/** `amr` values for an assertion's AuthnContextClassRefs; unknown ones are left out. */
export function amrFor(contextClassRefs: string[]): string[] {
  return [...new Set(contextClassRefs.map((c) => AMR_BY_CONTEXT[c]).filter((v): v is string => !!v))];
}
