// `accord demo`: a relay and three devices on fixed ports, seeded once with a 422 and a 409 that
// every device shows, reused by a second start, refused with a code when a port is taken.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accordArgv,
  AgentProcess,
  eventually,
  REPO_ROOT,
  runAccord,
  type Exit,
  type ReadyInfo,
} from './test-support.js';

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

/** Binds `port` on loopback; resolves with the server, or undefined when it is taken. */
function bind(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(server));
  });
}

const close = (s: Server): Promise<void> => new Promise((r) => s.close(() => r()));

/** A `--port-base` whose ports P..P+10+devices are all free on loopback now (random, so parallel runs do not clash). */
async function freePortBase(devices = 3): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const held: Server[] = [];
    let free = true;
    for (let p = base; p <= base + 10 + devices && free; p++) {
      const s = await bind(p);
      if (s === undefined) free = false;
      else held.push(s);
    }
    await Promise.all(held.map(close));
    if (free) return base;
  }
  throw new Error('no free port range on loopback');
}

/** A running `accord demo` (no --exit-after-ready): its stdout once it says it is ready. */
async function startDemo(args: readonly string[]): Promise<{ stdout: string; stop: () => Promise<Exit> }> {
  const child = spawn(process.execPath, accordArgv(['demo', ...args]), {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<Exit>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo not ready after 40 s\n${stderr}`)), 40_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (stdout.includes('Press Ctrl+C to stop.')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((e) => reject(new Error(`demo exited (${e.code ?? e.signal}) before ready\n${stderr}`)));
  }).catch((e: unknown) => {
    child.kill('SIGKILL');
    throw e;
  });
  return {
    stdout,
    stop: async () => {
      child.kill('SIGINT');
      return exited;
    },
  };
}

interface Deadletter {
  code: number;
  rule: string;
  details: Record<string, unknown>;
}

async function getJson<T>(port: number, path: string): Promise<{ status: number; json: T }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, json: (await res.json()) as T };
}

describe('accord demo', () => {
  let base: number;
  let data: string;
  let first: ReadyInfo[];
  let password: string;

  it('runs a relay and three devices on the fixed ports, every device showing the seeded 422 and 409, and stops on SIGINT', async () => {
    base = await freePortBase();
    data = join(dir, 'demo');
    const demo = await startDemo(['--data', data, '--port-base', String(base)]);
    let stopped = false;
    try {
      const { stdout } = demo;
      // The layout: relay on P, device i's Sync Centre and API on P+i, its peer listener on P+10+i.
      expect(stdout).toContain(`{"event":"ready","relay":`);
      expect(stdout).toMatch(
        new RegExp(`"event":"ready","relay":"[^"]+","host":"127.0.0.1","port":${base}\\}`),
      );
      first = readyLines(stdout);
      expect(first.map((r) => [r.name, r.http, r.peer])).toEqual([
        ['Reception', base + 1, base + 11],
        ['Vaccination room', base + 2, base + 12],
        ['Pharmacy', base + 3, base + 13],
      ]);
      expect(new Set(first.map((r) => r.device)).size).toBe(3);
      expect(first.every((r) => r.facility === 'demo-clinic')).toBe(true);
      for (const p of [base, base + 1, base + 2, base + 3])
        expect(stdout).toContain(`http://127.0.0.1:${p}/`);
      // The admin password is printed and kept in the demo folder, readable by its owner only.
      password = (await readFile(join(data, 'admin-password.txt'), 'utf8')).trim();
      expect(password.length).toBeGreaterThanOrEqual(8);
      expect(stdout).toContain(`Admin password of the demo relay: ${password}`);
      expect((await stat(join(data, 'admin-password.txt'))).mode & 0o077).toBe(0);
      expect((await fetch(`http://127.0.0.1:${base}/healthz`)).status).toBe(200);

      // The relay enrolled the three devices.
      const members = JSON.parse(
        await readFile(join(data, 'relay', 'facilities', 'demo-clinic', 'members.json'), 'utf8'),
      ) as { devices: { id: string }[] };
      expect(members.devices.map((d) => d.id).sort()).toEqual(first.map((r) => r.device).sort());

      for (const r of first) {
        // Every device shows both rejections, with their codes, once synced (the demo waited for it).
        const dead = await getJson<Deadletter[]>(r.http, '/api/deadletters');
        expect(dead.status).toBe(200);
        expect(dead.json.map((d) => d.code).sort()).toEqual([409, 422]);
        expect(dead.json).toEqual(
          expect.arrayContaining([
            expect.objectContaining({
              code: 422,
              rule: 'RULE_NEGATIVE_STOCK',
              details: expect.objectContaining({ lot: 'BCG-24-001' }) as unknown,
            }),
            expect.objectContaining({
              code: 409,
              rule: 'RULE_STALE_BASIS',
              details: expect.objectContaining({
                patientId: 'P-0001',
                field: 'familyName',
                current: 'Wanjiku',
                proposed: 'Wanjiru-Kamau',
              }) as unknown,
            }),
          ]),
        );
        const status = await getJson<{ counts: { pending: number } }>(r.http, '/api/status');
        expect(status.json.counts.pending).toBe(0);
        // The confirmed record holds the correction that won.
        const amina = await getJson<{ familyName: string }>(r.http, '/api/patients/P-0001');
        expect(amina.json.familyName).toBe('Wanjiku');
        // Each device serves the Sync Centre page on its API's port.
        const page = await fetch(`http://127.0.0.1:${r.http}/`);
        expect(page.status).toBe(200);
        expect(await page.text()).toContain('<script type="module" src="/app.js"></script>');
      }

      // The printed password is the relay's admin password: a device gets an elevation grant with it.
      const elevate = await fetch(`http://127.0.0.1:${base + 1}/api/elevate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ adminPassword: password, action: 'resubmit' }),
      });
      expect(elevate.status, await elevate.clone().text()).toBe(200);
      stopped = true;
      expect(await demo.stop()).toEqual({ code: 0, signal: null });
    } finally {
      if (!stopped) await demo.stop();
    }
  });

  it('reuses the data on a second start: same device ids and password, no demo event recorded twice', async () => {
    expect(first).toBeDefined();
    const second = await runAccord([
      'demo',
      '--data',
      data,
      '--port-base',
      String(base),
      '--exit-after-ready',
    ]);
    expect(second.code, second.stderr).toBe(0);
    expect(readyLines(second.stdout).map((r) => r.device)).toEqual(first.map((r) => r.device));
    expect(second.stdout).toContain(`Admin password of the demo relay: ${password}`);

    // The vaccination room's own events: the story's seven, once.
    const room = await AgentProcess.start(['--data', join(data, 'device-2')]);
    try {
      const own = await room.api<unknown[]>('GET', `/api/events?device=${room.ready.device}`);
      expect(own.json).toHaveLength(7);
      const patients = await room.api<{ id: string }[]>('GET', '/api/patients');
      expect(patients.json.map((p) => p.id).sort()).toEqual(['P-0001', 'P-0002', 'P-0003']);
      const dead = await room.api<Deadletter[]>('GET', '/api/deadletters');
      expect(dead.json.map((d) => d.code).sort()).toEqual([409, 422]);
      const status = await room.api<{ counts: { total: number } }>('GET', '/api/status');
      expect(status.json.counts.total).toBe(15);
      // `accord device run` serves the Sync Centre page (apps/sync-centre) on the API's port too.
      const script = await room.text('/app.js');
      expect(script.status).toBe(200);
      expect(script.text).toContain('/api/stream');
    } finally {
      expect(await room.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    }
  });

  it('finishes a seed cut short by SIGINT on the next start, recording nothing twice', async () => {
    const cutBase = await freePortBase();
    const cut = join(dir, 'cut');
    const child = spawn(
      process.execPath,
      accordArgv(['demo', '--data', cut, '--port-base', String(cutBase)]),
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<Exit>((r) => child.on('exit', (code, signal) => r({ code, signal })));
    // Interrupt as soon as the pharmacy recorded its first stock lot: the seed has begun, not ended.
    // A demo starts four processes: 20 s was not enough on a machine at load 20-29.
    await eventually(
      'the seed began',
      async () => {
        try {
          const res = await fetch(`http://127.0.0.1:${cutBase + 3}/api/events`);
          return res.ok && ((await res.json()) as unknown[]).length > 0;
        } catch {
          return false;
        }
      },
      60_000,
    );
    child.kill('SIGINT');
    expect(await exited, stderr).toEqual({ code: 0, signal: null });
    expect(stderr).toContain('stopping while seeding');
    // The next start finishes the seed: the same steps, answered by their Idempotency-Keys where done.
    const demo = await startDemo(['--data', cut, '--port-base', String(cutBase)]);
    try {
      for (const p of [cutBase + 1, cutBase + 2, cutBase + 3]) {
        const status = await getJson<{ counts: { total: number; pending: number } }>(p, '/api/status');
        expect(status.json.counts).toMatchObject({ total: 15, pending: 0 });
        const dead = await getJson<Deadletter[]>(p, '/api/deadletters');
        expect(dead.json.map((d) => d.code).sort()).toEqual([409, 422]);
      }
    } finally {
      expect(await demo.stop()).toEqual({ code: 0, signal: null });
    }
  }, 120_000);

  it('refuses a port in use with CLI_PORT_IN_USE naming the port, before creating anything', async () => {
    const taken = await freePortBase();
    const holder = await bind(taken + 2);
    expect(holder).toBeDefined();
    try {
      const folder = join(dir, 'clash');
      const r = await runAccord([
        'demo',
        '--data',
        folder,
        '--port-base',
        String(taken),
        '--exit-after-ready',
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`accord: CLI_PORT_IN_USE: port ${taken + 2} (Vaccination room`);
      expect(r.stderr).toContain('--port-base');
      await expect(stat(folder)).rejects.toThrow();
    } finally {
      await close(holder!);
    }
  });

  it('refuses a port base or a device count outside the layout as a usage error', async () => {
    for (const args of [
      ['--port-base', '0'],
      ['--port-base', '65530'],
      ['--devices', '1'],
      ['--devices', '10'],
      ['--devices', 'three'],
    ]) {
      const r = await runAccord(['demo', '--data', join(dir, 'unused'), ...args, '--exit-after-ready']);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain('CLI_USAGE');
    }
  });
});
