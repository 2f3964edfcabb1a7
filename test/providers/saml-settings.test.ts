import crypto from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { samlProviderType } from '../../providers/saml.ts';
import type { PreparedProvider } from '../../providers/types.ts';
import { TestSamlIdp } from '../support/saml-idp.ts';
import { spKeys, storedSaml } from './saml-harness.ts';

let idp: TestSamlIdp;
let keys: PreparedProvider;

beforeAll(async () => {
  idp = await TestSamlIdp.create();
  keys = await spKeys();
});

function entered(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { idp_entity_id: idp.entityId, sso_url: idp.ssoUrl, idp_certificates: [idp.key.certificatePem], ...keys.settings, ...extra };
}

function fields(settings: unknown, secrets: Record<string, string> = keys.secrets): string[] {
  return samlProviderType.check(settings, secrets).map((p) => p.field).sort();
}

describe('checking saml settings', () => {
  it('accepts entered fields, metadata XML or a metadata URL', () => {
    expect(samlProviderType.check(entered(), keys.secrets)).toEqual([]);
    expect(samlProviderType.check({ metadata_xml: idp.metadataXml(), ...keys.settings }, keys.secrets)).toEqual([]);
    expect(samlProviderType.check({ metadata_url: 'https://idp.acme.example/metadata', idp_entity_id: idp.entityId, ...keys.settings }, keys.secrets)).toEqual([]);
    expect(samlProviderType.check(entered({ name_id_format: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent', binding: 'post' }), keys.secrets)).toEqual([]);
  });

  it('lists every problem at once', () => {
    const problems = samlProviderType.check(
      { binding: 'soap', clock_skew_seconds: -1, want_assertions_signed: 'yes', colour: 'blue', sso_url: 'ftp://idp', idp_certificates: ['not a certificate'] },
      { client_secret: 'x' },
    );
    expect(problems.map((p) => p.field).sort()).toEqual([
      'secrets.client_secret',
      'secrets.sp_private_key',
      'settings.binding',
      'settings.clock_skew_seconds',
      'settings.colour',
      'settings.idp_certificates.0',
      'settings.idp_entity_id',
      'settings.sp_certificate',
      'settings.sso_url',
      'settings.want_assertions_signed',
    ]);
    expect(problems.find((p) => p.field === 'settings.colour')!.message).toBe('is not a saml setting');
    expect(problems.every((p) => p.message.length > 0)).toBe(true);
  });

  it('takes one source of IdP configuration', () => {
    expect(fields({ metadata_url: 'https://idp.acme.example/md', metadata_xml: idp.metadataXml(), ...keys.settings })).toEqual(['settings.metadata_xml']);
    expect(fields({ metadata_xml: idp.metadataXml(), sso_url: idp.ssoUrl, ...keys.settings })).toEqual(['settings.sso_url']);
    expect(fields({ ...keys.settings })).toEqual(['settings.idp_certificates', 'settings.idp_entity_id', 'settings.sso_url']);
  });

  it('reads pasted metadata without the network and says what is wrong with it', () => {
    const [problem] = samlProviderType.check({ metadata_xml: '<md:EntityDescriptor', ...keys.settings }, keys.secrets);
    expect(problem).toMatchObject({ field: 'settings.metadata_xml', message: expect.stringMatching(/well-formed/) });
    expect(fields({ metadata_xml: idp.metadataXml(), idp_entity_id: 'https://other.example', ...keys.settings })).toEqual(['settings.metadata_xml']);
  });

  it('needs a stable subject for transient NameIDs, at least one signature, and a target for IdP-initiated logins', () => {
    expect(fields(entered({ name_id_format: 'transient' }))).toEqual(['settings.subject_attribute']);
    expect(fields(entered({ name_id_format: 'transient', subject_attribute: 'employeeNumber' }))).toEqual([]);
    expect(fields(entered({ want_assertions_signed: false }))).toEqual(['settings.want_assertions_signed']);
    expect(fields(entered({ want_assertions_signed: false, want_response_signed: true }))).toEqual([]);
    expect(fields(entered({ name_id_format: 'kerberos' }))).toEqual(['settings.name_id_format']);
    expect(fields(entered({ allow_idp_initiated: true }))).toEqual(['settings.idp_initiated_client_id']);
    expect(fields(entered({ allow_idp_initiated: true, idp_initiated_client_id: 'portal' }))).toEqual([]);
  });

  it('checks that the SP private key belongs to the SP certificate', () => {
    const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(samlProviderType.check(entered(), { sp_private_key: other })).toEqual([{ field: 'secrets.sp_private_key', message: 'does not belong to sp_certificate' }]);
    expect(fields(entered(), { sp_private_key: 'garbage' })).toEqual(['secrets.sp_private_key']);
    expect(fields(entered({ sp_certificate: 'garbage' }))).toEqual(['settings.sp_certificate']);
  });
});

describe('preparing a saml provider', () => {
  it('generates an SP key pair that passes the check', async () => {
    const prepared = await samlProviderType.prepare!({ alias: 'fresh', settings: {}, secrets: {} });
    expect(Object.keys(prepared.settings)).toEqual(['sp_certificate']);
    expect(Object.keys(prepared.secrets)).toEqual(['sp_private_key']);
    const certificate = new crypto.X509Certificate(prepared.settings.sp_certificate as string);
    expect(certificate.subject).toContain('fresh');
    expect(new Date(certificate.validTo).getTime()).toBeGreaterThan(Date.now() + 5 * 365 * 86_400_000);
    expect(samlProviderType.check({ ...entered(), ...prepared.settings }, prepared.secrets)).toEqual([]);
  });

  it('keeps what the administrator supplied, and the stored pair on replace', async () => {
    expect(await samlProviderType.prepare!({ alias: 'acme', settings: { ...keys.settings }, secrets: { ...keys.secrets } })).toEqual({ settings: {}, secrets: {} });
    // The admin API hands `prepare` the secrets the provider will have: the stored ones, merged with the body's.
    const existing = await storedSaml(entered());
    const replaced = await samlProviderType.prepare!({ alias: 'acme', settings: { metadata_xml: idp.metadataXml() }, secrets: { ...existing.secrets } }, existing);
    expect(replaced).toEqual({ settings: { sp_certificate: keys.settings.sp_certificate }, secrets: {} });
    const newKeyOnly = await samlProviderType.prepare!({ alias: 'acme', settings: {}, secrets: { sp_private_key: 'another key' } }, existing);
    expect(newKeyOnly).toEqual({ settings: {}, secrets: {} });
  });
});
