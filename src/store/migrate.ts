import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Knex } from 'knex';

const here = fileURLToPath(import.meta.url);
const migrationsDir = path.resolve(path.dirname(here), '../../migrations');
// Run from the sources, this module loads the .ts migrations; compiled into dist/, the .js ones
// compiled from them. Either way a migration keeps the name of its source file, without extension.
const migrationExtension = path.extname(here);
const migrationFile = new RegExp(`^\\d+_[a-z0-9_]+\\${migrationExtension}$`);

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

/** Reads `migrations/` (or `dist/migrations/`) in name order; the same files serve PostgreSQL and PGlite. */
class DirectoryMigrationSource implements Knex.MigrationSource<string> {
  async getMigrations(): Promise<string[]> {
    const files = await fs.readdir(migrationsDir);
    return files.filter((f) => migrationFile.test(f)).sort();
  }
  getMigrationName(file: string): string {
    return file.slice(0, -migrationExtension.length);
  }
  async getMigration(file: string): Promise<Migration> {
    return (await import(pathToFileURL(path.join(migrationsDir, file)).href)) as Migration;
  }
}

/** knex migrator settings reading `migrations/`; `knexfile.ts` uses them too. */
export const migrationConfig = (): Knex.MigratorConfig => ({ migrationSource: new DirectoryMigrationSource() });

/** Applies every pending migration; returns the names applied. */
export async function migrateLatest(db: Knex): Promise<string[]> {
  const [, applied] = (await db.migrate.latest(migrationConfig())) as [number, string[]];
  return applied;
}

/** True when every migration in `migrations/` has been applied. */
export async function migrationsCurrent(db: Knex): Promise<boolean> {
  const [, pending] = (await db.migrate.list(migrationConfig())) as [unknown[], unknown[]];
  return pending.length === 0;
}
