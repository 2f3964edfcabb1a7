/**
 * What the bench sets up on each Realmgate node, the way an operator would: clients and
 * providers over the admin API, the bench API with `realmgate resources add`, and thousands of
 * providers (home-realm discovery) as SQL copies of one provider the admin API created, with its
 * sealed secret, five domains each, written while the node is stopped.
 */
import type { TestSamlIdp } from '../test/support/saml-idp.ts';
import { APP_CLIENT, APP_REDIRECT_URI } from './logins.ts';
import { adminApi, type RealmgateNode } from './realmgate.ts';

/** The machine client of the token endpoint scenario (same id and secret at the bare oidc-provider). */
export const SERVICE_CLIENT = { id: 'svc', secret: 'svc-secret-svc-secret' };
/** The resource server whose access tokens are JWTs. */
export const BENCH_API = 'https://api.bench.test';
/** Realmgate's client at the upstream IdP, for node `url`. */
export const upstreamClientOf = (url: string) => ({
  client_id: `realmgate-${new URL(url).port}`,
  client_secret: `realmgate-upstream-secret-${new URL(url).port}`,
  redirect_uris: [`${url}/federation/up/callback`],
});
/** The domain of the upstream's user; `login_hint=ada@up.bench` leads to provider `up`. */
export const UPSTREAM_DOMAIN = 'up.bench';
const TEMPLATE = 'filler-00000';
/** Domains per filler provider: 50,000 domains at 10,000 providers. */
const DOMAINS_PER_FILLER = 5;

/** The application, the upstream OIDC provider `up`, and the template filler provider. */
async function common(node: RealmgateNode, upstreamIssuer: string): Promise<void> {
  await adminApi(node, 'POST', 'clients', {
    client_id: APP_CLIENT.id,
    client_secret: APP_CLIENT.secret,
    client_name: 'Bench app',
    redirect_uris: [APP_REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
    require_consent: false,
  });
  const upstream = upstreamClientOf(node.url);
  await adminApi(node, 'POST', 'providers', {
    alias: 'up',
    kind: 'oidc',
    display_name: 'Upstream',
    domains: [UPSTREAM_DOMAIN],
    settings: { issuer: upstreamIssuer, client_id: upstream.client_id, scopes: ['openid', 'email', 'profile'] },
    secrets: { client_secret: upstream.client_secret },
  });
  await adminApi(node, 'POST', 'providers', {
    alias: TEMPLATE,
    kind: 'oidc',
    display_name: 'Filler 0',
    domains: Array.from({ length: DOMAINS_PER_FILLER }, (_, k) => `d${k}.${TEMPLATE}.bench`),
    settings: { issuer: 'http://127.0.0.1:9/filler', client_id: 'realmgate' },
    secrets: { client_secret: 'filler-secret-0123456789' },
  });
}

/**
 * Copies the template provider `count` times, every column as the admin API wrote it (sealed
 * secret, version, and whatever columns the schema has by then) with its own alias and name, and
 * its five domains renamed after the copy.
 */
async function seedFillers(node: RealmgateNode, count: number): Promise<void> {
  if (count <= 0) return;
  const alias = `'filler-' || lpad(g::text, 5, '0')`;
  await node.sql(
    `insert into identity_providers
     select (jsonb_populate_record(null::identity_providers, to_jsonb(p) || jsonb_build_object('alias', ${alias}, 'display_name', 'Filler ' || g))).*
     from identity_providers p, generate_series(1, ?::int) g where p.alias = ?`,
    [count, TEMPLATE],
  );
  await node.sql(
    `insert into provider_domains
     select (jsonb_populate_record(null::provider_domains, to_jsonb(d) || jsonb_build_object('domain', replace(d.domain, ?, ${alias}), 'provider_alias', ${alias}))).*
     from provider_domains d, generate_series(1, ?::int) g where d.provider_alias = ?`,
    [TEMPLATE, count, TEMPLATE],
  );
}

/**
 * A node for every scenario: the machine client, the app, `up` (OIDC), `saml` (the bench IdP's
 * metadata), the bench API, and fillers up to 10 providers. Restarted once (the first entry of `restartsMs`).
 */
export async function setUpMainNode(node: RealmgateNode, upstreamIssuer: string, samlIdp: TestSamlIdp): Promise<void> {
  await adminApi(node, 'POST', 'clients', {
    client_id: SERVICE_CLIENT.id,
    client_secret: SERVICE_CLIENT.secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'admin',
  });
  await common(node, upstreamIssuer);
  await adminApi(node, 'POST', 'providers', { alias: 'saml', kind: 'saml', display_name: 'SAML IdP', domains: ['saml.bench'], settings: { metadata_xml: samlIdp.metadataXml() } });
  await node.restart(async () => {
    await node.cli(['resources', 'add', '--identifier', BENCH_API, '--scope', 'read', '--ttl', '600']);
    await seedFillers(node, 10 - 3);
  });
}

/** A node with `providers` providers (the app, `up`, fillers) and five domains per filler, for home-realm discovery. */
export async function setUpHrdNode(node: RealmgateNode, upstreamIssuer: string, providers: number): Promise<void> {
  await common(node, upstreamIssuer);
  await node.restart(() => seedFillers(node, providers - 2));
}
