// P8 crash safety: a separate process appends and prints every acknowledged seq; we
// SIGKILL it at a seeded random point, reopen the store and check that every ack survived.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { crashPayload } from './fixtures/crash-payload.js';
import { LevelEventStore } from './index.js';
import { makeTempDir } from './testing.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CHILD = fileURLToPath(new URL('./fixtures/append-until-killed.ts', import.meta.url));

/** mulberry32: a tiny seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rawSeed = process.env['FC_SEED'];
const SEED = rawSeed !== undefined && /^\d+$/.test(rawSeed) ? Number(rawSeed) : 20261126;

/** Runs the child until it has acknowledged `killAfter` seqs, then SIGKILLs it; returns the acks. */
async function appendUntilKilled(path: string, device: string, killAfter: number): Promise<number[]> {
  const child = spawn(
    process.execPath,
    ['--conditions=@accord/source', '--import', 'tsx', CHILD, path, device, '8'],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const acked: number[] = [];
  for await (const line of createInterface({ input: child.stdout })) {
    if (line.startsWith('ready')) continue;
    acked.push(Number(line));
    if (acked.length === killAfter) child.kill('SIGKILL');
  }
  const { signal } = await exited;
  expect(signal, `child ended by itself: ${stderr}`).toBe('SIGKILL');
  return acked;
}

describe('crash safety (separate process, SIGKILL)', () => {
  it(
    'every acknowledged append survives a SIGKILL at a seeded random point, twice in a row',
    { timeout: 120_000 },
    async () => {
      const random = prng(SEED);
      const dir = await makeTempDir('accord-crash-');
      const device = 'crash-device';
      try {
        const allAcked: number[] = [];
        for (let round = 0; round < 2; round++) {
          const killAfter = 50 + Math.floor(random() * 1500);
          const acked = await appendUntilKilled(dir.path, device, killAfter);
          expect(acked.length).toBeGreaterThanOrEqual(killAfter);
          allAcked.push(...acked);

          const store = await LevelEventStore.open(dir.path);
          try {
            const report = await store.verify();
            expect(report).toMatchObject({ holes: [], corrupt: [], index: [], badKeys: [] });
            const highest = await store.highestSeq(device);
            expect(report.count).toBe(highest);
            expect(highest).toBeGreaterThanOrEqual(Math.max(...allAcked));
            for (const seq of allAcked) {
              expect(await store.getBySeq(device, seq), `acknowledged seq ${seq} lost`).toStrictEqual({
                device,
                seq,
                id: `${device}-${seq}`,
                bytes: crashPayload(device, seq),
              });
            }
            // Meta written along the way is intact (readable, or never written).
            const checkpoint = await store.meta.get('checkpoint');
            if (checkpoint !== undefined)
              expect(Number(new TextDecoder().decode(checkpoint))).toBeLessThanOrEqual(highest);
          } finally {
            await store.close();
          }
        }
      } finally {
        await dir.remove();
      }
    },
  );
});
