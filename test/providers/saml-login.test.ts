import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { samlProviderType } from '../../providers/saml.ts';
import type { OpenedProvider } from '../../providers/types.ts';
import { ReplayGuardRepository } from '../../src/store/replay-guard.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { FORMATS, TestSamlIdp, encodeResponse, generateTestKey, signRoot, type ResponseOptions } from '../support/saml-idp.ts';
import { ACS_URL, SP_ENTITY_ID, acsInput, answering, beginLogin, openContext, openSaml, rejection, spCertificate, storedSaml } from './saml-harness.ts';

let database: TestDatabase;
let idp: TestSamlIdp;
let opened: OpenedProvider;

beforeAll(async () => {
  database = await createTestDatabase();
  idp = await TestSamlIdp.create();
  opened = await openSaml(database.db, idp);
});

afterAll(async () => {
  await database?.close();
});

describe('starting a SAML login', () => {
  it('sends an AuthnRequest over HTTP-Redirect signed with the SP key, RelayState carrying the transaction', async () => {
    const login = await beginLogin(opened, { loginHint: 'ada@acme.example' });
    expect(login.request.signatureValid).toBe(true);
    expect(login.request).toMatchObject({ issuer: SP_ENTITY_ID, destination: idp.ssoUrl, acsUrl: ACS_URL, relayState: login.relayState, forceAuthn: false });
    expect(login.transaction.saml_request_id).toBe(login.request.id);
  });

  it('passes login_hint beside the SAMLRequest for IdPs that read it', async () => {
    const start = await opened.startLogin({ transactionId: 'tx-hint', loginHint: 'ada@acme.example' });
    expect(start.type).toBe('redirect');
    expect(new URL((start as { url: string }).url).searchParams.get('login_hint')).toBe('ada@acme.example');
  });

  it('asks for a fresh authentication when the application demands one', async () => {
    expect((await beginLogin(opened, { forceLogin: true })).request.forceAuthn).toBe(true);
    expect((await beginLogin(opened, { maxAgeSeconds: 0 })).request.forceAuthn).toBe(true);
  });

  it('returns auto-post form data, signed inside the XML, for the HTTP-POST binding', async () => {
    const post = await openSaml(database.db, idp, { binding: 'post', name_id_format: 'persistent' });
    const start = await post.startLogin({ transactionId: 'tx-post' });
    expect(start.type).toBe('post-form');
    if (start.type !== 'post-form') return;
    expect(start.action).toBe(idp.ssoUrl);
    expect(Object.keys(start.fields).sort()).toEqual(['RelayState', 'SAMLRequest']);
    const request = TestSamlIdp.readAuthnRequest(start.fields, await spCertificate());
    expect(request.signatureValid).toBe(true);
    expect(request.nameIdFormat).toBe(FORMATS.persistent);
    expect(request.relayState).toBe('tx-post');
  });
});

