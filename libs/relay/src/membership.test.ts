import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ErrorCode,
  generateDeviceKey,
  isAccordError,
  type DeviceId,
  type FacilityId,
} from '@accord/protocol';
import { writeJsonAtomic } from '@accord/storage-level';
import { tempDir, type TempDir } from '@accord/testkit';
import {
  adoptRoster,
  deviceIndex,
  enrollMember,
  enrollWithToken,
  ensureFacility,
  MembershipWatcher,
  readMembers,
  revokeMember,
  rosterData,
  type FacilityMembersFile,
} from './membership.js';
import { listFacilities, openRelayFolder, type RelayFolderLayout } from './relay-folder.js';
import { createEnrollmentToken, listEnrollmentTokens } from './tokens.js';

const T0 = Date.UTC(2026, 0, 1);
const A = 'clinic-a' as FacilityId;
const B = 'clinic-b' as FacilityId;

let tmp: TempDir;
let layout: RelayFolderLayout;
beforeEach(async () => {
  tmp = await tempDir('accord-relay-members-');
  layout = (await openRelayFolder(tmp.path)).layout;
});
afterEach(async () => {
  await tmp.cleanup();
});

const newDevice = async (): Promise<DeviceId> => (await generateDeviceKey()).deviceId;

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return isAccordError(e) ? e.code : `not an AccordError: ${String(e)}`;
  }
}

describe('enrollMember and revokeMember', () => {
  it('creates the facility on first enrollment and bumps the version on every change', async () => {
    const d1 = await newDevice();
    const d2 = await newDevice();
    expect(await readMembers(layout, A)).toBeUndefined();
    const v1 = await enrollMember(layout, A, { id: d1, name: 'Tablet 1' }, T0);
    expect(v1).toEqual({
      facility: A,
      version: 1,
      devices: [{ id: d1, name: 'Tablet 1', revoked: false, enrolled: new Date(T0).toISOString() }],
    });
    const v2 = await enrollMember(layout, A, { id: d2, name: 'Tablet 2' }, T0 + 1);
    expect(v2.version).toBe(2);
    expect(await readMembers(layout, A)).toEqual(v2);
    expect(await listFacilities(layout)).toEqual([A]);

    const revoked = await revokeMember(layout, d1, T0 + 2);
    expect(revoked).toMatchObject({ facility: A, changed: true, members: { version: 3 } });
    expect(revoked.members.devices.find((d) => d.id === d1)).toMatchObject({
      revoked: true,
      revokedAt: new Date(T0 + 2).toISOString(),
    });
    expect(rosterData(revoked.members)).toEqual({
      version: 3,
      devices: [
        { id: d1, name: 'Tablet 1', revoked: true },
        { id: d2, name: 'Tablet 2', revoked: false },
      ],
    });
    // Revoking again changes nothing.
    const again = await revokeMember(layout, d1, T0 + 3);
    expect(again).toMatchObject({ changed: false, members: { version: 3 } });
    expect((await readMembers(layout, A))?.version).toBe(3);
  });

  it('keeps a device in one facility, ever', async () => {
    const d = await newDevice();
    await enrollMember(layout, A, { id: d, name: 't' });
    expect(await codeOf(enrollMember(layout, A, { id: d, name: 't' }))).toBe(
      ErrorCode.RELAY_ALREADY_ENROLLED,
    );
    expect(await codeOf(enrollMember(layout, B, { id: d, name: 't' }))).toBe(
      ErrorCode.RELAY_ALREADY_ENROLLED,
    );
    await revokeMember(layout, d);
    expect(await codeOf(enrollMember(layout, A, { id: d, name: 't' }))).toBe(
      ErrorCode.RELAY_ALREADY_ENROLLED,
    );
    expect(await readMembers(layout, B)).toBeUndefined();
  });

  it('refuses malformed input and unknown devices', async () => {
    const d = await newDevice();
    expect(await codeOf(enrollMember(layout, 'no/pe' as FacilityId, { id: d, name: 't' }))).toBe(
      ErrorCode.RELAY_BAD_REQUEST,
    );
    expect(await codeOf(enrollMember(layout, A, { id: 'dnope' as DeviceId, name: 't' }))).toBe(
      ErrorCode.RELAY_BAD_REQUEST,
    );
    expect(await codeOf(enrollMember(layout, A, { id: d, name: 'bad\nname' }))).toBe(
      ErrorCode.RELAY_BAD_REQUEST,
    );
    expect(await codeOf(enrollMember(layout, A, { id: d, name: ' ' }))).toBe(ErrorCode.RELAY_BAD_REQUEST);
    expect(await codeOf(revokeMember(layout, d))).toBe(ErrorCode.RELAY_UNKNOWN_DEVICE);
    expect(await codeOf(revokeMember(layout, 'x' as DeviceId))).toBe(ErrorCode.RELAY_BAD_REQUEST);
  });

  it('loses no edit when many enrollments run at once', async () => {
    const devices = await Promise.all(Array.from({ length: 12 }, newDevice));
    await Promise.all(
      devices.map((id, i) => enrollMember(layout, i % 2 === 0 ? A : B, { id, name: `t${i}` })),
    );
    expect((await readMembers(layout, A))?.version).toBe(6);
    expect((await readMembers(layout, B))?.version).toBe(6);
    const index = await deviceIndex(layout);
    expect(index.size).toBe(12);
    for (const [i, id] of devices.entries()) expect(index.get(id)).toBe(i % 2 === 0 ? A : B);
  });

  it('ensureFacility declares an empty facility once', async () => {
    expect(await ensureFacility(layout, A)).toEqual({ facility: A, version: 0, devices: [] });
    await enrollMember(layout, A, { id: await newDevice(), name: 't' });
    expect((await ensureFacility(layout, A)).version).toBe(1);
    expect(await listFacilities(layout)).toEqual([A]);
  });

  it('reports a damaged members.json as RELAY_CONFIG_INVALID', async () => {
    await ensureFacility(layout, A);
    await writeFile(layout.membersFile(A), JSON.stringify({ facility: B, version: 1, devices: [] }));
    expect(await codeOf(readMembers(layout, A))).toBe(ErrorCode.RELAY_CONFIG_INVALID);
    expect(await codeOf(enrollMember(layout, A, { id: await newDevice(), name: 't' }))).toBe(
      ErrorCode.RELAY_CONFIG_INVALID,
    );
  });
});

