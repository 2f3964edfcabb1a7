/**
 * The SAML-only steps of federation: serving a provider's SP metadata, and IdP-initiated logins.
 * Solicited SAML answers go through the neutral `acceptUpstreamAnswer` like any other protocol.
 */
import { providerTypeFor } from '../../providers/index.ts';
import { ProviderError, type CallbackInput, type OpenContext } from '../../providers/types.ts';
import { RealmgateError } from '../errors.ts';
import type { ClientRepository } from '../store/clients.ts';
import type { ProviderRepository } from '../store/providers.ts';
import { homeRealmClient } from './home-realm.ts';
import { countingFailures, type FederationDeps } from './login-flow.ts';

/** What the SAML steps need beyond the neutral flow. */
export interface SamlFlowDeps extends FederationDeps {
  providers: Pick<ProviderRepository, 'load'>;
  clients: Pick<ClientRepository, 'get'>;
  /** The federation's open context: Realmgate's issuer and endpoint URLs. */
  context: Pick<OpenContext, 'issuer' | 'endpointUrl'>;
}

/**
 * The SP metadata of provider `alias`, from its stored settings: there even while the IdP's
 * metadata URL is down or the provider is disabled, so an administrator can set the IdP up first.
 */
export async function serviceProviderMetadata(deps: SamlFlowDeps, alias: string): Promise<string> {
  const stored = await deps.providers.load(alias);
  const type = stored && providerTypeFor(stored.kind);
  if (!stored || !type?.serviceProviderMetadata) {
    throw new RealmgateError('not_found', { detail: `no provider with SP metadata under alias ${alias}` });
  }
  return type.serviceProviderMetadata(stored, deps.context);
}

/**
 * An IdP-initiated (unsolicited) SAML response: the provider validates it in full (signature,
 * audience, validity, replay) and refuses it unless IdP-initiated login is enabled. An OpenID
 * Connect application cannot take an authorization response it did not ask for, so the login
 * continues as OpenID Connect third-party initiated login: the browser goes to the target
 * application's `initiate_login_uri` with `iss`, the application sends it to `/authorize`, and
 * home-realm discovery (the provider last used in this browser) sends it back to this IdP,
 * whose session signs it in at once. That last step is an ordinary SP-initiated login, so a
 * response injected into someone else's browser cannot sign them in as the attacker.
 * Returns the URL the browser goes to next.
 */
export async function acceptUnsolicitedAnswer(deps: SamlFlowDeps, alias: string, input: CallbackInput): Promise<string> {
  return countingFailures(deps, alias, async () => {
    const provider = await deps.cache.get(alias);
    if (!provider.opened.finishUnsolicitedLogin) {
      throw new ProviderError('transaction_invalid', { alias, detail: 'an answer without a login transaction, from a provider that never sends unsolicited ones' });
    }
    const { identity, clientId } = await provider.opened.finishUnsolicitedLogin(input);
    const client = await deps.clients.get(clientId);
    const initiateLoginUri = client?.metadata.initiate_login_uri;
    if (!client || typeof initiateLoginUri !== 'string') {
      throw new ProviderError('unavailable', { alias, detail: `IdP-initiated login goes to client ${clientId}, which does not exist or has no initiate_login_uri` });
    }
    const allowed = homeRealmClient(client.metadata).allowedProviders;
    if (allowed && !allowed.includes(alias)) {
      throw new ProviderError('unavailable', { alias, detail: `IdP-initiated login goes to client ${clientId}, which may not use provider ${alias}` });
    }
    const target = new URL(initiateLoginUri);
    target.searchParams.set('iss', deps.context.issuer);
    const deepLink = deepLinkOf(input.params.RelayState, target);
    if (deepLink) target.searchParams.set('target_link_uri', deepLink);
    deps.logger.info({ alias, client_id: clientId, upstream_subject: identity.subject }, 'IdP-initiated login handed to the application');
    return target.toString();
  });
}

/** A RelayState that is a URL on the application's own origin, passed on as `target_link_uri`. */
function deepLinkOf(relayState: string | undefined, initiateLoginUri: URL): string | undefined {
  if (!relayState || !URL.canParse(relayState)) return undefined;
  const url = new URL(relayState);
  return url.origin === initiateLoginUri.origin ? url.toString() : undefined;
}
