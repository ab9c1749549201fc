// Three agent processes converge after one of them spent a while off the network (P1, P2).
import { describe, expect, it } from 'vitest';
import { initDevice } from '@accord/device';
import { AgentProcess, agentWorkspace, eventually, registration } from './test-support.js';

const { path, agents } = agentWorkspace('accord-converge-');

async function eventIds(a: AgentProcess): Promise<string> {
  const { json } = await a.api<{ event: { id: string } }[]>('GET', '/api/events');
  return json
    .map((e) => e.event.id)
    .sort()
    .join(',');
}

describe('three devices, one offline for a while', () => {
  it('all converge to the same events, patients and counters', async () => {
    const roster = path('roster.json');
    for (const n of [1, 2, 3])
      await initDevice({ data: path(`d${n}`), facility: 'clinic-1', name: `tablet ${n}`, roster });
    // Topology: 1 listens; 2 listens and dials 1; 3 dials 1 and 2.
    const a = await AgentProcess.start([
      '--data',
      path('d1'),
      '--listen',
      '0',
      '--listen-host',
      '127.0.0.1',
      '--http',
      '0',
    ]);
    agents.push(a);
    const b = await AgentProcess.start([
      '--data',
      path('d2'),
      '--listen',
      '0',
      '--listen-host',
      '127.0.0.1',
      '--peer',
      a.peerUrl,
    ]);
    agents.push(b);
    const c = await AgentProcess.start(['--data', path('d3'), '--peer', a.peerUrl, '--peer', b.peerUrl]);
    agents.push(c);

    // c goes offline; everyone records meanwhile.
    expect((await c.api('POST', '/api/network', { online: false })).json).toMatchObject({ online: false });
    const posts = [
      ...[1, 2, 3].map((n) => a.api('POST', '/api/events', registration(n))),
      b.api('POST', '/api/events', {
        type: 'StockReceived',
        data: { lot: 'L-1', antigen: 'BCG', quantity: 30, expiry: '2030-01-01' },
      }),
      ...[4, 5].map((n) => c.api('POST', '/api/events', registration(n))),
    ];
    for (const p of await Promise.all(posts)) expect(p.status).toBe(201);
    await a.api('POST', '/api/events', {
      type: 'PatientCheckedIn',
      data: { patientId: 'P-1', encounterId: 'E-1' },
    });
    await c.api('POST', '/api/events', {
      type: 'PatientCheckedIn',
      data: { patientId: 'P-4', encounterId: 'E-2' },
    });

    // a and b exchange while c is away; c has seen none of it.
    await eventually(
      'a and b to converge',
      async () => (await eventIds(a)) === (await eventIds(b)) && (await eventIds(a)).split(',').length === 5,
    );
    const offline = await c.api<{
      online: boolean;
      peers: { connected: boolean }[];
      counts: { total: number };
    }>('GET', '/api/status');
    expect(offline.json.online).toBe(false);
    expect(offline.json.peers.every((p) => !p.connected)).toBe(true);
    expect(offline.json.counts.total).toBe(3);

    // Back online: everyone ends with every event and byte-identical projections.
    await c.api('POST', '/api/network', { online: true });
    await eventually('all three devices to converge', async () => {
      const ids = await Promise.all([a, b, c].map(eventIds));
      if (ids[0]!.split(',').length !== 8 || ids.some((x) => x !== ids[0])) return false;
      for (const path of ['/api/patients', '/api/counters']) {
        const texts = await Promise.all([a, b, c].map(async (x) => (await x.text(path)).text));
        if (texts.some((t) => t !== texts[0])) return false;
      }
      return true;
    });
    const patients = await c.api<{ id: string }[]>('GET', '/api/patients');
    expect(patients.json.map((p) => p.id).sort()).toEqual(['P-1', 'P-2', 'P-3', 'P-4', 'P-5']);
    const queue = [await a.text('/api/queue'), await c.text('/api/queue')];
    expect(queue[0]!.text).toBe(queue[1]!.text);

    // SIGTERM stops each agent cleanly.
    for (const x of [c, b, a]) {
      expect(await x.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(x.stderr).not.toMatch(/unhandled rejection|uncaught exception/);
    }
  });
});
