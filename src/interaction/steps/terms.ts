import type { Request, Response } from 'express';
import type { InteractionStep, MachineDeps } from '../machine.ts';
import type { Interaction } from '../service.ts';

/** The terms a client asks its users to accept (`terms_uri` + `terms_version`), when it has them. */
export function clientTerms(client: Record<string, unknown>): { termsUri: string; termsVersion: string } | undefined {
  const { terms_uri: termsUri, terms_version: termsVersion } = client;
  return typeof termsUri === 'string' && typeof termsVersion === 'string' ? { termsUri, termsVersion } : undefined;
}

/**
 * Terms of service: a client with `terms_uri` and `terms_version` shows them once to each person
 * who has not accepted that version of that document, after sign-in (local or federated) and
 * before anything else is asked. Accepting (`[data-accept-terms]`) records the version and time
 * on the account; declining ends the login at the application with `access_denied`.
 */
export const termsStep: InteractionStep = {
  name: 'terms',
  async pending(deps, interaction) {
    const terms = clientTerms(interaction.client);
    const login = interaction.state.login;
    if (!terms || !login) return false;
    return !(await deps.termsAcceptances.hasAccepted(login.accountId, terms.termsUri, terms.termsVersion));
  },
  render(deps: MachineDeps, res: Response, interaction: Interaction, notice?: string) {
    const terms = clientTerms(interaction.client)!;
    res
      .status(notice ? 400 : 200)
      .type('html')
      .set('cache-control', 'no-store')
      .send(
        deps.views.render('terms.njk', {
          uid: interaction.uid,
          csrf: deps.csrf.issue(interaction.uid),
          client_name: interaction.client.client_name ?? interaction.client.client_id,
          terms_uri: terms.termsUri,
          terms_version: terms.termsVersion,
          error: notice,
        }),
      );
  },
  submit: {
    path: 'terms',
    async handle(deps: MachineDeps, req: Request, res: Response, interaction: Interaction) {
      const terms = clientTerms(interaction.client)!;
      const accountId = interaction.state.login!.accountId;
      const shown = (req.body as Record<string, unknown>).terms_version;
      if (shown !== terms.termsVersion) {
        // The client's terms changed while the page was open: what was read is not what is asked.
        deps.logger.warn({ uid: interaction.uid, shown, current: terms.termsVersion }, 'terms accepted for a version that is no longer current');
        await termsStep.render(deps, res, interaction, 'These terms were updated while you were reading them. Read the current version, then accept it.');
        return false;
      }
      await deps.linking.store.transaction(async (tx) => {
        await tx.termsAcceptances.accept(accountId, { ...terms, clientId: String(interaction.client.client_id) });
        await tx.audit.record({
          actor: `account:${accountId}`,
          action: 'accept_terms',
          resourceType: 'user',
          resourceId: accountId,
          before: null,
          after: { terms_uri: terms.termsUri, terms_version: terms.termsVersion, client_id: interaction.client.client_id },
          requestId: (res.locals.requestId as string | undefined) ?? null,
        });
      });
      deps.logger.info({ uid: interaction.uid, account_id: accountId, terms_version: terms.termsVersion }, 'terms of service accepted');
      return true;
    },
  },
};
