// Issue #13, scenario 6: the relay's data folder is restored from an older backup while the
// devices hold newer verdicts. The restored relay must relearn its later history from the devices
// before it decides anything or publishes a roster, so it never reuses one of its own sequence
// numbers: every device ends with the same verdicts and projections. Real processes throughout.
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, afterAll } from 'vitest';
import { encodeSignedEvent, verdictsIn } from '@accord/protocol';
import { openDeviceDatabase } from '@accord/storage-level';
import {
  AgentProcess,
  agentWorkspace,
  enrollDevice,
  eventually,
  registration,
  RelayProcess,
  storedEvents,
  testSeed,
} from './test-support.js';

const { path, agents } = agentWorkspace('accord-relay-restore-');
const FACILITY = 'clinic-restore';
const DEVICES = ['r1', 'r2', 'r3'] as const;

interface Status {
  readonly name: string;
  readonly counts: { total: number; pending: number; accepted: number; deadletter: number };
  readonly confirmedSeq: number;
}

interface EventView {
  readonly event: { readonly id: string };
  readonly status: string;
  readonly verdict?: { readonly id: string; readonly seq: number };
}

let relay: RelayProcess | undefined;
afterAll(async () => {
  await relay?.stop('SIGKILL');
});

const status = async (agent: AgentProcess): Promise<Status> =>
  (await agent.api<Status>('GET', '/api/status')).json;