describe('enrollWithToken', () => {
  it("enrolls the device in the token's facility and consumes the token", async () => {
    const { token } = await createEnrollmentToken(layout, A, { now: T0 });
    const device = await newDevice();
    const members = await enrollWithToken(layout, { token, device, name: 'Front desk' }, T0 + 1);
    expect(members).toMatchObject({ facility: A, version: 1, devices: [{ id: device, name: 'Front desk' }] });
    expect(
      await codeOf(enrollWithToken(layout, { token, device: await newDevice(), name: 'x' }, T0 + 2)),
    ).toBe(ErrorCode.RELAY_TOKEN_USED);
    expect((await readMembers(layout, A))?.version).toBe(1);
  });

  it('refuses an enrolled device before consuming the token, which stays usable', async () => {
    const device = await newDevice();
    await enrollMember(layout, A, { id: device, name: 't' });
    const { token } = await createEnrollmentToken(layout, B, { now: T0 });
    expect(await codeOf(enrollWithToken(layout, { token, device, name: 't' }, T0))).toBe(
      ErrorCode.RELAY_ALREADY_ENROLLED,
    );
    expect(await listEnrollmentTokens(layout, T0)).toHaveLength(1);
    const other = await newDevice();
    expect((await enrollWithToken(layout, { token, device: other, name: 'u' }, T0)).facility).toBe(B);
  });

  it('enrolls nothing for an invalid or expired token', async () => {
    const { token } = await createEnrollmentToken(layout, A, { now: T0, ttlMs: 1000 });
    const device = await newDevice();
    expect(await codeOf(enrollWithToken(layout, { token, device, name: 't' }, T0 + 1000))).toBe(
      ErrorCode.RELAY_TOKEN_EXPIRED,
    );
    expect(
      await codeOf(enrollWithToken(layout, { token: 'acc1.' + 'x'.repeat(43), device, name: 't' }, T0)),
    ).toBe(ErrorCode.RELAY_TOKEN_INVALID);
    expect(await deviceIndex(layout)).toEqual(new Map());
  });
});

