// The log section of `npm run bench`: durable append throughput and latency at 1k and
// 100k events of history, next to raw LevelDB batched puts of the same bytes.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileOwnSeqMark } from '@accord/device';
import { DeviceLog, type LogRoster, type OwnSeqMark } from '@accord/log';
import type { NetworkAdapterInterface } from '@automerge/automerge-repo';
import {
  encodeSignedEvent,
  exportDeviceKey,
  generateDeviceKey,
  type DeviceId,
  type DeviceKeyPair,
  type FacilityId,
  type SignedEvent,
} from '@accord/protocol';
import { benchRawLevelPuts, openDeviceDatabase, type DeviceDatabase } from '@accord/storage-level';
import { percentile, progress, runConcurrent } from './stats.js';

export const BENCH_FACILITY = 'bench-facility' as FacilityId;

/** What the log section measured. */
export interface LogBenchResult {
  readonly append_per_s_at_1k: number;
  readonly append_per_s_at_100k: number;
  readonly append_p50_ms_at_1k: number;
  readonly append_p99_ms_at_1k: number;
  readonly append_p50_ms_at_100k: number;
  readonly append_p99_ms_at_100k: number;
  readonly append_cost_ratio_100k_vs_1k: number;
  readonly level_raw_per_s: number;
  /** Events in the device the later sections use (the history, before the 100k windows). */
  readonly history_events: number;
  /** Events the log section appended in all (history, windows and latency samples). */
  readonly appended_events: number;
}

/** A bench device left on disk for the later sections (cold sync, memory). */
export interface BenchDevice {
  readonly dir: string;
  readonly key: DeviceKeyPair;
  readonly storedKey: Awaited<ReturnType<typeof exportDeviceKey>>;
  readonly events: SignedEvent[];
}

/** A realistic draft: patient registrations with unique ids. */
export function draft(n: number): { type: string; data: Record<string, string> } {
  return {
    type: 'PatientRegistered',
    data: {
      patientId: `patient-${n.toString().padStart(7, '0')}`,
      nationalId: `GH-${(1_000_000 + n).toString()}`,
      givenName: ['Ama', 'Kofi', 'Esi', 'Kwame', 'Akua'][n % 5]!,
      familyName: ['Mensah', 'Owusu', 'Boateng', 'Asante', 'Osei'][(n >> 3) % 5]!,
      birthDate: `20${(10 + (n % 14)).toString()}-0${1 + (n % 9)}-1${n % 10}`,
      sex: n % 2 === 0 ? 'female' : 'male',
    },
  };
}

/** A roster of the bench facility holding `devices`. */
export function rosterOf(...devices: string[]): LogRoster {
  const members = new Map(devices.map((d) => [d, { facility: BENCH_FACILITY, revoked: false }]));
  return { lookup: (device) => members.get(device) };
}

/**
 * Opens the bench device's log on an open database, as an agent would: `relay` trusted for
 * verdicts and seals, `network` its adapters, LevelDB's tables unmapped after the start-up scan.
 */
export function openDeviceLog(
  db: DeviceDatabase,
  key: DeviceKeyPair,
  roster: LogRoster,
  network: readonly NetworkAdapterInterface[],
  relay?: DeviceId,
  ownSeqMark?: OwnSeqMark,
): Promise<DeviceLog> {
  return DeviceLog.open({
    facility: BENCH_FACILITY,
    key,
    eventStore: db.eventStore,
    storage: db.storageAdapter,
    roster,
    ...(relay === undefined ? {} : { relay }),
    network,
    afterStartupScan: db.unmapTables,
    ...(ownSeqMark === undefined ? {} : { ownSeqMark }),
  });
}

async function openBenchLog(
  dir: string,
  key: DeviceKeyPair,
): Promise<{ db: DeviceDatabase; log: DeviceLog }> {
  const db = await openDeviceDatabase(join(dir, 'db'));
  // With the own-sequence mark file, as the device agent appends (one durable write per block).
  const mark = fileOwnSeqMark(join(dir, 'own-seq.json'));
  const log = await openDeviceLog(db, key, rosterOf(key.deviceId), [], undefined, mark);
  return { db, log };
}

async function fill(log: DeviceLog, from: number, to: number, label: string): Promise<void> {
  let done = 0;
  await runConcurrent(to - from, 64, async (i) => {
    await log.append(draft(from + i));
    if (++done % 5000 === 0 || done === to - from) progress(label, done, to - from);
  });
}

async function throughput(log: DeviceLog, from: number, count: number): Promise<number> {
  const ms = await runConcurrent(count, 64, (i) => log.append(draft(from + i)));
  return (count / ms) * 1000;
}

async function latencies(log: DeviceLog, from: number, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await log.append(draft(from + i));
    out.push(performance.now() - start);
  }
  return out;
}

/** Runs the log section; leaves a device with `history` events on disk for the next sections. */
export async function benchLog(history: number): Promise<{ result: LogBenchResult; device: BenchDevice }> {
  const dir = await mkdtemp(join(tmpdir(), 'accord-bench-'));
  const key = await generateDeviceKey();
  let { db, log } = await openBenchLog(dir, key);
  // Long enough to include the periodic costs (document saves, sealing sweeps), not just a quiet burst.
  const measureCount = 20_000;
  const latencyCount = 400;

  await fill(log, 0, 1000, 'history to 1k');
  // At 1k: latency first (so it really is measured at ~1k), then a short throughput burst.
  const lat1k = await latencies(log, 1000, latencyCount);
  let n = 1000 + latencyCount;
  const tput1k = await throughput(log, n, 3000);
  n += 3000;

  await fill(log, n, history, `history to ${history / 1000}k`);
  n = history;
  // The device of the later sections (relay seals, cold sync, memory) is this one as it stands
  // now, with exactly `history` events: a copy of its data folder, taken while the log is closed.
  const events = log.list().map((info) => info.event);
  await log.close();
  await db.close();
  const deviceDir = await mkdtemp(join(tmpdir(), 'accord-bench-'));
  await cp(join(dir, 'db'), join(deviceDir, 'db'), { recursive: true });
  ({ db, log } = await openBenchLog(dir, key));
  // What a device builds once after opening (its HTTP API's first answers), not per append.
  log.counts();
  log.tentative();
  const tput100k = await throughput(log, n, measureCount);
  n += measureCount;
  const lat100k = await latencies(log, n, latencyCount);
  n += latencyCount;

  const appended = log.size();
  await log.close();
  await db.close();

  // Raw LevelDB: the same bytes, batched the way group commit batches them, synced.
  const rawDir = join(dir, 'raw');
  const payloads = events.slice(0, 20_000).map((e) => encodeSignedEvent(e));
  const raw = await benchRawLevelPuts(rawDir, payloads, { batchSize: 64, sync: true });
  await rm(rawDir, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });

  const p50at1k = percentile(lat1k, 50);
  const p50at100k = percentile(lat100k, 50);
  return {
    result: {
      append_per_s_at_1k: tput1k,
      append_per_s_at_100k: tput100k,
      append_p50_ms_at_1k: p50at1k,
      append_p99_ms_at_1k: percentile(lat1k, 99),
      append_p50_ms_at_100k: p50at100k,
      append_p99_ms_at_100k: percentile(lat100k, 99),
      // Cost of one append (median single-appender latency) at 100k vs at 1k of history.
      append_cost_ratio_100k_vs_1k: p50at100k / p50at1k,
      level_raw_per_s: raw.perSecond,
      history_events: events.length,
      appended_events: appended,
    },
    device: { dir: deviceDir, key, storedKey: await exportDeviceKey(key), events },
  };
}
