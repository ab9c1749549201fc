// A small harness for the CPU of the event store's `append` alone (issue #12, session 15):
//   node --max-semi-space-size=2 --conditions=@accord/source --import tsx \
//     tools/bench/store-append-cpu.ts SHAPE [COUNT] [STOREMODULE]
// SHAPE `small`: rounds of 32 concurrent one-event `append` calls (one group commit of 32, as the
// log's append path makes with 64 appenders); `bulk`: one `append` of 2 000 events at a time (a
// cold sync's segment commits). The events are another device's, with ids bound to their slots
// (as every real event's), 400 bytes each (made before the window), into a fresh `openDeviceDatabase` in a temp dir (the
// `events` sublevel, as the device agent has it). After a warm-up of 4 000 events it prints one
// JSON line: the process's CPU (`process.cpuUsage`) and the main thread's (`/proc`) per event,
// events/s, the resident set size after the window and the load average. STOREMODULE (a path to another copy's `src/index.ts`) lets
// before/after runs alternate A B A B; STORE_CPU_PROFILE=file writes a V8 profile of the window.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Session } from 'node:inspector/promises';
import { pathToFileURL } from 'node:url';
import { deviceIdFromPublicKey, eventIdFor } from '@accord/protocol';
import type * as Store from '@accord/storage-level';
import { mainThreadCpuS } from './stats.js';

type StoreModule = typeof Store;

/** Deterministic bytes (xorshift32), so every run stores the same events. */
function bytesOf(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const DEVICE = deviceIdFromPublicKey(bytesOf(7, 32));
const T0 = Date.UTC(2026, 0, 1);

/** Made before the measured window, so that it counts the store alone: ids, and 256 payloads reused. */
const ids: string[] = [];
const payloads = Array.from({ length: 256 }, (_, i) => bytesOf(i + 1, 400));

function event(seq: number): Store.StoredEvent {
  return { device: DEVICE, seq, id: ids[seq]!, bytes: payloads[seq & 255]! };
}

async function runShape(store: Store.EventStore, shape: string, from: number, count: number): Promise<void> {
  if (shape === 'small') {
    for (let seq = from; seq < from + count; seq += 32) {
      const calls: Promise<void>[] = [];
      for (let i = 0; i < 32 && seq + i < from + count; i++) calls.push(store.append([event(seq + i)]));
      await Promise.all(calls);
    }
  } else {
    for (let seq = from; seq < from + count; seq += 2000) {
      const events: Store.StoredEvent[] = [];
      for (let i = 0; i < 2000 && seq + i < from + count; i++) events.push(event(seq + i));
      await store.append(events);
    }
  }
}

async function main(): Promise<void> {
  const [shape = 'small', countArg, moduleArg] = process.argv.slice(2);
  if (shape !== 'small' && shape !== 'bulk') throw new Error('SHAPE is small or bulk');
  const count = Number(countArg ?? (shape === 'small' ? 20_000 : 100_000));
  const mod: StoreModule =
    moduleArg === undefined
      ? await import('@accord/storage-level')
      : ((await import(pathToFileURL(resolve(moduleArg)).href)) as StoreModule);
  for (let seq = 0; seq <= 4000 + count; seq++) ids.push(eventIdFor(T0 + seq, DEVICE, seq));
  const dir = await mkdtemp(join(tmpdir(), 'store-append-cpu-'));
  const db = await mod.openDeviceDatabase(join(dir, 'db'));
  const store = db.eventStore;
  const warm = 4000;
  await runShape(store, shape, 1, warm);
  // STORE_CPU_PROFILE=file.cpuprofile: a V8 CPU profile of the window alone.
  const profile = process.env['STORE_CPU_PROFILE'];
  const session = profile === undefined ? undefined : new Session();
  if (session !== undefined) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
  }
  const load = loadavg()[0]!;
  const cpu0 = process.cpuUsage();
  const main0 = 1e6 * (await mainThreadCpuS());
  const t0 = performance.now();
  await runShape(store, shape, 1 + warm, count);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const mainUs = 1e6 * (await mainThreadCpuS()) - main0;
  if (session !== undefined && profile !== undefined) {
    const { profile: taken } = await session.post('Profiler.stop');
    await writeFile(profile, JSON.stringify(taken));
    session.disconnect();
  }
  const stats = store.stats();
  const rssMb = process.memoryUsage().rss / 2 ** 20;
  await db.close();
  await rm(dir, { recursive: true, force: true });
  const round = (x: number): number => Math.round(x * 10) / 10;
  console.log(
    JSON.stringify({
      impl: moduleArg ?? 'worktree',
      shape,
      count,
      cpu_us_per_event: round((cpu.user + cpu.system) / count),
      main_us_per_event: round(mainUs / count),
      events_per_s: Math.round((count / ms) * 1000),
      batches: stats.batches,
      rss_mb: Math.round(rssMb),
      load: round(load),
    }),
  );
}

await main();