describe('MembershipWatcher', () => {
  /** A watcher polled by hand (its timer is far away) whose callbacks are recorded. */
  async function manualWatcher(): Promise<{
    watcher: MembershipWatcher;
    changes: [FacilityId, FacilityMembersFile][];
    errors: Error[];
  }> {
    const changes: [FacilityId, FacilityMembersFile][] = [];
    const errors: Error[] = [];
    const watcher = new MembershipWatcher(layout, {
      pollMs: 3_600_000,
      onChange: (f, m) => {
        changes.push([f, m]);
      },
      onError: (e) => errors.push(e),
    });
    await watcher.start();
    return { watcher, changes, errors };
  }

  it('starts from a baseline and reports each version change, including new facilities', async () => {
    const d1 = await newDevice();
    await enrollMember(layout, A, { id: d1, name: 't1' });
    const { watcher, changes } = await manualWatcher();
    try {
      expect(watcher.snapshot().get(A)?.version).toBe(1);
      await watcher.poll();
      expect(changes).toEqual([]);
      await enrollMember(layout, B, { id: await newDevice(), name: 't2' });
      await revokeMember(layout, d1);
      await watcher.poll();
      expect(changes.map(([f, m]) => [f, m.version])).toEqual([
        [A, 2],
        [B, 1],
      ]);
      expect(changes[0]![1].devices[0]).toMatchObject({ id: d1, revoked: true });
      await watcher.poll();
      expect(changes).toHaveLength(2);
      expect(watcher.snapshot().get(B)?.version).toBe(1);
    } finally {
      await watcher.close();
    }
  });

  it('does not report again a roster the relay applied itself, but still reports a later outside change', async () => {
    const d1 = await newDevice();
    await enrollMember(layout, A, { id: d1, name: 't1' });
    const { watcher, changes } = await manualWatcher();
    try {
      // The relay enrolls a device and applies the new roster itself.
      const enrolled = await enrollMember(layout, A, { id: await newDevice(), name: 't2' });
      watcher.applied(A, enrolled);
      await watcher.poll();
      expect(changes).toEqual([]);
      expect(watcher.snapshot().get(A)?.version).toBe(enrolled.version);
      // An older roster recorded as applied changes nothing; an outside revocation is reported.
      watcher.applied(A, { ...enrolled, version: 1 });
      await revokeMember(layout, d1);
      await watcher.poll();
      expect(changes.map(([f, m]) => [f, m.version])).toEqual([[A, enrolled.version + 1]]);
    } finally {
      await watcher.close();
    }
  });

  it('reports a broken roster once, keeps the previous one, and recovers', async () => {
    await enrollMember(layout, A, { id: await newDevice(), name: 't1' });
    const { watcher, changes, errors } = await manualWatcher();
    try {
      await writeFile(layout.membersFile(A), '{ broken');
      await watcher.poll();
      await watcher.poll();
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ code: ErrorCode.RELAY_CONFIG_INVALID });
      expect(watcher.snapshot().get(A)?.version).toBe(1);
      expect(changes).toEqual([]);
      const repaired = { facility: A, version: 5, devices: [] };
      await writeJsonAtomic(layout.membersFile(A), repaired);
      await watcher.poll();
      expect(changes).toEqual([[A, repaired]]);
    } finally {
      await watcher.close();
    }
  });

  it('ignores a facility folder without a roster until one is written', async () => {
    const { watcher, changes } = await manualWatcher();
    try {
      await mkdir(join(layout.facilitiesDir, 'later'), { recursive: true });
      await watcher.poll();
      expect(changes).toEqual([]);
      await ensureFacility(layout, 'later' as FacilityId);
      await watcher.poll();
      expect(changes.map(([f, m]) => [f, m.version])).toEqual([['later', 0]]);
    } finally {
      await watcher.close();
    }
  });

  it('polls on its own timer and survives a throwing onChange', async () => {
    const d = await newDevice();
    await enrollMember(layout, A, { id: d, name: 't' });
    const errors: Error[] = [];
    let seen!: (m: FacilityMembersFile) => void;
    const revoked = new Promise<FacilityMembersFile>((resolve) => (seen = resolve));
    const watcher = new MembershipWatcher(layout, {
      pollMs: 5,
      onChange: (f, m) => {
        if (f === B) throw new Error('listener failed');
        seen(m);
      },
      onError: (e, f) => errors.push(new Error(`${f}: ${e.message}`)),
    });
    await watcher.start();
    try {
      await enrollMember(layout, B, { id: await newDevice(), name: 'u' });
      await revokeMember(layout, d);
      const members = await revoked;
      expect(members.devices[0]).toMatchObject({ id: d, revoked: true });
      // Let the poll that saw A finish (B comes after A in the same poll, or came earlier).
      await watcher.poll();
      expect(errors.map((e) => e.message)).toEqual([`${B}: listener failed`]);
    } finally {
      await watcher.close();
    }
  });
});

describe('adoptRoster (a members.json restored from an older backup)', () => {
  it('takes back a newer relay-signed roster, never dropping or un-revoking a member', async () => {
    const [d1, d2, d3, d4] = await Promise.all([newDevice(), newDevice(), newDevice(), newDevice()]);
    await enrollMember(layout, A, { id: d1, name: 'one' }, T0);
    const old = await enrollMember(layout, A, { id: d2, name: 'two' }, T0);
    // What the relay had signed before the restore: d3 enrolled, d2 revoked (version 4).
    const signed = {
      version: 4,
      devices: [
        { id: d1, name: 'one', revoked: false },
        { id: d2, name: 'two', revoked: true },
        { id: d3, name: 'three', revoked: false },
      ],
    };
    expect((await adoptRoster(layout, A, { ...signed, version: old.version }, T0)).changed).toBe(false);
    const taken = await adoptRoster(layout, A, signed, T0 + 1000);
    expect(taken.changed).toBe(true);
    expect(rosterData(taken.members)).toEqual(signed);
    expect(await readMembers(layout, A)).toEqual(taken.members);
    expect(taken.members.devices.find((d) => d.id === d3)?.enrolled).toBe(new Date(T0 + 1000).toISOString());

    // A member the file has and the roster lacks stays, and the version moves past the roster's.
    await enrollMember(layout, A, { id: d4, name: 'four' }, T0);
    const again = await adoptRoster(layout, A, { ...signed, version: 9 }, T0);
    expect(again.members.version).toBe(10);
    expect(again.members.devices.map((d) => [d.id, d.revoked])).toEqual([
      [d1, false],
      [d2, true],
      [d3, false],
      [d4, false],
    ]);
  });
});
