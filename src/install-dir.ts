import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The nearest directory at or above `start` holding a package.json: Realmgate's installation,
 * whether this code runs from the sources (`src/…`) or compiled (`dist/src/…`).
 */
function findInstallDir(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${start}: Realmgate's files are not where they were installed`);
  }
}

/** Where Realmgate is installed: the directory with its package.json, `views/` and `public/`. */
export const installDir = findInstallDir(path.dirname(fileURLToPath(import.meta.url)));

/** Realmgate's version, from its package.json. */
export const realmgateVersion: string = (JSON.parse(fs.readFileSync(path.join(installDir, 'package.json'), 'utf8')) as { version: string }).version;
