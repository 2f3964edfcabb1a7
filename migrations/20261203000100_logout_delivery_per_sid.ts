import type { Knex } from 'knex';

/**
 * One logout delivery per (session, application, `sid`), not per (session, application): an
 * application signed out alone (the session stayed) and signed in again within the same session
 * has a new `sid`, and the notice for that one must not be taken for a duplicate of the first.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('logout_deliveries', (t) => {
    t.dropUnique(['session_uid', 'client_id']);
  });
  await knex.raw("create unique index logout_deliveries_session_client_sid_key on logout_deliveries (session_uid, client_id, coalesce(sid, ''))");
}

/** Back to one delivery per (session, application), keeping the oldest of each. */
export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index logout_deliveries_session_client_sid_key');
  await knex.raw('delete from logout_deliveries d using logout_deliveries e where d.session_uid = e.session_uid and d.client_id = e.client_id and d.id > e.id');
  await knex.schema.alterTable('logout_deliveries', (t) => {
    t.unique(['session_uid', 'client_id']);
  });
}
