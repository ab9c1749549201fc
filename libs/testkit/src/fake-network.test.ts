import type { EventEmitter } from 'node:events';
import type { Message, NetworkAdapter, PeerId } from '@automerge/automerge-repo';
import { isAccordError, WIRE_SEGMENTS_EVENT, type WireSegmentsMessage } from '@accord/protocol';
import { describe, expect, it, vi } from 'vitest';
import { FakeNetwork, type FakeNetworkStats } from './index.js';

/** A node driven by hand: records every adapter event as a short string. */
interface RawNode {
  readonly name: string;
  readonly adapter: NetworkAdapter;
  readonly log: string[];
  readonly received: Message[];
  send(to: string, tag: string): void;
}

function rawNode(net: FakeNetwork, name: string, opts: { echo?: boolean } = {}): RawNode {
  const adapter = net.adapter(name);
  const log: string[] = [];
  const received: Message[] = [];
  const send = (to: string, tag: string): void => {
    adapter.send({
      type: 'test',
      senderId: name as PeerId,
      targetId: to as PeerId,
      data: new TextEncoder().encode(tag),
    });
  };
  adapter.on('peer-candidate', ({ peerId, peerMetadata }) =>
    log.push(`+${peerId}${peerMetadata.isEphemeral ? '~' : ''}`),
  );
  adapter.on('peer-disconnected', ({ peerId }) => log.push(`-${peerId}`));
  adapter.on('message', (m) => {
    received.push(m);
    const tag = new TextDecoder().decode(m.data);
    log.push(`${m.senderId}:${tag}`);
    if (opts.echo === true) send(m.senderId, tag);
  });
  adapter.connect(name as PeerId, { isEphemeral: true });
  return { name, adapter, log, received, send };
}

const tags = (node: RawNode, from: string): string[] =>
  node.log.filter((e) => e.startsWith(`${from}:`)).map((e) => e.slice(from.length + 1));

/** The accounting every run must satisfy: each copy is delivered, dropped, truncated, discarded or in flight. */
function expectBalanced(net: FakeNetwork): FakeNetworkStats {
  const s = net.stats();
  expect(s.sent + s.duplicated).toBe(s.delivered + s.dropped + s.truncated + s.discarded + net.inFlight);
  return s;
}