describe('finishing a SAML login', () => {
  it('accepts a signed assertion and returns the identity, claims and upstream session', async () => {
    const login = await beginLogin(opened);
    const response = await idp.response(
      answering(login, {
        nameId: 'u-42',
        sessionIndex: '_sess-42',
        attributes: [
          { name: 'urn:oid:0.9.2342.19200300.100.1.3', friendlyName: 'mail', values: ['ada@acme.example'] },
          { name: 'urn:oid:2.5.4.42', friendlyName: 'givenName', values: ['Ada'] },
          { name: 'urn:oid:2.5.4.4', friendlyName: 'sn', values: ['Lovelace'] },
          { name: 'http://schemas.microsoft.com/identity/claims/displayname', values: ['Ada Lovelace'] },
          { name: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups', values: ['engineers'] },
          { name: 'department', values: ['R&D'] },
        ],
      }),
    );
    const identity = await opened.finishLogin(acsInput(response, login.relayState), login.transaction);
    expect(identity).toMatchObject({
      subject: 'u-42',
      email: 'ada@acme.example',
      // The IdP asserts the address; the provider's email_trust decides whether Realmgate trusts it.
      emailVerified: true,
      amr: ['pwd'],
      upstreamSession: { issuer: idp.entityId, subject: 'u-42', nameId: 'u-42', sessionIndex: '_sess-42' },
    });
    expect(identity.claims).toMatchObject({
      email: 'ada@acme.example',
      mail: 'ada@acme.example',
      given_name: 'Ada',
      givenName: 'Ada',
      family_name: 'Lovelace',
      name: 'Ada Lovelace',
      groups: ['engineers'],
      department: 'R&D',
      name_id: 'u-42',
      name_id_format: FORMATS.persistent,
    });
  });

  it('accepts an assertion encrypted to the SP certificate', async () => {
    const login = await beginLogin(opened);
    const response = await idp.response(answering(login, { nameId: 'u-enc', encryptTo: await spCertificate() }));
    expect((await opened.finishLogin(acsInput(response), login.transaction)).subject).toBe('u-enc');
  });

  it('rejects an assertion encrypted to another certificate', async () => {
    const login = await beginLogin(opened);
    const other = await generateTestKey('someone else');
    const response = await idp.response(answering(login, { encryptTo: other.certificatePem }));
    expect((await rejection(opened.finishLogin(acsInput(response), login.transaction))).code).toBe('response_invalid');
  });

  it('accepts a signed response around an unsigned assertion only when configured so', async () => {
    const responseSigned = await openSaml(database.db, idp, { want_response_signed: true, want_assertions_signed: false });
    const login = await beginLogin(responseSigned);
    const response = await idp.response(answering(login, { signAssertion: false, signResponse: true }));
    expect((await responseSigned.finishLogin(acsInput(response), login.transaction)).subject).toBe('u-1001');

    const byDefault = await beginLogin(opened);
    const same = await idp.response(answering(byDefault, { signAssertion: false, signResponse: true }));
    expect((await rejection(opened.finishLogin(acsInput(same), byDefault.transaction))).message).toMatch(/signature/i);
  });

  it('requires the response signature when want_response_signed is set', async () => {
    const responseSigned = await openSaml(database.db, idp, { want_response_signed: true });
    const login = await beginLogin(responseSigned);
    const response = await idp.response(answering(login));
    expect((await rejection(responseSigned.finishLogin(acsInput(response), login.transaction))).message).toMatch(/signature/i);
  });

  it('turns an IdP error status into upstream_error, a refused authentication into access_denied', async () => {
    const login = await beginLogin(opened);
    const response = await idp.response(answering(login, { status: 'urn:oasis:names:tc:SAML:2.0:status:Responder' }));
    const error = await rejection(opened.finishLogin(acsInput(response), login.transaction));
    expect(error.code).toBe('upstream_error');
    expect(error.upstreamError).toBeUndefined();
    const refused = await idp.response(
      answering(login, { status: 'urn:oasis:names:tc:SAML:2.0:status:Responder', subStatus: 'urn:oasis:names:tc:SAML:2.0:status:AuthnFailed' }),
    );
    expect(await rejection(opened.finishLogin(acsInput(refused), login.transaction))).toMatchObject({ code: 'upstream_error', upstreamError: 'access_denied' });
  });

  it('refuses a login transaction without a SAML request ID', async () => {
    const login = await beginLogin(opened);
    const response = await idp.response(answering(login));
    expect((await rejection(opened.finishLogin(acsInput(response), {}))).code).toBe('transaction_invalid');
  });

  it('refuses a request without SAMLResponse, and one that is not XML', async () => {
    const login = await beginLogin(opened);
    expect((await rejection(opened.finishLogin({ url: new URL(ACS_URL), params: {} }, login.transaction))).code).toBe('response_invalid');
    expect((await rejection(opened.finishLogin(acsInput(encodeResponse('<not xml')), login.transaction))).code).toBe('response_invalid');
  });

  it('refuses an authentication older than the max_age the application asked for', async () => {
    const login = await beginLogin(opened, { maxAgeSeconds: 300 });
    const response = await idp.response(answering(login, { authnInstant: new Date(Date.now() - 3600_000) }));
    expect((await rejection(opened.finishLogin(acsInput(response), login.transaction))).message).toMatch(/max_age/);
  });
});

describe('rejecting forged and misdirected responses', () => {
  /** Signed pieces of a valid answer to a fresh login, for assembling attacks. */
  async function pieces() {
    const login = await beginLogin(opened);
    const options = answering(login, { nameId: 'victim' });
    const signed = signRoot(idp.assertionXml(options), 'Assertion', idp.key);
    const evil = (extra: Partial<typeof options> = {}) => idp.assertionXml({ ...options, nameId: 'attacker', assertionId: '_evil', ...extra });
    const signature = /<ds:Signature[\s\S]*<\/ds:Signature>/.exec(signed)![0];
    return { login, options, signed, evil, signature };
  }

  async function expectRejected(response: string, transaction: Record<string, unknown>, pattern?: RegExp): Promise<void> {
    const error = await rejection(opened.finishLogin(acsInput(response), transaction));
    expect(error.code).toBe('response_invalid');
    if (pattern) expect(error.message).toMatch(pattern);
  }

  /** Answers a fresh login with `overrides` breaking it, and expects `response_invalid`. */
  async function expectAnswerRejected(overrides: Partial<ResponseOptions>, pattern?: RegExp): Promise<void> {
    const login = await beginLogin(opened);
    await expectRejected(await idp.response(answering(login, overrides)), login.transaction, pattern);
  }

  it('rejects an unsigned assertion', async () => {
    await expectAnswerRejected({ signAssertion: false }, /signature/i);
  });

  it('rejects an assertion signed by a key the IdP does not publish', async () => {
    await expectAnswerRejected({ signingKey: await generateTestKey('stranger') }, /signature/i);
  });

  it('rejects a signed assertion whose NameID was changed after signing', async () => {
    const login = await beginLogin(opened);
    const xml = await idp.responseXml(answering(login, { nameId: 'victim' }));
    await expectRejected(encodeResponse(xml.replace('>victim<', '>attacker<')), login.transaction, /signature/i);
  });

  it('rejects a signed assertion whose attribute was changed after signing', async () => {
    const login = await beginLogin(opened);
    const xml = await idp.responseXml(answering(login, { attributes: [{ name: 'groups', values: ['staff'] }] }));
    await expectRejected(encodeResponse(xml.replace('>staff<', '>admins<')), login.transaction, /signature/i);
  });

  it('rejects an unsigned assertion placed beside the signed one (XSW)', async () => {
    const { login, options, signed, evil } = await pieces();
    await expectRejected(encodeResponse(idp.envelope(options, evil() + signed)), login.transaction, /multiple assertions/);
  });

  it('rejects the signed assertion wrapped inside an unsigned one (XSW)', async () => {
    const { login, options, signed, evil } = await pieces();
    const wrapped = evil().replace('</saml:Assertion>', `${signed}</saml:Assertion>`);
    await expectRejected(encodeResponse(idp.envelope(options, wrapped)), login.transaction, /signature/i);
  });

  it('rejects a signature moved onto an unsigned assertion, the signed one hidden in Extensions (XSW)', async () => {
    const { login, options, signed, evil, signature } = await pieces();
    const forged = evil().replace('</saml:Issuer>', `</saml:Issuer>${signature}`);
    const inner = `<samlp:Extensions>${signed}</samlp:Extensions>${forged}`;
    await expectRejected(encodeResponse(idp.envelope(options, inner)), login.transaction, /signature/i);
  });

  it('rejects a forged assertion reusing the signed assertion ID (XSW)', async () => {
    const { login, options, signed, evil, signature } = await pieces();
    const id = /ID="([^"]+)"/.exec(signed)![1]!;
    const forged = evil({ assertionId: id }).replace('</saml:Issuer>', `</saml:Issuer>${signature}`);
    await expectRejected(encodeResponse(idp.envelope(options, `<samlp:Extensions>${signed}</samlp:Extensions>${forged}`)), login.transaction, /signature/i);
  });

  it('rejects a signed response wrapped inside a forged one (XSW)', async () => {
    const responseSigned = await openSaml(database.db, idp, { want_response_signed: true, want_assertions_signed: false });
    const login = await beginLogin(responseSigned);
    const options = answering(login);
    const genuine = await idp.responseXml({ ...options, signAssertion: false, signResponse: true });
    const evil = idp.assertionXml({ ...options, nameId: 'attacker', assertionId: '_evil' });
    const forged = idp.envelope(options, `<samlp:Extensions>${genuine}</samlp:Extensions>${evil}`);
    const error = await rejection(responseSigned.finishLogin(acsInput(encodeResponse(forged)), login.transaction));
    expect(error.code).toBe('response_invalid');
    expect(error.message).toMatch(/signature/i);
  });

  it('rejects an expired assertion', async () => {
    await expectAnswerRejected({ notBefore: new Date(Date.now() - 7200_000), notOnOrAfter: new Date(Date.now() - 3600_000) }, /expired|subject confirmation/);
  });

  it('rejects an expired subject confirmation even when the conditions are still valid', async () => {
    await expectAnswerRejected({ subjectNotOnOrAfter: new Date(Date.now() - 3600_000) });
  });

  it('rejects an assertion that is not yet valid', async () => {
    await expectAnswerRejected({ notBefore: new Date(Date.now() + 3600_000) }, /not yet valid/);
  });

  it('tolerates the configured clock skew, and no more', async () => {
    const lenient = await openSaml(database.db, idp, { clock_skew_seconds: 300 });
    const strict = await openSaml(database.db, idp, { clock_skew_seconds: 0 });
    const twoMinutesAgo = new Date(Date.now() - 120_000);
    const skewed = { notOnOrAfter: twoMinutesAgo, notBefore: new Date(Date.now() - 600_000) };
    const a = await beginLogin(lenient);
    expect((await lenient.finishLogin(acsInput(await idp.response(answering(a, skewed))), a.transaction)).subject).toBe('u-1001');
    const b = await beginLogin(strict);
    expect((await rejection(strict.finishLogin(acsInput(await idp.response(answering(b, skewed))), b.transaction))).message).toMatch(/expired|subject confirmation/);
  });

  it('rejects an assertion for another audience', async () => {
    await expectAnswerRejected({ audience: 'https://other-sp.example' }, /audience/);
  });

  it('rejects a response sent to another destination', async () => {
    await expectAnswerRejected({ destination: 'https://other-sp.example/acs' }, /Destination/);
  });

  it('rejects a signed response that does not name its destination', async () => {
    await expectAnswerRejected({ destination: null, signResponse: true }, /Destination/);
  });

  it('rejects a subject confirmation for another recipient', async () => {
    await expectAnswerRejected({ recipient: 'https://other-sp.example/acs' }, /Recipient/);
  });

  it('rejects a response from another issuer', async () => {
    await expectAnswerRejected({ issuer: 'https://evil-idp.example' }, /Issuer/);
  });

  it('rejects a response to another AuthnRequest', async () => {
    const login = await beginLogin(opened);
    const other = await beginLogin(opened);
    await expectRejected(await idp.response(answering(other)), login.transaction, /InResponseTo/);
  });

  it('rejects a subject confirmation answering another AuthnRequest', async () => {
    await expectAnswerRejected({ subjectInResponseTo: '_someone-else' }, /InResponseTo/);
  });

  it('rejects a response without InResponseTo for a login we started', async () => {
    await expectAnswerRejected({ inResponseTo: undefined }, /InResponseTo/);
  });
});

