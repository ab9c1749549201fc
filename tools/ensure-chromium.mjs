#!/usr/bin/env node
// Makes sure Debian's `chromium` is installed for the browser tests, and prints nothing when it
// already is. Playwright's own browser download cannot run here (no outside fetch), and
// playwright-core drives the system browser through its executablePath. Idempotent; needs root
// (apt-get) only when chromium is missing. Used by apps/sync-centre's vitest global set-up;
// `node tools/ensure-chromium.mjs` runs it by hand and prints the browser's path.
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';

function which(name) {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  return r.status === 0 && path !== '' ? path : undefined;
}

function run(command, args) {
  const r = spawnSync(command, args, {
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (${r.status ?? r.signal ?? r.error?.message})\n${r.stdout}\n${r.stderr}`,
    );
  }
}

/** The path of the `chromium` executable, installed with apt-get first when it is missing. */
export function ensureChromium() {
  const found = which('chromium');
  if (found !== undefined) return found;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error('chromium is missing and only root can install it: apt-get install -y chromium');
  }
  process.stderr.write('[accord] installing chromium for the browser tests (apt-get)…\n');
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', 'chromium']);
  const installed = which('chromium');
  if (installed === undefined) throw new Error('apt-get installed chromium but it is not on the PATH');
  return installed;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(ensureChromium());
}
