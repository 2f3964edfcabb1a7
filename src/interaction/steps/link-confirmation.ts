import type { Response } from 'express';
import type { InteractionStep, MachineDeps } from '../machine.ts';
import type { Interaction } from '../service.ts';

/**
 * Link confirmation: a federated sign-in matched an existing account by email. The page names
 * the account's sign-in methods (`[data-link-method]` each); signing in with one proves the
 * account is this person's, and the pending identity is linked to it. Cancelling ends the login
 * at the application with `access_denied`, nothing linked.
 */
export const linkConfirmationStep: InteractionStep = {
  name: 'link_confirmation',
  pending: (_deps, interaction) => interaction.state.pendingLink !== undefined,
  render(deps: MachineDeps, res: Response, interaction: Interaction, notice?: string) {
    const pending = interaction.state.pendingLink!;
    const name = (alias: string) => pending.displayNames[alias] ?? deps.displayName(alias);
    res
      .status(notice ? 400 : 200)
      .type('html')
      .set('cache-control', 'no-store')
      .send(
        deps.views.render('link.njk', {
          uid: interaction.uid,
          csrf: deps.csrf.issue(interaction.uid),
          client_name: interaction.client.client_name ?? interaction.client.client_id,
          provider_name: name(pending.alias),
          email: pending.accountEmail,
          local: pending.methods.some((m) => m.kind === 'local'),
          providers: pending.methods.flatMap((m) => (m.kind === 'provider' ? [{ alias: m.alias, display_name: name(m.alias) }] : [])),
          error: notice,
        }),
      );
  },
};
