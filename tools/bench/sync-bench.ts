// The sync sections of `npm run bench`: a cold sync of the whole history from a device
// agent (a separate process) to a new, empty device over loopback WebSocket, with bytes
// on the wire next to gzip of the same events; and the resident memory of a device
// process holding that history.
import { spawn, type ChildProcess } from 'node:child_process';
import { get, type ClientRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import {
  encodeSignedEvent,
  exportDeviceKey,
  generateDeviceKey,
  type DeviceId,
  type SignedEvent,
} from '@accord/protocol';
import { ensureBundle, ensureSyncCentrePage } from '../../apps/accord/bin/bundle.mjs';
import type { BenchDevice } from './log-bench.js';
import { progress, settleHarness } from './stats.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A bench child process: each line it prints is one JSON object. */
export interface BenchChild {
  readonly child: ChildProcess;
  next(): Promise<Record<string, unknown>>;
}

/**
 * Starts a bench device process: `script` (a file of tools/bench) compiled to one bundle, as
 * `accord device run` runs (apps/accord/bin/accord.mjs, with its flags and malloc settings): a
 * TypeScript loader would add its own thread and isolate to what is measured. Each line it prints
 * is one JSON object.
 */
export async function startBenchChild(script: string, args: readonly string[]): Promise<BenchChild> {
  const bundle = await ensureBundle(
    join(ROOT, 'tools/bench', script),
    join(ROOT, 'node_modules/.cache/accord-bench', script.replace(/\.ts$/, '.mjs')),
  );
  return startBundleChild(bundle, args);
}

/**
 * Starts a compiled bench child `bundle` (see {@link startBenchChild}) with the device agent's
 * flags and malloc settings; each line it prints is one JSON object. With `cpuProf` (a folder), or
 * else `ACCORD_BENCH_CHILD_PROF`, the child writes a V8 CPU profile there when it exits.
 */
export function startBundleChild(
  bundle: string,
  args: readonly string[],
  cpuProf: string | undefined = process.env['ACCORD_BENCH_CHILD_PROF'],
): BenchChild {
  const child = spawn(
    process.execPath,
    [
      ...(cpuProf ? ['--cpu-prof', '--cpu-prof-dir=' + cpuProf] : []),
      // The device agent's flags (apps/accord/bin/accord.mjs).
      '--max-semi-space-size=2',
      '--heap-growing-percent=30',
      // More node flags for a profiling session (e.g. `--heap-prof --heap-prof-dir=…`); after the
      // agent's, so that one of theirs given again here wins (V8 keeps a flag's last value).
      ...(process.env['ACCORD_BENCH_CHILD_FLAGS']?.split(' ').filter((f) => f !== '') ?? []),
      bundle,
      ...args,
    ],
    {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
      // The device agent's malloc settings (apps/accord/bin/accord.mjs's shebang sets them).
      env: { ...process.env, MALLOC_TRIM_THRESHOLD_: '131072', MALLOC_MMAP_THRESHOLD_: '131072' },
    },
  );
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    for (;;) {
      const line = await lines.next();
      if (line.done === true) throw new Error(`bench child process ${bundle} ended early`);
      // Lines that are not JSON come from node flags (`--trace-gc` in ACCORD_BENCH_CHILD_FLAGS).
      if (line.value.startsWith('{')) return JSON.parse(line.value) as Record<string, unknown>;
      if (process.env['ACCORD_BENCH_CHILD_FLAGS'])
        process.stderr.write(`[${String(child.pid)}] ${line.value}\n`);
    }
  };
  return { child, next };
}

interface Served extends BenchChild {
  readonly port: number;
  /** The HTTP API's port, or null when it runs none. */
  readonly httpPort: number | null;
}

/** Starts a served bench device; with `http` false it runs no HTTP API (the memory baseline). */
async function serve(
  device: BenchDevice,
  peer: string,
  relay: DeviceId | undefined,
  http = true,
): Promise<Served> {
  const started = await startBenchChild('serve-device.ts', [
    device.dir,
    JSON.stringify(device.storedKey),
    http ? await ensureSyncCentrePage() : '-',
    peer,
    ...(relay === undefined ? [] : [relay]),
  ]);
  const ready = await started.next();
  if (process.env['ACCORD_BENCH_TRACE']) console.error('serve ready', JSON.stringify(ready));
  return { ...started, port: ready['port'] as number, httpPort: ready['http_port'] as number | null };
}

