// An unloaded facility leaves nothing behind: its LevelDB is closed (another handle can open the
// folder) and its node, log and documents, Automerge's WebAssembly memory included, can be
// garbage collected. A relay serves many facilities one after another in one process; what one
// keeps after its unload adds up (the bench's memory run, issue #12). Loaded twice, so that the
// second load takes its documents back from storage, as a relay does after a restart.
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as A from '@automerge/automerge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceLog } from '@accord/log';
import { repoOf } from '@accord/log/testing';
import type { FacilityId } from '@accord/protocol';
import { openDeviceDatabase } from '@accord/storage-level';
import { tempDir, type TempDir } from '@accord/testkit';
import type { Relay } from './relay.js';
import { relayFolder } from './relay-folder.js';
import { enrolledWith, eventually, stock, TestRoster, startTestRelay } from './testing.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const FACILITY = 'clinic-relay-unload' as FacilityId;
/** Small segments, so that a few dozen events fill several, sealed and released. */
const SEGMENT = 5;

/** True once every target is garbage collected (the Repo's throttled saves may hold a document for 1 s). */
async function allCollected(refs: readonly WeakRef<object>[]): Promise<boolean> {
  for (let i = 0; i < 60 && refs.some((r) => r.deref() !== undefined); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    gc();
  }
  return refs.every((r) => r.deref() === undefined);
}

describe('Relay.unload', () => {
  let dir: TempDir;
  let relay: Relay;
  const roster = new TestRoster(FACILITY);
  let device: DeviceLog | undefined;

  beforeAll(async () => {
    dir = await tempDir('accord-relay-unload-');
    relay = await startTestRelay(dir.path, roster, { segmentSize: SEGMENT });
  });

  afterAll(async () => {
    await device?.close();
    await relay.stop();
    await dir.cleanup();
  });

  /**
   * Weak references to the loaded facility's node, log and the Automerge instance of every
   * document its Repo holds; only they leave this function.
   */
  async function loadedParts(): Promise<WeakRef<object>[]> {
    const node = await relay.facility(FACILITY);
    await node.settled();
    const documents = Object.values(repoOf(node.log).handles).filter((h) => h.isReady());
    expect(documents.length).toBeGreaterThan(2);
    return [
      new WeakRef(node),
      new WeakRef(node.log),
      ...documents.map((h) => new WeakRef(A.getBackend(h.doc()))),
    ];
  }

  /** Waits for every verdict, then lets `leave` take the device away and waits until it is gone. */
  async function verdictedAndAlone(leave: () => Promise<void>): Promise<void> {
    // The node stays in this function: the test must not keep it alive itself.
    const node = await relay.facility(FACILITY);
    // Every stock receipt accepted (lastSeq counts them across loads, unlike verdicts).
    await eventually(() => node.stats().lastSeq >= 3 * SEGMENT && node.stats().waiting === 0, 'verdicts');
    await leave();
    await eventually(() => node.connected === 0, 'the device gone');
  }

  /** A device enrolled with the relay under `name`, dialling it. */
  function enrolledAs(name: string): ReturnType<typeof enrolledWith> {
    return enrolledWith(relay, dir.path, roster, { facility: FACILITY, name, segmentSize: SEGMENT });
  }

  async function expectReleased(refs: readonly WeakRef<object>[]): Promise<void> {
    expect(relay.health()['facilitiesLoaded']).toBe(0);
    // Its LevelDB lock is released: another handle opens the folder.
    const db = await openDeviceDatabase(relayFolder(join(dir.path, 'relay')).facilityDb(FACILITY));
    await db.close();
    expect(await allCollected(refs)).toBe(true);
  }

  it('closes the store and lets go of the node, the log and every document, load after load', async () => {
    const enrolled = await enrolledAs('Store room');
    device = enrolled.log;
    for (let i = 0; i < 3 * SEGMENT; i++) await device.append(stock(`L${i}`, 10));
    await verdictedAndAlone(async () => {
      await device?.close();
      device = undefined;
    });

    const first = await loadedParts();
    await relay.unload(FACILITY);
    await expectReleased(first);

    // Loaded again from its folder for a new device that syncs the first one's events: the
    // relay takes its documents back from storage, some for the device's sync messages.
    const newcomer = await enrolledAs('Front desk');
    device = newcomer.log;
    await eventually(() => device!.size() >= 3 * SEGMENT, 'the newcomer holding every event');
    await verdictedAndAlone(async () => {
      await device?.close();
      device = undefined;
    });
    const second = await loadedParts();
    await relay.unload(FACILITY);
    await expectReleased(second);
  });
});
