import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { GroupCommitter } from './group-commit.js';
import type { RawOp, RawStore } from './raw-store.js';

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A store whose one write stays pending until `finish` (it keeps no reference to the ops, as LevelDB copies them). */
function pendingStore(): { store: RawStore; started: Promise<number>; finish: () => void } {
  let finish!: () => void;
  let started!: (n: number) => void;
  const startedP = new Promise<number>((resolve) => (started = resolve));
  const store = {
    write(ops: readonly RawOp[]): Promise<void> {
      started(ops.length);
      return new Promise<void>((resolve) => (finish = resolve));
    },
  } as unknown as RawStore;
  return { store, started: startedP, finish: () => finish() };
}

describe('GroupCommitter', () => {
  it('holds neither the ops nor what a request prepared them from while the write is synced', async () => {
    const { store, started, finish } = pendingStore();
    const committer = new GroupCommitter(store, () => new Map<string, Uint8Array>());
    const watched: WeakRef<object>[] = [];
    const submitted = (() => {
      // What a request closes over (an event store's prepared events) and the ops it returns.
      const prepared = { events: new Array(1000).fill(0).map((_, i) => new Uint8Array(100 + i)) };
      const ops: RawOp[] = prepared.events.map((value, i) => ({ type: 'put', key: Uint8Array.of(i), value }));
      watched.push(new WeakRef(prepared), new WeakRef(ops), new WeakRef(ops[0]!));
      return committer.submit((ctx) => {
        ctx.set('seen', prepared.events[0]!);
        return ops;
      });
    })();
    expect(await started).toBe(1000);
    await nextTurn();
    collect();
    await nextTurn();
    // Without the change the batch's requests (and so each one's prepare) were held across the write.
    expect(watched.map((ref) => ref.deref() === undefined)).toEqual([true, true, true]);
    finish();
    await submitted;
    expect(committer.stats()).toEqual({ batches: 1, writes: 1, ops: 1000 });
  });

  it('prepares sync and async requests of one batch in submission order, a throw rejecting only its own', async () => {
    const written: string[][] = [];
    const store = {
      write(ops: readonly RawOp[]): Promise<void> {
        written.push(ops.map((op) => new TextDecoder().decode(op.key)));
        return Promise.resolve();
      },
    } as unknown as RawStore;
    const committer = new GroupCommitter(store, () => [] as string[]);
    const put = (name: string): RawOp => ({
      type: 'put',
      key: new TextEncoder().encode(name),
      value: new Uint8Array(1),
    });
    const seen: string[][] = [];
    const results = await Promise.allSettled([
      committer.submit((ctx) => (seen.push([...ctx]), ctx.push('a'), [put('a')])),
      committer.submit(async (ctx) => {
        await nextTurn();
        seen.push([...ctx]);
        ctx.push('b');
        return [put('b')];
      }),
      committer.submit(() => {
        throw new Error('refused');
      }),
      committer.submit((ctx) => (seen.push([...ctx]), ctx.push('d'), [put('d')])),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(seen).toEqual([[], ['a'], ['a', 'b']]);
    expect(written).toEqual([['a', 'b', 'd']]);
  });
});
