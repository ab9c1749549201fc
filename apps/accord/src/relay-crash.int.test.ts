// SIGKILL the relay at seeded random points while three devices append over HTTP: nothing
// acknowledged is lost, no submission gets two verdicts, devices converge and the relay keeps
// serving after each restart (P1, P2, P3, P8).
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { verdictsIn, type SignedEvent, type VerdictData } from '@accord/protocol';
import {
  AgentProcess,
  agentWorkspace,
  enrollDevice,
  eventually,
  registration,
  RelayProcess,
  seededRandom,
  storedEvents,
  testSeed,
} from './test-support.js';

const { path, agents } = agentWorkspace('accord-relay-crash-');
const FACILITY = 'clinic-crash';
const DEVICES = ['d1', 'd2', 'd3'] as const;
/** Pause between two appends of one writer: steady load, not a flood the relay can never drain. */
const WRITE_GAP_MS = 15;

interface Status {
  readonly name: string;
  readonly counts: { total: number; pending: number; accepted: number; deadletter: number };
  readonly confirmedSeq: number;
  readonly relay: { connected: boolean } | null;
  readonly integrity: { holes: unknown[] };
}

interface EventView {
  readonly event: { readonly id: string };
  readonly status: string;
  readonly verdict?: { readonly id: string };
}

let relay: RelayProcess | undefined;
afterAll(async () => {
  await relay?.stop('SIGKILL');
});

const status = async (agent: AgentProcess): Promise<Status> =>
  (await agent.api<Status>('GET', '/api/status')).json;

/** Relay verdicts per target among `events` (an `AcceptedVerdicts` states one per target). */
function verdictsByTarget(events: readonly SignedEvent[], relayId: string): Map<string, VerdictData[]> {
  const out = new Map<string, VerdictData[]>();
  for (const e of events) {
    if (e.device !== relayId) continue;
    for (const v of verdictsIn(e)) out.set(v.target, [...(out.get(v.target) ?? []), v]);
  }
  return out;
}

