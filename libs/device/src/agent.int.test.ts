import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NetworkAdapter, type Message, type PeerId, type PeerMetadata } from '@automerge/automerge-repo';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceAgent, type PeerNetworkFactory } from './agent.js';
import { initDevice } from './data-folder.js';
import type { PeerStatus } from './http-api.js';
import { addToRoster, readRosterFile } from './roster-file.js';
import { writeJsonAtomic } from '@accord/storage-level';

/**
 * An in-process network for the agent's own tests (the WebSocket network has its own suite):
 * every online adapter of the hub is connected to every other; messages are delivered on a
 * later macrotask, as a socket would.
 */
class MemoryHub {
  readonly adapters = new Set<MemoryAdapter>();
  factory(): PeerNetworkFactory {
    return () => {
      const adapter = new MemoryAdapter(this);
      return Promise.resolve({
        adapters: [adapter],
        peerPort: null,
        get online() {
          return adapter.online;
        },
        setOnline: (online: boolean) => adapter.setOnline(online),
        peers: () => adapter.peerStatus(),
        close: () => Promise.resolve(),
      });
    };
  }
}

class MemoryAdapter extends NetworkAdapter {
  readonly #hub: MemoryHub;
  #online = true;
  #connected = false;
  readonly #peers = new Map<PeerId, MemoryAdapter>();
  readonly #lastContact = new Map<PeerId, string>();
  /** Bumped whenever this adapter's links drop, so in-flight messages die with them. */
  #epoch = 0;

  constructor(hub: MemoryHub) {
    super();
    this.#hub = hub;
  }
  isReady(): boolean {
    return true;
  }
  whenReady(): Promise<void> {
    return Promise.resolve();
  }
  connect(peerId: PeerId, peerMetadata?: PeerMetadata): void {
    this.peerId = peerId;
    this.peerMetadata = peerMetadata ?? {};
    this.#connected = true;
    this.#hub.adapters.add(this);
    this.#link();
  }
  #link(): void {
    for (const other of this.#hub.adapters) {
      if (other === this || !other.#usable() || !this.#usable() || this.#peers.has(other.peerId!)) continue;
      this.#peers.set(other.peerId!, other);
      other.#peers.set(this.peerId!, this);
      this.emit('peer-candidate', { peerId: other.peerId!, peerMetadata: other.peerMetadata ?? {} });
      other.emit('peer-candidate', { peerId: this.peerId!, peerMetadata: this.peerMetadata ?? {} });
    }
  }
  #usable(): boolean {
    return this.#online && this.#connected;
  }
  #unlinkAll(): void {
    this.#epoch++;
    for (const [id, other] of this.#peers) {
      other.#epoch++;
      this.#peers.delete(id);
      other.#peers.delete(this.peerId!);
      this.emit('peer-disconnected', { peerId: id });
      other.emit('peer-disconnected', { peerId: this.peerId! });
    }
  }
  send(message: Message): void {
    const target = this.#peers.get(message.targetId);
    if (target === undefined) return;
    // Like a real connection, a message belongs to the link it was sent on: one still in
    // flight when the link drops is lost, never delivered into the next connection.
    const epoch = this.#epoch;
    setTimeout(() => {
      if (target.#peers.get(this.peerId!) !== this || this.#epoch !== epoch) return;
      const at = new Date().toISOString();
      this.#lastContact.set(target.peerId!, at);
      target.#lastContact.set(this.peerId!, at);
      target.emit('message', message);
    }, 0);
  }
  disconnect(): void {
    this.#unlinkAll();
    this.#connected = false;
    this.#hub.adapters.delete(this);
  }
  get online(): boolean {
    return this.#online;
  }
  setOnline(online: boolean): void {
    this.#online = online;
    if (online) this.#link();
    else this.#unlinkAll();
  }
  peerStatus(): readonly PeerStatus[] {
    return [...this.#lastContact].map(([peer, at]) => ({
      peer,
      connected: this.#peers.has(peer),
      lastContact: at,
    }));
  }
}

let dir: string;
let hub: MemoryHub;
const running: DeviceAgent[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-agent-'));
  hub = new MemoryHub();
});
afterEach(async () => {
  for (const a of running.splice(0)) await a.stop();
  await rm(dir, { recursive: true, force: true });
});

async function device(name: string): Promise<string> {
  const data = join(dir, name);
  await initDevice({ data, facility: 'clinic-1', name, roster: join(dir, 'roster.json') });
  return data;
}

async function start(data: string): Promise<DeviceAgent> {
  const agent = await DeviceAgent.start({ data, network: hub.factory(), rosterPollMs: 10 });
  running.push(agent);
  return agent;
}

async function api(
  agent: DeviceAgent,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`http://127.0.0.1:${agent.httpPort}${path}`, {
    method,
    ...(method === 'POST' ? { headers: { 'content-type': 'application/json' } } : {}),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: await res.json() };
}

