import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { upstreamClientFor } from '../support/federation.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

/** The bootstrap admin client every admin test node is started with. */
export const ADMIN_CLIENT = { id: 'ops-console', secret: 'ops-console-secret-0123456789' } as const;

/** A response of the admin API with its JSON (or problem) body parsed. */
export interface AdminResponse {
  status: number;
  headers: Headers;
  body: any;
  /** The raw body text, for checks that a value appears nowhere in it. */
  text: string;
}

/** Starts a node with the bootstrap admin client configured. */
export async function startAdminNode(db: Knex, env: Record<string, string> = {}, options: { logger?: Logger } = {}): Promise<TestServer> {
  return startTestServer(db, { REALMGATE_ADMIN_CLIENT_ID: ADMIN_CLIENT.id, REALMGATE_ADMIN_CLIENT_SECRET: ADMIN_CLIENT.secret, ...env }, options);
}

/** Gets an access token with client_credentials from a node's token endpoint. */
export async function clientCredentialsToken(issuer: string, clientId: string, secret: string, scope?: string): Promise<string> {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...(scope ? { scope } : {}) }).toString(),
  });
  const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
  if (!res.ok || !body.access_token) throw new Error(`token request failed: ${res.status} ${body.error} ${body.error_description}`);
  return body.access_token;
}

/** A small admin API client: bearer token, JSON in and out. */
export class AdminApi {
  readonly base: string;
  token: string | undefined;

  constructor(issuer: string, token?: string) {
    this.base = `${issuer}/admin/api`;
    this.token = token;
  }

  /** An admin API client holding a fresh `admin` token of the bootstrap admin client. */
  static async connect(issuer: string): Promise<AdminApi> {
    return new AdminApi(issuer, await clientCredentialsToken(issuer, ADMIN_CLIENT.id, ADMIN_CLIENT.secret, 'admin'));
  }

  /** Sends one request; `body` is sent as JSON unless `raw` is given. */
  async request(method: string, path: string, options: { body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<AdminResponse> {
    const headers = new Headers(options.headers);
    if (this.token && !headers.has('authorization')) headers.set('authorization', `Bearer ${this.token}`);
    let payload: string | undefined = options.raw;
    if (options.body !== undefined) {
      payload = JSON.stringify(options.body);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    }
    const res = await fetch(`${this.base}${path}`, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
    const text = await res.text();
    let body: unknown = undefined;
    if (text && /json/.test(res.headers.get('content-type') ?? '')) body = JSON.parse(text);
    return { status: res.status, headers: res.headers, body, text };
  }

  /** GET. */
  get(path: string, headers?: Record<string, string>) {
    return this.request('GET', path, { ...(headers ? { headers } : {}) });
  }

  /** POST with a JSON body. */
  post(path: string, body?: unknown, headers?: Record<string, string>) {
    return this.request('POST', path, { body, ...(headers ? { headers } : {}) });
  }

  /** PUT with a JSON body. */
  put(path: string, body: unknown, headers?: Record<string, string>) {
    return this.request('PUT', path, { body, ...(headers ? { headers } : {}) });
  }

  /** PATCH with a JSON Merge Patch body. */
  patch(path: string, body: unknown, headers?: Record<string, string>) {
    return this.request('PATCH', path, { body, headers: { 'content-type': 'application/merge-patch+json', ...headers } });
  }

  /** DELETE. */
  delete(path: string, headers?: Record<string, string>) {
    return this.request('DELETE', path, { ...(headers ? { headers } : {}) });
  }
}

/** The distinct fields of a problem's `errors`, sorted, to compare with the fields a test made invalid. */
export function problemFields(res: AdminResponse): string[] {
  return [...new Set(((res.body?.errors ?? []) as { field: string }[]).map((e) => e.field))].sort();
}

/**
 * The admin API body of an OIDC provider at `issuer`, signing in there as the client
 * `upstreamClientFor(alias)` names, with its secret unless `secret` is given.
 */
export function oidcProviderBody(alias: string, issuer: string, options: { secret?: string; domains?: string[]; displayName?: string } = {}) {
  const { clientId, clientSecret } = upstreamClientFor(alias);
  return {
    alias,
    kind: 'oidc',
    display_name: options.displayName ?? `${alias} IdP`,
    domains: options.domains ?? [],
    settings: { issuer, client_id: clientId },
    secrets: { client_secret: options.secret ?? clientSecret },
  };
}