describe('relay crash safety', () => {
  it('loses nothing acknowledged and issues one verdict per submission across SIGKILLs of the relay', async () => {
    const seed = testSeed();
    console.log(`relay-crash: seed ${seed} (replay with FC_SEED=${seed})`);
    const random = seededRandom(seed);
    const kills = 2 + Math.floor(random() * 2);

    relay = await RelayProcess.start(path('relay'), { dependencyDeadline: '2s', logLevel: 'warn' });
    const relayId = relay.id;
    await Promise.all(DEVICES.map((d) => enrollDevice(relay!, path(d), d, FACILITY)));
    const devices = await Promise.all(DEVICES.map((d) => AgentProcess.start(['--data', path(d)])));
    agents.push(...devices);

    // Steady load: every device appends registrations of distinct patients (all acceptable).
    const acked = new Set<string>();
    let next = 0;
    let writing = true;
    const writer = async (agent: AgentProcess): Promise<void> => {
      while (writing) {
        const n = next++;
        const res = await agent.api<{ id: string }>('POST', '/api/events', registration(n));
        expect(res.status, JSON.stringify(res.json)).toBe(201);
        acked.add(res.json.id);
        await sleep(WRITE_GAP_MS);
      }
    };
    const writers = Promise.all(devices.map(writer));
    writers.catch(() => undefined); // awaited below; a failing writer fails the test there
    const confirmedNow = async (): Promise<number> =>
      Math.max(...(await Promise.all(devices.map(async (d) => (await status(d)).confirmedSeq))));
    /** `eventually`, whose failure shows where each device stands (a hole in the relay's seqs, …). */
    const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> =>
      eventually(what, check, timeoutMs).catch(async (e: unknown) => {
        const now = await Promise.all(devices.map(status));
        const lines = now.map(
          (s) =>
            `${s.name}: confirmedSeq ${s.confirmedSeq} counts ${JSON.stringify(s.counts)} ` +
            `relay connected ${s.relay?.connected} holes ${JSON.stringify(s.integrity.holes)}`,
        );
        throw new Error(`seed ${seed}: ${String(e)}\n${lines.join('\n')}`);
      });

    for (let k = 0; k < kills; k++) {
      // Kill while the relay is deciding: after it issued verdicts since it (re)started.
      const before = await confirmedNow();
      await waitFor(`relay verdicts after start ${k}`, async () => (await confirmedNow()) > before, 30_000);
      const delay = Math.floor(random() * 800);
      await sleep(delay);
      const exit = await relay.stop('SIGKILL');
      expect(exit.signal).toBe('SIGKILL');
      console.log(`relay-crash: kill ${k + 1}/${kills} ${delay} ms into verdicts (seq ${before}+)`);
      relay = await relay.restart();
      expect(relay.id).toBe(relayId);
    }
    // Some load after the last restart, then let everything settle.
    const last = await confirmedNow();
    await waitFor('verdicts after the last restart', async () => (await confirmedNow()) > last, 30_000);
    writing = false;
    await writers;
    const total = acked.size;
    expect(total).toBeGreaterThan(0);

    let statuses: Status[] = [];
    await waitFor(
      `${total} events accepted on every device`,
      async () => {
        statuses = await Promise.all(devices.map(status));
        return statuses.every(
          (s) => s.counts.accepted === total && s.counts.pending === 0 && s.confirmedSeq === total,
        );
      },
      60_000,
    );
    // The same counts and sequence everywhere: one accepted verdict per event, seqs 1..total.
    for (const s of statuses) {
      expect({ counts: s.counts, confirmedSeq: s.confirmedSeq }).toEqual({
        counts: statuses[0]!.counts,
        confirmedSeq: total,
      });
    }
    const lists = await Promise.all(devices.map((d) => d.api<EventView[]>('GET', '/api/events')));
    const verdictOf = lists.map((l) => new Map(l.json.map((e) => [e.event.id, e.verdict?.id])));
    for (const id of acked) {
      const seen = verdictOf.map((m) => m.get(id));
      expect(seen[0], `acknowledged event ${id}`).toBeDefined();
      expect(seen, `verdict of ${id} on every device`).toEqual([seen[0], seen[0], seen[0]]);
    }
    const deadletters = await Promise.all(devices.map(async (d) => (await d.text('/api/deadletters')).text));
    expect(deadletters).toEqual(['[]', '[]', '[]']);

    // The relay keeps serving.
    const after = await devices[0]!.api<{ id: string }>('POST', '/api/events', {
      type: 'StockReceived',
      data: { lot: 'LOT-AFTER', antigen: 'BCG', quantity: 3, expiry: '2030-01-01' },
    });
    expect(after.status).toBe(201);
    await waitFor(
      'the event after the crashes accepted everywhere',
      async () => {
        const s = await Promise.all(devices.map(status));
        return s.every((x) => x.confirmedSeq === total + 1 && x.counts.pending === 0);
      },
      20_000,
    );
    const health = await fetch(`http://127.0.0.1:${relay.port}/healthz`);
    expect(health.status).toBe(200);

    // What was stored: every device and the relay hold every acknowledged event and exactly one
    // relay verdict per submission, with distinct accepted seqs 1..total+1.
    for (const d of devices) expect(await d.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(await relay.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const stores = [
      ...DEVICES.map((d) => ({ name: d, db: path(d, 'db') })),
      { name: 'relay', db: join(relay.data, 'facilities', FACILITY, 'db') },
    ];
    for (const { name, db } of stores) {
      const events = await storedEvents(db);
      const ids = new Set<string>(events.map((e) => e.id));
      for (const id of acked) expect(ids.has(id), `${name} stores ${id}`).toBe(true);
      const verdicts = verdictsByTarget(events, relayId);
      const submissions = events.filter((e) => e.device !== relayId);
      expect(submissions).toHaveLength(total + 1);
      for (const e of submissions) {
        expect(verdicts.get(e.id)?.length, `${name}: verdicts for ${e.id}`).toBe(1);
      }
      const seqs = [...verdicts.values()]
        .map((v) => (v[0]!.outcome === 'accepted' ? v[0]!.seq : -1))
        .sort((x, y) => x - y);
      expect(seqs, `${name}: accepted seqs`).toEqual(seqs.map((_, i) => i + 1));
    }
  }, 120_000);
});
