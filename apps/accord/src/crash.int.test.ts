// SIGKILL at seeded random points while a client appends: no acknowledged event is lost (P8).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initDevice } from '@accord/device';
import { AgentProcess, registration, seededRandom, testSeed } from './test-support.js';

let dir: string;
const started: AgentProcess[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-crash-'));
});
afterAll(async () => {
  await Promise.all(started.map((a) => a.stop('SIGKILL')));
  await rm(dir, { recursive: true, force: true });
});

const ROUNDS = 4;
const WRITERS = 4;

/** Every acknowledged id is present, and the device's own seqs are exactly 1..n. */
async function checkDurable(
  agent: AgentProcess,
  acked: ReadonlySet<string>,
  context: string,
): Promise<number> {
  for (const id of acked) {
    const res = await agent.api('GET', `/api/events/${id}`);
    expect(res.status, `${context}: acknowledged event ${id} is missing`).toBe(200);
  }
  const own = await agent.api<{ event: { seq: number; id: string } }[]>(
    'GET',
    `/api/events?device=${agent.ready.device}`,
  );
  const seqs = own.json.map((e) => e.event.seq).sort((x, y) => x - y);
  expect(seqs, `${context}: own seqs must be contiguous from 1`).toEqual(seqs.map((_, i) => i + 1));
  expect(seqs.length).toBeGreaterThanOrEqual(acked.size);
  const status = await agent.api<{ integrity: { holes: unknown[]; corrupt: unknown[] } }>(
    'GET',
    '/api/status',
  );
  expect(status.json.integrity).toMatchObject({ holes: [], corrupt: [] });
  return seqs.length;
}

describe('crash safety', () => {
  it('keeps every 201-acknowledged event across SIGKILLs mid-append', async () => {
    const seed = testSeed();
    const random = seededRandom(seed);
    const data = join(dir, 'tablet');
    await initDevice({ data, facility: 'clinic-1', name: 'tablet' });
    const acked = new Set<string>();
    let next = 0;
    for (let round = 0; round <= ROUNDS; round++) {
      const context = `seed ${seed}, round ${round}`;
      const agent = await AgentProcess.start(['--data', data]);
      started.push(agent);
      await checkDurable(agent, acked, context);
      if (round === ROUNDS) {
        expect(await agent.stop('SIGTERM')).toEqual({ code: 0, signal: null });
        break;
      }
      const killAfter = 3 + Math.floor(random() * 30);
      const killDelayMs = random() * 15;
      let acks = 0;
      let killing = false;
      const writer = async (): Promise<void> => {
        while (!killing) {
          const n = next++;
          let res;
          try {
            res = await agent.api<{ id: string }>('POST', '/api/events', registration(n));
          } catch (e) {
            if (killing) return; // the connection died with the process: not acknowledged
            throw e;
          }
          expect(res.status, context).toBe(201);
          acked.add(res.json.id);
          if (++acks === killAfter) {
            killing = true;
            // Kill a little later, while other appends are somewhere between request and fsync.
            setTimeout(() => agent.child.kill('SIGKILL'), killDelayMs);
          }
        }
      };
      await Promise.all(Array.from({ length: WRITERS }, writer));
      expect((await agent.exited).signal, context).toBe('SIGKILL');
    }
    expect(acked.size).toBeGreaterThan(ROUNDS * 3);
  });
});
