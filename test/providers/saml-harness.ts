import type { Knex } from 'knex';
import { expect } from 'vitest';
import { samlProviderType } from '../../providers/saml.ts';
import { DEFAULT_LINKING_POLICY, ProviderError, type CallbackInput, type LoginRequest, type OpenContext, type OpenedProvider, type PreparedProvider, type StoredProvider } from '../../providers/types.ts';
import { createOpenContext } from '../../src/federation/upstream-fetch.ts';
import { ReplayGuardRepository } from '../../src/store/replay-guard.ts';
import { TestSamlIdp, type ReceivedAuthnRequest, type ResponseOptions } from '../support/saml-idp.ts';

/** Realmgate's issuer in provider-level tests (nothing listens there; providers only build URLs). */
export const ISSUER = 'https://login.example.test';
/** The alias of the provider under test. */
export const ALIAS = 'acme';
/** Our ACS for `ALIAS`. */
export const ACS_URL = `${ISSUER}/federation/${ALIAS}/saml/acs`;
/** Our default SP entity ID for `ALIAS`. */
export const SP_ENTITY_ID = `${ISSUER}/federation/${ALIAS}/saml/metadata`;

let keys: Promise<PreparedProvider> | undefined;

/** One generated SP key pair per test file (generation is the slow part). */
export function spKeys(): Promise<PreparedProvider> {
  keys ??= samlProviderType.prepare!({ alias: ALIAS, settings: {}, secrets: {} });
  return keys;
}

/** The SP certificate of `spKeys()`. */
export async function spCertificate(): Promise<string> {
  return (await spKeys()).settings.sp_certificate as string;
}

/** An open context as a node builds it: the guarded upstream fetch (loopback allowed), the test database as replay store. */
export function openContext(db: Knex): OpenContext {
  return createOpenContext({ issuer: ISSUER, allowPrivateNetwork: true, upstreamTimeoutMs: 5000 }, { replay: new ReplayGuardRepository(db) });
}

/** The `ProviderError` a promise rejects with (fails the test when it resolves or rejects otherwise). */
export async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected a rejection, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(ProviderError);
  return outcome.error as ProviderError;
}

/** A stored `saml` provider with the test SP keys and `settings`. */
export async function storedSaml(settings: Record<string, unknown>, overrides: Partial<StoredProvider> = {}): Promise<StoredProvider> {
  const prepared = await spKeys();
  return {
    alias: ALIAS,
    kind: 'saml',
    displayName: 'Acme',
    enabled: true,
    domains: [],
    settings: { ...prepared.settings, ...settings },
    secrets: prepared.secrets,
    claimMappings: {},
    linkingPolicy: { ...DEFAULT_LINKING_POLICY },
    version: 1,
    ...overrides,
  };
}

/** Opens a `saml` provider configured from the test IdP's metadata (plus `settings`). */
export async function openSaml(db: Knex, idp: TestSamlIdp, settings: Record<string, unknown> = {}): Promise<OpenedProvider> {
  return samlProviderType.open(await storedSaml({ metadata_xml: idp.metadataXml(), ...settings }), openContext(db));
}

/** A started login: the stored transaction and the AuthnRequest as the IdP received it. */
export interface StartedLogin {
  transaction: Record<string, unknown>;
  request: ReceivedAuthnRequest;
  relayState: string;
}

let transactions = 0;

/** Starts a login (HTTP-Redirect or HTTP-POST) and reads the AuthnRequest the browser would carry. */
export async function beginLogin(opened: OpenedProvider, request: Partial<LoginRequest> = {}): Promise<StartedLogin> {
  const transactionId = `tx-${++transactions}`;
  const start = await opened.startLogin({ transactionId, ...request });
  const received = start.type === 'redirect' ? new URL(start.url) : start.fields;
  return { transaction: start.transaction, request: TestSamlIdp.readAuthnRequest(received, await spCertificate()), relayState: transactionId };
}

/** What the ACS route hands `finishLogin`: the posted SAMLResponse and RelayState. */
export function acsInput(samlResponse: string, relayState?: string): CallbackInput {
  const params: Record<string, string> = { SAMLResponse: samlResponse };
  if (relayState) params.RelayState = relayState;
  return { url: new URL(ACS_URL), params };
}

/** Response options answering `login` correctly; a test overrides what it breaks. */
export function answering(login: StartedLogin, overrides: Partial<ResponseOptions> = {}): ResponseOptions {
  return { acsUrl: ACS_URL, audience: SP_ENTITY_ID, inResponseTo: login.request.id, ...overrides };
}
