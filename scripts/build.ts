/**
 * `npm run build`: compiles the sources to `dist/` (same layout as the repository: `dist/src`,
 * `dist/providers`, `dist/migrations`) and writes the two entry points production runs,
 * `dist/main.js` (the server) and `dist/cli/main.js` (the `realmgate` command).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');

// A fresh dist/ each time, so nothing compiled from a deleted source lingers.
fs.rmSync(dist, { recursive: true, force: true });
// The compiler's own command (package.json `bin`), run with this Node.js.
const typescript = path.dirname(createRequire(import.meta.url).resolve('typescript/package.json'));
const tsc = path.join(typescript, 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

const entryPoints: Record<string, string> = {
  'main.js': `// Written by scripts/build.ts: the server, \`node dist/main.js\`.\nimport './src/main.js';\n`,
  'cli/main.js': `#!/usr/bin/env node\n// Written by scripts/build.ts: the \`realmgate\` command, \`node dist/cli/main.js\`.\nimport '../src/cli/main.js';\n`,
};
for (const [file, text] of Object.entries(entryPoints)) {
  const target = path.join(dist, file);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, text, { mode: 0o755 });
}
console.log(`built ${path.relative(process.cwd(), dist) || dist}/`);
