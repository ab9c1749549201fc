// The agent on its production network: authenticated WebSockets on loopback.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceAgent } from './agent.js';
import { initDevice } from './data-folder.js';
import { writeJsonAtomic } from './json-file.js';
import { readRosterFile } from './roster-file.js';

let dir: string;
const running: DeviceAgent[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-ws-'));
});
afterEach(async () => {
  for (const a of running.splice(0).reverse()) await a.stop();
  await rm(dir, { recursive: true, force: true });
});

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
