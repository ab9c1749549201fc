// Child process of the benchmark: opens a bench device's LevelDB and log, serves it to
// peers over the authenticated WebSocket adapter, and reports its resident memory.
// Usage: serve-device.ts <dir> <stored-key-json> <peer-device-id> [<relay-device-id>]
import { join } from 'node:path';
import { importDeviceKey, type DeviceId } from '@accord/protocol';
import { openDeviceDatabase } from '@accord/storage-level';
import { WebSocketServerAdapter } from '@accord/network-ws';
import { BENCH_FACILITY, openDeviceLog, rosterOf } from './log-bench.js';

const [dir, storedKey, peer, relay] = process.argv.slice(2);
if (dir === undefined || storedKey === undefined || peer === undefined)
  throw new Error('usage: serve-device.ts DIR KEY PEER [RELAY]');
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
    events: log.size(),
    rss_mb: usage.rss / 1048576,
    heap_mb: usage.heapUsed / 1048576,
    heap_total_mb: usage.heapTotal / 1048576,
    external_mb: usage.external / 1048576,
  }),
);
process.stdin.resume();
process.stdin.on('data', (line) => {
  // `rss <seconds>`: first what the HTTP API builds for its first requests (status counts, the
  // tentative and confirmed projections), then the steady state of a device left idle that
  // long. No forced collection: V8's own memory reducer returns start-up garbage after a few
  // idle seconds, as it does for a real agent.
  const seconds = Number(String(line).trim().split(' ')[1] ?? 15);
  const counts = log.counts();
  log.tentative();
  log.confirmed();
  void (async () => {
    for (let s = 1; s <= seconds; s++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      console.log(JSON.stringify({ event: 'idle', second: s, rss_mb: process.memoryUsage().rss / 1048576 }));
    }
    const usage = process.memoryUsage();
    console.log(
      JSON.stringify({
        event: 'rss',
        counted: counts.total,
        rss_mb: usage.rss / 1048576,
        heap_mb: usage.heapUsed / 1048576,
        // Linux reports the high-water mark in kilobytes.
        peak_mb: process.resourceUsage().maxRSS / 1024,
      }),
    );
  })();
});
process.on('SIGTERM', () => {
  void log
    .close()
    .then(() => db.close())
    .then(() => process.exit(0));
});
