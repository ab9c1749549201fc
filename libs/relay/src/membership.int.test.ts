// Rosters edited by another process (as `accord relay revoke` / `enroll` do while the relay runs).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateDeviceKey, type DeviceId, type FacilityId } from '@accord/protocol';
import { tempDir, type TempDir } from '@accord/testkit';
import { enrollMember, MembershipWatcher, readMembers, type FacilityMembersFile } from './membership.js';
import { openRelayFolder, type RelayFolderLayout } from './relay-folder.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MEMBERSHIP = fileURLToPath(new URL('./membership.js', import.meta.url).href.replace(/\.js$/, '.ts'));
const FOLDER = fileURLToPath(new URL('./relay-folder.js', import.meta.url).href.replace(/\.js$/, '.ts'));

// The child runs one membership command: `revoke DEVICE` or `enroll FACILITY DEVICE...`.
const CHILD = `
import { pathToFileURL } from 'node:url';
const [membershipTs, folderTs, dir, command, ...args] = process.argv.slice(1);
const m = await import(pathToFileURL(membershipTs).href);
const { relayFolder } = await import(pathToFileURL(folderTs).href);
const layout = relayFolder(dir);
if (command === 'revoke') await m.revokeMember(layout, args[0]);
else {
  const [facility, ...devices] = args;
  for (const id of devices) await m.enrollMember(layout, facility, { id, name: 'child ' + id.slice(0, 6) });
}
`;

function runChild(dir: string, args: readonly string[]): Promise<void> {
  const proc = spawn(
    process.execPath,
    [
      '--conditions=@accord/source',
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      CHILD,
      MEMBERSHIP,
      FOLDER,
      dir,
      ...args,
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`child failed (${code}): ${stderr}`)),
    );
  });
}

const A = 'clinic-a' as FacilityId;

let tmp: TempDir;
let layout: RelayFolderLayout;
beforeEach(async () => {
  tmp = await tempDir('accord-relay-members-int-');
  layout = (await openRelayFolder(tmp.path)).layout;
});
afterEach(async () => {
  await tmp.cleanup();
});

const newDevices = (n: number): Promise<DeviceId[]> =>
  Promise.all(Array.from({ length: n }, async () => (await generateDeviceKey()).deviceId));

describe('membership across processes', () => {
  it('a running watcher sees a revocation written by another process', { timeout: 60_000 }, async () => {
    const [d1, d2] = await newDevices(2);
    await enrollMember(layout, A, { id: d1!, name: 'one' });
    await enrollMember(layout, A, { id: d2!, name: 'two' });
    let seen!: (m: FacilityMembersFile) => void;
    const changed = new Promise<FacilityMembersFile>((resolve) => (seen = resolve));
    const watcher = new MembershipWatcher(layout, { pollMs: 25, onChange: (_f, m) => seen(m) });
    await watcher.start();
    try {
      await runChild(tmp.path, ['revoke', d1!]);
      const members = await changed;
      expect(members.version).toBe(3);
      expect(members.devices.map((d) => [d.id, d.revoked])).toEqual([
        [d1, true],
        [d2, false],
      ]);
    } finally {
      await watcher.close();
    }
  });

  it(
    'loses no enrollment when two processes enroll into one facility at once',
    { timeout: 60_000 },
    async () => {
      const mine = await newDevices(10);
      const theirs = await newDevices(20);
      // Start our enrollments as soon as the child's first one lands, so the two really overlap.
      let childStarted!: () => void;
      const started = new Promise<void>((resolve) => (childStarted = resolve));
      const watcher = new MembershipWatcher(layout, { pollMs: 1, onChange: () => childStarted() });
      await watcher.start();
      try {
        await Promise.all([
          runChild(tmp.path, ['enroll', A, ...theirs]),
          (async () => {
            await started;
            for (const id of mine) await enrollMember(layout, A, { id, name: 'parent' });
          })(),
        ]);
      } finally {
        await watcher.close();
      }
      const members = await readMembers(layout, A);
      expect(members?.version).toBe(30);
      expect(new Set(members?.devices.map((d) => d.id))).toEqual(new Set([...mine, ...theirs]));
    },
  );
});
