import { AUDITED_RESOURCES } from './audit-routes.ts';
import { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from './paging.ts';
import { type JsonSchema, pageOf, schemas } from './openapi-schemas.ts';

/** An OpenAPI 3.1 operation, as far as this document uses it. */
export interface Operation {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  security?: Record<string, string[]>[];
  parameters?: Record<string, unknown>[];
  requestBody?: Record<string, unknown>;
  responses: Record<string, Record<string, unknown>>;
}

/** The HTTP methods the admin API uses. */
export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** An OpenAPI 3.1 document, as far as this one uses it. */
export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  servers: { url: string }[];
  security: Record<string, string[]>[];
  tags: { name: string; description: string }[];
  paths: Record<string, Partial<Record<Method, Operation>>>;
  components: { schemas: Record<string, JsonSchema>; securitySchemes: Record<string, unknown>; parameters: Record<string, unknown>; responses: Record<string, unknown> };
}

const schemaRef = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const param = (name: string) => ({ $ref: `#/components/parameters/${name}` });
const problem = (name: string) => ({ $ref: `#/components/responses/${name}` });
const body = (schema: JsonSchema, description: string, types = ['application/json']) => ({
  required: true,
  description,
  content: Object.fromEntries(types.map((t) => [t, { schema }])),
});
const ok = (schema: JsonSchema, description: string, etag = false) => ({
  description,
  ...(etag ? { headers: { ETag: { description: 'Strong entity tag of the version: `"<version>"`.', schema: { type: 'string' } } } } : {}),
  content: { 'application/json': { schema } },
});
const noContent = { description: 'Done; no body.' };
const common = { '400': problem('Invalid'), '401': problem('Unauthorized'), '403': problem('Forbidden') };
const writeErrors = { ...common, '404': problem('NotFound'), '412': problem('PreconditionFailed') };
const pathParam = (name: string, description: string) => ({ name, in: 'path', required: true, description, schema: { type: 'string' } });
const queryParam = (name: string, description: string, schema: JsonSchema = { type: 'string' }) => ({ name, in: 'query', required: false, description, schema });
const mergePatch = ['application/merge-patch+json', 'application/json'];

const alias = pathParam('alias', 'Provider alias.');
const clientId = pathParam('client_id', 'OAuth client_id.');
const userId = pathParam('id', 'Account id (the `sub`).');

