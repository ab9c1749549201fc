// `accord demo`: initializes and seeds a three-device facility once, runs it, stops cleanly.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, runAccord, type ReadyInfo } from './test-support.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-demo-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const readyLines = (stdout: string): ReadyInfo[] =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{"event":"ready","device"'))
    .map((l) => JSON.parse(l) as ReadyInfo);

describe('accord demo', () => {
  it('starts a relay and three enrolled devices, prints their URLs, and seeds only on the first run', async () => {
    const data = join(dir, 'demo');
    const first = await runAccord(['demo', '--data', data, '--exit-after-ready']);
    expect(first.code, first.stderr).toBe(0);
    const ready = readyLines(first.stdout);
    expect(ready.map((r) => r.name)).toEqual(['Reception', 'Vaccination room', 'Pharmacy']);
    expect(new Set(ready.map((r) => r.device)).size).toBe(3);
    expect(ready.every((r) => r.facility === 'demo-clinic')).toBe(true);
    for (const r of ready) expect(first.stdout).toContain(`http://127.0.0.1:${r.http}/`);
    expect(first.stdout).toMatch(/\{"event":"ready","relay":"[^"]+"/);
    // The relay enrolled the three devices.
    const members = JSON.parse(
      await readFile(join(data, 'relay', 'facilities', 'demo-clinic', 'members.json'), 'utf8'),
    ) as { devices: { id: string }[] };
    expect(members.devices.map((d) => d.id).sort()).toEqual(ready.map((r) => r.device).sort());

    const second = await runAccord(['demo', '--data', data, '--exit-after-ready']);
    expect(second.code, second.stderr).toBe(0);
    expect(readyLines(second.stdout).map((r) => r.device)).toEqual(ready.map((r) => r.device));

    // The vaccination room saw the reception's patients before it recorded against them, and seeded once.
    const room = await AgentProcess.start(['--data', join(data, 'device-2')]);
    try {
      const own = await room.api<unknown[]>('GET', `/api/events?device=${room.ready.device}`);
      expect(own.json).toHaveLength(6);
      const patients = await room.api<{ id: string }[]>('GET', '/api/patients');
      expect(patients.json.map((p) => p.id)).toEqual(expect.arrayContaining(['P-0001', 'P-0002', 'P-0003']));
      // The relay's verdicts arrived before the demo stopped: one 422, the rest accepted.
      const dead = await room.api<{ code: number; rule: string; details: { lot: string } }[]>(
        'GET',
        '/api/deadletters',
      );
      expect(dead.json).toMatchObject([
        { code: 422, rule: 'RULE_NEGATIVE_STOCK', details: { lot: 'BCG-24-001' } },
      ]);
      const status = await room.api<{ counts: { pending: number; accepted: number } }>('GET', '/api/status');
      expect(status.json.counts.pending).toBe(0);
      // `accord device run` serves the Sync Centre page (apps/sync-centre) on the API's port.
      const page = await room.text('/');
      expect(page.status).toBe(200);
      expect(page.text).toContain('<script type="module" src="/app.js"></script>');
      const script = await room.text('/app.js');
      expect(script.status).toBe(200);
      expect(script.text).toContain('/api/stream');
    } finally {
      expect(await room.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    }
  });
});
