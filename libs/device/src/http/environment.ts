// What `GET /api/environment` reads besides the log: the agent's version, its key's fingerprint and
// how much its data folder holds on disk.
import { createHash } from 'node:crypto';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeviceId } from '@accord/protocol';
import devicePackage from '../../package.json' with { type: 'json' };

/** The version of Accord this agent runs (the workspace's packages are versioned together). */
export const ACCORD_VERSION: string = devicePackage.version;

/**
 * The fingerprint of a device's Ed25519 public key, `SHA256:` + base64 (unpadded) of its SHA-256,
 * as `ssh-keygen -l` shows keys.
 *
 * @remarks A device id is `d` + the raw public key in base64url, so the id alone gives the key.
 */
export function keyFingerprint(device: DeviceId): string {
  const publicKey = Buffer.from(device.slice(1), 'base64url');
  return `SHA256:${createHash('sha256').update(publicKey).digest('base64').replace(/=+$/, '')}`;
}

/**
 * The sum of the sizes of the files under `dir`, read now.
 *
 * @remarks Symbolic links are not followed (a link counts nothing), and a file removed while the
 * folder is walked (LevelDB compacts as it runs) counts nothing rather than failing the sum.
 */
export async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      total += await folderBytes(path).catch(ignoreVanished);
    } else if (entry.isFile()) {
      total += await lstat(path).then((s) => s.size, ignoreVanished);
    }
  }
  return total;
}

function ignoreVanished(e: unknown): number {
  if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
  throw e;
}
