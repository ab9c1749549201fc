// A development tool, not part of `npm run bench`: interleaved before/after runs of the device
// section's cold sync on a relay-sealed facility kept on disk, with both processes' CPU time.
//
//   node --conditions=@accord/source --import tsx tools/bench/cold-sync-pairs.ts build N DIR
//     appends N events to a new bench device, has a relay verdict and seal them (as the device
//     section does) and keeps the result in DIR;
//   … cold-sync-pairs.ts bundle NAME
//     bundles this checkout's serve-device.ts and receive-device.ts as NAME (one code state, kept
//     under node_modules/.cache/accord-pairs/, where the bundles' packages resolve);
//   … cold-sync-pairs.ts run DIR ROUNDS NAME… [--anchor] [--prof PROFDIR]
//     runs ROUNDS rounds, each one cold sync per NAME in turn (A B A B …), and with --anchor stock
//     automerge-repo's cold sync of the same events each round; with --prof the new device (only
//     it) writes a V8 CPU profile of each run into PROFDIR/NAME/.
//
// Per run it prints the new device's wall and CPU time, its main thread's apart (`receive-device.ts`'s own figures: from
// before its log opens until it holds every event), the seconds until its first event and until
// it holds more than 1000 (a first segment of the device's: the relay's own are fewer), and the
// serving device's CPU time over the same window (read from /proc before and after), with the
// load average.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  decodeSignedEvent,
  encodeSignedEvent,
  exportDeviceKey,
  generateDeviceKey,
  importDeviceKey,
  type DeviceId,
  type SignedEvent,
} from '@accord/protocol';
import { openDeviceDatabase } from '@accord/storage-level';
import { ensureBundle } from '../../apps/accord/bin/bundle.mjs';
import { benchAutomergeRepoColdSync } from './anchor-bench.js';
import { draft, openDeviceLog, rosterOf } from './log-bench.js';
import { relaySealHistory } from './seal-bench.js';
import { runConcurrent, settleHarness } from './stats.js';
import { startBundleChild } from './sync-bench.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const codeDir = (name: string): string => join(ROOT, 'node_modules/.cache/accord-pairs', name);
const [command, ...rest] = process.argv.slice(2);

const ticks = 100; // USER_HZ on Linux
/** CPU seconds (user + system) a process has used so far, from /proc. */
async function cpuOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

const start = startBundleChild;

interface Kept {
  readonly storedKey: Parameters<typeof importDeviceKey>[0];
  readonly relay: DeviceId;
  readonly total: number;
}

async function build(n: number, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const key = await generateDeviceKey();
  const storedKey = await exportDeviceKey(key);
  const db = await openDeviceDatabase(join(dir, 'db'));
  const log = await openDeviceLog(db, key, rosterOf(key.deviceId), []);
  await runConcurrent(n, 64, (i) => log.append(draft(i)));
  const events = log.list().map((info) => info.event);
  await log.close();
  await db.close();
  const sealed = await relaySealHistory({ dir, key, storedKey, events });
  const text = (list: readonly SignedEvent[]): string =>
    list.map((e) => new TextDecoder().decode(encodeSignedEvent(e))).join('\n') + '\n';
  await writeFile(join(dir, 'events.ndjson'), text(events));
  const kept: Kept = { storedKey, relay: sealed.relay, total: events.length + sealed.events.length };
  await writeFile(join(dir, 'kept.json'), JSON.stringify(kept));
  console.log(`kept ${events.length} events and ${sealed.events.length} relay events in ${dir}`);
}

async function bundle(name: string): Promise<void> {
  const out = codeDir(name);
  for (const script of ['serve-device.ts', 'receive-device.ts'])
    await ensureBundle(join(ROOT, 'tools/bench', script), join(out, script.replace(/\.ts$/, '.mjs')));
  console.log(`bundled into ${out}`);
}

