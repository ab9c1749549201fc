// Child process of the benchmark: the new, empty device of the cold sync. Opens a fresh LevelDB
// and log that dials the serving device, and reports when it holds every event.
// Usage: receive-device.ts <dir> <stored-key-json> <url> <total> <roster-device-id>... [--relay ID]
// Prints one JSON line per progress step ({"event":"progress",...}) and a final
// {"event":"done", seconds, cpu_s, main_cpu_s, bytes_in, bytes_out, by_seal} (`cpu_s`: this process's CPU
// time over the same span, user and system: on a loaded machine a steadier figure than the wall
// clock; `main_cpu_s`: its main thread's alone, from /proc, 0 elsewhere).
import { join } from 'node:path';
import { importDeviceKey, type DeviceId } from '@accord/protocol';
import { openDeviceDatabase } from '@accord/storage-level';
import { WebSocketClientAdapter } from '@accord/network-ws';
import { BENCH_FACILITY, openDeviceLog, rosterOf } from './log-bench.js';
import { mainThreadCpuS, threadsCpuS } from './stats.js';

const args = process.argv.slice(2);
const relayAt = args.indexOf('--relay');
const relay = relayAt >= 0 ? (args[relayAt + 1] as DeviceId | undefined) : undefined;
const [dir, storedKey, url, totalText, ...members] = relayAt >= 0 ? args.slice(0, relayAt) : args;
if (dir === undefined || storedKey === undefined || url === undefined || totalText === undefined)
  throw new Error('usage: receive-device.ts DIR KEY URL TOTAL MEMBER... [--relay ID]');
const total = Number(totalText);
const key = await importDeviceKey(JSON.parse(storedKey));
const roster = rosterOf(key.deviceId, ...members, ...(relay === undefined ? [] : [relay]));
const db = await openDeviceDatabase(join(dir, 'db'));
const client = new WebSocketClientAdapter({ identity: key, facility: BENCH_FACILITY, roster, url });
// With ACCORD_BENCH_HEAP_SAMPLE=FILE: V8's sampling heap profile of everything allocated over the
// cold sync, collected or not (what the young generation churns through), written to FILE.
const heapSample = process.env['ACCORD_BENCH_HEAP_SAMPLE'];
const inspector = heapSample === undefined ? undefined : new (await import('node:inspector')).Session();
const post = (method: string, params?: object): Promise<unknown> =>
  new Promise((resolve, reject) =>
    inspector!.post(method, params, (err, result) => (err ? reject(err) : resolve(result))),
  );
if (inspector !== undefined) {
  inspector.connect();
  await post('HeapProfiler.startSampling', {
    samplingInterval: 16384,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
}
const start = performance.now();
const startCpu = process.cpuUsage();
const startMainCpu = await mainThreadCpuS();
const startThreads = await threadsCpuS();
const log = await openDeviceLog(db, key, roster, [client], relay);
let last = -1;
while (log.size() < total) {
  const size = log.size();
  if (size !== last) {
    last = size;
    console.log(JSON.stringify({ event: 'progress', size, seconds: (performance.now() - start) / 1000 }));
  }
  if (performance.now() - start > 300_000) throw new Error(`cold sync stalled at ${size}/${total}`);
  await new Promise((resolve) => setTimeout(resolve, 20));
}
await log.settled();
const seconds = (performance.now() - start) / 1000;
const cpu = process.cpuUsage(startCpu);
const mainCpu = (await mainThreadCpuS()) - startMainCpu;
// Threads by name over the same span (a thread that ended meanwhile is not counted).
const threads = Object.fromEntries(
  Object.entries(await threadsCpuS()).map(([name, s]) => [
    name,
    Number((s - (startThreads[name] ?? 0)).toFixed(2)),
  ]),
);
if (inspector !== undefined) {
  const { profile } = (await post('HeapProfiler.stopSampling')) as { profile: unknown };
  (await import('node:fs')).writeFileSync(heapSample!, JSON.stringify(profile));
}
const stats = client.stats();
console.log(
  JSON.stringify({
    event: 'done',
    seconds,
    cpu_s: (cpu.user + cpu.system) / 1e6,
    main_cpu_s: mainCpu,
    threads_cpu_s: threads,
    bytes_in: stats.bytesIn,
    bytes_out: stats.bytesOut,
    by_seal: log.verification().bySeal,
  }),
);
await log.close();
await db.close();
process.exit(0);