describe('accepting an assertion once only', () => {
  it('rejects the same assertion a second time, also through another node', async () => {
    const login = await beginLogin(opened);
    const response = await idp.response(answering(login));
    await opened.finishLogin(acsInput(response), login.transaction);
    expect((await rejection(opened.finishLogin(acsInput(response), login.transaction))).code).toBe('replayed');

    const otherNode = await samlProviderType.open(await storedSaml({ metadata_xml: idp.metadataXml() }), openContext(database.db));
    const again = await beginLogin(otherNode);
    const fresh = await idp.response(answering(again));
    await opened.finishLogin(acsInput(fresh), again.transaction);
    expect((await rejection(otherNode.finishLogin(acsInput(fresh), again.transaction))).code).toBe('replayed');
  });

  it('remembers an id until it expires, then lets it be recorded again', async () => {
    const guard = new ReplayGuardRepository(database.db);
    const future = new Date(Date.now() + 3600_000);
    expect(await guard.rememberOnce('test:a', future)).toBe(true);
    expect(await guard.rememberOnce('test:a', future)).toBe(false);
    expect(await guard.rememberOnce('test:b', new Date(Date.now() - 1000))).toBe(true);
    expect(await guard.purgeExpired()).toBeGreaterThanOrEqual(1);
    expect(await guard.rememberOnce('test:b', future)).toBe(true);
  });

  it('needs a replay store to open', async () => {
    const { replay: _unused, ...withoutReplay } = openContext(database.db);
    const error = await rejection(samlProviderType.open(await storedSaml({ metadata_xml: idp.metadataXml() }), withoutReplay));
    expect(error.code).toBe('unavailable');
  });
});

