// The agent on its production network: authenticated WebSockets on loopback.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceAgent } from './agent.js';
import { initDevice } from './data-folder.js';
import { writeJsonAtomic } from '@accord/storage-level';
import { readRosterFile } from './roster-file.js';
import { FakeRelay } from './testing.js';
import { asFacilityId, SystemEventType, type EventId } from '@accord/protocol';

let dir: string;
const running: DeviceAgent[] = [];
const relays: FakeRelay[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-ws-'));
});
afterEach(async () => {
  for (const a of running.splice(0).reverse()) await a.stop();
  for (const r of relays.splice(0)) await r.close();
  await rm(dir, { recursive: true, force: true });
});

/** A JSON answer of the agent's HTTP API (shape checked by the assertions). */
interface Answer {
  status: number;
  json: { id: EventId; relay: { lastContact: string }; lastVerdict: unknown } & Record<string, unknown>;
}

async function api(agent: DeviceAgent, method: string, path: string): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${agent.httpPort}${path}`, {
    method,
    ...(method === 'POST' ? { headers: { 'content-type': 'application/json' } } : {}),
  });
  return { status: res.status, json: (await res.json()) as Answer['json'] };
}

async function eventually(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) expect.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const stock = (lot: string) => ({
  type: 'StockReceived',
  data: { lot, antigen: 'BCG', quantity: 5, expiry: '2030-01-01' },
});

describe('DeviceAgent on WebSockets', () => {
  it('syncs, reports peers, goes offline and back, and drops a device revoked in the roster file', async () => {
    const roster = join(dir, 'roster.json');
    for (const n of ['a', 'b'])
      await initDevice({ data: join(dir, n), facility: 'clinic-1', name: n, roster });
    const diagnostics: string[] = [];
    const a = await DeviceAgent.start({
      data: join(dir, 'a'),
      listen: 0,
      listenHost: '127.0.0.1',
      rosterPollMs: 20,
      onDiagnostic: (m) => diagnostics.push(m),
    });
    running.push(a);
    expect(a.peerPort).toBeGreaterThan(0);
    const b = await DeviceAgent.start({
      data: join(dir, 'b'),
      peers: [`ws://127.0.0.1:${a.peerPort}`],
      rosterPollMs: 20,
    });
    running.push(b);
    expect(b.peerPort).toBeNull();

    const first = await b.log.append(stock('L-1'));
    await eventually('a to receive b’s event', () => a.log.get(first.event.id) !== undefined);
    const seenByA = a.network.peers().find((p) => p.peer === b.deviceId);
    expect(seenByA).toMatchObject({ connected: true, direction: 'server' });
    expect(Date.parse(seenByA!.lastContact!)).toBeGreaterThan(0);
    expect(b.network.peers()).toMatchObject([
      { peer: a.deviceId, connected: true, direction: 'client', state: 'connected' },
    ]);

    b.network.setOnline(false);
    expect(b.network.online).toBe(false);
    await eventually('a to see b leave', () => a.network.peers().every((p) => !p.connected));
    // Last contact is remembered after the session ended.
    expect(a.network.peers().find((p) => p.peer === b.deviceId)?.lastContact).not.toBeNull();
    b.network.setOnline(true);
    const second = await b.log.append(stock('L-2'));
    await eventually('b to reconnect and deliver', () => a.log.get(second.event.id) !== undefined);

    const file = (await readRosterFile(roster))!;
    await writeJsonAtomic(roster, {
      ...file,
      devices: file.devices.map((d) => (d.id === b.deviceId ? { ...d, revoked: true } : d)),
    });
    await eventually('a to drop the revoked device', () => a.network.peers().every((p) => !p.connected));
    await eventually('a to refuse it when it dials again', () =>
      diagnostics.some((m) => m.includes('peer refused')),
    );
  });
});

