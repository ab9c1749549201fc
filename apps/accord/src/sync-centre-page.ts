// The Sync Centre page that every device agent serves on its HTTP port: built from
// apps/sync-centre by the same esbuild step as the CLI (bin/bundle.mjs, cached by input mtimes)
// and handed to the agent as static assets. libs/device knows nothing of the page.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StaticAsset } from '@accord/device';
import { ensureSyncCentrePage } from '../bin/bundle.mjs';

/** The page's files and their types. */
const FILES: readonly (readonly [path: string, file: string, contentType: string])[] = [
  ['/index.html', 'index.html', 'text/html; charset=utf-8'],
  ['/app.js', 'app.js', 'text/javascript; charset=utf-8'],
  ['/app.css', 'app.css', 'text/css; charset=utf-8'],
];

/** Builds the Sync Centre page when it is stale and reads it: the `assets` of `DeviceAgent.start`. */
export async function loadSyncCentrePage(): Promise<ReadonlyMap<string, StaticAsset>> {
  const dir = await ensureSyncCentrePage();
  const entries = await Promise.all(
    FILES.map(async ([path, file, contentType]) => {
      const body = await readFile(join(dir, file));
      return [path, { contentType, body }] as const;
    }),
  );
  return new Map(entries);
}

/**
 * {@link loadSyncCentrePage}, or undefined (and a line on `warn`) when the page cannot be built:
 * the agent then serves its API alone rather than not starting.
 */
export async function syncCentrePageOrNothing(
  warn: (line: string) => void,
): Promise<ReadonlyMap<string, StaticAsset> | undefined> {
  try {
    return await loadSyncCentrePage();
  } catch (e) {
    warn(`accord: the Sync Centre page is not available: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
}
