import { describe, expect, it } from 'vitest';
import type { DeviceId } from '@accord/protocol';
import { LastContactTracker } from './last-contact.js';

const dev = (i: number) => `d${i}` as DeviceId;

describe('LastContactTracker', () => {
  it('counts sessions and keeps the time of the last one that began or ended', () => {
    const t = new LastContactTracker();
    expect(t.get(dev(1))).toBeUndefined();
    t.connected(dev(1), 100);
    expect(t.get(dev(1))).toEqual({ sessions: 1, lastContact: 100 });
    t.disconnected(dev(1), 250);
    expect(t.get(dev(1))).toEqual({ sessions: 0, lastContact: 250 });
    // A stray end never makes the count negative.
    t.disconnected(dev(1), 300);
    expect(t.get(dev(1))).toEqual({ sessions: 0, lastContact: 300 });
  });

  it('remembers at most maxDevices, forgetting the least recently touched', () => {
    const t = new LastContactTracker(2);
    t.connected(dev(1), 1);
    t.connected(dev(2), 2);
    t.disconnected(dev(1), 3); // 1 touched again: 2 is now the oldest
    t.connected(dev(3), 4);
    expect(t.size).toBe(2);
    expect(t.get(dev(2))).toBeUndefined();
    expect(t.get(dev(1))).toEqual({ sessions: 0, lastContact: 3 });
    expect(t.get(dev(3))).toEqual({ sessions: 1, lastContact: 4 });
  });
});
