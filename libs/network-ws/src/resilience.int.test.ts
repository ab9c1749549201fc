import type { DeviceKeyPair } from '@accord/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { backoffDelay, seededRandom } from './backoff.js';
import { CloseCode } from './close-codes.js';
import {
  docWhere,
  findDoc,
  makeTestFacility,
  nextEvent,
  startClientNode,
  startServerNode,
  type ClientNode,
  type ServerNode,
  type TestFacility,
} from './testing.js';
import type { NetworkEvent } from './types.js';

interface Note {
  text: string;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(
  f: TestFacility,
  key: DeviceKeyPair,
  options: Parameters<typeof startServerNode>[2] = {},
): Promise<ServerNode> {
  const node = await startServerNode(f, key, options);
  cleanups.push(async () => {
    await node.repo.shutdown();
    await node.server.close();
  });
  return node;
}

function client(
  f: TestFacility,
  key: DeviceKeyPair,
  url: string,
  options: Parameters<typeof startClientNode>[3] = {},
): ClientNode {
  const node = startClientNode(f, key, url, options);
  cleanups.push(() => node.repo.shutdown());
  return node;
}

const isConnected = (e: NetworkEvent): boolean => e.type === 'peer-connected';
const isDisconnected = (e: NetworkEvent): e is Extract<NetworkEvent, { type: 'peer-disconnected' }> =>
  e.type === 'peer-disconnected';

/** Collects events of one type as they come, and lets a test await the n-th. */
function collect<T extends NetworkEvent['type']>(source: ClientNode['client'], type: T) {
  const seen: Extract<NetworkEvent, { type: T }>[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  source.subscribe((e) => {
    if (e.type !== type) return;
    seen.push(e as Extract<NetworkEvent, { type: T }>);
    for (const w of waiters.filter((w) => seen.length >= w.n)) w.resolve();
  });
  return {
    seen,
    count: (n: number) =>
      new Promise<void>((resolve) => (seen.length >= n ? resolve() : waiters.push({ n, resolve }))),
  };
}

describe('reconnection', () => {
  it('after the server dies and restarts on the same port, the client reconnects with seeded backoff and sync resumes', async () => {
    const f = await makeTestFacility(2);
    const [s, c] = f.keys as [DeviceKeyPair, DeviceKeyPair];
    const first = await startServerNode(f, s);
    const port = first.server.address()!.port;
    const backoff = { baseMs: 10, maxMs: 80 };
    const node = client(f, c, first.url, { backoff, random: seededRandom(7) });
    await nextEvent(node.client, isConnected);
    const doc = node.repo.create<Note>({ text: 'before' });
    await docWhere(await findDoc<Note>(first.repo, doc.url), (d) => d.text === 'before');

    const scheduled = collect(node.client, 'reconnect-scheduled');
    const lost = nextEvent(node.client, isDisconnected);
    await first.repo.shutdown();
    await first.server.close();
    expect(await lost).toMatchObject({ reason: 'remote-closed', closeCode: CloseCode.GoingAway });
    // Several dials fail against the closed port, each after a longer, jittered delay.
    await scheduled.count(4);
    const expected = seededRandom(7);
    expect(scheduled.seen.slice(0, 4).map((e) => [e.attempt, e.delayMs])).toEqual(
      [0, 1, 2, 3].map((attempt) => [attempt, backoffDelay(attempt, backoff, expected)]),
    );

    const second = await server(f, s, { port });
    await nextEvent(node.client, isConnected);
    // The restarted server starts empty: the client's document syncs to it afresh…
    const there = await findDoc<Note>(second.repo, doc.url);
    await docWhere(there, (d) => d.text === 'before');
    // …and changes flow both ways again.
    there.change((d) => {
      d.text = 'after restart';
    });
    await docWhere(doc, (d) => d.text === 'after restart');
    const stats = node.client.stats();
    expect(stats.reconnects).toBe(1);
    expect(stats.state).toBe('connected');
    expect(stats.attempt).toBe(0);
  });

  it('a dropped frame is recovered by the stall watchdog with fresh sync state', async () => {
    const f = await makeTestFacility(2);
    const [s, c] = f.keys as [DeviceKeyPair, DeviceKeyPair];
    const hub = await server(f, s);
    // A black hole: every numbered frame of the current session is lost (acks still go out, so
    // the server never sees a gap). Only the client's watchdog can notice.
    let blackhole = false;
    let dropped!: () => void;
    const droppedOne = new Promise<void>((resolve) => (dropped = resolve));
    const node = client(f, c, hub.url, {
      timings: { stallTimeoutMs: 150 },
      faults: {
        dropOutgoing: (header) => {
          if (!blackhole || header.type === 'ack') return false;
          dropped();
          return true;
        },
      },
    });
    node.client.subscribe((e) => {
      if (e.type === 'peer-disconnected') blackhole = false;
    });
    await nextEvent(node.client, isConnected);
    const doc = node.repo.create<Note>({ text: 'v1' });
    const there = await findDoc<Note>(hub.repo, doc.url);
    await docWhere(there, (d) => d.text === 'v1');

    blackhole = true;
    const stalled = nextEvent(node.client, isDisconnected);
    doc.change((d) => {
      d.text = 'v2';
    });
    await droppedOne;
    expect(await stalled).toMatchObject({ reason: 'stalled', closeCode: CloseCode.Stalled });
    await docWhere(there, (d) => d.text === 'v2');
    expect(node.client.stats().stalls).toBe(1);
    expect(node.client.stats().reconnects).toBe(1);
  });

  it('a sequence gap (a frame lost, later ones arriving) resets the session at once', async () => {
    const f = await makeTestFacility(2);
    const [s, c] = f.keys as [DeviceKeyPair, DeviceKeyPair];
    const hub = await server(f, s);
    let dropNext = false;
    const node = client(f, c, hub.url, {
      timings: { stallTimeoutMs: 0 }, // the watchdog is off: only the gap can reveal the loss
      faults: {
        dropOutgoing: (header) => {
          if (!dropNext || header.type !== 'sync') return false;
          dropNext = false;
          return true;
        },
      },
    });
    await nextEvent(node.client, isConnected);
    const doc = node.repo.create<Note>({ text: 'v1' });
    const there = await findDoc<Note>(hub.repo, doc.url);
    await docWhere(there, (d) => d.text === 'v1');

    dropNext = true;
    const reset = nextEvent(hub.server, isDisconnected);
    doc.change((d) => {
      d.text = 'v2';
    });
    // A second document makes the client send another numbered frame after the lost one.
    node.repo.create<Note>({ text: 'other' });
    expect(await reset).toMatchObject({ reason: 'lost-frame', closeCode: CloseCode.Stalled });
    await docWhere(there, (d) => d.text === 'v2');
    expect(hub.server.stats().stalls).toBe(1);
  });

  it('forceReconnect() and dropPeer() start a new session at once, and sync continues', async () => {
    const f = await makeTestFacility(2);
    const [s, c] = f.keys as [DeviceKeyPair, DeviceKeyPair];
    const hub = await server(f, s);
    const node = client(f, c, hub.url, { backoff: { baseMs: 5_000, maxMs: 10_000 } });
    await nextEvent(node.client, isConnected);
    const doc = node.repo.create<Note>({ text: 'v1' });
    const there = await findDoc<Note>(hub.repo, doc.url);

    const scheduled = nextEvent(node.client, (e) => e.type === 'reconnect-scheduled');
    const reconnected = nextEvent(node.client, isConnected);
    node.client.forceReconnect();
    // No backoff for a reset: with a 5 s base delay, only an immediate dial passes the guard.
    expect(await scheduled).toMatchObject({ delayMs: 0 });
    await reconnected;

    const back = nextEvent(node.client, isConnected);
    expect(hub.server.dropPeer(c.deviceId)).toBe(true);
    expect(await nextEvent(node.client, isDisconnected)).toMatchObject({
      reason: 'remote-closed',
      closeCode: CloseCode.Reset,
    });
    // The client treats the server's reset like any fault: backoff from attempt 0.
    node.client.forceReconnect();
    await back;
    doc.change((d) => {
      d.text = 'v2';
    });
    await docWhere(there, (d) => d.text === 'v2');
    expect(node.client.stats().reconnects).toBe(2);
    expect(hub.server.stats().reconnects).toBe(2);
  });
});

describe('setOnline', () => {
  it('client offline closes the session and stops dialing; online reconnects and sync resumes', async () => {
    const f = await makeTestFacility(2);
    const [s, c] = f.keys as [DeviceKeyPair, DeviceKeyPair];
    const hub = await server(f, s);
    const node = client(f, c, hub.url);
    await nextEvent(node.client, isConnected);
    const doc = node.repo.create<Note>({ text: 'v1' });
    const there = await findDoc<Note>(hub.repo, doc.url);

    const serverLost = nextEvent(hub.server, isDisconnected);
    const clientLost = nextEvent(node.client, isDisconnected);
    node.client.setOnline(false);
    expect(await clientLost).toMatchObject({ reason: 'offline', closeCode: CloseCode.GoingAway });
    expect(await serverLost).toMatchObject({ peer: c.deviceId, closeCode: CloseCode.GoingAway });
    // Off the network: no session, no pending dial, nobody to send to.
    const offline = node.client.stats();
    expect(offline).toMatchObject({ online: false, state: 'offline', nextDialAt: undefined, peers: [] });
    expect(hub.server.peers()).toEqual([]);
    doc.change((d) => {
      d.text = 'made offline';
    });

    const back = nextEvent(node.client, isConnected);
    node.client.setOnline(true);
    await back;
    await docWhere(there, (d) => d.text === 'made offline');
  });

  it('server offline refuses upgrades with 503; online accepts the retrying client again', async () => {
    const f = await makeTestFacility(2);
    const [s, c] = f.keys as [DeviceKeyPair, DeviceKeyPair];
    const hub = await server(f, s);
    const node = client(f, c, hub.url);
    await nextEvent(node.client, isConnected);
    const doc = node.repo.create<Note>({ text: 'v1' });
    const there = await findDoc<Note>(hub.repo, doc.url);

    const refused = nextEvent(node.client, (e) => e.type === 'refused');
    hub.server.setOnline(false);
    expect(await refused).toMatchObject({
      refusal: { stage: 'upgrade', reason: 'server-refused', status: 503 },
    });
    expect(hub.server.stats().refused.offline).toBeGreaterThanOrEqual(1);
    there.change((d) => {
      d.text = 'while the server was offline';
    });

    const back = nextEvent(node.client, isConnected);
    hub.server.setOnline(true);
    await back;
    await docWhere(doc, (d) => d.text === 'while the server was offline');
  });
});
