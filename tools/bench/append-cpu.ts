// A small harness for the CPU of one durable append (issue #12, `append_vs_sign_ratio`):
//   node --conditions=@accord/source --import tsx tools/bench/append-cpu.ts make DIR HISTORY [LOGMODULE]
//   node --conditions=@accord/source --import tsx tools/bench/append-cpu.ts run DIR [COUNT] [LOGMODULE]
// `make` fills a device folder to HISTORY events (64 appenders); `run` copies it, opens the log as
// the bench does (with the own-seq mark file), builds the views a device builds once, then appends
// COUNT more with 64 appenders and prints one JSON line: process CPU (all threads) and main-thread
// CPU per append, appends/s, and node:crypto signatures/s on one thread measured in the same
// process right after. LOGMODULE (a path) lets an A/B run load another copy of `@accord/log`; given
// to `make`, that copy writes the history (so that an older copy can read it: say, segment entries
// of one event each, which every later copy reads too).
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { generateKeyPairSync, sign } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Session } from 'node:inspector/promises';
import { pathToFileURL } from 'node:url';
import { fileOwnSeqMark } from '@accord/device';
import { exportDeviceKey, importDeviceKey, type DeviceKeyPair } from '@accord/protocol';
import { openDeviceDatabase } from '@accord/storage-level';
import { writeFile } from 'node:fs/promises';
import { BENCH_FACILITY, draft, rosterOf } from './log-bench.js';
import { mainThreadCpuS, runConcurrent } from './stats.js';

import type * as AccordLog from '@accord/log';

type LogModule = typeof AccordLog;

/** CPU in µs of every thread of this process, by thread name (from /proc). */
async function threadsCpuUs(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const tid of await readdir('/proc/self/task')) {
    try {
      const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

async function openLog(mod: LogModule, dir: string, key: DeviceKeyPair) {
  const db = await openDeviceDatabase(join(dir, 'db'));
  const log = await mod.DeviceLog.open({
    facility: BENCH_FACILITY,
    key,
    eventStore: db.eventStore,
    storage: db.storageAdapter,
    roster: rosterOf(key.deviceId),
    network: [],
    afterStartupScan: db.unmapTables,
    ownSeqMark: fileOwnSeqMark(join(dir, 'own-seq.json')),
    // APPEND_CPU_SIGNER=none: a signer that signs nothing (its signatures do not verify), to
    // measure what signing costs the main thread.
    ...(process.env['APPEND_CPU_SIGNER'] === 'none'
      ? { signer: () => Promise.resolve(new Uint8Array(64)) }
      : {}),
  });
  return { db, log };
}

function signRate(): number {
  const { privateKey } = generateKeyPairSync('ed25519');
  const sample = Array.from({ length: 20_000 }, (_, i) =>
    Buffer.from(JSON.stringify({ ...draft(i), v: 1, id: `x-${i}`, hlc: '0000000000000-0000-dev' })),
  );
  for (const bytes of sample.slice(0, 500)) sign(null, bytes, privateKey);
  const start = performance.now();
  for (const bytes of sample) sign(null, bytes, privateKey);
  return sample.length / ((performance.now() - start) / 1000);
}

async function main(): Promise<void> {
  const [cmd, dirArg, arg3, arg4] = process.argv.slice(2);
  const dir = resolve(dirArg ?? 'append-cpu-dev');
  if (cmd === 'make') {
    const history = Number(arg3 ?? 20_000);
    const mod: LogModule =
      arg4 === undefined
        ? await import('@accord/log')
        : ((await import(pathToFileURL(resolve(arg4)).href)) as LogModule);
    const key = await (await import('@accord/protocol')).generateDeviceKey();
    await writeFile(join(dir + '.key.json'), JSON.stringify(await exportDeviceKey(key)));
    const { db, log } = await openLog(mod, dir, key);
    await runConcurrent(history, 64, (i) => log.append(draft(i)));
    await log.close();
    await db.close();
    return;
  }
  const count = Number(arg3 ?? 10_000);
  const mod: LogModule =
    arg4 === undefined
      ? await import('@accord/log')
      : ((await import(pathToFileURL(resolve(arg4)).href)) as LogModule);
  const key = await importDeviceKey(
    JSON.parse(await readFile(dir + '.key.json', 'utf8')) as Parameters<typeof importDeviceKey>[0],
  );
  const work = await mkdtemp(join(tmpdir(), 'append-cpu-'));
  await cp(dir, work, { recursive: true });
  const { db, log } = await openLog(mod, work, key);
  log.counts();
  log.tentative();
  const from = log.size();
  // Warm-up: the JIT, the first save of the segment documents.
  await runConcurrent(2000, 64, (i) => log.append(draft(from + i)));
  await log.settled();
  // APPEND_CPU_PROFILE=file.cpuprofile: a V8 CPU profile of the window alone.
  const profile = process.env['APPEND_CPU_PROFILE'];
  const session = profile === undefined ? undefined : new Session();
  if (session !== undefined) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const cpu0 = process.cpuUsage();
  const main0 = 1e6 * (await mainThreadCpuS());
  const threads0 = await threadsCpuUs();
  const ms = await runConcurrent(count, 64, (i) => log.append(draft(from + 2000 + i)));
  // The CPU counted includes pushing the window's events into the segment documents.
  await log.settled();
  const cpu = process.cpuUsage(cpu0);
  const mainUs = 1e6 * (await mainThreadCpuS()) - main0;
  const threads: Record<string, number> = {};
  for (const [name, us] of await threadsCpuUs()) {
    const per = (us - (threads0.get(name) ?? 0)) / count;
    if (per >= 0.5) threads[name] = Math.round(per * 10) / 10;
  }
  if (session !== undefined && profile !== undefined) {
    const { profile: taken } = await session.post('Profiler.stop');
    await writeFile(profile, JSON.stringify(taken));
    session.disconnect();
  }
  const perSecond = (count / ms) * 1000;
  await log.close();
  await db.close();
  await rm(work, { recursive: true, force: true });
  const signs = signRate();
  console.log(
    JSON.stringify({
      impl: arg4 ?? 'worktree',
      history: from,
      count,
      cpu_us_per_append: Math.round(((cpu.user + cpu.system) / count) * 10) / 10,
      main_us_per_append: Math.round((mainUs / count) * 10) / 10,
      append_per_s: Math.round(perSecond),
      sign_per_s: Math.round(signs),
      ratio: Math.round((perSecond / signs) * 1000) / 1000,
      threads_us_per_append: threads,
    }),
  );
}

await main();
