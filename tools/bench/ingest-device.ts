// Child process of the benchmark's relay ingest run: one enrolled tablet with a backlog.
// Opens a fresh LevelDB and log, appends its backlog offline (patient registrations, numbered from
// `first`), says so, and on `go` (stdin) dials the relay over the authenticated WebSocket sync.
// Usage: ingest-device.ts <dir> <stored-key-json> <relay-id> <relay-port> <first> <count> <member-id>...
// Prints {"event":"filled", events} then stays up until SIGTERM.
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { importDeviceKey, type DeviceId } from '@accord/protocol';
import { openDeviceDatabase } from '@accord/storage-level';
import { WebSocketClientAdapter } from '@accord/network-ws';
import { BENCH_FACILITY, draft, openDeviceLog, rosterOf } from './log-bench.js';
import { runConcurrent } from './stats.js';

const [dir, storedKey, relayId, portText, firstText, countText, ...members] = process.argv.slice(2);
if (
  dir === undefined ||
  storedKey === undefined ||
  relayId === undefined ||
  portText === undefined ||
  firstText === undefined ||
  countText === undefined
)
  throw new Error('usage: ingest-device.ts DIR KEY RELAY-ID RELAY-PORT FIRST COUNT MEMBER...');
const relay = relayId as DeviceId;
const first = Number(firstText);
const key = await importDeviceKey(JSON.parse(storedKey));
const roster = rosterOf(key.deviceId, relay, ...members);
const db = await openDeviceDatabase(join(dir, 'db'));
const log = await openDeviceLog(db, key, roster, [], relay);
await runConcurrent(Number(countText), 64, (i) => log.append(draft(first + i)));
await log.settled();
/** CPU time of this process since `go` (µs), for the trace. */
let cpuAtGo: NodeJS.CpuUsage | undefined;
process.on('SIGTERM', () => {
  if (process.env['ACCORD_BENCH_TRACE'] !== undefined && cpuAtGo !== undefined) {
    const cpu = process.cpuUsage(cpuAtGo);
    // How much of the machine this device took while the relay worked, and how it verified its peers' events.
    process.stderr.write(
      `[bench] ingest device ${key.deviceId.slice(0, 8)}: cpu ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s since go, ` +
        `holds ${log.size()}, verified ${JSON.stringify(log.verification())}\n`,
    );
  }
  void log
    .close()
    .then(() => db.close())
    .then(() => process.exit(0));
});
console.log(JSON.stringify({ event: 'filled', events: log.size() }));
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== 'go') continue;
  cpuAtGo = process.cpuUsage();
  log.addNetworkAdapter(
    new WebSocketClientAdapter({
      url: `ws://127.0.0.1:${portText}`,
      identity: key,
      facility: BENCH_FACILITY,
      roster,
      expectedPeer: relay,
      backoff: { baseMs: 50, maxMs: 500 },
    }),
  );
}
