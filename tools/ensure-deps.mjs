#!/usr/bin/env node
// Installs the locked dependencies when they are missing or stale, so that
// `npm start` and `npm test` work on a fresh clone with nothing typed before them.
// Uses only Node's built-ins: it runs before anything is installed.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lockPath = join(root, 'package-lock.json');
const stampPath = join(root, 'node_modules', '.accord-lock-hash');

const lockHash = createHash('sha256').update(readFileSync(lockPath)).digest('hex');
const installed = existsSync(stampPath) ? readFileSync(stampPath, 'utf8').trim() : '';

if (installed !== lockHash) {
  console.log('[accord] installing locked dependencies (npm ci)…');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error('[accord] npm ci failed; see the output above');
    process.exit(result.status ?? 1);
  }
  writeFileSync(stampPath, `${lockHash}\n`);
}
