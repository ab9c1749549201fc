// Devices enrolled at different times accept each other at once: a server shows its relay-signed
// roster in the handshake, and a client whose roster predates the server's enrollment learns it.
import { afterAll, describe, expect, it } from 'vitest';
import {
  agentWorkspace,
  AgentProcess,
  enrollDevice,
  eventually,
  registration,
  RelayProcess,
} from './test-support.js';

const FACILITY = 'clinic-membership';
const ws = agentWorkspace('accord-relay-membership-');
let relay: RelayProcess | undefined;
afterAll(async () => {
  await relay?.stop('SIGKILL');
});

describe('membership proofs between devices enrolled at different times', () => {
  it('a peer-only device enrolled first accepts a peer enrolled after it, learning the newer roster from that peer', async () => {
    relay = await RelayProcess.start(ws.path('relay'), { logLevel: 'warn' });
    // The older device: its roster lists only itself, and it never talks to the relay.
    const olderId = await enrollDevice(relay, ws.path('older'), 'Older tablet', FACILITY);
    const newerId = await enrollDevice(relay, ws.path('newer'), 'Newer tablet', FACILITY);
    // The newer device is told about the older one at enrollment; the relay is then gone.
    await relay.stop('SIGTERM');
    relay = undefined;
    const newer = await AgentProcess.start(['--data', ws.path('newer'), '--listen', '0', '--no-relay']);
    ws.agents.push(newer);
    const older = await AgentProcess.start([
      '--data',
      ws.path('older'),
      '--no-relay',
      '--peer',
      newer.peerUrl,
    ]);
    ws.agents.push(older);

    const created = await newer.api<{ id: string }>('POST', '/api/events', registration(1));
    expect(created.status).toBe(201);
    await eventually('the older device to receive the newer one’s event', async () => {
      const r = await older.api('GET', `/api/events/${created.json.id}`);
      return r.status === 200;
    });
    const status = await older.api<{ peers: { peer: string; connected: boolean }[] }>('GET', '/api/status');
    expect(status.json.peers).toContainEqual(expect.objectContaining({ peer: newerId, connected: true }));
    // The older device's roster file now holds the newer, relay-signed roster.
    const { readFile } = await import('node:fs/promises');
    const roster = JSON.parse(await readFile(ws.path('older', 'roster.json'), 'utf8')) as {
      version: number;
      devices: { id: string }[];
    };
    expect(roster.devices.map((d) => d.id).sort()).toEqual([olderId, newerId].sort());
    expect(roster.version).toBe(2);
  });
});
