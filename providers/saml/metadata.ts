import type { Element } from '@xmldom/xmldom';
import { toCertificatePem } from './certificates.ts';
import { NS_DSIG, NS_METADATA, NS_PROTOCOL, SAML_METADATA_LIMITS, XmlLimitError, assertXmlWithinLimits, attributeOf, childElements, isElement, parseXml, textOf } from './xml.ts';

/** SAML 2.0 binding URNs Realmgate speaks. */
export const BINDINGS = {
  redirect: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
  post: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
} as const;

/** What Realmgate needs to know about an IdP, from its metadata or entered fields. */
export interface IdpDescriptor {
  entityId: string;
  /** Single sign-on endpoints by binding. */
  sso: { redirect?: string | undefined; post?: string | undefined };
  /** Single logout endpoints by binding. */
  slo: { redirect?: string | undefined; post?: string | undefined };
  /** Where LogoutResponses go, by binding, when an endpoint names a `ResponseLocation` apart from its `Location`. */
  sloResponse?: { redirect?: string | undefined; post?: string | undefined } | undefined;
  /** The single logout binding the metadata lists first among those Realmgate speaks: the IdP's preference. */
  sloPreferred?: 'redirect' | 'post' | undefined;
  /** Certificates whose keys may sign responses and assertions (PEM); several during a rollover. */
  signingCertificates: string[];
}

/** Largest metadata document accepted, in bytes (per-entity metadata, not whole federations). */
export const MAX_METADATA_BYTES = SAML_METADATA_LIMITS.maxBytes;

/**
 * Reads an IdP's metadata: an `EntityDescriptor`, or an `EntitiesDescriptor` holding one IdP (or
 * several, with `entityId` picking one). Throws with a message fit for an administrator.
 */
export function parseIdpMetadata(xml: string, entityId?: string): IdpDescriptor {
  try {
    assertXmlWithinLimits(xml, SAML_METADATA_LIMITS);
  } catch (error) {
    if (error instanceof XmlLimitError) throw new Error(`metadata is refused: ${error.message}`, { cause: error });
    throw error;
  }
  let root: Element;
  try {
    root = parseXml(xml, SAML_METADATA_LIMITS).documentElement!;
  } catch (error) {
    throw new Error(`metadata is not well-formed XML: ${(error as Error).message}`, { cause: error });
  }
  if (!isElement(root, NS_METADATA, 'EntityDescriptor') && !isElement(root, NS_METADATA, 'EntitiesDescriptor')) {
    throw new Error('metadata must be a SAML 2.0 EntityDescriptor or EntitiesDescriptor');
  }
  const idps = entityDescriptors(root).filter((e) => idpDescriptor(e));
  const candidates = entityId ? idps.filter((e) => e.getAttribute('entityID') === entityId) : idps;
  if (candidates.length === 0) {
    throw new Error(entityId ? `metadata has no SAML 2.0 IdP with entity ID ${entityId}` : 'metadata has no SAML 2.0 IdP (IDPSSODescriptor)');
  }
  if (candidates.length > 1) throw new Error('metadata describes several IdPs: set idp_entity_id to pick one');
  const entity = candidates[0]!;
  const idp = idpDescriptor(entity)!;
  const slo = logoutEndpoints(idp);
  const descriptor: IdpDescriptor = {
    entityId: entity.getAttribute('entityID') ?? '',
    sso: endpoints(idp, 'SingleSignOnService'),
    slo: slo.locations,
    ...(Object.keys(slo.responseLocations).length ? { sloResponse: slo.responseLocations } : {}),
    ...(slo.preferred ? { sloPreferred: slo.preferred } : {}),
    signingCertificates: signingCertificates(idp),
  };
  if (!descriptor.entityId) throw new Error('the IdP in the metadata has no entityID');
  if (!descriptor.sso.redirect && !descriptor.sso.post) {
    throw new Error('the IdP in the metadata has no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding');
  }
  if (!descriptor.signingCertificates.length) throw new Error('the IdP in the metadata has no signing certificate');
  return descriptor;
}

/** Every `EntityDescriptor` in document order, however deeply `EntitiesDescriptor`s nest. */
function entityDescriptors(el: Element): Element[] {
  if (isElement(el, NS_METADATA, 'EntityDescriptor')) return [el];
  return childElements(el, NS_METADATA, 'EntitiesDescriptor')
    .concat(childElements(el, NS_METADATA, 'EntityDescriptor'))
    .flatMap(entityDescriptors);
}

/** The entity's `IDPSSODescriptor` that supports the SAML 2.0 protocol, if any. */
function idpDescriptor(entity: Element): Element | undefined {
  return childElements(entity, NS_METADATA, 'IDPSSODescriptor').find((d) =>
    (d.getAttribute('protocolSupportEnumeration') ?? '').split(/\s+/).includes(NS_PROTOCOL),
  );
}

/** The first endpoint of each binding we speak, among `<{name} Binding Location>` children. */
function endpoints(idp: Element, name: string): IdpDescriptor['sso'] {
  const found: IdpDescriptor['sso'] = {};
  for (const el of childElements(idp, NS_METADATA, name)) {
    const binding = el.getAttribute('Binding');
    const location = attributeOf(el, 'Location');
    if (!location) continue;
    if (binding === BINDINGS.redirect) found.redirect ??= location;
    if (binding === BINDINGS.post) found.post ??= location;
  }
  return found;
}

/**
 * The `SingleLogoutService` endpoints we speak: `Location` and `ResponseLocation` (where
 * LogoutResponses go, SAML metadata §2.2.2) of the first of each binding, and which binding comes
 * first in the document.
 */
function logoutEndpoints(idp: Element): { locations: IdpDescriptor['slo']; responseLocations: NonNullable<IdpDescriptor['sloResponse']>; preferred: 'redirect' | 'post' | undefined } {
  const locations: IdpDescriptor['slo'] = {};
  const responseLocations: NonNullable<IdpDescriptor['sloResponse']> = {};
  let preferred: 'redirect' | 'post' | undefined;
  for (const el of childElements(idp, NS_METADATA, 'SingleLogoutService')) {
    const binding = el.getAttribute('Binding');
    const name = binding === BINDINGS.redirect ? 'redirect' : binding === BINDINGS.post ? 'post' : undefined;
    const location = attributeOf(el, 'Location');
    if (!name || !location || locations[name]) continue;
    locations[name] = location;
    const responseLocation = attributeOf(el, 'ResponseLocation');
    if (responseLocation && responseLocation !== location) responseLocations[name] = responseLocation;
    preferred ??= name;
  }
  return { locations, responseLocations, preferred };
}

/** Certificates of `KeyDescriptor`s for signing (or without a `use`, which means both). */
function signingCertificates(idp: Element): string[] {
  const certificates: string[] = [];
  for (const key of childElements(idp, NS_METADATA, 'KeyDescriptor')) {
    const use = key.getAttribute('use');
    if (use && use !== 'signing') continue;
    for (const info of childElements(key, NS_DSIG, 'KeyInfo')) {
      for (const data of childElements(info, NS_DSIG, 'X509Data')) {
        for (const cert of childElements(data, NS_DSIG, 'X509Certificate')) {
          const text = textOf(cert);
          if (!text) continue;
          try {
            const pem = toCertificatePem(text);
            if (!certificates.includes(pem)) certificates.push(pem);
          } catch (error) {
            throw new Error('the IdP in the metadata has a signing certificate that is not X.509', { cause: error });
          }
        }
      }
    }
  }
  return certificates;
}
