import type { Knex } from 'knex';

/**
 * Change notices: every insert, update and delete of a row a node caches by version (`clients`,
 * `identity_providers`) sends `pg_notify('realmgate_changes', '<table>:<key>:<version>')`, so the
 * caches of every node listening (`src/store/change-notices.ts`) drop the entry at once instead of
 * reading its version on each request. PostgreSQL delivers a notice when the writing transaction
 * commits, and never for one rolled back. A delete names the version the row had.
 */
const CHANNEL = 'realmgate_changes';
const TABLES = [
  { table: 'clients', key: 'client_id' },
  { table: 'identity_providers', key: 'alias' },
] as const;

function functionName(table: string): string {
  return `realmgate_notify_${table}_change`;
}

export async function up(knex: Knex): Promise<void> {
  for (const { table, key } of TABLES) {
    await knex.raw(`
      create function ${functionName(table)}() returns trigger language plpgsql as $$
      declare
        changed record;
      begin
        if tg_op = 'DELETE' then changed := old; else changed := new; end if;
        perform pg_notify('${CHANNEL}', '${table}:' || changed.${key} || ':' || changed.version);
        -- A key changed in place (never done today) must reach the caches under its old name too.
        if tg_op = 'UPDATE' and old.${key} is distinct from new.${key} then
          perform pg_notify('${CHANNEL}', '${table}:' || old.${key} || ':' || old.version);
        end if;
        return null;
      end;
      $$`);
    await knex.raw(`create trigger ${table}_change_notice after insert or update or delete on ${table} for each row execute function ${functionName(table)}()`);
  }
}

/** Drops what `up` added. */
export async function down(knex: Knex): Promise<void> {
  for (const { table } of TABLES) {
    await knex.raw(`drop trigger if exists ${table}_change_notice on ${table}`);
    await knex.raw(`drop function if exists ${functionName(table)}()`);
  }
}
