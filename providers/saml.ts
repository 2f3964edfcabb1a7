/**
 * The `saml` provider kind: SAML 2.0 Web Browser SSO with an external IdP, on
 * @node-saml/passport-saml's `SAML` class. Helpers live in `providers/saml/`.
 *
 * Subjects and transient NameIDs: the upstream subject is the NameID (persistent, emailAddress
 * or unspecified format), or the attribute named by `subject_attribute` when set. A transient
 * NameID changes at every login, so it can never be linked to an account: such a login is
 * refused unless `subject_attribute` names a stable attribute, and that attribute's value is
 * then what the account is provisioned and linked by. The NameID itself, transient or not, is
 * kept in the upstream session reference for single logout.
 */
import crypto from 'node:crypto';
import { ProviderError, UpstreamRequestError, type OpenContext, type PreparedProvider, type ProviderRefresh, type ProviderType, type StoredProvider } from './types.ts';
import { certificateStatus, generateSpKeyPair, toCertificatePem } from './saml/certificates.ts';
import { MAX_METADATA_BYTES, parseIdpMetadata, type IdpDescriptor } from './saml/metadata.ts';
import { OpenedSamlProvider, type ServiceProvider } from './saml/opened.ts';
import { NAME_ID_FORMATS, SAML_SECRET_NAMES, checkSamlSettings, type SamlSettings } from './saml/settings.ts';
import { buildSpMetadata } from './saml/sp-metadata.ts';
import { XmlLimitError, readTextWithin } from './saml/xml-limits.ts';

/** Settings parsed for opening; an invalid stored row makes the provider unavailable. */
function settingsOf(provider: StoredProvider): SamlSettings {
  const { problems, settings } = checkSamlSettings(provider.settings, provider.secrets);
  if (!settings) {
    throw new ProviderError('unavailable', {
      alias: provider.alias,
      detail: `invalid saml settings: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}`,
    });
  }
  return settings;
}

/** Redirects followed when fetching metadata; each hop goes through the guarded `fetch` again. */
const MAX_METADATA_REDIRECTS = 5;

/** Downloads metadata through the guarded `fetch` of the context, following redirects; never called per login. */
async function fetchMetadata(alias: string, url: string, context: OpenContext): Promise<string> {
  let target = new URL(url);
  for (let hop = 0; ; hop++) {
    let response: Response;
    try {
      response = await context.fetch(target, { headers: { accept: 'application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8' } });
    } catch (cause) {
      const blocked = cause instanceof UpstreamRequestError && cause.reason === 'blocked';
      throw new ProviderError(blocked ? 'unavailable' : 'upstream_unreachable', { alias, detail: `metadata_url ${url}: ${(cause as Error).message}`, cause });
    }
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location && hop < MAX_METADATA_REDIRECTS) {
      await response.body?.cancel();
      target = new URL(location, target);
      if (target.protocol !== 'https:' && target.protocol !== 'http:') break;
      continue;
    }
    if (!response.ok) throw new ProviderError('upstream_error', { alias, detail: `metadata_url ${url} answered HTTP ${response.status}${target.href !== url ? ` at ${target.href}` : ''}` });
    const declared = Number(response.headers.get('content-length') ?? 0);
    const tooLarge = () => new ProviderError('upstream_error', { alias, detail: `metadata_url ${url} is larger than ${MAX_METADATA_BYTES} bytes` });
    if (declared > MAX_METADATA_BYTES) throw tooLarge();
    try {
      return await readTextWithin(response, MAX_METADATA_BYTES);
    } catch (cause) {
      if (cause instanceof XmlLimitError) throw tooLarge();
      throw new ProviderError('upstream_unreachable', { alias, detail: `metadata_url ${url}: ${(cause as Error).message}`, cause });
    }
  }
  throw new ProviderError('upstream_error', { alias, detail: `metadata_url ${url} redirects to ${target.href}, which is not http(s)` });
}

