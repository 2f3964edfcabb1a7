import type { Knex } from 'knex';

/**
 * Change notices: every insert, update and delete of a row a node caches (`clients` and
 * `identity_providers` by version, `resource_servers`, which has no version: 0) sends
 * `pg_notify('realmgate_changes', '<table>:<key>:<version>')`, so the
 * caches of every node listening (`src/store/change-notices.ts`) drop the entry at once instead of
 * reading its version on each request. PostgreSQL delivers a notice when the writing transaction
 * commits, and never for one rolled back. A delete names the version the row had.
 */
const CHANNEL = 'realmgate_changes';
const TABLES = [
  { table: 'clients', key: 'client_id', version: 'version' },
  { table: 'identity_providers', key: 'alias', version: 'version' },
  { table: 'resource_servers', key: 'identifier', version: undefined },
] as const;

function functionName(table: string): string {
  return `realmgate_notify_${table}_change`;
}

export async function up(knex: Knex): Promise<void> {
  for (const { table, key, version } of TABLES) {
    const versionOf = (row: string) => (version ? `${row}.${version}` : `'0'`);
    await knex.raw(`
      create function ${functionName(table)}() returns trigger language plpgsql as $$
      declare
        changed record;
      begin
        if tg_op = 'DELETE' then changed := old; else changed := new; end if;
        perform pg_notify('${CHANNEL}', '${table}:' || changed.${key} || ':' || ${versionOf('changed')});
        -- A key changed in place (never done today) must reach the caches under its old name too.
        if tg_op = 'UPDATE' and old.${key} is distinct from new.${key} then
          perform pg_notify('${CHANNEL}', '${table}:' || old.${key} || ':' || ${versionOf('old')});
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
