import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CommitQueue } from './commit-queue.js';

describe('CommitQueue', () => {
  it('writes only contiguous runs in sequence order, whatever order items arrive in', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat(), { minLength: 1, maxLength: 60 }),
        fc.scheduler(),
        async (keys, s) => {
          const n = keys.length;
          const written: number[] = [];
          const batches: number[][] = [];
          const queue = new CommitQueue<number>(
            1,
            s.scheduleFunction((batch: readonly number[]) => {
              batches.push([...batch]);
              written.push(...batch);
              return Promise.resolve();
            }),
          );
          const order = Array.from({ length: n }, (_, i) => i + 1).sort(
            (a, b) => keys[a - 1]! - keys[b - 1]! || a - b,
          );
          const done = order.map((seq) =>
            s.schedule(Promise.resolve(seq)).then((q) =>
              queue.submit(q, q).then(() => {
                // When an append is acknowledged, it and everything before it is written.
                for (let k = 1; k <= q; k++) expect(written).toContain(k);
              }),
            ),
          );
          await s.waitFor(Promise.all(done));
          expect(written).toEqual(Array.from({ length: n }, (_, i) => i + 1));
          for (const batch of batches)
            for (let i = 1; i < batch.length; i++) expect(batch[i]).toBe(batch[i - 1]! + 1);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('groups appends that arrive while a write is in flight into one batch', async () => {
    let release!: () => void;
    const batches: number[][] = [];
    const queue = new CommitQueue<number>(1, async (batch) => {
      batches.push([...batch]);
      if (batches.length === 1) await new Promise<void>((r) => (release = r));
    });
    const first = queue.submit(1, 1);
    const rest = Array.from({ length: 63 }, (_, i) => queue.submit(i + 2, i + 2));
    release();
    await Promise.all([first, ...rest]);
    expect(batches).toHaveLength(2);
    expect(batches[1]).toHaveLength(63);
  });

  it('stops after a failed write: waiting and later appends are rejected, nothing after the gap is written', async () => {
    const written: number[] = [];
    const queue = new CommitQueue<number>(1, (batch) => {
      if (batch.includes(2)) return Promise.reject(new Error('disk full'));
      written.push(...batch);
      return Promise.resolve();
    });
    await queue.submit(1, 1);
    await expect(queue.submit(2, 2)).rejects.toThrow('disk full');
    await expect(queue.submit(3, 3)).rejects.toMatchObject({ code: 'LOG_CLOSED' });
    expect(written).toEqual([1]);
    await queue.idle();
  });

  it('an abandoned sequence number poisons the queue instead of leaving a hole', async () => {
    const written: number[] = [];
    const queue = new CommitQueue<number>(1, (batch) => {
      written.push(...batch);
      return Promise.resolve();
    });
    const third = queue.submit(3, 3);
    queue.abandon(2, new Error('sign failed'));
    await expect(third).rejects.toMatchObject({ code: 'LOG_CLOSED' });
    expect(written).toEqual([]);
  });

  it('recovers after a failed write without a restart: once every number after the gap is back, it writes from the gap again', async () => {
    const written: number[] = [];
    let failures = 1;
    const queue = new CommitQueue<number>(1, (batch) => {
      if (batch.includes(2) && failures-- > 0) return Promise.reject(new Error('transient I/O error'));
      written.push(...batch);
      return Promise.resolve();
    });
    await queue.submit(1, 1);
    await expect(queue.submit(2, 2)).rejects.toThrow('transient I/O error');
    expect(queue.failed).toBe(true);
    // Number 3 was handed out before the failure and is still being signed: recovery waits for it.
    let recovered: number | undefined;
    const recovering = queue.recover(3).then((last) => (recovered = last));
    await Promise.resolve();
    expect(recovered).toBeUndefined();
    await expect(queue.submit(3, 3)).rejects.toMatchObject({ code: 'LOG_CLOSED' });
    expect(await recovering).toBe(1);
    expect(queue.failed).toBe(false);
    // The numbers after the last written one are handed out again, and written.
    await queue.submit(2, 20);
    await queue.submit(3, 30);
    expect(written).toEqual([1, 20, 30]);
  });
});
