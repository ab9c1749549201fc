// Issue #13, scenario 1 (verdict poisoning): a modified enrolled device submits registrations whose
// rejection would echo ~7,000 unknown keys (7,300 here) into the verdict. The relay must answer each with a
// writable 500 deadletter and go on with everyone else, across restarts. Real LevelDB for the relay
// in a temp dir, real WebSockets on port 0, the poison written by `HostileDevice`.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceLog, type LogRoster } from '@accord/log';
import { hostileDevice } from '@accord/log/testing';
import { WebSocketClientAdapter } from '@accord/network-ws';
import {
  encodeSignedEvent,
  MAX_EVENT_BYTES,
  MAX_VERDICT_REASON_CHARS,
  verdictsIn,
  type DeviceId,
  type DeviceKeyPair,
  type FacilityId,
  type JsonValue,
} from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { tempDir, testSeed, type TempDir } from '@accord/testkit';
import { createRelayLogger } from './logger.js';
import { Relay } from './relay.js';
import { enrollOverHttp, eventually, registration, verdictsAbout, seededDeviceKey } from './testing.js';

const SEED = testSeed('relay-poison.int');
const FACILITY = 'clinic-poison' as FacilityId;

const keyFor = (label: string): Promise<DeviceKeyPair> => seededDeviceKey(SEED, label);

/** Registration data with `extra` short unknown keys (3 base-36 characters each). */
function poisonedRegistration(
  patientId: string,
  birthDate: JsonValue,
  extra: number,
): Record<string, JsonValue> {
  const data: Record<string, JsonValue> = {
    patientId,
    nationalId: `N-${patientId}`,
    givenName: 'Ama',
    familyName: 'Mensah',
    birthDate,
    sex: 'female',
  };
  for (let i = 0; i < extra; i++) data[(i + 36 * 36).toString(36).slice(-3)] = 0;
  return data;
}

/** A relay logger that keeps every line. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = createRelayLogger({
    level: 'warn',
    destination: {
      write: (s: string) => {
        for (const line of s.split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as never);
      },
    },
  });
  return { logger, lines };
}

describe('verdict poisoning by a modified enrolled device', () => {
  let dir: TempDir;
  let relay: Relay;
  let port = 0;
  const capture = capturingLogger();
  const logs: DeviceLog[] = [];

  const start = async (): Promise<Relay> =>
    Relay.start({
      data: join(dir.path, 'relay'),
      port,
      logger: capture.logger,
      membershipPollMs: 50,
      // After a restart the relay waits this long for enrolled devices that stay away (some do here).
      catchUpMaxMs: 1_000,
    });

  beforeAll(async () => {
    dir = await tempDir('accord-relay-poison-');
    relay = await start();
    port = relay.port;
  });

  afterAll(async () => {
    for (const log of logs) await log.close();
    await relay.stop();
    await dir.cleanup();
  });

  it('answers each poisoned event with a writable 500 deadletter, judges the honest event after it, and keeps doing so after a restart', async () => {
    const honestKey = await keyFor('honest');
    const hostileKey = await keyFor('hostile');
    for (const key of [honestKey, hostileKey]) {
      await enrollOverHttp({ data: join(dir.path, 'relay'), port, facility: FACILITY, key });
    }
    const members = new Map<DeviceId, { facility: FacilityId; revoked: boolean }>();
    for (const id of [honestKey.deviceId, hostileKey.deviceId, relay.id]) {
      members.set(id, { facility: FACILITY, revoked: false });
    }
    const roster: LogRoster = { lookup: (device) => members.get(device) };
    const log = await DeviceLog.open({
      facility: FACILITY,
      key: honestKey,
      eventStore: new MemoryEventStore(),
      storage: new MemoryStorageAdapter(),
      roster,
      relay: relay.id,
    });
    logs.push(log);
    log.addNetworkAdapter(
      new WebSocketClientAdapter({
        url: `ws://127.0.0.1:${port}`,
        identity: honestKey,
        facility: FACILITY,
        roster,
        expectedPeer: relay.id,
        backoff: { baseMs: 20, maxMs: 200 },
      }),
    );

    // The modified client shares the honest tablet's documents (as a peer on the LAN would).
    const hostile = hostileDevice(log, hostileKey);
    const badField = await hostile.sign({
      type: 'PatientRegistered',
      subject: { kind: 'patient', id: 'X1' },
      data: poisonedRegistration('X1', 20200202, 7300),
    });
    const badKeysOnly = await hostile.sign({
      type: 'PatientRegistered',
      subject: { kind: 'patient', id: 'X2' },
      data: poisonedRegistration('X2', '2020-02-02', 7300),
    });
    for (const e of [badField, badKeysOnly])
      expect(encodeSignedEvent(e).length).toBeLessThan(MAX_EVENT_BYTES);
    await hostile.write([badField, badKeysOnly]);
    const node = await relay.facility(FACILITY);
    // The relay holds the poison before the honest event exists.
    await eventually(
      () => node.log.get(badField.id) !== undefined && node.log.get(badKeysOnly.id) !== undefined,
      'the poisoned events at the relay',
    );
    const { event: honest } = await log.append(registration('H1'));

    await eventually(() => log.get(honest.id)?.status === 'accepted', 'the honest event accepted');
    for (const poisoned of [badField, badKeysOnly]) {
      const found = await eventually(
        () => verdictsAbout(log.visibleEvents(), poisoned.id, relay.id)[0],
        `the verdict on ${poisoned.id === badField.id ? 'the malformed field' : 'the unknown keys'}`,
      );
      expect(found.verdict).toMatchObject({ outcome: 'deadletter', code: 500, rule: 'RULE_SCHEMA' });
      if (found.verdict.outcome === 'deadletter') {
        expect(found.verdict.reason.length).toBeLessThanOrEqual(MAX_VERDICT_REASON_CHARS);
        // The unknown keys are summarized (in the details, or in the reason when they come first).
        expect(JSON.stringify(found.verdict)).toContain('7300 unrecognized keys');
      }
      expect(encodeSignedEvent(found.event).length).toBeLessThanOrEqual(MAX_EVENT_BYTES);
      expect(log.get(poisoned.id)?.status).toBe('deadletter');
    }

    await node.settled();
    const relaySeqs = () =>
      [...node.log.visibleEvents()]
        .filter((e) => e.device === relay.id)
        .map((e) => e.seq)
        .sort((a, b) => a - b);
    const seqs = relaySeqs();
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(node.log.integrity().holes).toEqual([]);
    expect(capture.lines.filter((l) => l['msg'] === 'validation round failed')).toEqual([]);

    // A restart judges nothing again and fails no round.
    await relay.stop();
    relay = await start();
    const again = await relay.facility(FACILITY);
    await again.settled();
    const { event: later } = await log.append(registration('H2'));
    await eventually(() => log.get(later.id)?.status === 'accepted', 'an event after the restart accepted');
    await again.settled();
    const after = [...again.log.visibleEvents()].filter((e) => e.device === relay.id);
    expect(after.map((e) => e.seq).sort((a, b) => a - b)).toEqual(after.map((_, i) => i + 1));
    for (const poisoned of [badField, badKeysOnly]) {
      expect(after.flatMap((e) => verdictsIn(e)).filter((v) => v.target === poisoned.id)).toHaveLength(1);
    }
    expect(capture.lines.filter((l) => l['msg'] === 'validation round failed')).toEqual([]);
  });
});