/** Stops a bench child with SIGTERM and waits for it to exit. */
export async function stopBenchChild(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/**
 * Cold sync: seconds until a new device holds every event, and wire bytes per event.
 *
 * @remarks With `relay`, the served device also holds that relay's events (verdicts and segment
 * seals, see `relaySealHistory`) and the new device trusts that relay: it waits for those events
 * too, and verifies sealed segments by their seals. The gzip reference covers the same events.
 */
export async function benchColdSync(
  device: BenchDevice,
  relay?: { readonly id: DeviceId; readonly events: readonly SignedEvent[] },
): Promise<{
  cold_sync_100k_s: number;
  cold_sync_bytes_per_event: number;
  gzip_bytes_per_event: number;
  cold_sync_verified_by_seal: number;
}> {
  const all = [...device.events, ...(relay?.events ?? [])];
  const total = all.length;
  const gzipBytes = gzipSync(Buffer.concat(all.map((e) => encodeSignedEvent(e)))).length;
  const key = await generateDeviceKey();
  const served = await serve(device, key.deviceId, relay?.id);
  const dir = await mkdtemp(join(tmpdir(), 'accord-bench-new-'));
  await settleHarness();
  // The new device is an agent process of its own too (the bench's own copy of the history
  // stays out of its heap).
  const receiver = await startBenchChild('receive-device.ts', [
    dir,
    JSON.stringify(await exportDeviceKey(key)),
    `ws://127.0.0.1:${served.port}`,
    String(total),
    device.key.deviceId,
    ...(relay === undefined ? [] : ['--relay', relay.id]),
  ]);
  const parentCpu = process.cpuUsage();
  let line = await receiver.next();
  while (line['event'] === 'progress') {
    progress('cold sync', line['size'] as number, total);
    if (process.env['ACCORD_BENCH_TRACE'])
      console.error('t', (line['seconds'] as number).toFixed(2), line['size']);
    line = await receiver.next();
  }
  progress('cold sync', total, total);
  if (process.env['ACCORD_BENCH_TRACE']) {
    const { user, system } = process.cpuUsage(parentCpu);
    console.error(
      `cold sync: the bench process itself used ${((user + system) / 1000).toFixed(0)} ms of CPU, ` +
        `the new device ${((line['cpu_s'] as number) * 1000).toFixed(0)} ms`,
    );
  }
  const seconds = line['seconds'] as number;
  const wireBytes = (line['bytes_in'] as number) + (line['bytes_out'] as number);
  const bySeal = line['by_seal'] as number;
  await new Promise((resolve) => receiver.child.once('exit', resolve));
  await stopBenchChild(served.child);
  await rm(dir, { recursive: true, force: true });
  return {
    cold_sync_100k_s: seconds,
    cold_sync_bytes_per_event: wireBytes / total,
    gzip_bytes_per_event: gzipBytes / total,
    cold_sync_verified_by_seal: bySeal,
  };
}

/**
 * Seconds a served device sits idle at least, and at most, before its steady-state memory is read
 * (between the two, once its RSS has settled: see `serve-device.ts`).
 */
const IDLE_MIN_SECONDS = 15;
const IDLE_MAX_SECONDS = 90;

/**
 * Makes the requests the Sync Centre page makes when it opens on its first screen (Needs
 * attention), from this process: its files, status, deadletters, outbox, environment, and the live
 * status stream, which stays open (returned, to be closed after the reading).
 */
async function openThePage(port: number): Promise<ClientRequest> {
  const origin = `http://127.0.0.1:${port}`;
  const paths = [
    '/',
    '/app.js',
    '/app.css',
    '/api/status',
    '/api/deadletters',
    '/api/outbox',
    '/api/environment',
  ];
  for (const path of paths) {
    const res = await fetch(origin + path);
    if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
    await res.arrayBuffer();
  }
  return await new Promise<ClientRequest>((resolve, reject) => {
    const req = get(`${origin}/api/stream`, (res) => {
      res.resume();
      resolve(req);
    });
    req.on('error', reject);
  });
}

/** One idle-memory reading of a served device: with the HTTP API and the page open, or without. */
async function idleMemory(
  device: BenchDevice,
  relay: DeviceId | undefined,
  http: boolean,
): Promise<{ rss: number; peak: number; settled: boolean; idleSeconds: number }> {
  const served = await serve(device, device.key.deviceId, relay, http);
  const stream = served.httpPort === null ? undefined : await openThePage(served.httpPort);
  served.child.stdin!.write(`rss ${IDLE_MIN_SECONDS} ${IDLE_MAX_SECONDS}\n`);
  const label = http ? 'device idle, page open' : 'device idle, no HTTP API';
  let line = await served.next();
  while (line['event'] === 'idle') {
    progress(label, line['second'] as number, IDLE_MAX_SECONDS);
    line = await served.next();
  }
  stream?.destroy();
  await stopBenchChild(served.child);
  if (line['counted'] !== device.events.length)
    throw new Error(`the served device counted ${String(line['counted'])} of ${device.events.length} events`);
  const reading = {
    rss: line['rss_mb'] as number,
    peak: line['peak_mb'] as number,
    settled: line['settled'] === true,
    idleSeconds: line['idle_s'] as number,
  };
  process.stderr.write(
    `[bench] ${label}: ${reading.rss.toFixed(0)} MB, ${reading.settled ? 'settled' : 'NOT settled'} after ${reading.idleSeconds} s idle\n`,
  );
  return reading;
}

/**
 * Resident memory of a device agent process that holds the whole history, serves its HTTP API with
 * the Sync Centre page and has answered what the page asks when it opens: at steady state, after
 * sitting idle until its RSS settles (at least {@link IDLE_MIN_SECONDS}, at most
 * {@link IDLE_MAX_SECONDS}), and the process's high-water mark. Measured beside it, the
 * same device with no HTTP API: what the page and its routes cost (issue #10's budget: ≤ 10 MB).
 */
export async function benchDeviceMemory(
  device: BenchDevice,
  relay?: DeviceId,
): Promise<{
  device_rss_mb_100k: number;
  device_rss_peak_mb_100k: number;
  device_rss_mb_100k_no_http: number;
}> {
  const bare = await idleMemory(device, relay, false);
  const full = await idleMemory(device, relay, true);
  return {
    device_rss_mb_100k: full.rss,
    device_rss_peak_mb_100k: full.peak,
    device_rss_mb_100k_no_http: bare.rss,
  };
}