/** Every operation of the admin API, by OpenAPI path. */
const paths: OpenApiDocument['paths'] = {
  '/openapi.json': {
    get: { operationId: 'getOpenApi', summary: 'This document', tags: ['meta'], security: [], responses: { '200': ok({ type: 'object' }, 'OpenAPI 3.1 document.') } },
  },
  '/providers': {
    get: {
      operationId: 'listProviders',
      summary: 'List providers',
      tags: ['providers'],
      parameters: [param('limit'), param('cursor'), queryParam('kind', 'Only this kind.'), queryParam('enabled', 'Only enabled (true) or disabled (false) providers.', { type: 'string', enum: ['true', 'false'] }), queryParam('domain', 'Only the provider owning this email domain.')],
      responses: { '200': ok(pageOf('Provider'), 'A page of providers, ordered by alias.'), ...common },
    },
    post: {
      operationId: 'createProvider',
      summary: 'Create a provider',
      description: 'Validates the common fields and, through the provider kind, its settings and secrets; every problem is listed. Used by the next login on every node.',
      tags: ['providers'],
      requestBody: body(schemaRef('ProviderWrite'), 'The new provider.'),
      responses: { '201': ok(schemaRef('Provider'), 'Created; `Location` names it.', true), ...common, '409': problem('Conflict') },
    },
  },
  '/providers/{alias}': {
    get: { operationId: 'getProvider', summary: 'Get a provider', tags: ['providers'], parameters: [alias], responses: { '200': ok(schemaRef('Provider'), 'The provider.', true), ...common, '404': problem('NotFound') } },
    put: {
      operationId: 'replaceProvider',
      summary: 'Replace a provider',
      description: 'Replaces every field except `alias` and `kind` (permanent). Secrets not named are kept. Honors `If-Match`.',
      tags: ['providers'],
      parameters: [alias, param('ifMatch')],
      requestBody: body(schemaRef('ProviderWrite'), 'The provider as it should be.'),
      responses: { '200': ok(schemaRef('Provider'), 'Replaced.', true), ...writeErrors, '409': problem('Conflict') },
    },
    patch: {
      operationId: 'patchProvider',
      summary: 'Change some fields of a provider',
      description: 'JSON Merge Patch. `{"enabled": false}` disables the provider. Honors `If-Match`.',
      tags: ['providers'],
      parameters: [alias, param('ifMatch')],
      requestBody: body(schemaRef('ProviderPatch'), 'The changes.', mergePatch),
      responses: { '200': ok(schemaRef('Provider'), 'Changed.', true), ...writeErrors, '409': problem('Conflict') },
    },
    delete: {
      operationId: 'deleteProvider',
      summary: 'Delete a provider',
      description: 'Its callback and logout URLs stop working at once. Linked identities stay with their accounts. Honors `If-Match`.',
      tags: ['providers'],
      parameters: [alias, param('ifMatch')],
      responses: { '204': noContent, ...writeErrors },
    },
  },
  '/providers/{alias}/enable': {
    post: { operationId: 'enableProvider', summary: 'Enable a provider', description: 'Same as PATCH `{"enabled": true}`; no change when already enabled.', tags: ['providers'], parameters: [alias, param('ifMatch')], responses: { '200': ok(schemaRef('Provider'), 'Enabled.', true), ...writeErrors } },
  },
  '/providers/{alias}/disable': {
    post: { operationId: 'disableProvider', summary: 'Disable a provider', description: 'Same as PATCH `{"enabled": false}`: no longer offered nor accepted.', tags: ['providers'], parameters: [alias, param('ifMatch')], responses: { '200': ok(schemaRef('Provider'), 'Disabled.', true), ...writeErrors } },
  },
  '/providers/{alias}/refresh': {
    post: {
      operationId: 'refreshProvider',
      summary: 'Refresh what a provider loads from the network',
      description:
        'Fetches a SAML provider\'s `metadata_url` now (it is also refreshed on a schedule) and records the outcome and the certificates\' validity in `status`. A changed metadata bumps `version`, so every node reopens the provider. A failed fetch is reported in `status.refresh` and changes nothing else. 409 for kinds with nothing to refresh.',
      tags: ['providers'],
      parameters: [alias],
      responses: { '200': ok(schemaRef('Provider'), 'The provider with its new status.', true), ...common, '404': problem('NotFound'), '409': problem('Conflict') },
    },
  },
  '/providers/{alias}/test': {
    post: {
      operationId: 'testProvider',
      summary: 'Check a provider can be used',
      description: 'Validates the stored settings and opens the provider as a login would (discovery, metadata, signing keys), without caching the result. Answers 200 with each check; `ok` is false when one failed.',
      tags: ['providers'],
      parameters: [alias],
      responses: { '200': ok(schemaRef('ProviderTestResult'), 'The checks and their outcome.'), ...common, '404': problem('NotFound') },
    },
  },
  '/clients': {
    get: { operationId: 'listClients', summary: 'List clients', tags: ['clients'], parameters: [param('limit'), param('cursor')], responses: { '200': ok(pageOf('Client'), 'A page of clients, ordered by client_id.'), ...common } },
    post: {
      operationId: 'createClient',
      summary: 'Register a client',
      description: 'Validated with the token engine\'s own rules; every invalid field is listed. A confidential client sent without `client_secret` gets a generated one, returned in this response only.',
      tags: ['clients'],
      requestBody: body(schemaRef('Client'), 'Client metadata.'),
      responses: { '201': ok(schemaRef('Client'), 'Registered; includes `client_secret` when it was generated.', true), ...common, '409': problem('Conflict') },
    },
  },
  '/clients/{client_id}': {
    get: { operationId: 'getClient', summary: 'Get a client', tags: ['clients'], parameters: [clientId], responses: { '200': ok(schemaRef('Client'), 'The client (never its secret).', true), ...common, '404': problem('NotFound') } },
    put: {
      operationId: 'replaceClient',
      summary: 'Replace a client\'s metadata',
      description: 'The secret is kept unless `client_secret` is given (null removes it); one is generated, and returned once, when the client needs one and has none. Honors `If-Match`.',
      tags: ['clients'],
      parameters: [clientId, param('ifMatch')],
      requestBody: body(schemaRef('Client'), 'Client metadata.'),
      responses: { '200': ok(schemaRef('Client'), 'Replaced.', true), ...writeErrors },
    },
    patch: {
      operationId: 'patchClient',
      summary: 'Change some of a client\'s metadata',
      description: 'JSON Merge Patch of the metadata; `client_secret` sets or (null) removes the secret. Honors `If-Match`.',
      tags: ['clients'],
      parameters: [clientId, param('ifMatch')],
      requestBody: body({ type: 'object', additionalProperties: true }, 'The changes.', mergePatch),
      responses: { '200': ok(schemaRef('Client'), 'Changed.', true), ...writeErrors },
    },
    delete: { operationId: 'deleteClient', summary: 'Delete a client', tags: ['clients'], parameters: [clientId, param('ifMatch')], responses: { '204': noContent, ...writeErrors } },
  },
  '/users': {
    get: { operationId: 'listUsers', summary: 'List local accounts', tags: ['users'], parameters: [param('limit'), param('cursor'), queryParam('email', 'Only accounts with this email (case-insensitive).')], responses: { '200': ok(pageOf('User'), 'A page of accounts.'), ...common } },
    post: {
      operationId: 'createUser',
      summary: 'Create an account',
      description: 'With `password` the account can sign in with that email and password at once; without one it signs in only through identities linked to it. Its `id` is the `sub` of its tokens. An email another password account uses is a 409.',
      tags: ['users'],
      requestBody: body(schemaRef('UserCreate'), 'The new account.'),
      responses: { '201': ok(schemaRef('UserDetail'), 'Created; `Location` names it.'), ...common, '409': problem('Conflict') },
    },
  },
  '/users/{id}': {
    get: { operationId: 'getUser', summary: 'Get an account with its linked identities', tags: ['users'], parameters: [userId], responses: { '200': ok(schemaRef('UserDetail'), 'The account.'), ...common, '404': problem('NotFound') } },
    patch: {
      operationId: 'patchUser',
      summary: 'Change an account\'s profile, email or disabled flag',
      description: 'JSON Merge Patch; null clears a name. `{"disabled": true}` ends every session of the account at once (its browsers must sign in again; grants without `offline_access` are revoked) and the engine refuses its tokens.',
      tags: ['users'],
      parameters: [userId],
      requestBody: body(schemaRef('UserPatch'), 'The changes.', mergePatch),
      responses: { '200': ok(schemaRef('UserDetail'), 'Changed.'), ...common, '404': problem('NotFound'), '409': problem('Conflict') },
    },
    delete: {
      operationId: 'deleteUser',
      summary: 'Delete an account',
      description: 'Ends its sessions and removes its linked identities; the audit entry keeps what was removed.',
      tags: ['users'],
      parameters: [userId],
      responses: { '204': noContent, ...common, '404': problem('NotFound') },
    },
  },
  '/users/{id}/identities': {
    post: {
      operationId: 'linkUserIdentity',
      summary: 'Pre-link an upstream identity',
      description: 'Links `{provider, subject}` to the account, so the first sign-in of that subject through that provider reaches this account. The provider must exist (400 otherwise); an identity linked to another account is a 409; linking it again answers 200 and changes nothing. Audited as `link` with rule `admin`.',
      tags: ['users'],
      parameters: [userId],
      requestBody: body(schemaRef('IdentityLink'), 'The identity.'),
      responses: { '201': ok(schemaRef('Identity'), 'Linked; `Location` names it.'), '200': ok(schemaRef('Identity'), 'Already linked to this account.'), ...common, '404': problem('NotFound'), '409': problem('Conflict') },
    },
  },
  '/users/{id}/identities/{alias}/{subject}': {
    delete: {
      operationId: 'unlinkUserIdentity',
      summary: 'Unlink an upstream identity',
      description: 'Removes the link; 409 when it is the account\'s last sign-in method (no password, no other identity). Audited as `unlink`.',
      tags: ['users'],
      parameters: [userId, pathParam('alias', 'Provider alias.'), pathParam('subject', 'Subject at that provider (URL-encoded).')],
      responses: { '204': noContent, ...common, '404': problem('NotFound'), '409': problem('Conflict') },
    },
  },
  '/users/{id}/factors': {
    delete: {
      operationId: 'resetUserFactors',
      summary: 'Reset every second factor of a user',
      description: 'Removes the user\'s factors (authenticator apps and passkeys) and recovery codes; under a client with `mfa: "required"` the next sign-in enrols a new one. Audited as `reset_factors`.',
      tags: ['users'],
      parameters: [userId],
      responses: { '204': noContent, ...common, '404': problem('NotFound') },
    },
  },
  '/users/{id}/factors/{factor_id}': {
    delete: {
      operationId: 'resetUserFactor',
      summary: 'Remove one second factor of a user',
      description: 'Removes the factor, an authenticator app or a passkey (its recovery codes too when it was the last). Audited as `reset_factor`.',
      tags: ['users'],
      parameters: [userId, pathParam('factor_id', 'Factor id (from `factors` of the user).')],
      responses: { '204': noContent, ...common, '404': problem('NotFound') },
    },
  },
  '/sessions': {
    get: { operationId: 'listSessions', summary: 'List login sessions', tags: ['sessions'], parameters: [param('limit'), param('cursor'), queryParam('account_id', 'Only this account\'s sessions (its id, a UUID).', { type: 'string', format: 'uuid' }), queryParam('idp', 'Only sessions signed in through this provider alias (or `local`).')], responses: { '200': ok(pageOf('Session'), 'A page of unexpired sessions.'), ...common } },
    delete: {
      operationId: 'endSessions',
      summary: 'End every session of an account or a provider',
      description: 'Ends each signed-in session of `account_id`, or of provider `idp` (the kill switch for a compromised IdP), or of both together, as `DELETE sessions/{id}` would: each with its back-channel logout notices. At least one filter is required.',
      tags: ['sessions'],
      parameters: [queryParam('account_id', 'End this account\'s sessions (its id, a UUID).', { type: 'string', format: 'uuid' }), queryParam('idp', 'End the sessions signed in through this provider alias (or `local`).')],
      responses: { '200': ok(schemaRef('SessionsEnded'), 'How many sessions ended.'), ...common },
    },
  },
  '/sessions/{id}': {
    get: { operationId: 'getSession', summary: 'Get a session and its logout deliveries', description: 'A session, signed in or ended, with the back-channel logout delivery of each of its applications.', tags: ['sessions'], parameters: [pathParam('id', 'Session id.')], responses: { '200': ok(schemaRef('SessionDetail'), 'The session.'), ...common, '404': problem('NotFound') } },
    delete: { operationId: 'endSession', summary: 'End a session', description: 'Signs the session out as a logout would: each application of the session gets a back-channel logout token (queued in the logout outbox, see `logout-deliveries`), grants without `offline_access` are revoked with their tokens, and the browser must sign in again.', tags: ['sessions'], parameters: [pathParam('id', 'Session id.')], responses: { '204': noContent, ...common, '404': problem('NotFound') } },
  },
  '/logout-deliveries': {
    get: {
      operationId: 'listLogoutDeliveries',
      summary: 'List back-channel logout deliveries',
      description: 'The logout outbox: one delivery per application of each ended session, oldest first.',
      tags: ['sessions'],
      parameters: [
        param('limit'),
        param('cursor'),
        queryParam('status', 'Only deliveries in this state.', { type: 'string', enum: ['pending', 'delivered', 'failed'] }),
        queryParam('client_id', 'Only deliveries to this application.'),
        queryParam('session', 'Only deliveries for this session id.'),
      ],
      responses: { '200': ok(pageOf('LogoutDelivery'), 'A page of deliveries.'), ...common },
    },
  },
  '/logout-deliveries/{id}': {
    get: { operationId: 'getLogoutDelivery', summary: 'Get a back-channel logout delivery', tags: ['sessions'], parameters: [pathParam('id', 'Delivery id.')], responses: { '200': ok(schemaRef('LogoutDelivery'), 'The delivery.'), ...common, '404': problem('NotFound') } },
  },
  '/logout-deliveries/{id}/retry': {
    post: {
      operationId: 'retryLogoutDelivery',
      summary: 'Send a logout delivery again',
      description: 'Queues the delivery now with a fresh retry period: a failed one once its application is fixed, or a pending one sooner. Audited.',
      tags: ['sessions'],
      parameters: [pathParam('id', 'Delivery id.')],
      responses: { '202': ok(schemaRef('LogoutDelivery'), 'Queued.'), ...common, '404': problem('NotFound') },
    },
  },
  '/hrd/explain': {
    get: {
      operationId: 'explainHomeRealm',
      summary: 'Explain home-realm discovery',
      description: 'What the login page would decide for this client and these hints, and the rule that decided.',
      tags: ['hrd'],
      parameters: [
        { ...queryParam('client_id', 'The client of the login.'), required: true },
        queryParam('login_hint', 'Email hint; its domain is looked up.'),
        queryParam('idp_hint', 'Explicit provider alias.'),
        queryParam('kc_idp_hint', 'Explicit provider alias (Keycloak name).'),
        queryParam('acr_values', 'May contain `idp:<alias>`.'),
        queryParam('email', 'Email typed on the email-first page.'),
        queryParam('last_used', 'Provider last used in the browser.'),
      ],
      responses: { '200': ok(schemaRef('HrdExplanation'), 'The decision and its rule.'), ...common, '404': problem('NotFound') },
    },
  },
  '/audit': {
    get: {
      operationId: 'listAudit',
      summary: 'Read the audit log',
      tags: ['audit'],
      parameters: [param('limit'), param('cursor'), queryParam('resource_type', 'Only this kind of resource.', { type: 'string', enum: [...AUDITED_RESOURCES] }), queryParam('resource_id', 'Only this resource.'), queryParam('actor', 'Only changes by this client_id.')],
      responses: { '200': ok(pageOf('AuditEntry'), 'A page of entries, newest first.'), ...common },
    },
  },
};