describe('relay restored from an older backup', () => {
  it('decides nothing and publishes no roster before it relearned what the devices hold, so every device ends identical', async () => {
    const seed = testSeed();
    console.log(`relay-restore: seed ${seed} (replay with FC_SEED=${seed})`);
    let n = seed % 1000;
    const data = path('relay');
    const backup = path('relay-backup');

    // A relay that may have been restored waits for every enrolled tablet, for at most
    // --await-devices once the first came back (3 s here, 30 s by default).
    relay = await RelayProcess.start(data, { logLevel: 'warn', awaitDevices: '3s' });
    const relayId = relay.id;
    const ids = new Set<string>();
    for (const d of DEVICES) ids.add(await enrollDevice(relay, path(d), d, FACILITY));
    const start = (d: string) => AgentProcess.start(['--data', path(d)]);
    const devices = await Promise.all(DEVICES.map(start));
    agents.push(...devices);
    const append = async (agent: AgentProcess, count: number): Promise<string[]> => {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const res = await agent.api<{ id: string }>('POST', '/api/events', registration(n++));
        expect(res.status, JSON.stringify(res.json)).toBe(201);
        ids.push(res.json.id);
      }
      return ids;
    };
    const allAccepted = async (online: readonly AgentProcess[], total: number): Promise<boolean> => {
      const s = await Promise.all(online.map(status));
      return s.every((x) => x.counts.accepted === total && x.counts.pending === 0);
    };

    // History the backup will hold.
    for (const d of devices) await append(d, 3);
    await eventually('the first 9 events accepted everywhere', () => allAccepted(devices, 9), 30_000);
    expect(await relay.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    await cp(data, backup, { recursive: true });

    // Newer history every device holds, and the backup does not: a tablet enrolled since, too
    // (the restored members.json will not list it; the relay's signed roster does).
    relay = await relay.restart();
    await enrollDevice(relay, path('r4'), 'r4', FACILITY);
    const late = await start('r4');
    agents.push(late);
    for (const x of devices) await append(x, 4);
    await append(late, 4);
    await eventually('25 events accepted everywhere', () => allAccepted([...devices, late], 25), 30_000);

    // Disaster: the relay goes down with one tablet; the others go on recording meanwhile.
    expect(await relay.stop('SIGKILL')).toMatchObject({ signal: 'SIGKILL' });
    const [a, b, c] = devices as [AgentProcess, AgentProcess, AgentProcess];
    expect(await c.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    // The backup caught events the relay had stored but not judged yet (a backup of a busy
    // relay): the first event of each tablet after the backup, taken from the relay's store.
    const dbOf = (folder: string) => join(folder, 'facilities', FACILITY, 'db');
    const later = await storedEvents(dbOf(data));
    const inBackup = new Set((await storedEvents(dbOf(backup))).map((e) => e.id));
    const judgedLater = new Set(
      later.flatMap((e) => (e.device === relayId ? verdictsIn(e) : [])).map((v) => v.target),
    );
    const fresh = later.filter((e) => ids.has(e.device) && !inBackup.has(e.id) && judgedLater.has(e.id));
    const unjudged = fresh.filter((e) => !fresh.some((o) => o.device === e.device && o.seq < e.seq));
    expect(unjudged).toHaveLength(DEVICES.length);
    const db = await openDeviceDatabase(dbOf(backup));
    await db.eventStore.append(
      unjudged.map((e) => ({ device: e.device, seq: e.seq, id: e.id, bytes: encodeSignedEvent(e) })),
    );
    await db.close();

    const offline = [...(await append(a, 3)), ...(await append(b, 3)), ...(await append(late, 2))];
    await rm(data, { recursive: true, force: true });
    await cp(backup, data, { recursive: true });
    relay = await relay.restart();
    expect(relay.id).toBe(relayId);

    await eventually(
      'the events recorded while the relay was down accepted on the online tablets',
      async () => {
        const lists = await Promise.all([a, b, late].map((x) => x.api<EventView[]>('GET', '/api/events')));
        return lists.every((l) =>
          offline.every((id) => l.json.find((e) => e.event.id === id)?.status === 'accepted'),
        );
      },
      45_000,
    );
    // It went ahead without r3 (away) once --await-devices ran out, and said so.
    const wentAhead = relay
      .logs()
      .find((l) => String(l['msg']).startsWith('writing before every enrolled device'));
    expect(wentAhead?.['detail']).toMatchObject({ missing: [[...ids][2]] });
    expect((wentAhead?.['detail'] as { waitedMs: number }).waitedMs).toBeLessThan(30_000);
    const c2 = await start('r3');
    agents.push(c2);
    const online = [a, b, c2, late];
    await append(c2, 1);
    await eventually('34 events accepted on every tablet', () => allAccepted(online, 34), 45_000);

    // Identical everywhere: each event's verdict, the confirmed sequence, the projections.
    const statuses = await Promise.all(online.map(status));
    for (const s of statuses) expect(s.confirmedSeq).toBe(34);
    const lists = await Promise.all(online.map((d) => d.api<EventView[]>('GET', '/api/events')));
    const verdicts = lists.map((l) =>
      Object.fromEntries(l.json.map((e) => [e.event.id, e.verdict?.id ?? null])),
    );
    expect(Object.keys(verdicts[0]!)).toHaveLength(34);
    for (const v of verdicts.slice(1)) expect(v).toEqual(verdicts[0]);
    const patients = await Promise.all(online.map(async (d) => (await d.text('/api/patients')).text));
    for (const p of patients.slice(1)) expect(p).toBe(patients[0]);
    const incidents = await Promise.all(
      online.map(async (d) => (await d.api<{ code: string }[]>('GET', '/api/incidents')).json),
    );
    for (const list of incidents) {
      expect(list.filter((i) => i.code === 'LOG_EQUIVOCATION')).toEqual([]);
    }

    // The relay's store: one verdict per submission, accepted seqs exactly 1..34, and its own
    // event numbers used once each.
    for (const d of online) expect(await d.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(await relay.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const stored = await storedEvents(dbOf(data));
    const own = stored.filter((e) => e.device === relayId).map((e) => e.seq);
    expect(new Set(own).size).toBe(own.length);
    const issued = stored.flatMap((e) => (e.device === relayId ? verdictsIn(e) : []));
    const targets = issued.map((v) => v.target);
    expect(new Set(targets).size).toBe(targets.length);
    const seqs = issued.map((v) => (v.outcome === 'accepted' ? v.seq : -1)).sort((x, y) => x - y);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(seqs).toHaveLength(34);
  }, 180_000);
});