/** The IdP from metadata XML, a metadata URL (network), or entered fields. */
async function resolveIdp(alias: string, settings: SamlSettings, context: OpenContext): Promise<IdpDescriptor> {
  if (settings.metadata_url || settings.metadata_xml) {
    const xml = settings.metadata_xml ?? (await fetchMetadata(alias, settings.metadata_url!, context));
    try {
      return parseIdpMetadata(xml, settings.idp_entity_id);
    } catch (cause) {
      const source = settings.metadata_url ? `metadata_url ${settings.metadata_url}` : 'metadata_xml';
      throw new ProviderError('unavailable', { alias, detail: `${source}: ${(cause as Error).message}`, cause });
    }
  }
  return {
    entityId: settings.idp_entity_id!,
    sso: { redirect: settings.sso_url, post: settings.sso_url },
    slo: { redirect: settings.slo_url, post: settings.slo_url },
    signingCertificates: settings.idp_certificates!.map(toCertificatePem),
  };
}

/** Our side of the provider: entity ID (default: the SP metadata URL), endpoints, key pair. */
function serviceProvider(provider: StoredProvider, settings: SamlSettings, context: Pick<OpenContext, 'endpointUrl'>): ServiceProvider {
  return {
    entityId: settings.sp_entity_id ?? context.endpointUrl(provider.alias, 'saml/metadata'),
    acsUrl: context.endpointUrl(provider.alias, 'saml/acs'),
    sloUrl: context.endpointUrl(provider.alias, 'saml/slo'),
    certificatePem: toCertificatePem(settings.sp_certificate),
    privateKeyPem: provider.secrets.sp_private_key ?? '',
  };
}

/** The `saml` provider type, registered in `providers/index.ts`. */
export const samlProviderType: ProviderType = {
  kind: 'saml',
  secretNames: SAML_SECRET_NAMES,

  check(settings, secrets) {
    return checkSamlSettings(settings, secrets).problems;
  },

  async prepare(input, existing): Promise<PreparedProvider> {
    const key = input.secrets.sp_private_key;
    if (input.settings.sp_certificate !== undefined) return { settings: {}, secrets: {} };
    // A replace that leaves the stored key alone keeps the stored certificate with it.
    const kept = existing?.settings.sp_certificate;
    if (typeof kept === 'string' && key !== undefined && key === existing?.secrets.sp_private_key) return { settings: { sp_certificate: kept }, secrets: {} };
    // A key without its certificate: `check` says what is missing.
    if (key !== undefined) return { settings: {}, secrets: {} };
    const pair = await generateSpKeyPair(`Realmgate SAML SP ${input.alias}`);
    return { settings: { sp_certificate: pair.certificatePem }, secrets: { sp_private_key: pair.privateKeyPem } };
  },

  async open(provider, context) {
    const settings = settingsOf(provider);
    if (!context.replay) throw new ProviderError('unavailable', { alias: provider.alias, detail: 'saml providers need a replay store in the open context' });
    const idp = await resolveIdp(provider.alias, settings, context);
    return new OpenedSamlProvider(provider, settings, idp, serviceProvider(provider, settings, context), context.replay);
  },

  serviceProviderMetadata(provider, context) {
    const settings = settingsOf(provider);
    const sp = serviceProvider(provider, settings, context);
    const format = settings.name_id_format;
    const formats = format === 'unspecified' ? (['persistent', 'emailAddress', 'unspecified'] as const) : [format];
    return buildSpMetadata({
      entityId: sp.entityId,
      acsUrl: sp.acsUrl,
      sloUrl: sp.sloUrl,
      certificatePem: sp.certificatePem,
      wantAssertionsSigned: settings.want_assertions_signed,
      nameIdFormats: formats.map((f) => NAME_ID_FORMATS[f]),
    });
  },

  async refresh(provider, context): Promise<ProviderRefresh> {
    const settings = settingsOf(provider);
    const idp = await resolveIdp(provider.alias, settings, context);
    return {
      digest: settings.metadata_url ? crypto.createHash('sha256').update(JSON.stringify(idp)).digest('base64url') : undefined,
      certificates: [
        ...idp.signingCertificates.map((pem) => certificateStatus(pem, 'idp-signing')),
        certificateStatus(toCertificatePem(settings.sp_certificate), 'sp'),
      ],
      refreshAfterSeconds: settings.metadata_refresh_seconds,
    };
  },
};
