// Child process of the benchmark's relay ingest run: one enrolled tablet with a backlog.
// Opens a fresh LevelDB and log, appends its backlog offline (patient registrations, numbered from
// `first`), says so, and on `go` (stdin) dials the relay over the authenticated WebSocket sync.
// Usage: ingest-device.ts <dir> <stored-key-json> <relay-id> <relay-port> <first> <count> <member-id>...
// Prints {"event":"filled", events} then stays up until SIGTERM; answers `cpu` (trace) with {"event":"cpu", cpu_s, main_s}.
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { importDeviceKey, type DeviceId } from '@accord/protocol';
import { openDeviceDatabase } from '@accord/storage-level';
import { WebSocketClientAdapter } from '@accord/network-ws';
import { BENCH_FACILITY, draft, openDeviceLog, rosterOf } from './log-bench.js';
import { mainThreadCpuS, runConcurrent, threadCpuS } from './stats.js';

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
let threadsAtGo = new Map<string, number>();
/** CPU time of this process (µs) and of its main thread (s) at `go`, for the trace. */
let cpuAtGo: { readonly process: NodeJS.CpuUsage; readonly main: number } | undefined;
/** Writes to stderr how much of the machine this device took since `go`, by thread, and how it verified its peers' events. */
async function traceCpu(when: string): Promise<{ cpu_s: number; main_s: number }> {
  if (cpuAtGo === undefined) return { cpu_s: 0, main_s: 0 };
  const cpu = process.cpuUsage(cpuAtGo.process);
  const all = (cpu.user + cpu.system) / 1e6;
  const main = (await mainThreadCpuS()) - cpuAtGo.main;
  const threads = [...(await threadCpuS())]
    .map(([tid, s]) => [Number(tid) - process.pid, s - (threadsAtGo.get(tid) ?? 0)] as const)
    .filter(([, s]) => s > 0.005)
    .map(([tid, s]) => `+${tid}:${s.toFixed(2)}`)
    .join(' ');
  process.stderr.write(
    `[bench] ingest device ${key.deviceId.slice(0, 8)}: cpu ${all.toFixed(2)} s since go ${when} ` +
      `(main thread ${main.toFixed(2)} s, other threads ${(all - main).toFixed(2)} s), ` +
      `threads ${threads}, holds ${log.size()}, verified ${JSON.stringify(log.verification())}, ` +
      `whole documents ${JSON.stringify(log.wholeDocuments())}\n`,
  );
  return { cpu_s: all, main_s: main };
}
process.on('SIGTERM', () => {
  void log
    .close()
    .then(() => db.close())
    .then(() => process.exit(0));
});
console.log(JSON.stringify({ event: 'filled', events: log.size() }));
for await (const line of createInterface({ input: process.stdin })) {
  // `cpu` (sent with ACCORD_BENCH_TRACE once the relay's last verdict is durable): the window's CPU.
  if (line.trim() === 'cpu') {
    console.log(JSON.stringify({ event: 'cpu', ...(await traceCpu('until the last verdict')) }));
  }
  if (line.trim() !== 'go') continue;
  if (process.env['ACCORD_BENCH_TRACE'] !== undefined)
    process.stderr.write(
      `[bench] ingest device ${key.deviceId.slice(0, 8)} at go: documents in memory ${log.documentsInMemory().length}\n`,
    );
  threadsAtGo = await threadCpuS();
  cpuAtGo = { process: process.cpuUsage(), main: await mainThreadCpuS() };
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