describe('IdP-initiated login', () => {
  it('is rejected by default', async () => {
    const response = await idp.response({ acsUrl: ACS_URL, audience: SP_ENTITY_ID });
    const error = await rejection(opened.finishUnsolicitedLogin!(acsInput(response)));
    expect(error.code).toBe('response_invalid');
    expect(error.message).toMatch(/IdP-initiated/);
  });

  it('is accepted when enabled for the provider, naming the application it goes to', async () => {
    const open = await openSaml(database.db, idp, { allow_idp_initiated: true, idp_initiated_client_id: 'portal' });
    const response = await idp.response({ acsUrl: ACS_URL, audience: SP_ENTITY_ID, nameId: 'u-unsolicited' });
    const unsolicited = await open.finishUnsolicitedLogin!(acsInput(response));
    expect(unsolicited.clientId).toBe('portal');
    expect(unsolicited.identity.subject).toBe('u-unsolicited');
    expect((await rejection(open.finishUnsolicitedLogin!(acsInput(response)))).code).toBe('replayed');
  });

  it('still refuses an answer to a request whose login transaction is gone', async () => {
    const open = await openSaml(database.db, idp, { allow_idp_initiated: true, idp_initiated_client_id: 'portal' });
    const login = await beginLogin(open);
    const response = await idp.response(answering(login));
    expect((await rejection(open.finishUnsolicitedLogin!(acsInput(response)))).message).toMatch(/InResponseTo/);
  });
});