describe('DeviceAgent with a relay', () => {
  it('dials its relay, follows the relay’s rosters, drops a peer the relay revokes, and resolves a deadletter', async () => {
    const relay = await FakeRelay.start({ facility: asFacilityId('clinic-1'), sync: true });
    relays.push(relay);
    await initDevice({ data: join(dir, 'a'), name: 'a', relay: relay.url, token: relay.issueToken() });
    const diagnostics: string[] = [];
    const a = await DeviceAgent.start({
      data: join(dir, 'a'),
      listen: 0,
      listenHost: '127.0.0.1',
      rosterPollMs: 20,
      onDiagnostic: (m) => diagnostics.push(m),
    });
    running.push(a);
    expect(a.relay).toEqual({ url: relay.url, id: relay.id });
    expect(a.roster.data.version).toBe(1);

    // b enrolls after a started: a learns of b from the relay's next roster, through sync.
    await initDevice({ data: join(dir, 'b'), name: 'b', relay: relay.url, token: relay.issueToken() });
    await eventually('a to adopt roster version 2', () => a.roster.data.version === 2);
    expect((await readRosterFile(join(dir, 'a', 'roster.json')))?.devices.map((d) => d.name)).toEqual([
      'a',
      'b',
    ]);
    const status = await api(a, 'GET', '/api/status');
    expect(status.json.relay).toMatchObject({ url: relay.url, id: relay.id, connected: true });
    expect(Date.parse(status.json.relay.lastContact)).toBeGreaterThan(0);

    const b = await DeviceAgent.start({
      data: join(dir, 'b'),
      peers: [`ws://127.0.0.1:${a.peerPort}`],
      rosterPollMs: 20,
    });
    running.push(b);
    await eventually(
      'b and a to see each other connected',
      () =>
        a.network.peers().some((p) => p.peer === b.deviceId && p.connected) &&
        b.network.peers().some((p) => p.peer === a.deviceId && p.connected),
    );
    expect(b.network.peers()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ peer: relay.id, relay: true, url: relay.url, direction: 'client' }),
        expect.objectContaining({ peer: a.deviceId, url: `ws://127.0.0.1:${a.peerPort}` }),
      ]),
    );

    // The relay rejects one of a's events: every device shows the deadletter; a retries it.
    const own = await a.log.append(stock('L-9'));
    await eventually('the relay to receive a’s event', () => relay.log!.get(own.event.id) !== undefined);
    const verdict = await relay.log!.appendSystem({
      type: SystemEventType.Verdict,
      subject: { kind: 'event', id: own.event.id },
      deps: [own.event.id],
      data: {
        target: own.event.id,
        outcome: 'deadletter',
        code: 422,
        rule: 'RULE_EXPIRED_LOT',
        reason: 'lot L-9 expired',
        details: { lot: 'L-9' },
        ruleSet: 'test/1',
      },
    });
    await eventually('a to see the deadletter', () => a.log.get(own.event.id)?.status === 'deadletter');
    const dead = await api(a, 'GET', '/api/deadletters');
    expect(dead.json).toEqual([
      expect.objectContaining({
        id: own.event.id,
        code: 422,
        rule: 'RULE_EXPIRED_LOT',
        verdictId: verdict.id,
      }),
    ]);
    expect((await api(a, 'GET', '/api/status')).json.lastVerdict).toMatchObject({
      id: verdict.id,
      target: own.event.id,
      outcome: 'deadletter',
      code: 422,
    });
    const retry = await api(a, 'POST', `/api/events/${own.event.id}/retry`);
    expect(retry.status).toBe(201);
    await eventually('the relay to receive the retry', () => relay.log!.get(retry.json.id) !== undefined);
    expect(a.log.get(own.event.id)?.status).toBe('pending');

    // The relay revokes b: a rewrites its roster file and drops b's session, then refuses it.
    await relay.revoke(b.deviceId);
    await eventually('a to adopt roster version 3', () => a.roster.data.version === 3);
    const file = await readRosterFile(join(dir, 'a', 'roster.json'));
    expect(file).toMatchObject({ version: 3, relay: relay.id });
    expect(file?.devices.find((d) => d.id === b.deviceId)?.revoked).toBe(true);
    await eventually(
      'a to drop b',
      () => !a.network.peers().some((p) => p.peer === b.deviceId && p.connected),
    );
    await eventually('a to refuse b when it dials again', () =>
      diagnostics.some((m) => m.includes('peer refused')),
    );
  });
});
