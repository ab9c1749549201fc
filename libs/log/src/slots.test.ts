import { describe, expect, it } from 'vitest';
import { Slots } from './slots.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('Slots', () => {
  it('runs at most `limit` tasks at once, the rest in call order, and frees a slot whatever a task did', async () => {
    const slots = new Slots(2);
    const release = new Map<number, (fail: boolean) => void>();
    const started: (number | string)[] = [];
    const results = Array.from({ length: 6 }, (_, i) =>
      slots
        .run(
          () =>
            new Promise<number>((resolve, reject) => {
              started.push(i);
              release.set(i, (fail) => (fail ? reject(new Error(`task ${i} failed`)) : resolve(i)));
            }),
        )
        .then(
          (v) => `ok ${v}`,
          (e: Error) => e.message,
        ),
    );
    await tick();
    expect(started).toEqual([0, 1]);
    release.get(1)!(true); // a failing task frees its slot too
    await tick();
    expect(started).toEqual([0, 1, 2]);
    release.get(0)!(false);
    await tick();
    expect(started).toEqual([0, 1, 2, 3]);
    // A task started while others wait does not overtake them.
    const late = slots.run(() => {
      started.push('late');
      return Promise.resolve('late');
    });
    for (const i of [2, 3]) release.get(i)!(false);
    await tick();
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    for (const i of [4, 5]) release.get(i)!(false);
    await tick();
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 'late']);
    expect(await Promise.all(results)).toEqual(['ok 0', 'task 1 failed', 'ok 2', 'ok 3', 'ok 4', 'ok 5']);
    expect(await late).toBe('late');
  });

  it('refuses a limit below one', () => {
    expect(() => new Slots(0)).toThrow(RangeError);
  });
});