describe('NameIDs and subjects', () => {
  it('uses an emailAddress NameID as the email when no attribute carries one', async () => {
    const login = await beginLogin(opened);
    const response = await idp.response(answering(login, { nameId: 'grace@acme.example', nameIdFormat: FORMATS.emailAddress }));
    const identity = await opened.finishLogin(acsInput(response), login.transaction);
    expect(identity).toMatchObject({ subject: 'grace@acme.example', email: 'grace@acme.example' });
  });

  it('accepts an unspecified NameID as the subject', async () => {
    const login = await beginLogin(opened);
    const response = await idp.response(answering(login, { nameId: 'DOMAIN\\grace', nameIdFormat: FORMATS.unspecified }));
    expect((await opened.finishLogin(acsInput(response), login.transaction)).subject).toBe('DOMAIN\\grace');
  });

  it('refuses a transient NameID, which cannot identify a returning user', async () => {
    const login = await beginLogin(opened);
    const response = await idp.response(answering(login, { nameId: '_t-1', nameIdFormat: FORMATS.transient }));
    expect((await rejection(opened.finishLogin(acsInput(response), login.transaction))).message).toMatch(/transient/);
  });

  it('links a transient NameID through subject_attribute, keeping the NameID for logout', async () => {
    const open = await openSaml(database.db, idp, { name_id_format: 'transient', subject_attribute: 'employeeNumber' });
    const login = await beginLogin(open);
    const response = await idp.response(
      answering(login, { nameId: '_t-2', nameIdFormat: FORMATS.transient, attributes: [{ name: 'urn:oid:2.16.840.1.113730.3.1.3', friendlyName: 'employeeNumber', values: ['E-7'] }] }),
    );
    const identity = await open.finishLogin(acsInput(response), login.transaction);
    expect(identity.subject).toBe('E-7');
    expect(identity.upstreamSession).toMatchObject({ nameId: '_t-2', subject: 'E-7' });
  });

  it('reports the asserted email as verified by the IdP (email_trust decides later), and maps MFA contexts to amr', async () => {
    const open = await openSaml(database.db, idp, {});
    const login = await beginLogin(open);
    const response = await idp.response(
      answering(login, {
        attributes: [{ name: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress', values: ['ada@acme.example'] }],
        authnContextClassRef: 'http://schemas.microsoft.com/claims/multipleauthn',
      }),
    );
    expect(await open.finishLogin(acsInput(response), login.transaction)).toMatchObject({ email: 'ada@acme.example', emailVerified: true, amr: ['mfa'] });
  });
});
