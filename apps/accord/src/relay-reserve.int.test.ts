// Issue #13, scenario 8: the relay re-serves what it holds. A tablet records events, the relay
// verdicts them, the tablet is gone for good, the relay is SIGKILLed and restarted: a brand-new
// tablet and one restored from an old backup both get the gone tablet's events and verdicts from
// the relay alone. Real processes throughout.
import { cp, rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AgentProcess,
  agentWorkspace,
  enrollDevice,
  eventually,
  registration,
  RelayProcess,
  testSeed,
} from './test-support.js';

const { path, agents } = agentWorkspace('accord-relay-reserve-');
const FACILITY = 'clinic-reserve';

interface EventView {
  readonly event: { readonly id: string; readonly device: string };
  readonly status: string;
  readonly verdict?: { readonly id: string };
}

let relay: RelayProcess | undefined;
afterAll(async () => {
  await relay?.stop('SIGKILL');
});

const events = async (agent: AgentProcess): Promise<EventView[]> =>
  (await agent.api<EventView[]>('GET', '/api/events')).json;

describe('the relay re-serves what it holds', () => {
  it('serves a gone tablet’s events and verdicts after a SIGKILL to a new tablet and to one restored from an old backup', async () => {
    const seed = testSeed();
    console.log(`relay-reserve: seed ${seed} (replay with FC_SEED=${seed})`);
    let n = seed % 1000;
    relay = await RelayProcess.start(path('relay'), { logLevel: 'warn' });
    const gone = await enrollDevice(relay, path('gone'), 'gone', FACILITY);
    await enrollDevice(relay, path('old'), 'old', FACILITY);
    await enrollDevice(relay, path('new'), 'new', FACILITY);
    const start = (d: string) => AgentProcess.start(['--data', path(d)]);
    const record = async (agent: AgentProcess, count: number): Promise<string[]> => {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const res = await agent.api<{ id: string }>('POST', '/api/events', registration(n++));
        expect(res.status, JSON.stringify(res.json)).toBe(201);
        ids.push(res.json.id);
      }
      return ids;
    };
    const accepted = async (agent: AgentProcess, ids: readonly string[]): Promise<boolean> => {
      const list = await events(agent);
      return ids.every((id) => list.find((e) => e.event.id === id)?.status === 'accepted');
    };

    // The tablet that will be restored has some history of its own; its backup is taken then.
    const old = await start('old');
    agents.push(old);
    const own = await record(old, 2);
    await eventually('the old tablet’s events accepted', () => accepted(old, own), 30_000);
    expect(await old.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    await cp(path('old'), path('old-backup'), { recursive: true });

    // The tablet that will be gone records alone with the relay.
    const a = await start('gone');
    agents.push(a);
    const lost = await record(a, 6);
    await eventually('the gone tablet’s events accepted', () => accepted(a, lost), 30_000);
    // The relay crashes at once (its document saves lag behind its durable store), and the
    // tablet is gone for good.
    expect(await relay.stop('SIGKILL')).toMatchObject({ signal: 'SIGKILL' });
    const verdictOf = new Map((await events(a)).map((e) => [e.event.id, e.verdict?.id]));
    expect(await a.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    await rm(path('gone'), { recursive: true, force: true });
    relay = await relay.restart();

    await rm(path('old'), { recursive: true, force: true });
    await cp(path('old-backup'), path('old'), { recursive: true });
    const restored = await start('old');
    const fresh = await start('new');
    agents.push(restored, fresh);
    for (const [name, agent] of [
      ['new', fresh],
      ['restored', restored],
    ] as const) {
      await eventually(
        `the gone tablet’s events accepted on the ${name} tablet`,
        () => accepted(agent, lost),
        45_000,
      );
      const list = await events(agent);
      for (const id of lost) {
        const e = list.find((x) => x.event.id === id)!;
        expect(e.event.device).toBe(gone);
        // The very verdict the gone tablet saw, not a second one.
        expect(e.verdict?.id, `verdict of ${id} on the ${name} tablet`).toBe(verdictOf.get(id));
      }
      expect(await accepted(agent, own)).toBe(true);
    }
    const patients = await Promise.all(
      [fresh, restored].map(async (d) => (await d.text('/api/patients')).text),
    );
    expect(patients[1]).toBe(patients[0]);
  }, 150_000);
});
