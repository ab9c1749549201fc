import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceLog, segmentDocumentId } from '@accord/log';
import { WebSocketClientAdapter } from '@accord/network-ws';
import {
  generateDeviceKey,
  makeEnrollRequest,
  SystemEventType,
  verdictAbout,
  verdictsIn,
  verifyEvent,
  type DeviceKeyPair,
  type EventId,
  type FacilityId,
  type SignedEvent,
} from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { FakeNetwork, tempDir, type TempDir } from '@accord/testkit';
import { createRelayLogger } from './logger.js';
import { Relay } from './relay.js';
import { relayFolder } from './relay-folder.js';
import {
  bcg,
  enrollOverHttp,
  eventually,
  registration,
  stock,
  verdictsAbout,
  TestRoster,
} from './testing.js';
import { createEnrollmentToken } from './tokens.js';

const FACILITY = 'clinic-relay-int' as FacilityId;
const DEADLINE_MS = 800;

interface TestDevice {
  readonly name: string;
  readonly key: DeviceKeyPair;
  readonly log: DeviceLog;
  readonly store: MemoryEventStore;
  readonly storage: MemoryStorageAdapter;
  connectToRelay(opts?: { hold?: (doc: string) => boolean }): void;
}

/** Every verdict (any signer) about `target` stated by the events `log` holds, with the event stating it. */
const verdictsFor = (log: DeviceLog, target: EventId) => verdictsAbout(log.visibleEvents(), target);

