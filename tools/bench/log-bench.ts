// The log section of `npm run bench`: durable append throughput and latency at 1k and
// 100k events of history (and at the growth run's size), next to raw LevelDB batched puts of
// the same bytes.
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

/** Appends per second, median and 99th-percentile latency at one size of history. */
export interface AppendsAt {
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
}

/** A device of the later sections, as the log section left it at one size of history. */
export interface LogSnapshot {
  /** Events of history the device holds (its data folder was copied before the windows there). */
  readonly size: number;
  readonly device: BenchDevice;
  readonly appends: AppendsAt;
}

/**
 * Runs the log section: appends up to each size of `sizes` (ascending), copies the device's data
 * folder there for the later sections (relay seals, cold sync, memory), then measures appends
 * at that size. The 1k measurement comes first; raw LevelDB puts last.
 */
export async function benchLog(sizes: readonly number[]): Promise<{
  readonly at1k: AppendsAt;
  readonly snapshots: readonly LogSnapshot[];
  readonly level_raw_per_s: number;
  readonly appended_events: number;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'accord-bench-'));
  const key = await generateDeviceKey();
  const storedKey = await exportDeviceKey(key);
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

  const snapshots: LogSnapshot[] = [];
  for (const size of sizes) {
    await fill(log, n, size, `history to ${sizeLabel(size)}`);
    n = size;
    // The device of the later sections is this one as it stands now, with exactly `size`
    // events: a copy of its data folder, taken while the log is closed.
    const events = log.list().map((info) => info.event);
    await log.close();
    await db.close();
    const deviceDir = await mkdtemp(join(tmpdir(), 'accord-bench-'));
    await cp(join(dir, 'db'), join(deviceDir, 'db'), { recursive: true });
    ({ db, log } = await openBenchLog(dir, key));
    // What a device builds once after opening (its HTTP API's first answers), not per append.
    log.counts();
    log.tentative();
    const perSecond = await throughput(log, n, measureCount);
    n += measureCount;
    const lat = await latencies(log, n, latencyCount);
    n += latencyCount;
    snapshots.push({
      size,
      device: { dir: deviceDir, key, storedKey, events },
      appends: { perSecond, p50: percentile(lat, 50), p99: percentile(lat, 99) },
    });
  }

  const appended = log.size();
  await log.close();
  await db.close();

  // Raw LevelDB: the same bytes, batched the way group commit batches them, synced.
  const rawDir = join(dir, 'raw');
  const payloads = snapshots[0]!.device.events.slice(0, 20_000).map((e) => encodeSignedEvent(e));
  const raw = await benchRawLevelPuts(rawDir, payloads, { batchSize: 64, sync: true });
  await rm(rawDir, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });

  return {
    at1k: { perSecond: tput1k, p50: percentile(lat1k, 50), p99: percentile(lat1k, 99) },
    snapshots,
    level_raw_per_s: raw.perSecond,
    appended_events: appended,
  };
}

/** `100k`, `1m`: how a size of history is named in labels and in the keys of the growth run. */
export function sizeLabel(size: number): string {
  return size % 1_000_000 === 0 ? `${size / 1_000_000}m` : `${size / 1000}k`;
}