/** Polls `check` until it holds or the deadline passes (then fails with `what`). */
async function eventually(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 10_000,
  state?: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      expect.fail(`timed out waiting for ${what}${state === undefined ? '' : `\n${state()}`}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const patient = (n: number) => ({
  type: 'PatientRegistered',
  data: {
    patientId: `P-${n}`,
    nationalId: `NID-${n}`,
    givenName: 'Ada',
    familyName: `Lovelace${n}`,
    birthDate: '2025-01-01',
    sex: 'female',
  },
});

describe('DeviceAgent', () => {
  it('records over HTTP, syncs to a peer, and keeps a device off the network while it is offline', async () => {
    const a = await start(await device('a'));
    const b = await start(await device('b'));
    expect(a.ready()).toMatchObject({ event: 'ready', device: a.deviceId, http: a.httpPort, peer: null });

    const first = await api(a, 'POST', '/api/events', patient(1));
    expect(first.status).toBe(201);
    const id = (first.json as { id: string }).id;
    await eventually(
      'b to receive the event',
      async () => (await api(b, 'GET', `/api/events/${id}`)).status === 200,
    );

    expect((await api(b, 'POST', '/api/network', { online: false })).json).toMatchObject({ online: false });
    expect(b.network.online).toBe(false);
    const second = await api(a, 'POST', '/api/events', patient(2));
    const offlineOwn = await api(b, 'POST', '/api/events', patient(3));
    expect([second.status, offlineOwn.status]).toEqual([201, 201]);
    // While b is offline a sees no connected peer.
    await eventually('a to see b disconnected', async () => {
      const s = (await api(a, 'GET', '/api/status')).json as { peers: PeerStatus[] };
      return s.peers.every((p) => !p.connected);
    });
    expect(b.log.get((second.json as { id: string }).id as never)).toBeUndefined();

    await api(b, 'POST', '/api/network', { online: true });
    const converged = (): Promise<boolean> =>
      Promise.resolve(a.log.counts().total === 3 && b.log.counts().total === 3);
    const state = (): string =>
      JSON.stringify({
        a: { counts: a.log.counts(), heads: a.log.heads(), integrity: a.log.integrity() },
        b: { counts: b.log.counts(), heads: b.log.heads(), integrity: b.log.integrity() },
      });
    // b was enrolled after a started: a follows b's segments once its roster learns of b.
    await eventually('both devices to hold 3 events', converged, 15_000, state);
    const pa = await api(a, 'GET', '/api/patients');
    const pb = await api(b, 'GET', '/api/patients');
    expect(JSON.stringify(pa.json)).toBe(JSON.stringify(pb.json));
    expect(pa.json).toHaveLength(3);
  }, 60_000);

  it('shows its environment; the data folder is measured at each request and grows as events are appended', async () => {
    const data = await device('a');
    const a = await start(data);
    const environment = async (): Promise<Record<string, unknown>> =>
      (await api(a, 'GET', '/api/environment')).json as Record<string, unknown>;
    const before = await environment();
    const stored = JSON.parse(await readFile(join(data, 'key.json'), 'utf8')) as { publicKey: string };
    const fingerprint = createHash('sha256')
      .update(Buffer.from(stored.publicKey, 'base64url'))
      .digest('base64');
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(before).toMatchObject({
      device: a.deviceId,
      facility: 'clinic-1',
      keyFingerprint: `SHA256:${fingerprint.replace(/=+$/, '')}`,
      version: pkg.version,
      node: process.version,
      relay: null,
      dataFolder: resolve(data),
      counts: { total: 0 },
      integrity: { holes: [] },
    });
    expect(before['dataFolderBytes']).toBeGreaterThan(0);
    for (let n = 1; n <= 20; n++) expect((await api(a, 'POST', '/api/events', patient(n))).status).toBe(201);
    const after = await environment();
    expect(after).toMatchObject({ counts: { total: 20 } });
    expect(after['dataFolderBytes']).toBeGreaterThan(before['dataFolderBytes'] as number);
  });

  it('keeps every acknowledged event across a clean stop and restart', async () => {
    const data = await device('a');
    const a = await start(data);
    const ids = await Promise.all(
      [1, 2, 3, 4, 5].map(
        async (n) => ((await api(a, 'POST', '/api/events', patient(n))).json as { id: string }).id,
      ),
    );
    await a.stop();
    running.splice(running.indexOf(a), 1);
    await expect(fetch(`http://127.0.0.1:${a.httpPort}/api/status`)).rejects.toThrow();
    const again = await start(data);
    for (const id of ids) expect((await api(again, 'GET', `/api/events/${id}`)).status).toBe(200);
    const own = (await api(again, 'GET', `/api/events?device=${again.deviceId}`)).json as {
      event: { seq: number };
    }[];
    expect(own.map((e) => e.event.seq).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5]);
  });

  it('refuses an uninitialized folder and a database held by another agent, closing what it opened', async () => {
    await expect(
      DeviceAgent.start({ data: join(dir, 'nothing'), network: hub.factory() }),
    ).rejects.toMatchObject({ code: 'DEVICE_NOT_INITIALIZED' });
    const data = await device('a');
    await start(data);
    await expect(DeviceAgent.start({ data, network: hub.factory() })).rejects.toMatchObject({
      code: 'STORAGE_IO',
    });
  });

  it('follows the roster file: a newly added device and a revocation take effect', async () => {
    const a = await start(await device('a'));
    const rosterPath = join(dir, 'roster.json');
    const extra = 'd' + 'A'.repeat(43);
    await addToRoster(rosterPath, a.facility, { id: extra as never, name: 'late tablet' });
    await eventually('the new device to be known', () =>
      Promise.resolve(a.roster.lookup(extra)?.revoked === false),
    );
    const roster = (await readRosterFile(rosterPath))!;
    await writeJsonAtomic(rosterPath, {
      ...roster,
      devices: roster.devices.map((d) => (d.id === extra ? { ...d, revoked: true } : d)),
    });
    await eventually('the revocation to take effect', () =>
      Promise.resolve(a.roster.lookup(extra)?.revoked === true),
    );
  });
});
