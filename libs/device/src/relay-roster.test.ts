import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  asFacilityId,
  deviceIdFromPublicKey,
  deviceKeyFromSeed,
  formatHlc,
  newEventId,
  signEvent,
  SystemEventType,
  type DeviceId,
  type DeviceKeyPair,
  type JsonValue,
  type RosterMember,
  type SignedEvent,
} from '@accord/protocol';
import type { DeviceLogApi, EventsListener } from '@accord/log';
import { writeJsonAtomic } from '@accord/storage-level';
import { followRelayRoster } from './relay-roster.js';
import { readRosterFile, rosterFromEvent, RosterFile, type RosterData } from './roster-file.js';
import { FakeRelay } from './testing.js';

const FACILITY = asFacilityId('clinic-1');
const id = (n: number): DeviceId => deviceIdFromPublicKey(new Uint8Array(32).fill(n));
const members = (...revoked: boolean[]): RosterMember[] =>
  revoked.map((r, i) => ({ id: id(i + 1), name: `tablet ${i + 1}`, revoked: r }));
/** Roster members as event data (JSON). */
const asData = (version: number, list: RosterMember[]): JsonValue => ({
  version,
  devices: list.map((m) => ({ ...m })),
});

/** Just enough of a log: the follower scans what is visible, then subscribes. */
class ListenerLog {
  readonly listeners = new Set<EventsListener>();
  readonly visible: SignedEvent[] = [];
  visibleEvents(): IterableIterator<SignedEvent> {
    return this.visible.values();
  }
  onEvents(listener: EventsListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(events: readonly SignedEvent[]): void {
    for (const l of this.listeners) l(events);
  }
}

let dir: string;
let path: string;
let relayKey: DeviceKeyPair;
let strangerKey: DeviceKeyPair;
let roster: RosterFile;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-follow-'));
  path = join(dir, 'roster.json');
  relayKey = await deviceKeyFromSeed(new Uint8Array(32).fill(211));
  strangerKey = await deviceKeyFromSeed(new Uint8Array(32).fill(212));
  const first = await FakeRelay.signRosterWith(relayKey, FACILITY, 1, members(false, false));
  await writeJsonAtomic(path, rosterFromEvent(first, { relay: relayKey.deviceId }));
  roster = await RosterFile.open(path, FACILITY, { pollMs: 0, relay: relayKey.deviceId });
});
afterEach(async () => {
  roster.close();
  await rm(dir, { recursive: true, force: true });
});

const signed = (version: number, list: RosterMember[], key = relayKey): Promise<SignedEvent> =>
  FakeRelay.signRosterWith(key, FACILITY, version, list);

function nextChange(): Promise<RosterData> {
  return new Promise((resolve) => {
    const stop = roster.onChange((r) => {
      stop();
      resolve(r);
    });
  });
}

describe('followRelayRoster', () => {
  it('adopts the newest relay roster from a batch and ignores rosters signed by anyone else', async () => {
    const log = new ListenerLog();
    const follower = followRelayRoster({
      log: log as unknown as DeviceLogApi,
      roster,
      relay: relayKey.deviceId,
    });
    await follower.ready;
    const changed = nextChange();
    log.emit([
      await signed(9, members(true, true), strangerKey),
      await signed(2, members(false, true)),
      await signed(3, members(true, true)),
    ]);
    expect((await changed).version).toBe(3);
    expect(await readRosterFile(path)).toMatchObject({ version: 3, devices: members(true, true) });

    // Only a stranger's (higher) roster, then a real one: the stranger's never takes effect.
    const again = nextChange();
    log.emit([await signed(10, members(false, false), strangerKey)]);
    log.emit([await signed(4, members(false, true))]);
    expect((await again).version).toBe(4);
    follower.stop();
    expect(log.listeners.size).toBe(0);
  });

  it('reports a relay roster whose signature does not verify, keeping the roster in force', async () => {
    const log = new ListenerLog();
    let reported!: (m: string) => void;
    const diagnostic = new Promise<string>((resolve) => (reported = resolve));
    followRelayRoster({
      log: log as unknown as DeviceLogApi,
      roster,
      relay: relayKey.deviceId,
      onDiagnostic: (m) => reported(m),
    });
    const real = await signed(2, members(false, false));
    log.emit([{ ...real, data: asData(2, members(true, true)) }]);
    expect(await diagnostic).toMatch(/relay roster .* ignored: .*signature/);
    expect(roster.data.version).toBe(1);
    expect(roster.lookup(id(1))?.revoked).toBe(false);
  });

  it('at start, adopts the newest relay roster among the events already visible', async () => {
    const log = new ListenerLog();
    const verdict = await signEvent(
      {
        v: 1,
        id: newEventId(Date.UTC(2026, 0, 1)),
        facility: FACILITY,
        device: relayKey.deviceId,
        seq: 5,
        hlc: formatHlc(Date.UTC(2026, 0, 1), 0),
        type: SystemEventType.Verdict,
        schema: 1,
        subject: { kind: 'event', id: 'x' },
        deps: [],
        data: { version: 99 },
      },
      relayKey,
    );
    log.visible.push(
      verdict,
      await signed(3, members(true, true)),
      await signed(2, members(false, true)),
      await signed(7, members(false, false), strangerKey),
    );
    const follower = followRelayRoster({
      log: log as unknown as DeviceLogApi,
      roster,
      relay: relayKey.deviceId,
    });
    await follower.ready;
    expect(roster.data.version).toBe(3);
    expect(await readRosterFile(path)).toMatchObject({ version: 3, devices: members(true, true) });
  });
});
