import { describe, expect, it } from 'vitest';
import { MarkKeeper } from './mark-keeper.js';
import { MemoryOwnSeqMark, type OwnSeqMarkState } from './own-seq-mark.js';

/** A mark whose writes wait while the gate is shut, and fail while `failing` is set. */
class GatedMark extends MemoryOwnSeqMark {
  #open: Promise<void> = Promise.resolve();
  #release: () => void = () => undefined;
  failing = false;

  shut(): void {
    this.#open = new Promise((resolve) => (this.#release = resolve));
  }

  open(): void {
    this.#release();
  }

  override async write(state: OwnSeqMarkState): Promise<void> {
    await this.#open;
    if (this.failing) throw new Error('disk full');
    return super.write(state);
  }
}

const settled = async (p: Promise<void>): Promise<boolean> => {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  return done;
};

function keeper(mark: GatedMark, errors: unknown[] = []): MarkKeeper {
  return new MarkKeeper({ mark, onError: (err) => errors.push(err), isClosed: () => false }, 0);
}

describe('MarkKeeper reservations', () => {
  it('reserve the next block ahead of need, and never let a number past the durable reservation out', async () => {
    const mark = new GatedMark();
    const marks = keeper(mark);
    // The first number needs the first block.
    const first = marks.reserveAfter(0);
    expect(first).toBeInstanceOf(Promise);
    await first;
    expect(mark.state?.reserved).toBe(1000);
    for (let assigned = 1; assigned < 500; assigned++) expect(marks.reserveAfter(assigned)).toBeUndefined();
    expect(mark.writes).toBe(1);
    // Half a block before its end, the next block is reserved in the background.
    expect(marks.reserveAfter(500)).toBeUndefined();
    await settled(Promise.resolve());
    expect(mark.state?.reserved).toBe(2000);
    expect(mark.writes).toBe(2);
    // A slow write ahead of need holds no append up…
    mark.shut();
    expect(marks.reserveAfter(1500)).toBeUndefined();
    expect(marks.reserveAfter(1999)).toBeUndefined();
    // …but number 2001 waits until its block is durable.
    const next = marks.reserveAfter(2000);
    expect(next).toBeInstanceOf(Promise);
    expect(await settled(next!)).toBe(false);
    expect(mark.state?.reserved).toBe(2000);
    mark.open();
    await next;
    expect(mark.state).toEqual({ reserved: 3000, acked: 0, clean: false });
    expect(mark.writes).toBe(3);
    expect(marks.reserveAfter(2000)).toBeUndefined();
  });

  it('meet a reservation that failed ahead of need again when the block is needed', async () => {
    const mark = new GatedMark();
    const errors: unknown[] = [];
    const marks = keeper(mark, errors);
    await marks.reserveAfter(0);
    mark.failing = true;
    expect(marks.reserveAfter(600)).toBeUndefined(); // fails in the background, unobserved
    await new Promise((resolve) => setImmediate(resolve));
    expect(mark.state?.reserved).toBe(1000);
    // The append that needs number 1001 gets the failure of its own reservation, not a stale one.
    await expect(marks.reserveAfter(1000)).rejects.toThrow('disk full');
    mark.failing = false;
    await marks.reserveAfter(1000);
    expect(mark.state?.reserved).toBe(2000);
    expect(errors).toEqual([]);
  });
});