describe('FakeNetwork links', () => {
  it('connects every node to every other (full mesh) with metadata, and is ready only after that', async () => {
    const net = new FakeNetwork({ seed: 1 });
    const [a, b, c] = ['a', 'b', 'c'].map((n) => rawNode(net, n)) as [RawNode, RawNode, RawNode];
    expect(a.log).toEqual([]); // nothing happens before a drain
    expect(a.adapter.isReady()).toBe(false);
    await net.deliverAll();
    expect(a.adapter.isReady()).toBe(true);
    await a.adapter.whenReady();
    expect(a.log.sort()).toEqual(['+b~', '+c~']);
    expect(b.log.sort()).toEqual(['+a~', '+c~']);
    expect(c.log.sort()).toEqual(['+a~', '+b~']);
  });

  it('delivers a copy of each message, in order per link', async () => {
    const net = new FakeNetwork({ seed: 2 });
    const a = rawNode(net, 'a');
    const b = rawNode(net, 'b');
    await net.deliverAll();
    const original: Message = {
      type: 'test',
      senderId: 'a' as PeerId,
      targetId: 'b' as PeerId,
      data: new Uint8Array([1, 2]),
    };
    a.adapter.send(original);
    for (let i = 0; i < 5; i++) a.send('b', `m${i}`);
    await net.deliverAll();
    expect(b.received[0]).toEqual(original);
    expect(b.received[0]).not.toBe(original);
    expect(tags(b, 'a').slice(1)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(net.stats()).toMatchObject({ sent: 6, delivered: 6, dropped: 0 });
    expectBalanced(net);
  });

  it('partition cuts links across groups (both sides told), heal resets every link', async () => {
    const net = new FakeNetwork({ seed: 3 });
    const [a, b, c] = ['a', 'b', 'c'].map((n) => rawNode(net, n)) as [RawNode, RawNode, RawNode];
    await net.deliverAll();
    a.send('c', 'lost-in-flight');
    net.partition([['a', 'b'], ['c']]);
    a.send('c', 'lost-at-send');
    a.send('b', 'kept');
    await net.deliverAll();
    expect(tags(c, 'a')).toEqual([]);
    expect(tags(b, 'a')).toEqual(['kept']);
    expect(a.log.slice(2)).toEqual(['-c']);
    expect(c.log.slice(2).sort()).toEqual(['-a', '-b']);
    expect(b.log.slice(2)).toEqual(['-c', 'a:kept']);
    expect(net.stats().discarded).toBe(2);

    for (const n of [a, b, c]) n.log.length = 0;
    net.heal();
    await net.deliverAll();
    // a–b was up: it is reset (disconnect then candidate, a fresh session); a–c and b–c come back.
    expect(a.log).toEqual(['-b', '+b~', '+c~']);
    expect(b.log).toEqual(['-a', '+a~', '+c~']);
    expect(c.log.sort()).toEqual(['+a~', '+b~']);
    a.send('c', 'after-heal');
    await net.deliverAll();
    expect(tags(c, 'a')).toEqual(['after-heal']);
    expectBalanced(net);
  });

  it('a node named in no group is isolated, and re-partitioning brings links back', async () => {
    const net = new FakeNetwork({ seed: 4 });
    const [a, b, c] = ['a', 'b', 'c'].map((n) => rawNode(net, n)) as [RawNode, RawNode, RawNode];
    await net.deliverAll();
    net.partition([['a', 'b']]);
    await net.deliverAll();
    expect(c.log.slice(2).sort()).toEqual(['-a', '-b']);
    net.partition([['a', 'b', 'c']]);
    await net.deliverAll();
    expect(c.log.slice(4).sort()).toEqual(['+a~', '+b~']);
    // a–b stayed in one group throughout: its link was never touched.
    expect(a.log).toEqual(['+b~', '+c~', '-c', '+c~']);
    expect(b.log).toEqual(['+a~', '+c~', '-c', '+c~']);
    expect(() => net.partition([['a'], ['a', 'b']])).toThrow(/two groups/);
  });

  it('disconnectNode and reconnectNode take a node off and back on line', async () => {
    const net = new FakeNetwork({ seed: 5 });
    const [a, b] = ['a', 'b'].map((n) => rawNode(net, n)) as [RawNode, RawNode];
    await net.deliverAll();
    net.disconnectNode('b');
    a.send('b', 'x');
    await net.deliverAll();
    expect(a.log).toEqual(['+b~', '-b']);
    expect(b.log).toEqual(['+a~', '-a']);
    net.reconnectNode('b');
    a.send('b', 'still-down'); // the link comes up on the next drain, not before
    await net.deliverAll();
    a.send('b', 'y');
    await net.deliverAll();
    expect(tags(b, 'a')).toEqual(['y']);
    expect(b.log).toEqual(['+a~', '-a', '+a~', 'a:y']);
    expect(() => net.disconnectNode('nobody')).toThrow(/unknown node/);
  });

  it('a restarted node replaces its adapter: peers see the old one leave and the new one arrive', async () => {
    const net = new FakeNetwork({ seed: 6 });
    const a = rawNode(net, 'a');
    const b1 = rawNode(net, 'b');
    await net.deliverAll();
    a.send('b', 'to-old');
    const b2 = rawNode(net, 'b'); // same name, same peer id: a restart
    b1.send('a', 'from-retired');
    await net.deliverAll();
    expect(a.log).toEqual(['+b~', '-b', '+b~']);
    expect(b1.log).toEqual(['+a~']); // the retired adapter hears nothing more
    expect(tags(a, 'b')).toEqual([]);
    a.send('b', 'to-new');
    await net.deliverAll();
    expect(tags(b2, 'a')).toEqual(['to-new']);
    expect(b1.received).toEqual([]);
  });

  it('adapter.disconnect() leaves the network and connect() joins again', async () => {
    const net = new FakeNetwork({ seed: 7 });
    const a = rawNode(net, 'a');
    const b = rawNode(net, 'b');
    await net.deliverAll();
    b.adapter.disconnect();
    await net.deliverAll();
    expect(a.log).toEqual(['+b~', '-b']);
    expect(b.log).toEqual(['+a~', '-a']);
    b.adapter.connect('b' as PeerId);
    await net.deliverAll();
    expect(a.log).toEqual(['+b~', '-b', '+b~']);
  });

  it('rejects rates outside [0, 1]', () => {
    expect(() => new FakeNetwork({ seed: 1, dropRate: 1.5 })).toThrow(RangeError);
    const net = new FakeNetwork({ seed: 1 });
    expect(() => net.setFaults({ reorderRate: -0.1 })).toThrow(RangeError);
  });
});

describe('FakeNetwork faults', () => {
  async function pair(seed: number): Promise<{ net: FakeNetwork; a: RawNode; b: RawNode }> {
    const net = new FakeNetwork({ seed });
    const a = rawNode(net, 'a');
    const b = rawNode(net, 'b');
    await net.deliverAll();
    a.log.length = 0;
    b.log.length = 0;
    return { net, a, b };
  }

  it('a drop loses the message and resets the link on both sides', async () => {
    const { net, a, b } = await pair(10);
    a.send('b', 'before');
    net.setFaults({ dropRate: 1 });
    a.send('b', 'dropped');
    net.setFaults({ dropRate: 0 });
    a.send('b', 'during-reset'); // written to the broken connection before a heard of it
    await net.deliverAll();
    // The connection broke: what was in flight on it is lost too, as with a real socket.
    expect(b.log).toEqual(['-a', '+a~']);
    expect(a.log).toEqual(['-b', '+b~']);
    a.send('b', 'after');
    await net.deliverAll();
    expect(tags(b, 'a')).toEqual(['after']);
    expect(expectBalanced(net)).toMatchObject({ sent: 4, dropped: 1, discarded: 2, delivered: 1 });
  });

  it('a truncated frame never reaches the receiver, which closes the link after what came before it', async () => {
    const { net, a, b } = await pair(11);
    a.send('b', 'first');
    net.setFaults({ truncateRate: 1 });
    a.send('b', 'cut');
    net.setFaults({ truncateRate: 0 });
    a.send('b', 'behind-the-cut');
    await net.deliverAll();
    expect(b.log).toEqual(['a:first', '-a', '+a~']);
    expect(a.log).toEqual(['-b', '+b~']);
    expect(expectBalanced(net)).toMatchObject({ sent: 3, delivered: 1, truncated: 1, discarded: 1 });
  });

  it('a duplicate is delivered twice, back to back', async () => {
    const { net, a, b } = await pair(12);
    net.setFaults({ duplicateRate: 1 });
    a.send('b', 'x');
    a.send('b', 'y');
    await net.deliverAll();
    expect(tags(b, 'a')).toEqual(['x', 'x', 'y', 'y']);
    expect(b.received[0]).not.toBe(b.received[1]);
    expect(expectBalanced(net)).toMatchObject({ sent: 2, duplicated: 2, delivered: 4 });
  });

  it('reordering interleaves links but keeps every link FIFO', async () => {
    const net = new FakeNetwork({ seed: 13, reorderRate: 0.5 });
    const nodes = ['a', 'b', 'c', 'd'].map((n) => rawNode(net, n));
    await net.deliverAll();
    const order: string[] = [];
    for (const n of nodes)
      n.adapter.on('message', (m) =>
        order.push(`${m.senderId}>${n.name}:${new TextDecoder().decode(m.data)}`),
      );
    const sent: string[] = [];
    for (let i = 0; i < 20; i++) {
      for (const from of nodes) {
        for (const to of nodes) {
          if (from === to) continue;
          from.send(to.name, String(i));
          sent.push(`${from.name}>${to.name}:${i}`);
        }
      }
    }
    await net.deliverAll();
    expect([...order].sort()).toEqual([...sent].sort());
    expect(order).not.toEqual(sent);
    expect(net.stats().reordered).toBeGreaterThan(0);
    for (const from of nodes) {
      for (const to of nodes) {
        if (from === to) continue;
        const link = order
          .filter((e) => e.startsWith(`${from.name}>${to.name}:`))
          .map((e) => Number(e.split(':')[1]));
        expect(link).toEqual([...Array(20).keys()]);
      }
    }
  });

  it('no reordering happens at rate 0: global send order', async () => {
    const net = new FakeNetwork({ seed: 14 });
    const [a, b, c] = ['a', 'b', 'c'].map((n) => rawNode(net, n)) as [RawNode, RawNode, RawNode];
    await net.deliverAll();
    const order: string[] = [];
    for (const n of [a, b, c]) n.adapter.on('message', (m) => order.push(new TextDecoder().decode(m.data)));
    a.send('b', '1');
    c.send('a', '2');
    b.send('c', '3');
    a.send('c', '4');
    await net.deliverAll();
    expect(order).toEqual(['1', '2', '3', '4']);
  });

  it('the same seed makes the same decisions; another seed makes others', async () => {
    const run = async (seed: number): Promise<{ stats: FakeNetworkStats; log: string[] }> => {
      const net = new FakeNetwork({
        seed,
        dropRate: 0.1,
        duplicateRate: 0.2,
        reorderRate: 0.3,
        truncateRate: 0.1,
      });
      const [a, b, c] = ['a', 'b', 'c'].map((n) => rawNode(net, n)) as [RawNode, RawNode, RawNode];
      await net.deliverAll();
      for (let i = 0; i < 60; i++) {
        a.send('b', `${i}`);
        b.send('c', `${i}`);
        c.send('a', `${i}`);
        if (i % 10 === 9) await net.deliverAll();
      }
      await net.deliverAll();
      return { stats: expectBalanced(net), log: [...a.log, '|', ...b.log, '|', ...c.log] };
    };
    const first = await run(99);
    expect(await run(99)).toEqual(first);
    expect((await run(100)).log).not.toEqual(first.log);
    expect(
      first.stats.dropped + first.stats.truncated + first.stats.duplicated + first.stats.reordered,
    ).toBeGreaterThan(0);
  });

  it('faults stop when their rates are set to 0', async () => {
    const { net, a, b } = await pair(15);
    net.setFaults({ dropRate: 0.5, duplicateRate: 0.5, truncateRate: 0.5, reorderRate: 0.5 });
    for (let i = 0; i < 20; i++) a.send('b', 'noise');
    await net.deliverAll();
    const before = net.stats();
    expect(before.dropped + before.duplicated + before.truncated).toBeGreaterThan(0);
    net.setFaults({ dropRate: 0, duplicateRate: 0, truncateRate: 0, reorderRate: 0 });
    b.log.length = 0;
    for (let i = 0; i < 50; i++) a.send('b', `${i}`);
    await net.deliverAll();
    expect(tags(b, 'a')).toEqual([...Array(50).keys()].map(String));
    const after = net.stats();
    expect([after.dropped, after.duplicated, after.truncated, after.reordered]).toEqual([
      before.dropped,
      before.duplicated,
      before.truncated,
      before.reordered,
    ]);
  });
});

describe('FakeNetwork.quiet', () => {
  it('resolves once nothing more is sent, including by the nodes\u2019 timers', async () => {
    let timers = 0;
    const net = new FakeNetwork({
      seed: 20,
      // A node that answers late, from a "timer" run by settle(): quiet must wait for it.
      settle: () => {
        if (timers-- > 0) a.send('b', 'late');
        return Promise.resolve();
      },
    });
    const a = rawNode(net, 'a');
    const b = rawNode(net, 'b');
    timers = 3;
    await net.quiet();
    expect(tags(b, 'a')).toEqual(['late', 'late', 'late']);
    expect(net.inFlight).toBe(0);
  });

  it('throws NETWORK_STALLED naming the seed when sync never goes quiet', async () => {
    const net = new FakeNetwork({ seed: 21, maxSteps: 500 });
    const a = rawNode(net, 'a', { echo: true });
    rawNode(net, 'b', { echo: true });
    await net.deliverAll();
    a.send('b', 'ping');
    const error: unknown = await net.quiet().catch((e: unknown) => e);
    expect(isAccordError(error, 'NETWORK_STALLED')).toBe(true);
    expect(String((error as Error).message)).toContain('seed=21');
  });

  it('gives up after maxRounds when a timer keeps sending', async () => {
    const net = new FakeNetwork({
      seed: 22,
      maxRounds: 5,
      settle: () => Promise.resolve(a.send('b', 'tick')),
    });
    const a = rawNode(net, 'a');
    rawNode(net, 'b');
    await expect(net.quiet()).rejects.toThrow(/seed=22: sync did not go quiet within 5 rounds/);
  });

  it('by default settles in real time, and refuses to when setTimeout is faked', async () => {
    const net = new FakeNetwork({ seed: 24 });
    const a = rawNode(net, 'a');
    const b = rawNode(net, 'b');
    setTimeout(() => a.send('b', 'from-a-timer'), 20);
    await net.quiet(); // the real wait lets the timer fire; the next round delivers its message
    expect(tags(b, 'a')).toEqual(['from-a-timer']);
    vi.useFakeTimers();
    try {
      await expect(net.quiet()).rejects.toThrow(/setTimeout is faked.*advanceTimersByTimeAsync/);
    } finally {
      vi.useRealTimers();
    }
  });

  it('reports two nodes claiming one peer id on the next drain', async () => {
    const net = new FakeNetwork({ seed: 23 });
    rawNode(net, 'a');
    net.adapter('b').connect('a' as PeerId);
    await expect(net.deliverAll()).rejects.toThrow(/both use peer id a/);
  });
});

describe('FakeNetwork and the bulk segment transfer', () => {
  /** A node that records the transfer's messages it receives (beside the Repo's). */
  function segmentsNode(net: FakeNetwork, name: string, segments: boolean) {
    const adapter = net.adapter(name, { segments });
    const got: WireSegmentsMessage[] = [];
    (adapter as unknown as EventEmitter).on(WIRE_SEGMENTS_EVENT, (m: WireSegmentsMessage) => got.push(m));
    adapter.connect(name as PeerId, { isEphemeral: true });
    const send = (m: WireSegmentsMessage): void => adapter.send(m as unknown as Message);
    return { got, send };
  }
  const request = (from: string, to: string): WireSegmentsMessage => ({
    type: 'segments-request',
    senderId: from,
    targetId: to,
    documentIds: ['doc1', 'doc2'],
  });

  it('carries it between nodes that both speak it', async () => {
    const net = new FakeNetwork({ seed: 7 });
    const a = segmentsNode(net, 'a', true);
    const b = segmentsNode(net, 'b', true);
    await net.deliverAll();
    a.send(request('a', 'b'));
    await net.deliverAll();
    expect(b.got).toEqual([request('a', 'b')]);
    expect(a.got).toEqual([]);
    expectBalanced(net);
  });

  it('answers a request "unavailable" for every document when one end does not speak it, and withholds the rest', async () => {
    const net = new FakeNetwork({ seed: 8 });
    const a = segmentsNode(net, 'a', true);
    const b = segmentsNode(net, 'b', false);
    await net.deliverAll();
    a.send(request('a', 'b'));
    b.send({ type: 'segment', senderId: 'b', targetId: 'a', documentId: 'doc1', data: new Uint8Array([1]) });
    await net.deliverAll();
    expect(b.got).toEqual([]);
    expect(a.got).toEqual(
      ['doc1', 'doc2'].map((documentId) => ({
        type: 'segment-unavailable',
        senderId: 'b',
        targetId: 'a',
        documentId,
      })),
    );
    expectBalanced(net);
  });
});
