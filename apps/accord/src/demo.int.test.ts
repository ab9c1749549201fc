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
    .filter((l) => l.startsWith('{"event":"ready"'))
    .map((l) => JSON.parse(l) as ReadyInfo);

describe('accord demo', () => {
  it('starts three peer-to-peer devices, prints their URLs, and seeds only on the first run', async () => {
    const data = join(dir, 'demo');
    const first = await runAccord(['demo', '--data', data, '--exit-after-ready']);
    expect(first.code, first.stderr).toBe(0);
    const ready = readyLines(first.stdout);
    expect(ready.map((r) => r.name)).toEqual(['Reception', 'Vaccination room', 'Pharmacy']);
    expect(new Set(ready.map((r) => r.device)).size).toBe(3);
    expect(ready.every((r) => r.facility === 'demo-clinic')).toBe(true);
    for (const r of ready) expect(first.stdout).toContain(`http://127.0.0.1:${r.http}/`);
    const roster = JSON.parse(await readFile(join(data, 'roster.json'), 'utf8')) as {
      devices: { id: string }[];
    };
    expect(roster.devices.map((d) => d.id).sort()).toEqual(ready.map((r) => r.device).sort());

    const second = await runAccord(['demo', '--data', data, '--exit-after-ready']);
    expect(second.code, second.stderr).toBe(0);
    expect(readyLines(second.stdout).map((r) => r.device)).toEqual(ready.map((r) => r.device));

    // The vaccination room saw the reception's patients before it recorded against them, and seeded once.
    const room = await AgentProcess.start(['--data', join(data, 'device-2')]);
    try {
      const own = await room.api<unknown[]>('GET', `/api/events?device=${room.ready.device}`);
      expect(own.json).toHaveLength(3);
      const patients = await room.api<{ id: string }[]>('GET', '/api/patients');
      expect(patients.json.map((p) => p.id)).toEqual(expect.arrayContaining(['P-0001', 'P-0002']));
    } finally {
      expect(await room.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    }
  });
});