const problemResponse = (description: string) => ({ description, content: { 'application/problem+json': { schema: schemaRef('Problem') } } });

/** The admin API's OpenAPI 3.1 document; `issuer` gives the server URL and the token endpoint. */
export function openApiDocument(options: { issuer: string }): OpenApiDocument {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Realmgate admin API',
      version: '1',
      description:
        'Manage upstream providers, clients, users and sessions at runtime. Authenticate with an access token of scope `admin` from this server\'s token endpoint (client_credentials). JSON is snake_case; errors are `application/problem+json` listing every invalid field; secrets are write-only; reads return an ETag and writes honor `If-Match`.',
    },
    servers: [{ url: `${options.issuer}/admin/api` }],
    security: [{ adminToken: ['admin'] }],
    tags: ['providers', 'clients', 'users', 'sessions', 'hrd', 'audit', 'meta'].map((name) => ({ name, description: `${name[0]!.toUpperCase()}${name.slice(1)}.` })),
    paths,
    components: {
      schemas,
      securitySchemes: {
        adminToken: { type: 'oauth2', flows: { clientCredentials: { tokenUrl: `${options.issuer}/token`, scopes: { admin: 'Administer Realmgate' } } } },
      },
      parameters: {
        limit: { name: 'limit', in: 'query', required: false, description: 'Page size.', schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE_LIMIT, default: DEFAULT_PAGE_LIMIT } },
        cursor: { name: 'cursor', in: 'query', required: false, description: '`next_cursor` of the previous page.', schema: { type: 'string' } },
        ifMatch: { name: 'If-Match', in: 'header', required: false, description: 'ETag of the version read; a stale one fails with 412.', schema: { type: 'string' } },
      },
      responses: {
        Invalid: problemResponse('Invalid request; `errors` names every invalid field.'),
        Unauthorized: problemResponse('No valid access token (`WWW-Authenticate` says why).'),
        Forbidden: problemResponse('The access token lacks the `admin` scope.'),
        NotFound: problemResponse('No such resource.'),
        Conflict: problemResponse('Conflicts with stored state (alias, client_id or password account email taken, domain owned by another provider, identity linked to another account, last sign-in method).'),
        PreconditionFailed: problemResponse('`If-Match` is stale; the current ETag is returned.'),
      },
    },
  };
}
