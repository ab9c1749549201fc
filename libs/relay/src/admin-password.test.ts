import { readFile, stat, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '@accord/protocol';
import { tempDir, type TempDir } from '@accord/testkit';
import { ADMIN_SCRYPT, hasAdminPassword, setAdminPassword, verifyAdminPassword } from './admin-password.js';
import { relayFolder, type RelayFolderLayout } from './relay-folder.js';

let tmp: TempDir;
let layout: RelayFolderLayout;
beforeEach(async () => {
  tmp = await tempDir('accord-relay-admin-');
  layout = relayFolder(tmp.path);
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('admin password', () => {
  it('is unset at first: verify answers false', async () => {
    expect(await hasAdminPassword(layout)).toBe(false);
    expect(await verifyAdminPassword(layout, 'anything-at-all')).toBe(false);
  });

  it('stores an scrypt hash with its parameters, mode 0600, never the password', async () => {
    const password = 'correct horse battery';
    await setAdminPassword(layout, password, { clock: () => Date.UTC(2026, 0, 1) });
    const text = await readFile(layout.adminFile, 'utf8');
    expect(text).not.toContain(password);
    expect(text).not.toContain(Buffer.from(password).toString('base64'));
    const file = JSON.parse(text) as Record<string, unknown>;
    expect(file).toMatchObject({
      v: 1,
      algorithm: 'scrypt',
      ...ADMIN_SCRYPT,
      updated: '2026-01-01T00:00:00.000Z',
    });
    expect(Buffer.from(file['salt'] as string, 'base64')).toHaveLength(16);
    expect((await stat(layout.adminFile)).mode & 0o777).toBe(0o600);
    expect(await hasAdminPassword(layout)).toBe(true);
    expect(await verifyAdminPassword(layout, password)).toBe(true);
    expect(await verifyAdminPassword(layout, password + ' ')).toBe(false);
    expect(await verifyAdminPassword(layout, '')).toBe(false);
  });

  it('uses a fresh salt each time and replaces the previous password', async () => {
    await setAdminPassword(layout, 'first-password');
    const a = JSON.parse(await readFile(layout.adminFile, 'utf8')) as { salt: string; hash: string };
    await setAdminPassword(layout, 'first-password');
    const b = JSON.parse(await readFile(layout.adminFile, 'utf8')) as { salt: string; hash: string };
    expect(b.salt).not.toBe(a.salt);
    expect(b.hash).not.toBe(a.hash);
    await setAdminPassword(layout, 'second-password');
    expect(await verifyAdminPassword(layout, 'first-password')).toBe(false);
    expect(await verifyAdminPassword(layout, 'second-password')).toBe(true);
  });

  it('refuses passwords shorter than 8 characters', async () => {
    await expect(setAdminPassword(layout, 'short')).rejects.toMatchObject({
      code: ErrorCode.RELAY_BAD_REQUEST,
    });
    expect(await hasAdminPassword(layout)).toBe(false);
  });

  it('reports a malformed or hostile admin.json instead of trusting it', async () => {
    await writeFile(layout.adminFile, 'not json');
    await expect(verifyAdminPassword(layout, 'whatever-pw')).rejects.toMatchObject({
      code: ErrorCode.RELAY_CONFIG_INVALID,
    });
    await setAdminPassword(layout, 'a-good-password');
    const file = JSON.parse(await readFile(layout.adminFile, 'utf8')) as Record<string, unknown>;
    // A cost that would take minutes and gigabytes per check is refused, not computed.
    await writeFile(layout.adminFile, JSON.stringify({ ...file, N: 2 ** 20, r: 32 }));
    await expect(verifyAdminPassword(layout, 'a-good-password')).rejects.toMatchObject({
      code: ErrorCode.RELAY_CONFIG_INVALID,
    });
  });
});