describe('relay with devices over real WebSockets and LevelDB', () => {
  let dir: TempDir;
  let relay: Relay;
  const roster = new TestRoster(FACILITY);
  const devices: TestDevice[] = [];
  const peers = new FakeNetwork({ seed: 4 });
  // The in-memory peer links deliver only when pumped.
  let pump: ReturnType<typeof setInterval> | undefined;
  let port = 0;

  async function startRelay(): Promise<Relay> {
    return Relay.start({
      data: join(dir.path, 'relay'),
      port,
      logger: createRelayLogger({ level: 'silent' }),
      dependencyDeadlineMs: DEADLINE_MS,
      membershipPollMs: 50,
      // After a restart the relay waits this long for enrolled devices that stay away (some do here).
      catchUpMaxMs: 1_000,
    });
  }

  async function enroll(name: string): Promise<{ key: DeviceKeyPair; roster: SignedEvent }> {
    const key = await generateDeviceKey();
    const enrolled = await enrollOverHttp({
      data: join(dir.path, 'relay'),
      port,
      facility: FACILITY,
      key,
      name,
    });
    expect(enrolled).toMatchObject({ facility: FACILITY, relay: relay.id });
    roster.add(key.deviceId);
    return { key, roster: enrolled.roster };
  }

  /** A device with its own log; peer links through the in-memory network, relay link over ws. */
  async function device(name: string, opts: { peerNetwork?: boolean } = {}): Promise<TestDevice> {
    const { key } = await enroll(name);
    const store = new MemoryEventStore();
    const storage = new MemoryStorageAdapter();
    const log = await DeviceLog.open({
      facility: FACILITY,
      key,
      eventStore: store,
      storage,
      roster,
      relay: relay.id,
      network: opts.peerNetwork === true ? [peers.adapter(name)] : [],
    });
    const d: TestDevice = {
      name,
      key,
      log,
      store,
      storage,
      connectToRelay: (link = {}) => {
        const hold = link.hold;
        log.addNetworkAdapter(
          new WebSocketClientAdapter({
            url: `ws://127.0.0.1:${port}`,
            identity: key,
            facility: FACILITY,
            roster,
            expectedPeer: relay.id,
            backoff: { baseMs: 20, maxMs: 200 },
            ...(hold === undefined
              ? {}
              : { documentPolicy: (_peer, doc) => !hold(doc), limits: { maxForbiddenRequests: 1_000_000 } }),
          }),
        );
      },
    };
    devices.push(d);
    return d;
  }

  const status = (d: TestDevice, id: EventId) => d.log.get(id)?.status;
  const verdictOf = (d: TestDevice, id: EventId) => {
    const verdict = d.log.get(id)?.verdict;
    return (verdict === undefined ? undefined : verdictAbout(verdict, id)) as
      Record<string, unknown> | undefined;
  };

  beforeAll(async () => {
    dir = await tempDir('accord-relay-int-');
    relay = await startRelay();
    port = relay.port; // restarts reuse it: devices reconnect to the same address
    roster.add(relay.id);
    pump = setInterval(() => void peers.deliverAll(), 20);
  });

  afterAll(async () => {
    clearInterval(pump);
    for (const d of devices) await d.log.close();
    await relay.stop();
    await dir.cleanup();
  });

  it('enrolls devices with one-time tokens and answers with a relay-signed roster listing them', async () => {
    const a = await enroll('Front desk');
    expect(await verifyEvent(a.roster)).toBe(true);
    expect(a.roster).toMatchObject({ type: 'RosterUpdated', device: relay.id, facility: FACILITY });
    const listed = (a.roster.data as { devices: { id: string }[] }).devices.map((d) => d.id);
    expect(listed).toContain(a.key.deviceId);
    // A token works once.
    const key = await generateDeviceKey();
    const { token } = await createEnrollmentToken(relayFolder(join(dir.path, 'relay')), FACILITY);
    const post = async () =>
      fetch(`http://127.0.0.1:${port}/enroll`, {
        method: 'POST',
        body: JSON.stringify(await makeEnrollRequest(key, token, 'Again')),
      });
    expect((await post()).status).toBe(201);
    const second = await post();
    expect(second.status).toBe(409);
    expect(await second.json()).toMatchObject({ code: 'RELAY_ALREADY_ENROLLED' });
  });

  it('accepts valid events, rejects a negative stock with 422 and accepts it by itself once stock arrives', async () => {
    const a = await device('A');
    const b = await device('B');
    a.connectToRelay();
    b.connectToRelay();
    const { event: reg } = await a.log.append(registration('P1'));
    const { event: reg2 } = await a.log.append(registration('P2'));
    const { event: lot } = await a.log.append(stock('LOT-1', 1));
    const { event: first } = await a.log.append(bcg('P1', 'LOT-1'));
    const { event: second } = await a.log.append(bcg('P2', 'LOT-1'));
    for (const d of [a, b]) {
      await eventually(() => status(d, second.id) === 'deadletter', `422 on ${d.name}`);
      for (const id of [reg.id, reg2.id, lot.id, first.id]) expect(status(d, id)).toBe('accepted');
      expect(verdictOf(d, second.id)).toMatchObject({
        outcome: 'deadletter',
        code: 422,
        rule: 'RULE_NEGATIVE_STOCK',
        details: { lot: 'LOT-1' },
      });
      expect(
        d.log
          .confirmed()
          .patients()
          .map((p) => p.id),
      ).toEqual(['P1', 'P2']);
    }
    // Stock arrives on another device: the relay re-judges the rejected vaccination by itself
    // (issue #10); nobody retries it (relay-restock.int.test.ts covers the details).
    await b.log.append(stock('LOT-1', 5));
    for (const d of [a, b])
      await eventually(() => status(d, second.id) === 'accepted', `re-judged on ${d.name}`);
    expect(verdictsFor(b.log, second.id)).toHaveLength(2);
  });

  it('rejects a concurrent update of the same field with 409 and merges updates of different fields', async () => {
    const [a, b] = devices.slice(-2) as [TestDevice, TestDevice];
    const { event: reg } = await a.log.append(registration('P3'));
    await eventually(() => status(b, reg.id) === 'accepted', 'P3 on B');
    // Both devices change the family name on the same basis, before either sees the other.
    const [mine, theirs] = await Promise.all([
      a.log.append({
        type: 'PatientDemographicsUpdated',
        data: { patientId: 'P3', changes: { familyName: 'Owusu' } },
      }),
      b.log.append({
        type: 'PatientDemographicsUpdated',
        data: { patientId: 'P3', changes: { familyName: 'Boateng' } },
      }),
    ]);
    const ids = [mine.event.id, theirs.event.id];
    const outcomes = await eventually(() => {
      const s = ids.map((id) => status(a, id));
      return s.every((x) => x === 'accepted' || x === 'deadletter') ? s : undefined;
    }, 'both verdicts');
    expect([...outcomes].sort()).toEqual(['accepted', 'deadletter']);
    const loser = ids[outcomes.indexOf('deadletter')]!;
    expect(verdictOf(a, loser)).toMatchObject({ code: 409, rule: 'RULE_STALE_BASIS' });
    expect(JSON.stringify(verdictOf(a, loser))).toContain('Owusu');
    expect(JSON.stringify(verdictOf(a, loser))).toContain('Boateng');

    // Different fields at once: both accepted, both changes in the confirmed record.
    const [given, sex] = await Promise.all([
      a.log.append({
        type: 'PatientDemographicsUpdated',
        data: { patientId: 'P3', changes: { givenName: 'Efua' } },
      }),
      b.log.append({
        type: 'PatientDemographicsUpdated',
        data: { patientId: 'P3', changes: { sex: 'other' } },
      }),
    ]);
    for (const d of [a, b]) {
      await eventually(
        () => status(d, given.event.id) === 'accepted' && status(d, sex.event.id) === 'accepted',
        `merge on ${d.name}`,
      );
      expect(d.log.confirmed().patient('P3')).toMatchObject({ givenName: 'Efua', sex: 'other' });
    }
  });

  it('answers an update to a merged patient with 410 naming the survivor', async () => {
    const [a, b] = devices.slice(-2) as [TestDevice, TestDevice];
    await a.log.append(registration('P4'));
    await a.log.append(registration('P5', 'Duplicate'));
    const { event: merge } = await a.log.append({
      type: 'PatientsMerged',
      data: { survivorId: 'P4', mergedId: 'P5' },
    });
    await eventually(() => status(b, merge.id) === 'accepted', 'merge on B');
    const { event: late } = await b.log.append({
      type: 'PatientDemographicsUpdated',
      data: { patientId: 'P5', changes: { givenName: 'Late' } },
    });
    for (const d of [a, b]) {
      await eventually(() => status(d, late.id) === 'deadletter', `410 on ${d.name}`);
      expect(verdictOf(d, late.id)).toMatchObject({
        code: 410,
        rule: 'RULE_MERGED',
        details: { survivorId: 'P4' },
      });
    }
  });

  it('gives an event whose dependency is held back a 404, then supersedes it when the dependency arrives', async () => {
    const w = await device('W', { peerNetwork: true });
    const z = await device('Z', { peerNetwork: true });
    const { event: reg } = await w.log.append(registration('P6'));
    await eventually(() => z.log.get(reg.id), 'P6 reaches Z over the peer link');
    // Z talks to the relay but holds back W's segment: the relay sees Z's event, not its dependency.
    z.connectToRelay({ hold: (doc) => doc === segmentDocumentId(FACILITY, w.key.deviceId, 0) });
    const { event: lot } = await z.log.append(stock('LOT-6', 3));
    const { event: dose } = await z.log.append(bcg('P6', 'LOT-6'));
    expect(dose.deps).toContain(reg.id);
    await eventually(() => status(z, dose.id) === 'deadletter', '404 on Z').catch((e) => {
      console.log(
        'DBG',
        status(z, dose.id),
        status(z, lot.id),
        status(z, reg.id),
        JSON.stringify(verdictOf(z, dose.id)),
      );
      throw e;
    });
    expect(status(z, lot.id)).toBe('accepted');
    expect(verdictOf(z, dose.id)).toMatchObject({ code: 404, rule: 'RULE_DEPENDENCY_MISSING' });
    // The dependency arrives: the relay re-validates on its own.
    w.connectToRelay();
    for (const d of [w, z]) {
      await eventually(() => status(d, dose.id) === 'accepted', `superseded on ${d.name}`);
      expect(status(d, reg.id)).toBe('accepted');
    }
    expect(verdictsFor(z.log, dose.id)).toHaveLength(2);
  });

  it('deadletters a verdict forged by a device with 403 and ignores it', async () => {
    const [a, b] = devices.slice(0, 2) as [TestDevice, TestDevice];
    const { event: reg } = await a.log.append(registration('P7'));
    const forged = await b.log.appendSystem({
      type: SystemEventType.Verdict,
      subject: { kind: 'event', id: reg.id },
      data: {
        target: reg.id,
        outcome: 'deadletter',
        code: 422,
        rule: 'RULE_FAKE',
        reason: 'forged',
        details: {},
        ruleSet: 'x',
      },
      deps: [reg.id],
    });
    const forgedVerdict = await eventually(() => {
      return verdictsFor(a.log, forged.id).find(({ event }) => event.device === relay.id)?.verdict;
    }, 'verdict on the forgery');
    expect(forgedVerdict).toMatchObject({ outcome: 'deadletter', code: 403 });
    await eventually(() => status(a, reg.id) === 'accepted', 'P7 accepted despite the forgery');
  });

  it('never issues a second verdict across a restart, and continues its sequence after a restore from backup', async () => {
    const [a, b] = devices.slice(0, 2) as [TestDevice, TestDevice];
    const data = join(dir.path, 'relay');
    const backup = join(dir.path, 'relay-backup');
    const { event: before } = await a.log.append(registration('P8'));
    await eventually(() => status(b, before.id) === 'accepted', 'P8 accepted');
    await relay.stop();
    await cp(data, backup, { recursive: true });
    relay = await startRelay();
    const { event: after } = await a.log.append(registration('P9'));
    await eventually(() => status(b, after.id) === 'accepted', 'P9 accepted after restart');
    const seqBefore = verdictOf(b, after.id)?.['seq'] as number;
    // Disaster: the relay's folder is replaced by the older backup.
    await relay.stop();
    const { rm } = await import('node:fs/promises');
    await rm(data, { recursive: true, force: true });
    await cp(backup, data, { recursive: true });
    relay = await startRelay();
    const { event: latest } = await a.log.append(registration('P10'));
    await eventually(() => status(b, latest.id) === 'accepted', 'P10 accepted after the restore');
    expect(verdictOf(b, latest.id)?.['seq']).toBeGreaterThan(seqBefore);
    for (const d of [a, b]) {
      await d.log.settled();
      const counts = new Map<string, number>();
      for (const e of d.log.visibleEvents()) {
        if (e.device !== relay.id) continue;
        for (const { target } of verdictsIn(e)) counts.set(target, (counts.get(target) ?? 0) + 1);
      }
      // Re-validations (retry, superseded 404) explain every target with two verdicts.
      const doubled = [...counts].filter(([, n]) => n > 1).map(([t]) => t);
      for (const target of doubled) {
        const kinds = verdictsFor(d.log, target as EventId).map(({ verdict: v }) =>
          v.outcome === 'deadletter' ? v.code : 'ok',
        );
        expect(kinds.some((k) => k === 404 || k === 422)).toBe(true);
      }
      expect(d.log.incidents().filter((i) => i.code === 'LOG_EQUIVOCATION')).toEqual([]);
    }
  });
});