async function once(dir: string, kept: Kept, code: string, prof: string | undefined): Promise<string> {
  const key = await importDeviceKey(kept.storedKey);
  const newKey = await generateDeviceKey();
  const served = start(
    join(codeDir(code), 'serve-device.mjs'),
    [dir, JSON.stringify(kept.storedKey), '-', newKey.deviceId, kept.relay],
    undefined,
  );
  const ready = await served.next();
  const target = await mkdtemp(join(tmpdir(), 'accord-pairs-new-'));
  await settleHarness();
  const load = loadavg()[0]!.toFixed(1);
  const serveCpu0 = await cpuOf(served.child.pid!);
  const receiver = start(
    join(codeDir(code), 'receive-device.mjs'),
    [
      target,
      JSON.stringify(await exportDeviceKey(newKey)),
      `ws://127.0.0.1:${String(ready['port'])}`,
      String(kept.total),
      key.deviceId,
      '--relay',
      kept.relay,
    ],
    prof === undefined ? undefined : join(prof, code),
  );
  let first: number | undefined;
  let segment: number | undefined;
  let line = await receiver.next();
  while (line['event'] === 'progress') {
    const size = line['size'] as number;
    if (first === undefined && size > 0) first = line['seconds'] as number;
    // The relay's own events are a few hundred at most: past 1000, a first segment of the device's.
    if (segment === undefined && size > 1000) segment = line['seconds'] as number;
    line = await receiver.next();
  }
  const serveCpu = (await cpuOf(served.child.pid!)) - serveCpu0;
  await new Promise((resolve) => receiver.child.once('exit', resolve));
  const exited = new Promise((resolve) => served.child.once('exit', resolve));
  served.child.kill('SIGTERM');
  await exited;
  await rm(target, { recursive: true, force: true });
  const f = (x: unknown): string => (x as number).toFixed(2);
  return (
    `${code}: wall ${f(line['seconds'])} s, new device cpu ${f(line['cpu_s'])} s (main thread ${f(line['main_cpu_s'])} s), ` +
    `first event ${f(first ?? Number.NaN)} s, first segment ${f(segment ?? Number.NaN)} s, serving cpu ${serveCpu.toFixed(2)} s, by seal ${String(line['by_seal'])}, load ${load}` +
    (process.env['ACCORD_PAIRS_THREADS'] ? `\n  threads ${JSON.stringify(line['threads_cpu_s'])}` : '')
  );
}

async function run(
  dir: string,
  rounds: number,
  codes: readonly string[],
  anchor: boolean,
  prof: string | undefined,
): Promise<void> {
  const kept = JSON.parse(await readFile(join(dir, 'kept.json'), 'utf8')) as Kept;
  const events = anchor
    ? (await readFile(join(dir, 'events.ndjson'), 'utf8'))
        .trim()
        .split('\n')
        .map((line) => {
          const decoded = decodeSignedEvent(new TextEncoder().encode(line));
          if (!decoded.ok) throw new Error('a kept event does not decode');
          return decoded.value;
        })
    : [];
  for (let round = 0; round < rounds; round++) {
    for (const code of codes) console.log(await once(dir, kept, code, prof));
    if (anchor) {
      const load = loadavg()[0]!.toFixed(1);
      const { automerge_repo_cold_sync_100k_s: s } = await benchAutomergeRepoColdSync(events);
      console.log(`anchor: wall ${s.toFixed(2)} s, load ${load}`);
    }
  }
}

if (command === 'build') await build(Number(rest[0]), rest[1]!);
else if (command === 'bundle') await bundle(rest[0]!);
else if (command === 'run') {
  const anchor = rest.includes('--anchor');
  const profAt = rest.indexOf('--prof');
  const prof = profAt >= 0 ? rest[profAt + 1] : undefined;
  const args = rest.filter((a, i) => a !== '--anchor' && (profAt < 0 || (i !== profAt && i !== profAt + 1)));
  const [dir, rounds, ...codes] = args;
  await run(dir!, Number(rounds), codes, anchor, prof);
} else
  throw new Error(
    'usage: cold-sync-pairs.ts build N DIR | bundle NAME | run DIR ROUNDS NAME… [--anchor] [--prof DIR]',
  );
