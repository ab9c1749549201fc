// Child process of the benchmark: opens a bench device's LevelDB and log, serves it to
// peers over the authenticated WebSocket adapter and to the user over the device's HTTP API with
// the Sync Centre page (as an agent does), and reports its resident memory.
// Usage: serve-device.ts <dir> <stored-key-json> <page-dir> <peer-device-id> [<relay-device-id>]
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HttpApi, type StaticAsset } from '@accord/device';
import { importDeviceKey, type DeviceId } from '@accord/protocol';
import { openDeviceDatabase } from '@accord/storage-level';
import { WebSocketServerAdapter } from '@accord/network-ws';
import { BENCH_FACILITY, openDeviceLog, rosterOf } from './log-bench.js';

const [dir, storedKey, pageDir, peer, relay] = process.argv.slice(2);
if (dir === undefined || storedKey === undefined || pageDir === undefined || peer === undefined)
  throw new Error('usage: serve-device.ts DIR KEY PAGE-DIR PEER [RELAY]');
const key = await importDeviceKey(JSON.parse(storedKey));
const roster = rosterOf(key.deviceId, peer, ...(relay === undefined ? [] : [relay]));
const db = await openDeviceDatabase(join(dir, 'db'));
const server = new WebSocketServerAdapter({
  identity: key,
  facility: BENCH_FACILITY,
  roster,
  port: 0,
  host: '127.0.0.1',
});
const log = await openDeviceLog(db, key, roster, [server], relay as DeviceId | undefined);
const address = await server.listening();
// The page's files, as the agent serves them (built by the bench process: see sync-bench.ts);
// '-' runs no HTTP API (the memory baseline).
const asset = async (file: string, contentType: string): Promise<[string, StaticAsset]> => [
  `/${file}`,
  { contentType, body: await readFile(join(pageDir, file)) },
];
const http =
  pageDir === '-'
    ? undefined
    : await HttpApi.listen({
        log,
        identity: { device: key.deviceId, name: 'bench tablet', facility: BENCH_FACILITY },
        network: { online: true, setOnline: () => undefined, peers: () => [] },
        port: 0,
        assets: new Map([
          await asset('index.html', 'text/html; charset=utf-8'),
          await asset('app.js', 'text/javascript; charset=utf-8'),
          await asset('app.css', 'text/css; charset=utf-8'),
        ]),
        ...(relay === undefined ? {} : { relay: { id: relay as DeviceId, url: null } }),
        dataFolder: dir,
      });

/**
 * What the HTTP API builds in the log when the page opens (the bench process makes the page's
 * requests, so that their client is not counted here); without an HTTP API, the same: counts and
 * both projections.
 */
function builtForThePage(): number {
  log.tentative();
  log.confirmed();
  return log.counts().total;
}

/**
 * Consecutive one-second RSS readings that must agree for the idle reading to count as settled:
 * longer than the period of V8's memory reducer (it looks again every 8 s while the heap may
 * shrink), so a window with no change is one in which it had its chance to run and did not free more.
 */
const SETTLE_WINDOW = 10;
/** How far (MB) those readings may spread. */
const SETTLE_MB = 2;

/**
 * This process's own high-water mark of resident memory (MB): Linux's `VmHWM`, the peak of the
 * memory this program mapped since it started.
 *
 * @remarks Not `process.resourceUsage().maxRSS`: Linux carries `ru_maxrss` across `fork` and
 * `execve`, so a child's starts at what its parent had resident when it was forked (the page tables
 * of its malloc'd memory are copied, then replaced). The bench process spawns this one after a
 * relay and a cold sync ran inside it, and `maxRSS` reported the bench process's size, 257-271 MB,
 * against a device peak of 186-198 MB. Without `/proc`, `maxRSS` all the same.
 */
function ownPeakMb(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (hwm !== null) return Number(hwm[1]) / 1024;
  } catch {
    // No procfs: fall back.
  }
  return process.resourceUsage().maxRSS / 1024;
}

const usage = process.memoryUsage();
if (process.env['ACCORD_BENCH_TRACE'])
  console.error(
    'serve handles',
    log
      .documentsInMemory()
      .map((d) => d.documentId.slice(0, 6) + ':' + (d.ready ? 'ready' : 'not-ready'))
      .join(' '),
    JSON.stringify(log.integrity()),
  );
console.log(
  JSON.stringify({
    event: 'ready',
    port: address.port,
    http_port: http?.port ?? null,
    events: log.size(),
    rss_mb: usage.rss / 1048576,
    heap_mb: usage.heapUsed / 1048576,
    heap_total_mb: usage.heapTotal / 1048576,
    external_mb: usage.external / 1048576,
  }),
);
process.stdin.resume();
process.stdin.on('data', (line) => {
  // `rss <min> <max>`, sent once the bench process has opened the page on the HTTP API (its files,
  // the live stream, status, deadletters, outbox, environment): the steady state of a device left
  // idle. No forced collection: V8's memory reducer returns start-up garbage after some idle
  // seconds, as it does for a real agent, but not at a fixed time (a reading at 15 s was 152 MB
  // in some runs and 194 MB in others on one folder). So RSS is read every second, and the
  // reading is taken once it has settled: after at least `min` seconds, when the last
  // SETTLE_WINDOW readings lie within SETTLE_MB of each other (their median is reported), or at
  // `max` seconds if it never does (reported as not settled).
  const [, min = 15, max = 90] = String(line).trim().split(' ').map(Number);
  void (async () => {
    const counted = builtForThePage();
    const readings: number[] = [];
    let settled = false;
    while (readings.length < max && !settled) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const rss = process.memoryUsage().rss / 1048576;
      readings.push(rss);
      console.log(JSON.stringify({ event: 'idle', second: readings.length, rss_mb: rss }));
      const window = readings.slice(-SETTLE_WINDOW);
      settled =
        readings.length >= min &&
        window.length === SETTLE_WINDOW &&
        Math.max(...window) - Math.min(...window) <= SETTLE_MB;
    }
    const window = readings.slice(-SETTLE_WINDOW).sort((a, b) => a - b);
    const usage = process.memoryUsage();
    console.log(
      JSON.stringify({
        event: 'rss',
        counted,
        rss_mb: window[Math.floor(window.length / 2)],
        settled,
        idle_s: readings.length,
        heap_mb: usage.heapUsed / 1048576,
        peak_mb: ownPeakMb(),
      }),
    );
  })();
});
process.on('SIGTERM', () => {
  void (http?.close() ?? Promise.resolve())
    .then(() => log.close())
    .then(() => db.close())
    .then(() => process.exit(0));
});
